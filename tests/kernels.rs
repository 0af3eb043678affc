//! Differential tests: every backend this machine has against the scalar
//! reference, on random shapes, raw random codes (extreme values included),
//! offsets, and protected budgets from none to half the matrix.
//!
//! Float results agree within `TOL_ULPS · (k + 64) · ε · Σ|x·w|`; activation
//! quantization (integer codes, scales, sums) is bit-exact.

use cwpq::act::{ActQuant, ActScale, QuantizedActivations};
use cwpq::kernels::{self, Backend, scalar};
use cwpq::protect::{ProtectedSet, ValueType};
use cwpq::{Format, Group, QuantView};
use half::{bf16, f16};
use proptest::prelude::*;

const TOL_ULPS: f64 = 4.0;

fn format_strategy() -> impl Strategy<Value = Format> {
    prop_oneof![
        Just(Format::Q4_0),
        Just(Format::Q4_1),
        Just(Format::Q8_0),
        Just(Format::int4(64)),
        Just(Format::Int4 {
            group: Group::PerChannel,
            asymmetric: false
        }),
        Just(Format::Int4 {
            group: Group::Size(64),
            asymmetric: true
        }),
        Just(Format::int8(64)),
        Just(Format::Int8 {
            group: Group::PerChannel,
            asymmetric: false
        }),
        Just(Format::Int8 {
            group: Group::Size(32),
            asymmetric: true
        }),
        Just(Format::Int8 {
            group: Group::PerChannel,
            asymmetric: true
        }),
    ]
}

#[derive(Debug, Clone)]
struct Case {
    format: Format,
    m: usize,
    n: usize,
    k: usize,
    /// Raw code bytes (any value) with headers overwritten by sane scales.
    bytes: Vec<u8>,
    /// Where the matrix starts inside `bytes` (0..=3: misaligned views).
    offset: usize,
    x: Vec<f32>,
    /// Flat indices of protected weights, increasing.
    protected: Vec<usize>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        format_strategy(),
        1usize..17,
        1usize..12,
        1usize..9,
        0usize..4,
        0u8..4,
    )
        .prop_flat_map(|(format, m, n, k32, offset, budget)| {
            // k = 32·k32 where the format allows it (every tail modulo 64 and 256 bytes), else a multiple of 64.
            let k = if format.layout(32 * k32).is_ok() {
                32 * k32
            } else {
                64 * k32.div_ceil(2)
            };
            let shape = cwpq::QuantShape::new(format, n, k).unwrap();
            let nk = n * k;
            let count = match budget {
                0 => 0,
                1 => 1,
                2 => nk.div_ceil(100),
                _ => nk / 2,
            };
            (
                Just(format),
                Just(m),
                Just(n),
                Just(k),
                proptest::collection::vec(any::<u8>(), shape.total_bytes() + offset),
                Just(offset),
                proptest::collection::vec(
                    prop_oneof![4 => -3.0f32..3.0, 1 => Just(0.0f32), 1 => -40.0f32..40.0],
                    m * k,
                ),
                proptest::sample::subsequence((0..nk).collect::<Vec<_>>(), count),
                proptest::collection::vec(-2.0f32..2.0, 1..64),
            )
                .prop_map(
                    |(format, m, n, k, mut bytes, offset, x, protected, scales)| {
                        let layout = format.layout(k).unwrap();
                        // Sane finite headers: scales in ±2, mins in ±2; some blocks all zero.
                        for (b, block) in bytes[offset..]
                            .chunks_exact_mut(layout.block_bytes())
                            .enumerate()
                        {
                            let d = if b % 7 == 3 {
                                0.0
                            } else {
                                scales[b % scales.len()] * 0.1
                            };
                            block[..2].copy_from_slice(&f16::from_f32(d).to_le_bytes());
                            if layout.kind.has_min() {
                                block[2..4].copy_from_slice(
                                    &f16::from_f32(scales[(b + 1) % scales.len()]).to_le_bytes(),
                                );
                            }
                            if b % 11 == 5 {
                                block[layout.header_bytes()..].fill(0);
                            }
                        }
                        Case {
                            format,
                            m,
                            n,
                            k,
                            bytes,
                            offset,
                            x,
                            protected,
                        }
                    },
                )
        })
}

fn protected_set(c: &Case) -> ProtectedSet {
    let values: Vec<f32> = c
        .protected
        .iter()
        .map(|&i| ((i % 13) as f32 - 6.0) / 4.0)
        .collect();
    ProtectedSet::from_flat(c.n, c.k, &c.protected, &values, ValueType::F16).unwrap()
}

