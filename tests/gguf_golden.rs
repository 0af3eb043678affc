//! GGUF blocks bit-exact with ggml's reference encoders.
//!
//! The golden blocks below are worked out by hand from the rules of
//! `quantize_row_q{8_0,4_0,4_1}_ref` in ggml's `ggml-quants.c`, with values
//! chosen so the scale is exactly ±1 and every rounding is unambiguous:
//! Q8_0 rounds half away from zero (`roundf`); Q4_0 and Q4_1 add 8.5 / 0.5 and
//! truncate (`(int8_t)` cast), i.e. round half up, then clamp to 15; Q4_0's
//! scale is the signed value of largest magnitude divided by −8.
//! The random-row test compares against a literal transliteration of the C.

use cwpq::quant::{BlockQ4_0, BlockQ4_1, BlockQ8_0};
use cwpq::{Format, QuantOptions, quantize};
use half::f16;
use proptest::prelude::*;

fn one_block(format: Format, x: &[f32]) -> Vec<u8> {
    quantize(x, 1, 32, format, &QuantOptions::default())
        .unwrap()
        .into_bytes()
}

/// Packs 32 nibble codes in ggml's order: byte j = code j | code (j+16) << 4.
fn nibbles(codes: &[u8; 32]) -> [u8; 16] {
    core::array::from_fn(|j| codes[j] | (codes[j + 16] << 4))
}

#[test]
fn q8_0_golden() {
    let mut x = [0.0f32; 32];
    let head = [
        127.0, -127.0, 2.5, -2.5, 0.5, -0.5, 0.49999997, 100.25, 3.75, -0.0,
    ];
    x[..head.len()].copy_from_slice(&head);
    for (j, v) in x.iter_mut().enumerate().skip(head.len()) {
        *v = j as f32 - 20.0;
    }
    // amax = 127, so d = 1 and id = 1: the codes are roundf(x).
    let mut qs = [0i8; 32];
    let head_q = [127, -127, 3, -3, 1, -1, 0, 100, 4, 0];
    qs[..head_q.len()].copy_from_slice(&head_q);
    for (j, q) in qs.iter_mut().enumerate().skip(head_q.len()) {
        *q = j as i8 - 20;
    }
    let want = BlockQ8_0 {
        d: [0x00, 0x3C], // f16 1.0
        qs,
    };
    assert_eq!(one_block(Format::Q8_0, &x), bytemuck::bytes_of(&want));
}

#[test]
fn q4_0_golden_negative_max() {
    // Largest magnitude is −8 (first), so d = −8 / −8 = 1 and q = min(15, trunc(x + 8.5)).
    let mut x = [0.0f32; 32];
    let vals = [
        (0, -8.0, 0u8),
        (1, 7.0, 15),
        (2, 7.5, 15), // 16 clamped to 15
        (3, 0.5, 9),  // half rounds up
        (4, -0.5, 8), // half rounds up
        (5, -1.5, 7),
        (6, 2.4, 10),
        (16, -7.9, 0),
        (17, 3.0, 11),
        (31, 8.0, 15), // +8 ties the magnitude but comes later: clamps to 7
    ];
    let mut codes = [8u8; 32];
    for &(j, v, q) in &vals {
        x[j] = v;
        codes[j] = q;
    }
    let want = BlockQ4_0 {
        d: [0x00, 0x3C],
        qs: nibbles(&codes),
    };
    let got = one_block(Format::Q4_0, &x);
    assert_eq!(got, bytemuck::bytes_of(&want));
    // Byte 1 holds element 1 (low) and element 17 (high): 15 | 11 << 4.
    assert_eq!(got[2 + 1], 0xBF);
}

#[test]
fn q4_0_golden_positive_max() {
    // Largest magnitude is +8, so d = −1: −8 clips to code 15, i.e. −7.
    let mut x = [0.0f32; 32];
    x[0] = 8.0;
    x[1] = -8.0;
    x[2] = 1.0;
    let mut codes = [8u8; 32];
    codes[0] = 0; // 8·(−1) + 8.5 = 0.5 → 0, value (0 − 8)·(−1) = 8
    codes[1] = 15; // 16.5 → 16 → 15, value −7
    codes[2] = 7; // −1 + 8.5 = 7.5 → 7, value 1
    let want = BlockQ4_0 {
        d: [0x00, 0xBC], // f16 −1.0
        qs: nibbles(&codes),
    };
    assert_eq!(one_block(Format::Q4_0, &x), bytemuck::bytes_of(&want));
}

