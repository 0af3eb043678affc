//! Per-format round-trip error bounds, as properties over random matrices.

use cwpq::quant::f16_le;
use cwpq::{Format, Group, Importance, QuantOptions, ScaleSearch, quantize};
use proptest::prelude::*;

/// f16 rounding is relative 2⁻¹¹; subnormal scales add at most 2⁻²⁵ absolute.
const F16_REL: f32 = 1.0 / 2048.0;
const F16_ABS: f32 = 1.0 / 33_554_432.0;

fn formats() -> Vec<Format> {
    let mut v = vec![Format::Q8_0, Format::Q4_0, Format::Q4_1];
    for asymmetric in [false, true] {
        for group in [Group::Size(32), Group::Size(64), Group::PerChannel] {
            v.push(Format::Int8 { group, asymmetric });
            v.push(Format::Int4 { group, asymmetric });
        }
    }
    v
}

/// A random n × k matrix with k a multiple of 64, magnitudes 10⁻²..10³.
fn matrix() -> impl Strategy<Value = (usize, usize, Vec<f32>)> {
    (1usize..4, 1usize..4, -2i32..4).prop_flat_map(|(n, k64, exp)| {
        let scale = 10f32.powi(exp);
        let k = k64 * 64;
        (
            Just(n),
            Just(k),
            proptest::collection::vec(
                prop_oneof![
                    10 => (-1.0f32..1.0).prop_map(move |v| v * scale),
                    1 => Just(0.0f32),
                    1 => (0.0f32..1.0).prop_map(move |v| 3.0 * scale + v),
                ],
                n * k,
            ),
        )
    })
}

/// Checks every element against the bound `f(d, m, w)` of its block.
fn check_bound(
    format: Format,
    n: usize,
    k: usize,
    w: &[f32],
    bytes: &[u8],
    deq: &[f32],
    bound: impl Fn(f32, f32) -> f32,
) -> Result<(), TestCaseError> {
    let layout = format.layout(k).unwrap();
    let blocks_per_row = k / layout.group;
    for i in 0..n {
        for j in 0..k {
            let b = i * blocks_per_row + j / layout.group;
            let h = &bytes[b * layout.block_bytes()..];
            let d = f16_le([h[0], h[1]]).abs();
            let m = if layout.kind.has_min() {
                f16_le([h[2], h[3]])
            } else {
                0.0
            };
            let err = (w[i * k + j] - deq[i * k + j]).abs();
            let tol = bound(d, m) * (1.0 + 1e-5) + F16_ABS * 256.0;
            prop_assert!(
                err <= tol,
                "{format} at ({i},{j}): |{} - {}| = {err} > {tol} (d = {d}, m = {m})",
                w[i * k + j],
                deq[i * k + j]
            );
        }
    }
    Ok(())
}

