//! x86-64 kernels. Both levels run the same 256-bit code (AVX-512 adds
//! VNNI's `vpdpbusd` for the integer dot), written once here and compiled
//! inside each level's `#[target_feature]` entry functions.

mod avx2;
mod avx512;

pub use avx2::Avx2;
pub use avx512::Avx512;

use core::arch::x86_64::*;

#[cfg(feature = "alloc")]
use crate::act::QuantizedActivations;
use crate::kernels::driver::{RowDots, affine};
use crate::kernels::{ElemKind, Element};
use crate::quant::block::{CHUNK, chunk_bytes, header_params};
use crate::quant::{CodeKind, Layout};

/// The 256-bit row kernels. Only the entry functions of [`Avx2`] and
/// [`Avx512`] build one, inside functions compiled for (at least) AVX2, FMA
/// and F16C — and, when `VNNI`, AVX-512 VNNI/VL — after the token's
/// constructor detected those features.
#[derive(Clone, Copy)]
pub(crate) struct Ymm<const VNNI: bool>(());

/// Loads 8 activations as f32.
///
/// # Safety
/// `p` must point to 8 readable elements of `A`; the CPU must have AVX2 and F16C.
#[inline(always)]
unsafe fn load8<A: Element>(p: *const A) -> __m256 {
    // SAFETY: the caller guarantees 8 readable elements and the features.
    unsafe {
        match A::KIND {
            ElemKind::F32 => _mm256_loadu_ps(p.cast()),
            ElemKind::F16 => _mm256_cvtph_ps(_mm_loadu_si128(p.cast())),
            ElemKind::Bf16 => _mm256_castsi256_ps(_mm256_slli_epi32::<16>(_mm256_cvtepu16_epi32(
                _mm_loadu_si128(p.cast()),
            ))),
        }
    }
}

/// Horizontal sum of 8 lanes.
///
/// # Safety
/// The CPU must have AVX.
#[inline(always)]
unsafe fn hsum(v: __m256) -> f32 {
    // SAFETY: register-only AVX/SSE operations; the caller guarantees AVX.
    unsafe {
        let s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
        let s = _mm_add_ss(s, _mm_movehdup_ps(s));
        _mm_cvtss_f32(s)
    }
}

#[cfg(feature = "alloc")]
/// The 32 codes of a chunk as 32 bytes, in element order: nibbles unpacked
/// (low nibbles are elements 0..16, high ones 16..32), other kinds as stored.
///
/// # Safety
/// `p` must point to `chunk_bytes(kind)` readable bytes; the CPU must have AVX2.
#[inline(always)]
unsafe fn codes32(kind: CodeKind, p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees the bytes and AVX2.
    unsafe {
        match kind {
            CodeKind::Nibble | CodeKind::NibbleMin => {
                let v = _mm_loadu_si128(p.cast());
                let mask = _mm_set1_epi8(0x0F);
                let lo = _mm_and_si128(v, mask);
                let hi = _mm_and_si128(_mm_srli_epi16::<4>(v), mask);
                _mm256_set_m128i(hi, lo)
            }
            CodeKind::I8 | CodeKind::U8Min => _mm256_loadu_si256(p.cast()),
        }
    }
}

/// Eight codes starting at element `8·q` of the chunk at `p`, as f32.
///
/// # Safety
/// `p` must point to `chunk_bytes(kind)` readable bytes, `q < 4`; AVX2.
#[inline(always)]
unsafe fn codes8_f32(kind: CodeKind, p: *const u8, q: usize) -> __m256 {
    // SAFETY: every load stays within the chunk's bytes (8·q + 8 ≤ 32 for
    // byte codes, 8·(q mod 2) + 8 ≤ 16 for nibbles); AVX2 per the caller.
    unsafe {
        let i = match kind {
            CodeKind::I8 => _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(8 * q).cast())),
            CodeKind::U8Min => _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8 * q).cast())),
            CodeKind::Nibble | CodeKind::NibbleMin => {
                let v = _mm_loadl_epi64(p.add(8 * (q % 2)).cast());
                let v = if q >= 2 { _mm_srli_epi16::<4>(v) } else { v };
                _mm256_cvtepu8_epi32(_mm_and_si128(v, _mm_set1_epi8(0x0F)))
            }
        };
        _mm256_cvtepi32_ps(i)
    }
}

