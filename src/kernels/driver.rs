//! The loops every SIMD backend shares: output rows, tiles of activation
//! rows, and the protected correction and LLM.int8 outlier columns added in
//! the same pass. A backend supplies only the dense dot of one weight row
//! against a tile of activation rows ([`RowDots`]); its entry function has
//! the `#[target_feature]`, and these `#[inline(always)]` loops compile
//! inside it.

use core::ops::Range;

use super::Element;
#[cfg(feature = "alloc")]
use super::scalar::chunk_values;
#[cfg(feature = "alloc")]
use crate::act::QuantizedActivations;
use crate::protect::ProtectedView;
#[cfg(feature = "alloc")]
use crate::quant::block::CHUNK;
use crate::quant::{CodeKind, Layout, QuantView};

/// Activation rows handled together, so each weight block is decoded once
/// for all of them.
pub(crate) const TILE: usize = 4;

/// The per-backend dense kernels.
pub(crate) trait RowDots: Copy {
    /// `out[t] = Σ_j x_t[j] · ŵ[j]` for one weight row and `T` activation rows.
    fn dots_f32<A: Element, const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        x: [&[A]; T],
    ) -> [f32; T];
    /// Adds row `j`'s protected correction `Σ value · x_t[col]` to `out`
    /// (`x_t` are whole activation rows of length k).
    #[cfg(feature = "alloc")]
    #[inline(always)]
    fn sparse<const T: usize>(
        self,
        p: &ProtectedView<'_>,
        j: usize,
        x: [&[f32]; T],
        out: &mut [f32; T],
    ) {
        p.accumulate_row(j, x, out);
    }

    #[cfg(feature = "alloc")]
    /// The integer-path dot of one weight row with activation rows
    /// `i0..i0 + T` of `xq` (outlier columns hold code 0).
    fn dots_q8<const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        xq: &QuantizedActivations,
        i0: usize,
    ) -> [f32; T];
}

/// `(d, c)` with `value = u·d + c` for the unsigned code `u` a kernel reads
/// (nibbles and u8 as stored; i8 kinds read signed, so `c = 0`).
// Unused only where no SIMD backend is compiled (soft-float targets).
#[cfg_attr(
    not(any(target_arch = "x86_64", target_arch = "aarch64")),
    allow(dead_code)
)]
#[cfg_attr(
    all(target_arch = "x86_64", not(target_feature = "sse2")),
    allow(dead_code)
)]
#[inline(always)]
pub(crate) fn affine(kind: CodeKind, d: f32, m: f32) -> (f32, f32) {
    match kind {
        CodeKind::Nibble => (d, -8.0 * d),
        CodeKind::I8 => (d, 0.0),
        CodeKind::NibbleMin | CodeKind::U8Min => (d, m),
    }
}

macro_rules! with_tile {
    ($t:expr, $T:ident => $body:expr) => {
        match $t {
            1 => {
                const $T: usize = 1;
                $body
            }
            2 => {
                const $T: usize = 2;
                $body
            }
            3 => {
                const $T: usize = 3;
                $body
            }
            _ => {
                const $T: usize = 4;
                $body
            }
        }
    };
}

/// Weight-only product; arguments already validated by the caller.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_f32<R: RowDots, A: Element>(
    r: R,
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) {
    let (k, layout, width) = (w.k(), w.shape().layout(), rows.len());
    for (jj, j) in rows.enumerate() {
        let row = w.row(j).expect("validated row range");
        let mut i0 = 0;
        while i0 < m {
            let t = (m - i0).min(TILE);
            with_tile!(t, T => {
                let xs: [&[A]; T] = core::array::from_fn(|u| &x[(i0 + u) * k..(i0 + u + 1) * k]);
                let mut out = r.dots_f32::<A, T>(layout, row, xs);
                if let Some(p) = p {
                    for (col, v) in p.row(j) {
                        for (u, o) in out.iter_mut().enumerate() {
                            *o += v * xs[u][col].to_f32();
                        }
                    }
                }
                for (u, o) in out.iter().enumerate() {
                    y[(i0 + u) * width + jj] = *o;
                }
            });
            i0 += t;
        }
    }
}

/// Integer-activation product; arguments already validated by the caller.
#[cfg(feature = "alloc")]
#[inline(always)]
pub(crate) fn gemm_q8<R: RowDots>(
    r: R,
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) {
    let (k, m, layout, width) = (w.k(), xq.m, w.shape().layout(), rows.len());
    // With several tiles per row, the protected correction of row j is
    // computed once for all m tokens from the transposed activations
    // (`Σ value · xᵀ[col]`, contiguous in m), not once per tile.
    let whole_row = m > TILE && p.is_some();
    let mut row_corr = if whole_row {
        alloc::vec![0.0f32; m]
    } else {
        alloc::vec::Vec::new()
    };
    for (jj, j) in rows.enumerate() {
        let row = w.row(j).expect("validated row range");
        if whole_row && let Some(p) = p {
            row_corr.iter_mut().for_each(|c| *c = 0.0);
            for (col, v) in p.row(j) {
                let xt = &xq.xt[col * m..(col + 1) * m];
                for (c, x) in row_corr.iter_mut().zip(xt) {
                    *c += v * x;
                }
            }
        }
        let mut i0 = 0;
        while i0 < m {
            let t = (m - i0).min(TILE);
            with_tile!(t, T => {
                let mut out = r.dots_q8::<T>(layout, row, xq, i0);
                let xs: [&[f32]; T] = core::array::from_fn(|u| &xq.x[(i0 + u) * k..(i0 + u + 1) * k]);
                for &col in &xq.outliers {
                    let v = chunk_values(layout, row, col / CHUNK)[col % CHUNK];
                    for (u, o) in out.iter_mut().enumerate() {
                        *o += v * xs[u][col];
                    }
                }
                if whole_row {
                    for (u, o) in out.iter_mut().enumerate() {
                        *o += row_corr[i0 + u];
                    }
                } else if let Some(p) = p {
                    r.sparse(p, j, xs, &mut out);
                }
                for (u, o) in out.iter().enumerate() {
                    y[(i0 + u) * width + jj] = *o;
                }
            });
            i0 += t;
        }
    }
}
