//! Bit-exact ports of ggml's reference encoders (`quantize_row_q8_0_ref`,
//! `quantize_row_q4_0_ref`, `quantize_row_q4_1_ref` in `ggml-quants.c`),
//! one block of 32 at a time, with one addition: masked (protected)
//! positions are left out of the block statistics and get the code nearest
//! to 0. Without a mask the output equals ggml's byte for byte, as long as
//! the scale fits in f16 (ggml would store an infinite scale past 65504;
//! cwpq clamps it).
//!
//! The arithmetic is f32 in ggml's order: the codes are computed from the
//! unrounded scale `id = 1/d`, and only the stored header is rounded to f16.

use half::f16;

use super::block::{BlockQ4_0, BlockQ4_1, BlockQ8_0, CHUNK};
use super::search::{ordered, round_even, small_int, unordered};

const F16_MAX: f32 = 65504.0;

/// C's `roundf` (half away from zero), as musl writes it: add the largest
/// float below 0.5 with x's sign, then truncate. Exact for |x| < 2^22.
#[inline]
fn round_half_away(x: f32) -> f32 {
    const HALF_DOWN: f32 = 0.5 - 0.25 * f32::EPSILON;
    trunc_small(x + HALF_DOWN.copysign(x))
}

/// Truncation toward zero for |y| < 2^22, in float ops only, so the loops
/// around it vectorise on the SSE2 baseline (`as i32` does not).
#[inline]
fn trunc_small(y: f32) -> f32 {
    let r = round_even(y);
    if r.abs() > y.abs() {
        r - 1.0f32.copysign(y)
    } else {
        r
    }
}

/// The block's values with masked positions set to 0.
#[inline]
fn block(x: &[f32], mask: Option<&[bool]>) -> [f32; CHUNK] {
    let mut v: [f32; CHUNK] = x.try_into().expect("a GGUF block is 32 values");
    if let Some(mask) = mask {
        for (v, &m) in v.iter_mut().zip(mask) {
            if m {
                *v = 0.0;
            }
        }
    }
    v
}

/// `max |v|` as bits (finite inputs; signed compare, which SSE2 has).
#[inline]
fn abs_max_bits(v: &[f32; CHUNK]) -> u32 {
    v.iter()
        .fold(0i32, |a, x| a.max((x.to_bits() & 0x7FFF_FFFF) as i32)) as u32
}

#[inline]
fn pack_nibbles(q: &[u8; CHUNK]) -> [u8; 16] {
    core::array::from_fn(|j| q[j] | (q[j + 16] << 4))
}

/// Encodes 32 weights as ggml `Q8_0`.
pub(crate) fn encode_q8_0(x: &[f32], mask: Option<&[bool]>) -> BlockQ8_0 {
    let v = block(x, mask);
    let amax = f32::from_bits(abs_max_bits(&v));
    let d = (amax / 127.0).min(F16_MAX);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // Masked positions are 0 in `v`, so they get code 0.
    let qs =
        core::array::from_fn(|j| small_int(round_half_away(v[j] * id).clamp(-127.0, 127.0)) as i8);
    BlockQ8_0 {
        d: f16::from_f32(d).to_le_bytes(),
        qs,
    }
}

/// Encodes 32 weights as ggml `Q4_0`.
pub(crate) fn encode_q4_0(x: &[f32], mask: Option<&[bool]>) -> BlockQ4_0 {
    let v = block(x, mask);
    // ggml keeps the signed value of largest magnitude, the first one on ties
    // (`if (amax < fabsf(v))`), and 0.0 when all are zero.
    let amax = abs_max_bits(&v);
    let max = if amax == 0 {
        0.0
    } else {
        v.iter()
            .copied()
            .find(|x| x.to_bits() & 0x7FFF_FFFF == amax)
            .unwrap_or(0.0)
    };
    let d = (max / -8.0).clamp(-F16_MAX, F16_MAX);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    // `(int8_t)(x0 + 8.5f)` truncates toward zero; `as` does the same.
    // A masked 0 gives trunc(8.5) = 8, the zero code.
    let q: [u8; CHUNK] =
        core::array::from_fn(|j| small_int(trunc_small(v[j] * id + 8.5).clamp(0.0, 15.0)) as u8);
    BlockQ4_0 {
        d: f16::from_f32(d).to_le_bytes(),
        qs: pack_nibbles(&q),
    }
}

/// Encodes 32 weights as ggml `Q4_1`.
pub(crate) fn encode_q4_1(x: &[f32], mask: Option<&[bool]>) -> BlockQ4_1 {
    let all: &[f32; CHUNK] = x.try_into().expect("a GGUF block is 32 values");
    let kept = |j: usize| mask.is_none_or(|m| !m[j]);
    let (mut lo, mut hi) = (i32::MAX, i32::MIN);
    for (j, &v) in all.iter().enumerate() {
        if kept(j) {
            lo = lo.min(ordered(v));
            hi = hi.max(ordered(v));
        }
    }
    let (mut min, mut max) = if lo > hi {
        (0.0, 0.0) // everything protected: a zero block
    } else {
        (unordered(lo), unordered(hi))
    };
    // ggml updates on strict `<` / `>`, so of +0 and −0 the first one stays.
    let first_zero = || {
        all.iter()
            .enumerate()
            .find(|&(j, &v)| kept(j) && v == 0.0)
            .map_or(0.0, |(_, &v)| v)
    };
    if min == 0.0 {
        min = first_zero();
    }
    if max == 0.0 {
        max = first_zero();
    }
    let min = min.clamp(-F16_MAX, F16_MAX);
    let d = ((max - min) / 15.0).min(F16_MAX);
    let id = if d != 0.0 { 1.0 / d } else { 0.0 };
    let v = block(x, mask);
    let q: [u8; CHUNK] = core::array::from_fn(|j| {
        small_int(trunc_small((v[j] - min) * id + 0.5).clamp(0.0, 15.0)) as u8
    });
    BlockQ4_1 {
        d: f16::from_f32(d).to_le_bytes(),
        m: f16::from_f32(min).to_le_bytes(),
        qs: pack_nibbles(&q),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundf_matches_c() {
        for (x, r) in [
            (0.5, 1.0),
            (-0.5, -1.0),
            (1.5, 2.0),
            (2.5, 3.0),
            (-2.5, -3.0),
            (0.49999997, 0.0),
            (126.5, 127.0),
            (-0.0, 0.0),
        ] {
            assert_eq!(round_half_away(x), r, "roundf({x})");
        }
    }
}
