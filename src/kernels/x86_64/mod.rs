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
#[cfg(feature = "alloc")]
use crate::protect::ProtectedView;
use crate::quant::block::{CHUNK, chunk_bytes};
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
/// How far ahead of the current block the weight stream is prefetched.
const PREFETCH: usize = 1024;

/// Code kinds as const parameters, so each kernel is compiled per kind
/// with no per-block branch on the format.
const NIB: u8 = 0;
const NIB_MIN: u8 = 1;
const I8: u8 = 2;
const U8_MIN: u8 = 3;

const fn kind_of(k: u8) -> CodeKind {
    match k {
        NIB => CodeKind::Nibble,
        NIB_MIN => CodeKind::NibbleMin,
        I8 => CodeKind::I8,
        _ => CodeKind::U8Min,
    }
}

/// An f16 at `p` (little-endian, any alignment) as f32.
///
/// # Safety
/// `p` points to 2 readable bytes; the CPU has F16C.
#[inline(always)]
unsafe fn f16_at(p: *const u8) -> f32 {
    // SAFETY: 2 readable bytes per the caller; F16C per the caller.
    unsafe {
        let h = core::ptr::read_unaligned(p.cast::<u16>());
        // A broadcast, not an insert: an insert would merge into whatever
        // register LLVM picks and chain every block to the last one.
        _mm_cvtss_f32(_mm_cvtph_ps(_mm_set1_epi16(h as i16)))
    }
}

/// The header `(d, m)` of the block at `p` (`m = 0` without a min). The
/// integer path uses it as is (`Σ a·value = d·dot + m·Σa`, with [`Ymm::dot`]
/// reading i8 and nibble codes signed); the f32 path through `affine`.
///
/// # Safety
/// `p` points to the block's header; F16C.
#[inline(always)]
unsafe fn block_dm<const K: u8>(p: *const u8) -> (f32, f32) {
    // SAFETY: the header has 2 (or, with a min, 4) bytes.
    unsafe {
        let d = f16_at(p);
        let m = if kind_of(K).has_min() {
            f16_at(p.add(2))
        } else {
            0.0
        };
        (d, m)
    }
}

/// The 32 codes of a chunk as 32 bytes, in element order: nibbles unpacked
/// (low nibbles are elements 0..16, high ones 16..32), other kinds as stored.
///
/// # Safety
/// `p` must point to `chunk_bytes(kind)` readable bytes; the CPU must have AVX2.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn codes32<const K: u8>(p: *const u8) -> __m256i {
    // SAFETY: the caller guarantees the bytes and AVX2.
    unsafe {
        if K == NIB || K == NIB_MIN {
            let v = _mm_loadu_si128(p.cast());
            let mask = _mm_set1_epi8(0x0F);
            let lo = _mm_and_si128(v, mask);
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(v), mask);
            _mm256_set_m128i(hi, lo)
        } else {
            _mm256_loadu_si256(p.cast())
        }
    }
}

/// Eight codes starting at element `8·q` of the chunk at `p`, as f32.
///
/// # Safety
/// `p` must point to `chunk_bytes(kind)` readable bytes, `q < 4`; AVX2.
#[inline(always)]
unsafe fn codes8_f32<const K: u8>(p: *const u8, q: usize) -> __m256 {
    // SAFETY: every load stays within the chunk's bytes (8·q + 8 ≤ 32 for
    // byte codes, 8·(q mod 2) + 8 ≤ 16 for nibbles); AVX2 per the caller.
    unsafe {
        let i = if K == I8 {
            _mm256_cvtepi8_epi32(_mm_loadl_epi64(p.add(8 * q).cast()))
        } else if K == U8_MIN {
            _mm256_cvtepu8_epi32(_mm_loadl_epi64(p.add(8 * q).cast()))
        } else {
            let v = _mm_loadl_epi64(p.add(8 * (q % 2)).cast());
            let v = if q >= 2 { _mm_srli_epi16::<4>(v) } else { v };
            _mm256_cvtepu8_epi32(_mm_and_si128(v, _mm_set1_epi8(0x0F)))
        };
        _mm256_cvtepi32_ps(i)
    }
}