/// Σ_t |x_t·w_t| per output, for the tolerance.
fn magnitudes(w: &QuantView<'_>, p: &ProtectedSet, x: &[f32], m: usize) -> Vec<f64> {
    let (n, k) = (w.n(), w.k());
    let mut deq = vec![0.0f32; n * k];
    w.dequantize_rows(0..n, &mut deq).unwrap();
    // The integer paths compute d·Σa·q and m·Σa (and offsets of up to
    // 128·d) separately, so their rounding scales with |w| + 2(|m| + 128|d|).
    let layout = w.shape().layout();
    for (i, row) in deq.chunks_exact_mut(k).enumerate() {
        for (t, v) in row.iter_mut().enumerate() {
            let h = &w.as_bytes()
                [i * w.shape().row_bytes() + (t / layout.group) * layout.block_bytes()..];
            let d = cwpq::quant::f16_le([h[0], h[1]]).abs();
            let m = if layout.kind.has_min() {
                cwpq::quant::f16_le([h[2], h[3]]).abs()
            } else {
                0.0
            };
            *v = v.abs() + 2.0 * (m + 128.0 * d);
        }
    }
    let pv = p.view();
    for i in 0..n {
        for (j, v) in pv.row(i) {
            deq[i * k + j] += v.abs();
        }
    }
    let mut out = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k)
                .map(|t| f64::from(x[i * k + t].abs()) * f64::from(deq[j * k + t].abs()))
                .sum();
        }
    }
    out
}

fn close(
    got: &[f32],
    want: &[f32],
    mag: &[f64],
    k: usize,
    what: &str,
) -> Result<(), TestCaseError> {
    for (i, ((&g, &w), &a)) in got.iter().zip(want).zip(mag).enumerate() {
        let tol = TOL_ULPS * (k + 64) as f64 * f64::from(f32::EPSILON) * a + 1e-30;
        prop_assert!(
            (f64::from(g) - f64::from(w)).abs() <= tol,
            "{what} [{i}]: {g} vs {w} (tol {tol})"
        );
    }
    Ok(())
}

fn simd_backends() -> Vec<Backend> {
    Backend::available()
        .filter(|&b| b != Backend::Scalar)
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Weight-only f32, f16 and bf16 activations, every backend vs scalar,
    /// whole range and a split row range.
    #[test]
    fn weight_only_matches_scalar(c in case(), split in 0usize..12) {
        let w = QuantView::new(c.format, c.n, c.k, &c.bytes[c.offset..]).unwrap();
        let p = protected_set(&c);
        let xh: Vec<f16> = c.x.iter().map(|&v| f16::from_f32(v)).collect();
        let xb: Vec<bf16> = c.x.iter().map(|&v| bf16::from_f32(v)).collect();
        let mag = magnitudes(&w, &p, &c.x, c.m);
        let (m, n) = (c.m, c.n);
        let mut want = vec![0.0f32; m * n];
        scalar::matmul_protected(&w, Some(&p.view()), &c.x, m, 0..n, &mut want).unwrap();
        let mut want_h = vec![0.0f32; m * n];
        scalar::matmul_protected(&w, Some(&p.view()), &xh, m, 0..n, &mut want_h).unwrap();
        let mut want_b = vec![0.0f32; m * n];
        scalar::matmul_protected(&w, Some(&p.view()), &xb, m, 0..n, &mut want_b).unwrap();
        for b in simd_backends() {
            let mut y = vec![f32::NAN; m * n];
            kernels::matmul_with(b, &w, Some(&p.view()), &c.x, m, 0..n, &mut y).unwrap();
            close(&y, &want, &mag, c.k, &format!("{b:?} f32 {}", c.format))?;
            kernels::matmul_with(b, &w, Some(&p.view()), &xh, m, 0..n, &mut y).unwrap();
            close(&y, &want_h, &mag, c.k, &format!("{b:?} f16 {}", c.format))?;
            kernels::matmul_with(b, &w, Some(&p.view()), &xb, m, 0..n, &mut y).unwrap();
            close(&y, &want_b, &mag, c.k, &format!("{b:?} bf16 {}", c.format))?;
            // A split range writes the same values into its tile.
            let s = split % (n + 1);
            let mut tile = vec![f32::NAN; m * (n - s)];
            kernels::matmul_with(b, &w, Some(&p.view()), &c.x, m, s..n, &mut tile).unwrap();
            for i in 0..m {
                let want_tile: Vec<f32> = (s..n).map(|j| want[i * n + j]).collect();
                let mag_tile: Vec<f64> = (s..n).map(|j| mag[i * n + j]).collect();
                close(&tile[i * (n - s)..(i + 1) * (n - s)], &want_tile, &mag_tile, c.k, &format!("{b:?} tile"))?;
            }
        }
    }

    /// Int8 activations (dynamic per token, per block, with LLM.int8
    /// outliers, and static), every backend vs scalar; the activation
    /// quantization itself is bit-exact.
    #[test]
    fn int8_activations_match_scalar(c in case(), mode in 0u8..4) {
        let w = QuantView::new(c.format, c.n, c.k, &c.bytes[c.offset..]).unwrap();
        let p = protected_set(&c);
        let how = match mode {
            0 => ActQuant::Dynamic { scale: ActScale::PerToken, outlier_threshold: None },
            1 => ActQuant::Dynamic { scale: ActScale::PerBlock, outlier_threshold: None },
            2 => ActQuant::Dynamic { scale: ActScale::PerToken, outlier_threshold: Some(6.0) },
            _ => ActQuant::Static { scale: 0.05 },
        };
        let (m, n, k) = (c.m, c.n, c.k);
        let mut reference = QuantizedActivations::new();
        reference.quantize_with(Backend::Scalar, &c.x, m, k, how, None).unwrap();
        let mut want = vec![0.0f32; m * n];
        scalar::matmul_q8(&w, Some(&p.view()), &reference, 0..n, &mut want).unwrap();
        // The tolerance covers the integer path's reassociation; magnitudes use the original x.
        let mag = magnitudes(&w, &p, &c.x, m);
        for b in simd_backends() {
            let mut xq = QuantizedActivations::new();
            xq.quantize_with(b, &c.x, m, k, how, None).unwrap();
            prop_assert_eq!(&xq, &reference, "{:?} activation quantization", b);
            let mut y = vec![f32::NAN; m * n];
            kernels::matmul_q8_with(b, &w, Some(&p.view()), &xq, 0..n, &mut y).unwrap();
            close(&y, &want, &mag, k, &format!("{b:?} q8 mode {mode} {}", c.format))?;
        }
    }
}

