//! The scalar reference matmul against an f64 dequantize-then-multiply oracle.

use cwpq::kernels::scalar;
use cwpq::{Format, Group, QuantOptions, quantize};
use half::{bf16, f16};
use proptest::prelude::*;

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::Q8_0),
        Just(Format::Q4_0),
        Just(Format::Q4_1),
        Just(Format::int4(64)),
        Just(Format::Int4 {
            group: Group::PerChannel,
            asymmetric: true
        }),
        Just(Format::Int8 {
            group: Group::Size(64),
            asymmetric: true
        }),
        Just(Format::Int8 {
            group: Group::PerChannel,
            asymmetric: false
        }),
    ]
}

/// m in 1..9, odd n, k a multiple of 64 (every group above divides it).
fn case() -> impl Strategy<Value = (Format, usize, usize, usize, Vec<f32>, Vec<f32>)> {
    (format_strategy(), 1usize..9, 0usize..6, 1usize..6).prop_flat_map(|(f, m, half_n, k64)| {
        let n = 2 * half_n + 1;
        let k = 64 * k64;
        (
            Just(f),
            Just(m),
            Just(n),
            Just(k),
            proptest::collection::vec(-2.0f32..2.0, n * k),
            proptest::collection::vec(-4.0f32..4.0, m * k),
        )
    })
}

/// `y = x · Ŵᵀ` in f64 and the matching bound on f32 accumulation error.
fn oracle(deq: &[f32], x: &[f32], m: usize, n: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let mut y = vec![0.0; m * n];
    let mut tol = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            let (mut s, mut a) = (0.0f64, 0.0f64);
            for t in 0..k {
                let p = f64::from(x[i * k + t]) * f64::from(deq[j * k + t]);
                s += p;
                a += p.abs();
            }
            y[i * n + j] = s;
            // Sequential f32 summation: |error| ≤ k·u·Σ|x·w| (u = 2⁻²⁴), doubled for margin.
            tol[i * n + j] = 2.0 * k as f64 * f64::from(f32::EPSILON) / 2.0 * a + 1e-30;
        }
    }
    (y, tol)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn scalar_matmul_matches_f64_oracle((format, m, n, k, w, x) in case()) {
        let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
        let (want, tol) = oracle(&q.dequantize(), &x, m, n, k);
        let mut y = vec![f32::NAN; m * n];
        scalar::matmul(&q.view(), &x, m, 0..n, &mut y).unwrap();
        for (idx, ((&got, &want), &tol)) in y.iter().zip(&want).zip(&tol).enumerate() {
            prop_assert!((f64::from(got) - want).abs() <= tol, "{format} m={m} n={n} k={k} [{idx}]: {got} vs {want} (tol {tol})");
        }
    }

    /// Splitting the output rows into tiles gives the same numbers, bit for bit.
    #[test]
    fn row_range_tiles_equal_full((format, m, n, k, w, x) in case(), cut in 0usize..100) {
        let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
        let mut full = vec![0.0f32; m * n];
        scalar::matmul(&q.view(), &x, m, 0..n, &mut full).unwrap();
        let c = cut % (n + 1);
        for range in [0..c, c..n] {
            let width = range.len();
            let mut tile = vec![0.0f32; m * width];
            scalar::matmul(&q.view(), &x, m, range.clone(), &mut tile).unwrap();
            for i in 0..m {
                prop_assert_eq!(&tile[i * width..(i + 1) * width], &full[i * n + range.start..i * n + range.end]);
            }
        }
    }

    /// f16 and bf16 activations are widened exactly, so they equal the f32 path on the widened values.
    #[test]
    fn half_activations_equal_widened_f32((format, m, n, k, w, x) in case()) {
        let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
        let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
        let xb: Vec<bf16> = x.iter().map(|&v| bf16::from_f32(v)).collect();
        let wide_h: Vec<f32> = xh.iter().map(|v| v.to_f32()).collect();
        let wide_b: Vec<f32> = xb.iter().map(|v| v.to_f32()).collect();
        let run = |xs: &dyn Fn(&mut [f32])| { let mut y = vec![0.0f32; m * n]; xs(&mut y); y };
        let yh = run(&|y| scalar::matmul(&q.view(), &xh, m, 0..n, y).unwrap());
        let yhf = run(&|y| scalar::matmul(&q.view(), &wide_h, m, 0..n, y).unwrap());
        let yb = run(&|y| scalar::matmul(&q.view(), &xb, m, 0..n, y).unwrap());
        let ybf = run(&|y| scalar::matmul(&q.view(), &wide_b, m, 0..n, y).unwrap());
        prop_assert_eq!(yh, yhf);
        prop_assert_eq!(yb, ybf);
    }
}

#[test]
fn dequantize_rows_matches_whole_matrix() {
    let (n, k) = (5, 128);
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 7919) % 201) as f32 / 50.0 - 2.0)
        .collect();
    let q = quantize(&w, n, k, Format::Q4_1, &QuantOptions::default()).unwrap();
    let all = q.dequantize();
    let mut part = vec![0.0f32; 2 * k];
    q.view().dequantize_rows(2..4, &mut part).unwrap();
    assert_eq!(part, all[2 * k..4 * k]);
}