#[cfg(feature = "alloc")]
impl<const VNNI: bool> Ymm<VNNI> {
    /// `acc + Σ u·a` in 8 i32 lanes (groups of 4 bytes), for the unsigned
    /// codes `u` of [`codes32`] (i8 codes: by |q| against a with q's sign).
    ///
    /// # Safety
    /// AVX2, plus AVX-512 VNNI/VL when `VNNI`.
    #[inline(always)]
    unsafe fn dot(self, kind: CodeKind, acc: __m256i, u: __m256i, a: __m256i) -> __m256i {
        // SAFETY: register-only operations on the features the caller guarantees.
        unsafe {
            let (u, a) = if kind == CodeKind::I8 {
                (_mm256_abs_epi8(u), _mm256_sign_epi8(a, u))
            } else {
                (u, a)
            };
            if VNNI {
                return _mm256_dpbusd_epi32(acc, u, a);
            }
            let ones = _mm256_set1_epi16(1);
            if kind == CodeKind::U8Min {
                // maddubs would saturate on 255·127·2: split the bytes into nibbles.
                let mask = _mm256_set1_epi8(0x0F);
                let lo = _mm256_and_si256(u, mask);
                let hi = _mm256_and_si256(_mm256_srli_epi16::<4>(u), mask);
                let lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, a), ones);
                let hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, a), _mm256_set1_epi16(16));
                return _mm256_add_epi32(acc, _mm256_add_epi32(lo, hi));
            }
            // |u| ≤ 128 and |a| ≤ 127: a pair sums to at most 32 512, no saturation.
            _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, a), ones))
        }
    }
}

impl<const VNNI: bool> RowDots for Ymm<VNNI> {
    #[inline(always)]
    fn dots_f32<A: Element, const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        x: [&[A]; T],
    ) -> [f32; T] {
        let kind = layout.kind;
        let (hb, cb, g) = (layout.header_bytes(), chunk_bytes(kind), layout.group);
        // SAFETY: a `Ymm` exists only inside entry functions compiled with
        // AVX2+FMA+F16C on a CPU that has them (see the type's docs).
        let mut acc = [unsafe { _mm256_setzero_ps() }; T];
        for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(kind, &block[..hb]);
            let (d, c) = affine(kind, d, m);
            for (ci, chunk) in block[hb..].chunks_exact(cb).enumerate() {
                let base = b * g + ci * CHUNK;
                let xs: [&[A]; T] = core::array::from_fn(|t| &x[t][base..base + CHUNK]);
                // SAFETY: `chunk` has `cb` bytes and each `xs[t]` 32 elements,
                // so every load below is in bounds; features as above.
                unsafe {
                    let (dv, cv) = (_mm256_set1_ps(d), _mm256_set1_ps(c));
                    for q in 0..4 {
                        let v = _mm256_fmadd_ps(codes8_f32(kind, chunk.as_ptr(), q), dv, cv);
                        for t in 0..T {
                            acc[t] = _mm256_fmadd_ps(v, load8(xs[t].as_ptr().add(8 * q)), acc[t]);
                        }
                    }
                }
            }
        }
        // SAFETY: AVX, as above.
        core::array::from_fn(|t| unsafe { hsum(acc[t]) })
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
        let codes: [&[i8]; T] = core::array::from_fn(|t| &xq.codes[(i0 + t) * k..(i0 + t + 1) * k]);
        let scales: [&[f32]; T] =
            core::array::from_fn(|t| &xq.scales[(i0 + t) * kb..(i0 + t + 1) * kb]);
        let sums: [&[f32]; T] =
            core::array::from_fn(|t| &xq.sums[(i0 + t) * kb..(i0 + t + 1) * kb]);
        // SAFETY: features as in `dots_f32`.
        let mut acc = [unsafe { _mm256_setzero_ps() }; T];
        let mut corr = [0.0f32; T];
        let chunks = g / CHUNK;
        for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(kind, &block[..hb]);
            let (d, c) = affine(kind, d, m);
            let body = &block[hb..];
            let c0 = b * chunks;
            if xq.per_token {
                // One scale per token: add whole segments in i32, convert once.
                // 64 chunks · 32 · 255 · 127 < 2³¹, so a segment cannot overflow.
                for seg in (0..chunks).step_by(64) {
                    let end = (seg + 64).min(chunks);
                    // SAFETY: chunk `ci < chunks` of `body` has `cb` bytes and
                    // each code row has 32 codes at `(c0 + ci)·32`; features as above.
                    unsafe {
                        let mut idot = [_mm256_setzero_si256(); T];
                        for ci in seg..end {
                            let u = codes32(kind, body[ci * cb..][..cb].as_ptr());
                            for t in 0..T {
                                let a = _mm256_loadu_si256(
                                    codes[t][(c0 + ci) * CHUNK..][..CHUNK].as_ptr().cast(),
                                );
                                idot[t] = self.dot(kind, idot[t], u, a);
                            }
                        }
                        for t in 0..T {
                            let s = _mm256_set1_ps(d * scales[t][c0]);
                            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot[t]), s, acc[t]);
                        }
                    }
                }
                for t in 0..T {
                    corr[t] += c * sums[t][c0..c0 + chunks].iter().sum::<f32>();
                }
            } else {
                for ci in 0..chunks {
                    // SAFETY: as above.
                    unsafe {
                        let u = codes32(kind, body[ci * cb..][..cb].as_ptr());
                        for t in 0..T {
                            let a = _mm256_loadu_si256(
                                codes[t][(c0 + ci) * CHUNK..][..CHUNK].as_ptr().cast(),
                            );
                            let idot = self.dot(kind, _mm256_setzero_si256(), u, a);
                            let s = _mm256_set1_ps(d * scales[t][c0 + ci]);
                            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot), s, acc[t]);
                            corr[t] += c * sums[t][c0 + ci];
                        }
                    }
                }
            }
        }
        // SAFETY: AVX, as above.
        core::array::from_fn(|t| unsafe { hsum(acc[t]) } + corr[t])
    }
}