#[test]
fn q4_1_golden() {
    // min = −1, max = 14: d = 15/15 = 1, m = −1, q = min(15, trunc(x + 1 + 0.5)).
    let mut x = [2.0f32; 32];
    let vals = [
        (0, -1.0, 0u8),
        (1, 14.0, 15),
        (2, 0.0, 1),
        (3, 0.5, 2),
        (20, 3.25, 4),
        (31, 13.6, 15),
    ];
    let mut codes = [3u8; 32];
    for &(j, v, q) in &vals {
        x[j] = v;
        codes[j] = q;
    }
    let want = BlockQ4_1 {
        d: [0x00, 0x3C],
        m: [0x00, 0xBC],
        qs: nibbles(&codes),
    };
    assert_eq!(one_block(Format::Q4_1, &x), bytemuck::bytes_of(&want));
}

#[test]
fn zero_block_has_zero_scale() {
    let x = [0.0f32; 32];
    for f in [Format::Q8_0, Format::Q4_0, Format::Q4_1] {
        let b = one_block(f, &x);
        // Q4_0 stores 0 / −8 = −0.0, as ggml does.
        let d = f16::from_le_bytes([b[0], b[1]]);
        assert_eq!(d.to_f32(), 0.0, "{f}");
        assert_eq!(b[2..], ref_block(f, &x)[2..], "{f}");
    }
}

fn ref_block(f: Format, x: &[f32]) -> Vec<u8> {
    match f {
        Format::Q8_0 => ref_q8_0(x),
        Format::Q4_0 => ref_q4_0(x),
        _ => ref_q4_1(x),
    }
}

// ---- A literal transliteration of ggml's C reference encoders. ----

fn c_roundf(x: f32) -> f32 {
    // roundf: half away from zero.
    let r = x.abs().floor();
    let r = if x.abs() - r >= 0.5 { r + 1.0 } else { r };
    r.copysign(x)
}

fn ref_q8_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks(32) {
        let mut amax = 0.0f32;
        for &v in b {
            amax = amax.max(v.abs());
        }
        let d = amax / ((1 << 7) - 1) as f32;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for &v in b {
            out.push(c_roundf(v * id) as i8 as u8);
        }
    }
    out
}

fn ref_q4_0(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks(32) {
        let (mut amax, mut max) = (0.0f32, 0.0f32);
        for &v in b {
            if amax < v.abs() {
                amax = v.abs();
                max = v;
            }
        }
        let d = max / -8.0;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        for j in 0..16 {
            let xi0 = 15.min((b[j] * id + 8.5) as i8) as u8;
            let xi1 = 15.min((b[16 + j] * id + 8.5) as i8) as u8;
            out.push(xi0 | (xi1 << 4));
        }
    }
    out
}

fn ref_q4_1(x: &[f32]) -> Vec<u8> {
    let mut out = Vec::new();
    for b in x.chunks(32) {
        let (mut min, mut max) = (f32::MAX, -f32::MAX);
        for &v in b {
            if v < min {
                min = v;
            }
            if v > max {
                max = v;
            }
        }
        let d = (max - min) / ((1 << 4) - 1) as f32;
        let id = if d != 0.0 { 1.0 / d } else { 0.0 };
        out.extend_from_slice(&f16::from_f32(d).to_le_bytes());
        out.extend_from_slice(&f16::from_f32(min).to_le_bytes());
        for j in 0..16 {
            let xi0 = 15.min(((b[j] - min) * id + 0.5) as i8) as u8;
            let xi1 = 15.min(((b[16 + j] - min) * id + 0.5) as i8) as u8;
            out.push(xi0 | (xi1 << 4));
        }
    }
    out
}

fn rows() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (1usize..5, 1usize..5, -3i32..4).prop_flat_map(|(n, blocks, exp)| {
        let scale = 10f32.powi(exp);
        (
            Just(n),
            Just(blocks * 32),
            proptest::collection::vec(
                prop_oneof![
                    8 => (-1.0f32..1.0).prop_map(move |v| v * scale),
                    1 => Just(0.0f32),
                    1 => (-8i32..8).prop_map(move |v| v as f32 * scale / 4.0),
                ],
                n * blocks * 32,
            ),
        )
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_rows_equal_ggml((n, k, x) in rows()) {
        let opts = QuantOptions::default();
        prop_assert_eq!(quantize(&x, n, k, Format::Q8_0, &opts).unwrap().into_bytes(), ref_q8_0(&x));
        prop_assert_eq!(quantize(&x, n, k, Format::Q4_0, &opts).unwrap().into_bytes(), ref_q4_0(&x));
        prop_assert_eq!(quantize(&x, n, k, Format::Q4_1, &opts).unwrap().into_bytes(), ref_q4_1(&x));
    }
}