fn sse(a: &[f32], b: &[f32], weight: impl Fn(usize) -> f32) -> f64 {
    a.iter()
        .zip(b)
        .enumerate()
        .map(|(i, (&x, &y))| f64::from(weight(i)) * f64::from(x - y).powi(2))
        .sum()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Absmax RTN: `|w − ŵ| ≤ d/2` plus the f16 rounding of the scale (and
    /// min); symmetric int4 (and Q4_0) may clip one step on one side (≤ d).
    #[test]
    fn rtn_error_bounds((n, k, w) in matrix()) {
        for format in formats() {
            let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
            let deq = q.dequantize();
            let qmax = format.layout(k).unwrap().kind.qmax() as f32;
            let bound = |d: f32, m: f32| match format {
                Format::Q8_0 => d * (0.5 + 127.0 * F16_REL),
                Format::Q4_0 => d * (1.0 + 8.0 * F16_REL),
                Format::Q4_1 => d * (0.5 + 15.0 * F16_REL) + m.abs() * F16_REL,
                Format::Int8 { asymmetric: false, .. } => d * 0.5 + d * qmax * F16_REL,
                // ggml's rule: the side opposite the largest magnitude may clip one step.
                Format::Int4 { asymmetric: false, .. } => d * (1.0 + 8.0 * F16_REL),
                _ => d * 0.5 + 2.0 * F16_REL * (m.abs() + qmax * d),
            };
            check_bound(format, n, k, &w, q.as_bytes(), &deq, bound)?;
        }
    }

    /// The MSE search never does worse than RTN (its grid starts at ratio 1),
    /// and the weighted search never does worse in its own weighted error.
    #[test]
    fn searches_beat_rtn((n, k, w) in matrix(), seed in 0u32..1000) {
        let a: Vec<f32> = (0..n * k).map(|i| (((i as u32).wrapping_mul(2654435761) ^ seed) % 1000) as f32 / 100.0).collect();
        for format in formats().into_iter().filter(|f| !f.is_gguf()) {
            let rtn = quantize(&w, n, k, format, &QuantOptions::default()).unwrap().dequantize();
            let mse_opts = QuantOptions { search: ScaleSearch::Mse, ..Default::default() };
            let mse = quantize(&w, n, k, format, &mse_opts).unwrap().dequantize();
            prop_assert!(sse(&w, &mse, |_| 1.0) <= sse(&w, &rtn, |_| 1.0) * (1.0 + 1e-9), "{format}");
            let wt_opts = QuantOptions { search: ScaleSearch::Weighted(Importance::PerElement(&a)), ..Default::default() };
            let wt = quantize(&w, n, k, format, &wt_opts).unwrap().dequantize();
            prop_assert!(sse(&w, &wt, |i| a[i]) <= sse(&w, &rtn, |i| a[i]) * (1.0 + 1e-9), "{format}");
        }
    }

    /// A masked weight takes no part in its group's statistics: for symmetric
    /// formats the bytes equal those of the matrix with that weight set to 0.
    #[test]
    fn mask_leaves_statistics(((n, k, mut w), picks) in (matrix(), proptest::collection::vec(any::<prop::sample::Index>(), 1..8))) {
        let mut mask = vec![false; n * k];
        for p in &picks {
            let i = p.index(n * k);
            mask[i] = true;
            w[i] = 1e4; // a huge outlier
        }
        let zeroed: Vec<f32> = w.iter().zip(&mask).map(|(&v, &m)| if m { 0.0 } else { v }).collect();
        for format in formats().into_iter().filter(|f| matches!(f, Format::Q8_0 | Format::Q4_0 | Format::Int8 { asymmetric: false, .. } | Format::Int4 { asymmetric: false, .. })) {
            for search in [ScaleSearch::Absmax, ScaleSearch::Mse] {
                let masked = quantize(&w, n, k, format, &QuantOptions { search, mask: Some(&mask), ..Default::default() }).unwrap();
                let plain = quantize(&zeroed, n, k, format, &QuantOptions { search, ..Default::default() }).unwrap();
                prop_assert_eq!(masked.as_bytes(), plain.as_bytes(), "{}", format);
            }
        }
    }
}

#[test]
fn all_zero_groups_have_zero_scale_and_values() {
    let w = vec![0.0f32; 2 * 64];
    for format in formats() {
        for search in [ScaleSearch::Absmax, ScaleSearch::Mse] {
            let q = quantize(
                &w,
                2,
                64,
                format,
                &QuantOptions {
                    search,
                    ..Default::default()
                },
            )
            .unwrap();
            assert!(q.dequantize().iter().all(|&v| v == 0.0), "{format}");
            let layout = format.layout(64).unwrap();
            for block in q.as_bytes().chunks_exact(layout.block_bytes()) {
                assert_eq!(f16_le([block[0], block[1]]), 0.0, "{format}");
            }
        }
    }
}

#[test]
fn huge_weights_clamp_scale_to_f16_range() {
    let mut w = vec![1.0f32; 64];
    w[3] = 3.0e38;
    w[40] = -1.0e30;
    for format in formats() {
        let q = quantize(&w, 1, 64, format, &QuantOptions::default()).unwrap();
        let deq = q.dequantize();
        assert!(deq.iter().all(|v| v.is_finite()), "{format}");
        let layout = format.layout(64).unwrap();
        for block in q.as_bytes().chunks_exact(layout.block_bytes()) {
            assert!(f16_le([block[0], block[1]]).abs() <= 65504.0, "{format}");
        }
    }
}

#[test]
fn tiny_weights_never_give_nan() {
    let w: Vec<f32> = (0..64).map(|i| (i as f32 - 31.0) * 1e-30).collect();
    for format in formats() {
        let deq = quantize(&w, 1, 64, format, &QuantOptions::default())
            .unwrap()
            .dequantize();
        for (a, b) in w.iter().zip(&deq) {
            assert!((a - b).abs() <= 1e-6, "{format}: {a} vs {b}");
        }
    }
}