#[cfg(feature = "alloc")]
/// Dynamic or static int8 quantization of activation rows (see
/// `act::QuantizedActivations`), bit-exact with the scalar reference.
///
/// # Safety
/// AVX2 and FMA.
#[inline(always)]
pub(crate) unsafe fn quantize_acts(
    x: &[f32],
    k: usize,
    per_token: bool,
    fixed: Option<f32>,
    codes: &mut [i8],
    scales: &mut [f32],
    sums: &mut [f32],
) {
    use crate::act::scale_of;
    // SAFETY: every pointer comes from a 32-element chunk of a slice
    // (`chunks_exact`) and loads and stores stay inside it; AVX2 per caller.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let amax32 = |p: *const f32| -> __m256 {
            let mut m = _mm256_setzero_ps();
            for q in 0..4 {
                m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * q))));
            }
            m
        };
        let reduce_max = |v: __m256| -> f32 {
            let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
        };
        let kb = k / CHUNK;
        for (r, row) in x.chunks_exact(k).enumerate() {
            let row_scale = match fixed {
                Some(f) => Some((f, 1.0 / f)),
                None if per_token => {
                    let mut m = _mm256_setzero_ps();
                    for chunk in row.chunks_exact(CHUNK) {
                        m = _mm256_max_ps(m, amax32(chunk.as_ptr()));
                    }
                    Some(scale_of(reduce_max(m)))
                }
                None => None,
            };
            for (c, chunk) in row.chunks_exact(CHUNK).enumerate() {
                let (s, id) =
                    row_scale.unwrap_or_else(|| scale_of(reduce_max(amax32(chunk.as_ptr()))));
                let (lo, hi, idv) = (
                    _mm256_set1_ps(-127.0),
                    _mm256_set1_ps(127.0),
                    _mm256_set1_ps(id),
                );
                let mut q = [_mm256_setzero_si256(); 4];
                for (j, q) in q.iter_mut().enumerate() {
                    let v = _mm256_mul_ps(_mm256_loadu_ps(chunk.as_ptr().add(8 * j)), idv);
                    // Clamp in float first: cvtps of a huge value is not a saturation.
                    *q = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, lo), hi));
                }
                let total =
                    _mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3]));
                let t = _mm_add_epi32(
                    _mm256_castsi256_si128(total),
                    _mm256_extracti128_si256::<1>(total),
                );
                let t = _mm_add_epi32(t, _mm_shuffle_epi32::<0b01_00_11_10>(t));
                let t = _mm_add_epi32(t, _mm_shuffle_epi32::<0b10_11_00_01>(t));
                let sum = _mm_cvtsi128_si32(t);
                // packs interleave the 128-bit lanes; the permute restores order.
                let p = _mm256_packs_epi16(
                    _mm256_packs_epi32(q[0], q[1]),
                    _mm256_packs_epi32(q[2], q[3]),
                );
                let p = _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
                _mm256_storeu_si256(codes[(r * k + c * CHUNK)..][..CHUNK].as_mut_ptr().cast(), p);
                scales[r * kb + c] = s;
                sums[r * kb + c] = s * sum as f32;
            }
        }
    }
}