#[cfg(feature = "alloc")]
impl<const VNNI: bool> Ymm<VNNI> {
    /// `acc + Σ q·a` in 8 i32 lanes (groups of 4 bytes), for the codes of
    /// [`codes32`]: `q` is the signed code for i8 and nibble kinds (nibble
    /// − 8) and the unsigned code for the kinds with a min.
    ///
    /// # Safety
    /// AVX2, plus AVX-512 VNNI/VL when `VNNI`.
    #[inline(always)]
    unsafe fn dot<const K: u8>(self, acc: __m256i, u: __m256i, a: __m256i) -> __m256i {
        // SAFETY: register-only operations on the features the caller guarantees.
        unsafe {
            // Signed codes (i8, and nibbles minus 8) go in as |q| against a
            // with q's sign, so no correction term is needed afterwards.
            let (u, a) = if K == I8 {
                (_mm256_abs_epi8(u), _mm256_sign_epi8(a, u))
            } else if K == NIB {
                let q = _mm256_sub_epi8(u, _mm256_set1_epi8(8));
                (_mm256_abs_epi8(q), _mm256_sign_epi8(a, q))
            } else {
                (u, a)
            };
            if VNNI {
                return _mm256_dpbusd_epi32(acc, u, a);
            }
            let ones = _mm256_set1_epi16(1);
            if K == U8_MIN {
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

    /// The integer-path dots of one row for one code kind.
    ///
    /// # Safety
    /// AVX2, FMA, F16C (and VNNI when `VNNI`); `row` holds whole blocks of
    /// `layout` covering `xq.k` inputs, and `i0 + T ≤ xq.m`.
    #[inline(always)]
    unsafe fn dots_q8_kind<const K: u8, const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        xq: &QuantizedActivations,
        i0: usize,
    ) -> [f32; T] {
        let (hb, cb, bb, k) = (
            layout.header_bytes(),
            chunk_bytes(kind_of(K)),
            layout.block_bytes(),
            xq.k,
        );
        let (blocks, per_block) = (row.len() / bb, layout.group / CHUNK);
        let kb = k / CHUNK;
        debug_assert_eq!(blocks * layout.group, k);
        debug_assert!(i0 + T <= xq.m);
        // Bounds, checked once here instead of per block.
        let codes = &xq.codes[i0 * k..(i0 + T) * k];
        let scales = &xq.scales[i0 * kb..(i0 + T) * kb];
        let sums = &xq.sums[i0 * kb..(i0 + T) * kb];
        // SAFETY: all pointer arithmetic below stays inside `row` (blocks ·
        // bb bytes), `codes` (T·k), `scales` and `sums` (T·kb): block `b`
        // chunk `ci` reads codes at `(b·per_block + ci)·32 + t·k`, 32 wide.
        unsafe {
            let (a0, s0, m0) = (codes.as_ptr(), scales.as_ptr(), sums.as_ptr());
            let mut acc = [_mm256_setzero_ps(); T];
            let mut corr = [0.0f32; T];
            let mut p = row.as_ptr();
            if xq.per_token {
                // One scale per token: sum whole blocks in i32 (segments of at
                // most 64 chunks: 64·32·255·127 < 2³¹), scale by d, and by the
                // token's scale once at the end.
                if per_block == 1 {
                    return self.dots_q8_g32::<K, T>(row, bb, hb, blocks, a0, s0, m0, k, kb);
                }
                for b in 0..blocks {
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH).cast());
                    _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH + 64).cast());
                    let (d, c) = block_dm::<K>(p);
                    let dv = _mm256_set1_ps(d);
                    let c0 = b * per_block;
                    let mut ci = 0;
                    while ci < per_block {
                        let end = (ci + 64).min(per_block);
                        let mut idot = [_mm256_setzero_si256(); T];
                        while ci < end {
                            let u = codes32::<K>(p.add(hb + ci * cb));
                            for (t, idot) in idot.iter_mut().enumerate() {
                                let a =
                                    _mm256_loadu_si256(a0.add(t * k + (c0 + ci) * CHUNK).cast());
                                *idot = self.dot::<K>(*idot, u, a);
                            }
                            ci += 1;
                        }
                        for t in 0..T {
                            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot[t]), dv, acc[t]);
                        }
                    }
                    if kind_of(K).has_min() {
                        for (t, corr) in corr.iter_mut().enumerate() {
                            let mut s = 0.0f32;
                            for ci in 0..per_block {
                                s += *m0.add(t * kb + c0 + ci);
                            }
                            *corr += c * s;
                        }
                    }
                    p = p.add(bb);
                }
                core::array::from_fn(|t| *s0.add(t * kb) * hsum(acc[t]) + corr[t])
            } else {
                for b in 0..blocks {
                    let (d, c) = block_dm::<K>(p);
                    for ci in 0..per_block {
                        let cc = b * per_block + ci;
                        let u = codes32::<K>(p.add(hb + ci * cb));
                        for t in 0..T {
                            let a = _mm256_loadu_si256(a0.add(t * k + cc * CHUNK).cast());
                            let idot = self.dot::<K>(_mm256_setzero_si256(), u, a);
                            let s = _mm256_set1_ps(d * *s0.add(t * kb + cc));
                            acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot), s, acc[t]);
                            corr[t] += c * *m0.add(t * kb + cc);
                        }
                    }
                    p = p.add(bb);
                }
                core::array::from_fn(|t| hsum(acc[t]) + corr[t])
            }
        }
    }
}