/// The integer path is exact on its own: with all activations and weights
/// integers, every backend gives exactly the scalar answer.
#[test]
fn integer_path_is_exact_on_integer_data() {
    let (n, k, m) = (5, 256, 3);
    for format in [
        Format::Q8_0,
        Format::Q4_0,
        Format::Q4_1,
        Format::int8(128),
        Format::Int8 {
            group: Group::Size(64),
            asymmetric: true,
        },
    ] {
        let layout = format.layout(k).unwrap();
        let shape = cwpq::QuantShape::new(format, n, k).unwrap();
        let mut bytes = vec![0u8; shape.total_bytes()];
        for (b, block) in bytes.chunks_exact_mut(layout.block_bytes()).enumerate() {
            block[..2].copy_from_slice(&f16::from_f32(1.0).to_le_bytes());
            if layout.kind.has_min() {
                block[2..4].copy_from_slice(&f16::from_f32(-2.0).to_le_bytes());
            }
            for (i, c) in block[layout.header_bytes()..].iter_mut().enumerate() {
                // Extreme codes: 0x80 is −128 for i8 formats, 0xFF/0x00 the u8 ends.
                *c = [0x80u8, 0x7F, 0xFF, 0x00, 0x11, 0xF7][(i + b) % 6];
            }
        }
        let w = QuantView::new(format, n, k, &bytes).unwrap();
        // Static scale 1: activations are their own codes.
        let x: Vec<f32> = (0..m * k)
            .map(|i| [127.0, -127.0, 3.0, 0.0, -1.0][i % 5])
            .collect();
        let mut xq = QuantizedActivations::new();
        xq.quantize_with(
            Backend::Scalar,
            &x,
            m,
            k,
            ActQuant::Static { scale: 1.0 },
            None,
        )
        .unwrap();
        let mut want = vec![0.0f32; m * n];
        scalar::matmul_q8(&w, None, &xq, 0..n, &mut want).unwrap();
        for b in Backend::available() {
            let mut y = vec![0.0f32; m * n];
            kernels::matmul_q8_with(b, &w, None, &xq, 0..n, &mut y).unwrap();
            assert_eq!(y, want, "{b:?} {format}");
        }
    }
}

#[test]
fn forced_backend_is_used_or_fails_loudly() {
    match std::env::var("CWPQ_BACKEND") {
        Ok(name) => {
            let b = Backend::from_name(&name).expect("CWPQ_BACKEND names a backend");
            assert_eq!(
                Backend::selected().expect("the forced backend must exist on this CPU"),
                b
            );
        }
        Err(_) => assert!(Backend::selected().unwrap().is_available()),
    }
    println!(
        "backends available: {:?}; selected: {:?}",
        Backend::available().collect::<Vec<_>>(),
        Backend::selected()
    );
}

#[test]
fn unavailable_backend_is_an_error() {
    let missing = Backend::ALL.into_iter().find(|b| !b.is_available());
    if let Some(b) = missing {
        let w = cwpq::quantize(&[0.5f32; 32], 1, 32, Format::Q8_0, &Default::default()).unwrap();
        let mut y = [0.0f32];
        assert_eq!(
            kernels::matmul_with(b, &w.view(), None, &[1.0f32; 32], 1, 0..1, &mut y).unwrap_err(),
            cwpq::Error::Unsupported { backend: b.name() }
        );
    }
}
