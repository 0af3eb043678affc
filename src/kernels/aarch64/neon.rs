//! NEON kernels (every aarch64 CPU has NEON). Integer dots widen with
//! `smull` and pairwise-accumulate with `sadalp`, on signed codes: nibbles
//! minus 8, u8 codes minus 128, i8 as stored.

use core::arch::aarch64::*;
use core::ops::Range;

#[cfg(feature = "alloc")]
use crate::act::{QuantizedActivations, scale_of};
use crate::kernels::driver::{self, RowDots, affine};
use crate::kernels::{ElemKind, Element};
use crate::protect::ProtectedView;
use crate::quant::block::{CHUNK, chunk_bytes, header_params};
use crate::quant::{CodeKind, Layout, QuantView};

/// Proof that this CPU has NEON.
#[derive(Debug, Clone, Copy)]
pub struct Neon(());

impl Neon {
    /// The token, if the CPU has NEON (detected under std, else compile-time).
    pub fn new() -> Option<Neon> {
        #[cfg(feature = "std")]
        let ok = std::arch::is_aarch64_feature_detected!("neon");
        #[cfg(not(feature = "std"))]
        let ok = cfg!(target_feature = "neon");
        ok.then_some(Neon(()))
    }

    pub(crate) fn gemm_f32<A: Element>(
        self,
        w: &QuantView<'_>,
        p: Option<&ProtectedView<'_>>,
        x: &[A],
        m: usize,
        rows: Range<usize>,
        y: &mut [f32],
    ) {
        // SAFETY: the token proves NEON.
        unsafe { gemm_f32(w, p, x, m, rows, y) }
    }

    #[cfg(feature = "alloc")]
    pub(crate) fn gemm_q8(
        self,
        w: &QuantView<'_>,
        p: Option<&ProtectedView<'_>>,
        xq: &QuantizedActivations,
        rows: Range<usize>,
        y: &mut [f32],
    ) {
        // SAFETY: the token proves NEON.
        unsafe { gemm_q8(w, p, xq, rows, y) }
    }

    #[cfg(feature = "alloc")]
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn quantize_acts(
        self,
        x: &[f32],
        k: usize,
        per_token: bool,
        fixed: Option<f32>,
        codes: &mut [i8],
        scales: &mut [f32],
        sums: &mut [f32],
    ) {
        // SAFETY: the token proves NEON.
        unsafe { quantize_acts(x, k, per_token, fixed, codes, scales, sums) }
    }
}

/// Row kernels; built only inside the NEON entry functions below.
#[derive(Clone, Copy)]
struct Rows(());

/// The 32 codes of a chunk as two 16-byte vectors in element order, minus
/// the offset that makes them signed (8 for nibbles, 128 for u8, 0 for i8).
///
/// # Safety
/// `p` points to `chunk_bytes(kind)` readable bytes; NEON.
#[inline(always)]
unsafe fn signed_codes(kind: CodeKind, p: *const u8) -> (int8x16_t, int8x16_t) {
    // SAFETY: loads stay within the chunk's bytes; NEON per the caller.
    unsafe {
        match kind {
            CodeKind::Nibble | CodeKind::NibbleMin => {
                let v = vld1q_u8(p);
                let lo = vandq_u8(v, vdupq_n_u8(0x0F));
                let hi = vshrq_n_u8::<4>(v);
                let eight = vdupq_n_s8(8);
                (
                    vsubq_s8(vreinterpretq_s8_u8(lo), eight),
                    vsubq_s8(vreinterpretq_s8_u8(hi), eight),
                )
            }
            CodeKind::I8 => (vld1q_s8(p.cast()), vld1q_s8(p.add(16).cast())),
            CodeKind::U8Min => {
                let flip = vdupq_n_u8(0x80);
                (
                    vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p), flip)),
                    vreinterpretq_s8_u8(veorq_u8(vld1q_u8(p.add(16)), flip)),
                )
            }
        }
    }
}