#[cfg(feature = "alloc")]
impl<const VNNI: bool> Ymm<VNNI> {
    /// One 32-input block against `T` tokens (see [`Ymm::dots_q8_g32`]).
    ///
    /// # Safety
    /// `blk` points to a whole block, `a` to its 32 codes in the first token
    /// row (`T` rows `k` apart), `m` to its first sum (`T` rows `kb` apart).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn g32_block<const K: u8, const T: usize>(
        self,
        blk: *const u8,
        hb: usize,
        a: *const i8,
        m: *const f32,
        k: usize,
        kb: usize,
        acc: &mut [__m256; T],
        corr: &mut [f32; T],
    ) {
        // SAFETY: in bounds per the caller; features per the `Ymm` invariant.
        unsafe {
            let h = core::ptr::read_unaligned(blk.cast::<u16>());
            let dv = _mm256_cvtph_ps(_mm_set1_epi16(h as i16));
            let u = codes32::<K>(blk.add(hb));
            let min = if kind_of(K).has_min() {
                f16_at(blk.add(2))
            } else {
                0.0
            };
            for t in 0..T {
                let av = _mm256_loadu_si256(a.add(t * k).cast());
                let idot = self.dot::<K>(_mm256_setzero_si256(), u, av);
                acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(idot), dv, acc[t]);
                if kind_of(K).has_min() {
                    corr[t] += min * *m.add(t * kb);
                }
            }
        }
    }

    /// Per-token scales and 32-input blocks (Q4_0, Q4_1, Q8_0, g32): the
    /// decode hot loop, two blocks per step with separate accumulators so
    /// the FMA latency does not bound it.
    ///
    /// # Safety
    /// As [`Ymm::dots_q8_kind`], with pointers to the row's first code of
    /// each token (`a0`), its scales (`s0`) and sums (`m0`).
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    unsafe fn dots_q8_g32<const K: u8, const T: usize>(
        self,
        row: &[u8],
        bb: usize,
        hb: usize,
        blocks: usize,
        a0: *const i8,
        s0: *const f32,
        m0: *const f32,
        k: usize,
        kb: usize,
    ) -> [f32; T] {
        // SAFETY: block `b` is `row[b·bb..(b+1)·bb]` and its activations are
        // codes `b·32..b·32 + 32` of each token row (`t·k` apart); `b < blocks`.
        unsafe {
            let mut acc = [[_mm256_setzero_ps(); T]; 2];
            let mut corr = [[0.0f32; T]; 2];
            let p = row.as_ptr();
            let [acc0, acc1] = &mut acc;
            let [corr0, corr1] = &mut corr;
            let mut b = 0;
            while b + 2 <= blocks {
                // Software prefetch: the hardware prefetchers alone leave too
                // few lines in flight when the weights stream from DRAM.
                // A prefetch never faults, even past the end of the row.
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(b * bb + PREFETCH).cast());
                self.g32_block::<K, T>(
                    p.add(b * bb),
                    hb,
                    a0.add(b * CHUNK),
                    m0.add(b),
                    k,
                    kb,
                    acc0,
                    corr0,
                );
                let b1 = b + 1;
                self.g32_block::<K, T>(
                    p.add(b1 * bb),
                    hb,
                    a0.add(b1 * CHUNK),
                    m0.add(b1),
                    k,
                    kb,
                    acc1,
                    corr1,
                );
                b += 2;
            }
            if b < blocks {
                self.g32_block::<K, T>(
                    p.add(b * bb),
                    hb,
                    a0.add(b * CHUNK),
                    m0.add(b),
                    k,
                    kb,
                    acc0,
                    corr0,
                );
            }
            core::array::from_fn(|t| {
                *s0.add(t * kb) * hsum(_mm256_add_ps(acc[0][t], acc[1][t]))
                    + corr[0][t]
                    + corr[1][t]
            })
        }
    }
}

