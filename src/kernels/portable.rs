//! The portable backend: `wide`'s 8-lane vectors, which compile to SSE2 on
//! x86-64 and NEON on aarch64 with no runtime detection. Codes are decoded
//! with the scalar helpers; the arithmetic runs 8 lanes wide.

use wide::{f32x8, i32x8};

use super::Element;
use super::driver::RowDots;
#[cfg(feature = "alloc")]
use crate::act::QuantizedActivations;
use crate::quant::Layout;
use crate::quant::block::{CHUNK, chunk_bytes, header_params, unpack_chunk};

/// The portable row kernels (always available).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable;

/// Lanes `8·part..8·part + 8` of a decoded chunk.
#[inline(always)]
fn lanes(q: &[i32; CHUNK], part: usize) -> i32x8 {
    i32x8::from(<[i32; 8]>::try_from(&q[8 * part..8 * part + 8]).expect("8 lanes"))
}

impl RowDots for Portable {
    #[inline(always)]
    fn dots_f32<A: Element, const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        x: [&[A]; T],
    ) -> [f32; T] {
        let kind = layout.kind;
        let (hb, cb, g) = (layout.header_bytes(), chunk_bytes(kind), layout.group);
        let mut acc = [f32x8::ZERO; T];
        for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(kind, &block[..hb]);
            // `unpack_chunk` gives signed q (nibbles minus 8), so value = q·d + m.
            let (dv, mv) = (f32x8::splat(d), f32x8::splat(m));
            for (ci, chunk) in block[hb..].chunks_exact(cb).enumerate() {
                let base = b * g + ci * CHUNK;
                let mut q = [0i32; CHUNK];
                unpack_chunk(kind, chunk, &mut q);
                for part in 0..4 {
                    let qv = f32x8::from_i32x8(lanes(&q, part));
                    let v = qv.mul_add(dv, mv);
                    for t in 0..T {
                        let xs: [f32; 8] =
                            core::array::from_fn(|i| x[t][base + 8 * part + i].to_f32());
                        acc[t] = v.mul_add(f32x8::from(xs), acc[t]);
                    }
                }
            }
        }
        acc.map(|a| a.reduce_add())
    }

    #[cfg(feature = "alloc")]
    #[inline(always)]
    fn dots_q8<const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        xq: &QuantizedActivations,
        i0: usize,
    ) -> [f32; T] {
        let kind = layout.kind;
        let (hb, cb, g, k) = (layout.header_bytes(), chunk_bytes(kind), layout.group, xq.k);
        let kb = k / CHUNK;
        let mut acc = [f32x8::ZERO; T];
        let mut corr = [0.0f32; T];
        for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(kind, &block[..hb]);
            for (ci, chunk) in block[hb..].chunks_exact(cb).enumerate() {
                let c = b * (g / CHUNK) + ci;
                let mut q = [0i32; CHUNK];
                unpack_chunk(kind, chunk, &mut q);
                for t in 0..T {
                    let a = &xq.codes[(i0 + t) * k + c * CHUNK..][..CHUNK];
                    let mut dot = i32x8::ZERO;
                    for part in 0..4 {
                        let av: [i32; 8] = core::array::from_fn(|i| i32::from(a[8 * part + i]));
                        dot += lanes(&q, part) * i32x8::from(av);
                    }
                    let s = xq.scales[(i0 + t) * kb + c];
                    acc[t] = f32x8::from_i32x8(dot).mul_add(f32x8::splat(d * s), acc[t]);
                    // The min term: m · s · Σa.
                    corr[t] += m * xq.sums[(i0 + t) * kb + c];
                }
            }
        }
        core::array::from_fn(|t| acc[t].reduce_add() + corr[t])
    }
}