/// The offset `signed_codes` removed.
fn offset(kind: CodeKind) -> f32 {
    match kind {
        CodeKind::Nibble | CodeKind::NibbleMin => 8.0,
        CodeKind::U8Min => 128.0,
        CodeKind::I8 => 0.0,
    }
}

/// `acc + Σ s·a` over 16 bytes, in 4 i32 lanes.
///
/// # Safety
/// NEON.
#[inline(always)]
unsafe fn dot16(acc: int32x4_t, s: int8x16_t, a: int8x16_t) -> int32x4_t {
    // SAFETY: register-only NEON operations. |s|, |a| ≤ 128 so each i16
    // product fits, and pairwise accumulation widens to i32.
    unsafe {
        let lo = vmull_s8(vget_low_s8(s), vget_low_s8(a));
        let hi = vmull_high_s8(s, a);
        vpadalq_s16(vpadalq_s16(acc, lo), hi)
    }
}

/// Loads 4 activations as f32.
///
/// # Safety
/// `p` points to 4 readable elements; NEON.
#[inline(always)]
unsafe fn load4<A: Element>(p: *const A) -> float32x4_t {
    // SAFETY: the caller guarantees 4 readable elements.
    unsafe {
        match A::KIND {
            ElemKind::F32 => vld1q_f32(p.cast()),
            ElemKind::Bf16 => vreinterpretq_f32_u32(vshll_n_u16::<16>(vld1_u16(p.cast()))),
            ElemKind::F16 => {
                let h: [f32; 4] = core::array::from_fn(|i| (*p.add(i)).to_f32());
                vld1q_f32(h.as_ptr())
            }
        }
    }
}

impl RowDots for Rows {
    #[inline(always)]
    fn dots_f32<A: Element, const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        x: [&[A]; T],
    ) -> [f32; T] {
        let kind = layout.kind;
        let (hb, cb, g) = (layout.header_bytes(), chunk_bytes(kind), layout.group);
        // SAFETY: `Rows` exists only inside the NEON entry functions.
        let mut acc = [unsafe { vdupq_n_f32(0.0) }; T];
        for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(kind, &block[..hb]);
            // value = s·d + (c + offset·d) for the signed codes s.
            let (d, c) = affine(kind, d, m);
            let c = c + offset(kind) * d;
            for (ci, chunk) in block[hb..].chunks_exact(cb).enumerate() {
                let base = b * g + ci * CHUNK;
                let xs: [&[A]; T] = core::array::from_fn(|t| &x[t][base..base + CHUNK]);
                // SAFETY: the chunk has `cb` bytes and each `xs[t]` 32 elements.
                unsafe {
                    let (s0, s1) = signed_codes(kind, chunk.as_ptr());
                    let (dv, cv) = (vdupq_n_f32(d), vdupq_n_f32(c));
                    for (half, s) in [s0, s1].into_iter().enumerate() {
                        let w16 = [vmovl_s8(vget_low_s8(s)), vmovl_high_s8(s)];
                        for (q8, w) in w16.into_iter().enumerate() {
                            let parts = [vmovl_s16(vget_low_s16(w)), vmovl_high_s16(w)];
                            for (q4, wi) in parts.into_iter().enumerate() {
                                let v = vfmaq_f32(cv, vcvtq_f32_s32(wi), dv);
                                let at = 16 * half + 8 * q8 + 4 * q4;
                                for t in 0..T {
                                    acc[t] = vfmaq_f32(acc[t], v, load4(xs[t].as_ptr().add(at)));
                                }
                            }
                        }
                    }
                }
            }
        }
        // SAFETY: NEON, as above.
        core::array::from_fn(|t| unsafe { vaddvq_f32(acc[t]) })
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
        // SAFETY: NEON, as in `dots_f32`.
        let mut acc = [unsafe { vdupq_n_f32(0.0) }; T];
        let mut corr = [0.0f32; T];
        for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(kind, &block[..hb]);
            let (d, c) = affine(kind, d, m);
            let c = c + offset(kind) * d;
            for (ci, chunk) in block[hb..].chunks_exact(cb).enumerate() {
                let cc = b * (g / CHUNK) + ci;
                // SAFETY: the chunk has `cb` bytes and each code row 32 codes at `cc·32`.
                unsafe {
                    let (s0, s1) = signed_codes(kind, chunk.as_ptr());
                    for t in 0..T {
                        let a = xq.codes[(i0 + t) * k + cc * CHUNK..][..CHUNK].as_ptr();
                        let dot = dot16(
                            dot16(vdupq_n_s32(0), s0, vld1q_s8(a)),
                            s1,
                            vld1q_s8(a.add(16)),
                        );
                        let s = xq.scales[(i0 + t) * kb + cc];
                        acc[t] = vfmaq_n_f32(acc[t], vcvtq_f32_s32(dot), d * s);
                        corr[t] += c * xq.sums[(i0 + t) * kb + cc];
                    }
                }
            }
        }
        // SAFETY: NEON, as above.
        core::array::from_fn(|t| unsafe { vaddvq_f32(acc[t]) } + corr[t])
    }
}