impl<const VNNI: bool> Ymm<VNNI> {
    /// The weight-only dots of one row for one code kind.
    ///
    /// # Safety
    /// AVX2, FMA, F16C; `row` holds whole blocks covering `x[t].len()` inputs.
    #[inline(always)]
    unsafe fn dots_f32_kind<A: Element, const K: u8, const T: usize>(
        self,
        layout: Layout,
        row: &[u8],
        x: [&[A]; T],
    ) -> [f32; T] {
        let (hb, cb, bb) = (
            layout.header_bytes(),
            chunk_bytes(kind_of(K)),
            layout.block_bytes(),
        );
        let (blocks, per_block) = (row.len() / bb, layout.group / CHUNK);
        for xs in x {
            assert_eq!(xs.len(), blocks * layout.group, "activation row length");
        }
        // SAFETY: block `b` chunk `ci` reads `cb` bytes inside `row` and 32
        // activations at `(b·per_block + ci)·32` inside each `x[t]` (asserted).
        unsafe {
            // One accumulator per 8-lane quarter of a chunk: four independent
            // FMA chains instead of one (FMA latency would bound the loop).
            let mut acc = [[_mm256_setzero_ps(); T]; 4];
            let mut p = row.as_ptr();
            for b in 0..blocks {
                _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(PREFETCH).cast());
                let (d, m) = block_dm::<K>(p);
                let (d, c) = affine(kind_of(K), d, m);
                let (dv, cv) = (_mm256_set1_ps(d), _mm256_set1_ps(c));
                for ci in 0..per_block {
                    let chunk = p.add(hb + ci * cb);
                    let base = (b * per_block + ci) * CHUNK;
                    for (q, acc) in acc.iter_mut().enumerate() {
                        let v = _mm256_fmadd_ps(codes8_f32::<K>(chunk, q), dv, cv);
                        for t in 0..T {
                            acc[t] =
                                _mm256_fmadd_ps(v, load8(x[t].as_ptr().add(base + 8 * q)), acc[t]);
                        }
                    }
                }
                p = p.add(bb);
            }
            let mut out = [0.0f32; T];
            for (t, o) in out.iter_mut().enumerate() {
                *o = hsum(_mm256_add_ps(
                    _mm256_add_ps(acc[0][t], acc[1][t]),
                    _mm256_add_ps(acc[2][t], acc[3][t]),
                ));
            }
            out
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
        // SAFETY: a `Ymm` exists only inside entry functions compiled with
        // AVX2+FMA+F16C on a CPU that has them (see the type's docs); the
        // driver passes whole rows.
        unsafe {
            match layout.kind {
                CodeKind::Nibble => self.dots_f32_kind::<A, NIB, T>(layout, row, x),
                CodeKind::NibbleMin => self.dots_f32_kind::<A, NIB_MIN, T>(layout, row, x),
                CodeKind::I8 => self.dots_f32_kind::<A, I8, T>(layout, row, x),
                CodeKind::U8Min => self.dots_f32_kind::<A, U8_MIN, T>(layout, row, x),
            }
        }
    }