#[target_feature(enable = "neon")]
fn gemm_f32<A: Element>(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) {
    driver::gemm_f32(Rows(()), w, p, x, m, rows, y)
}

#[cfg(feature = "alloc")]
#[target_feature(enable = "neon")]
fn gemm_q8(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) {
    driver::gemm_q8(Rows(()), w, p, xq, rows, y)
}

#[cfg(feature = "alloc")]
#[target_feature(enable = "neon")]
#[allow(clippy::too_many_arguments)]
fn quantize_acts(
    x: &[f32],
    k: usize,
    per_token: bool,
    fixed: Option<f32>,
    codes: &mut [i8],
    scales: &mut [f32],
    sums: &mut [f32],
) {
    let amax = |v: &[f32]| -> f32 {
        // SAFETY: loads in 4-lane steps within `v` (a multiple of 32 long).
        unsafe {
            let mut m = vdupq_n_f32(0.0);
            for q in v.chunks_exact(4) {
                m = vmaxq_f32(m, vabsq_f32(vld1q_f32(q.as_ptr())));
            }
            vmaxvq_f32(m)
        }
    };
    let kb = k / CHUNK;
    for (r, row) in x.chunks_exact(k).enumerate() {
        let row_scale = match fixed {
            Some(f) => Some((f, 1.0 / f)),
            None if per_token => Some(scale_of(amax(row))),
            None => None,
        };
        for (c, chunk) in row.chunks_exact(CHUNK).enumerate() {
            let (s, id) = row_scale.unwrap_or_else(|| scale_of(amax(chunk)));
            let out = &mut codes[r * k + c * CHUNK..][..CHUNK];
            // SAFETY: 8 groups of 4 lanes within the 32-element chunk and output.
            let sum = unsafe {
                let (lo, hi, idv) = (vdupq_n_f32(-127.0), vdupq_n_f32(127.0), vdupq_n_f32(id));
                let mut total = vdupq_n_s32(0);
                for q in 0..8 {
                    let v = vmulq_f32(vld1q_f32(chunk.as_ptr().add(4 * q)), idv);
                    let i = vcvtnq_s32_f32(vminq_f32(vmaxq_f32(v, lo), hi));
                    total = vaddq_s32(total, i);
                    let n = vqmovn_s16(vcombine_s16(vqmovn_s32(i), vdup_n_s16(0)));
                    let bytes: [i8; 8] = core::mem::transmute(n);
                    out[4 * q..4 * q + 4].copy_from_slice(&bytes[..4]);
                }
                vaddvq_s32(total)
            };
            scales[r * kb + c] = s;
            sums[r * kb + c] = s * sum as f32;
        }
    }
}