    #[cfg(feature = "alloc")]
    #[inline(always)]
    fn sparse<const T: usize>(
        self,
        p: &ProtectedView<'_>,
        j: usize,
        x: [&[f32]; T],
        out: &mut [f32; T],
    ) {
        let Some((cols, vals)) = p.row_u16_f16(j) else {
            return p.accumulate_row(j, x, out);
        };
        let nnz = cols.len() / 2;
        let full = nnz / 8 * 8;
        for xt in x {
            assert_eq!(xt.len(), p.k(), "whole activation rows");
        }
        // SAFETY: features per the `Ymm` invariant; the loads read entries
        // `e..e + 8 ≤ nnz` of the row's columns and values; every gathered
        // index is a column of a validated protected set, so `< k`, and each
        // `x[t]` has exactly k elements (asserted above).
        unsafe {
            let mut acc = [_mm256_setzero_ps(); T];
            for e in (0..full).step_by(8) {
                let c = _mm256_cvtepu16_epi32(_mm_loadu_si128(cols.as_ptr().add(2 * e).cast()));
                let v = _mm256_cvtph_ps(_mm_loadu_si128(vals.as_ptr().add(2 * e).cast()));
                for t in 0..T {
                    let xs = _mm256_i32gather_ps::<4>(x[t].as_ptr(), c);
                    acc[t] = _mm256_fmadd_ps(v, xs, acc[t]);
                }
            }
            for t in 0..T {
                out[t] += hsum(acc[t]);
            }
        }
        for e in full..nnz {
            let col = usize::from(u16::from_le_bytes([cols[2 * e], cols[2 * e + 1]]));
            let v = crate::protect::f16_to_f32(u16::from_le_bytes([vals[2 * e], vals[2 * e + 1]]));
            for t in 0..T {
                out[t] += v * x[t][col];
            }
        }
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
        // SAFETY: as in `dots_f32`; the driver validated the shapes.
        unsafe {
            match layout.kind {
                CodeKind::Nibble => self.dots_q8_kind::<NIB, T>(layout, row, xq, i0),
                CodeKind::NibbleMin => self.dots_q8_kind::<NIB_MIN, T>(layout, row, xq, i0),
                CodeKind::I8 => self.dots_q8_kind::<I8, T>(layout, row, xq, i0),
                CodeKind::U8Min => self.dots_q8_kind::<U8_MIN, T>(layout, row, xq, i0),
            }
        }
    }
}

/// max |x| over the 32 floats at `p`, per lane.
///
/// # Safety
/// 32 readable floats at `p`; AVX.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn amax32(p: *const f32) -> __m256 {
    // SAFETY: four 8-float loads inside the 32 the caller guarantees.
    unsafe {
        let sign = _mm256_set1_ps(-0.0);
        let mut m = _mm256_setzero_ps();
        for q in 0..4 {
            m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(p.add(8 * q))));
        }
        m
    }
}

/// The largest lane.
///
/// # Safety
/// AVX.
#[cfg(feature = "alloc")]
#[inline(always)]
unsafe fn reduce_max(v: __m256) -> f32 {
    // SAFETY: register-only operations.
    unsafe {
        let s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
        _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
    }
}

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
