//! Every bad input gets its specific `Err`, never a panic.

use cwpq::kernels::scalar;
use cwpq::{
    ClipGrid, Error, Format, Group, Importance, QuantOptions, QuantShape, QuantView, ScaleSearch,
    quantize,
};

fn w(n: usize, k: usize) -> Vec<f32> {
    (0..n * k).map(|i| (i % 17) as f32 - 8.0).collect()
}

fn q(format: Format, n: usize, k: usize, weights: &[f32]) -> Result<cwpq::QuantMatrix, Error> {
    quantize(weights, n, k, format, &QuantOptions::default())
}

#[test]
fn wrong_weight_length() {
    assert_eq!(
        q(Format::Q4_0, 2, 64, &w(2, 63)).unwrap_err(),
        Error::LengthMismatch {
            what: "weights",
            expected: 128,
            actual: 126
        }
    );
}

#[test]
fn wrong_mask_and_importance_lengths() {
    let x = w(2, 64);
    let mask = vec![false; 127];
    let opts = QuantOptions {
        mask: Some(&mask),
        ..Default::default()
    };
    assert_eq!(
        quantize(&x, 2, 64, Format::Q8_0, &opts).unwrap_err(),
        Error::LengthMismatch {
            what: "mask",
            expected: 128,
            actual: 127
        }
    );
    let a = vec![1.0f32; 63];
    for (imp, what, expected) in [
        (Importance::PerElement(&a), "importance (per element)", 128),
        (Importance::PerColumn(&a), "importance (per column)", 64),
    ] {
        let opts = QuantOptions {
            search: ScaleSearch::Weighted(imp),
            ..Default::default()
        };
        assert_eq!(
            quantize(&x, 2, 64, Format::int4(32), &opts).unwrap_err(),
            Error::LengthMismatch {
                what,
                expected,
                actual: 63
            }
        );
    }
}

#[test]
fn bad_group_sizes() {
    for (group, k) in [(0, 64), (48, 96), (64, 96), (16, 32), (33, 66)] {
        let f = Format::Int4 {
            group: Group::Size(group),
            asymmetric: false,
        };
        assert_eq!(
            q(f, 1, k, &w(1, k)).unwrap_err(),
            Error::InvalidGroupSize { group, k }
        );
    }
    // Per-channel needs k to be a multiple of 32.
    let f = Format::Int8 {
        group: Group::PerChannel,
        asymmetric: true,
    };
    assert_eq!(
        q(f, 1, 100, &w(1, 100)).unwrap_err(),
        Error::InvalidGroupSize { group: 100, k: 100 }
    );
    // GGUF formats are group 32.
    assert_eq!(
        q(Format::Q4_0, 1, 48, &w(1, 48)).unwrap_err(),
        Error::InvalidGroupSize { group: 32, k: 48 }
    );
}

#[test]
fn zero_dimensions() {
    assert_eq!(
        q(Format::Q8_0, 0, 32, &[]).unwrap_err(),
        Error::ZeroDimension { what: "n" }
    );
    assert_eq!(
        q(Format::Q8_0, 1, 0, &[]).unwrap_err(),
        Error::ZeroDimension { what: "k" }
    );
}

#[test]
fn non_finite_weights() {
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut x = w(2, 32);
        x[37] = bad;
        for f in [Format::Q8_0, Format::Q4_1, Format::int4(32)] {
            assert_eq!(
                q(f, 2, 32, &x).unwrap_err(),
                Error::NonFinite {
                    what: "weights",
                    index: 37
                }
            );
        }
    }
}

#[test]
fn bad_importance_values() {
    let x = w(1, 32);
    let mut a = vec![1.0f32; 32];
    a[5] = f32::NAN;
    let opts = QuantOptions {
        search: ScaleSearch::Weighted(Importance::PerColumn(&a)),
        ..Default::default()
    };
    assert_eq!(
        quantize(&x, 1, 32, Format::int8(32), &opts).unwrap_err(),
        Error::NonFinite {
            what: "importance",
            index: 5
        }
    );
    a[5] = -1.0;
    let opts = QuantOptions {
        search: ScaleSearch::Weighted(Importance::PerColumn(&a)),
        ..Default::default()
    };
    assert_eq!(
        quantize(&x, 1, 32, Format::int8(32), &opts).unwrap_err(),
        Error::Negative {
            what: "importance",
            index: 5
        }
    );
}

#[test]
fn bad_clip_grid() {
    let x = w(1, 32);
    for grid in [
        ClipGrid {
            steps: 0,
            min_ratio: 0.5,
        },
        ClipGrid {
            steps: 4,
            min_ratio: 0.0,
        },
        ClipGrid {
            steps: 4,
            min_ratio: f32::NAN,
        },
        ClipGrid {
            steps: 4,
            min_ratio: 1.5,
        },
    ] {
        let opts = QuantOptions {
            search: ScaleSearch::Mse,
            grid,
            ..Default::default()
        };
        assert!(
            matches!(
                quantize(&x, 1, 32, Format::int8(32), &opts).unwrap_err(),
                Error::InvalidParameter { .. }
            ),
            "{grid:?}"
        );
    }
}

#[test]
fn size_overflow() {
    assert!(matches!(
        QuantShape::new(Format::Q8_0, usize::MAX, 64).unwrap_err(),
        Error::SizeOverflow { .. }
    ));
    assert!(matches!(
        QuantShape::new(Format::Q8_0, usize::MAX / 34 + 1, 32).unwrap_err(),
        Error::SizeOverflow { .. }
    ));
}

#[test]
fn truncated_and_overlong_views() {
    let m = q(Format::Q4_0, 3, 64, &w(3, 64)).unwrap();
    let bytes = m.as_bytes();
    assert_eq!(bytes.len(), 3 * 2 * 18);
    for cut in [0, 1, 17, 18, bytes.len() - 1] {
        assert_eq!(
            QuantView::new(Format::Q4_0, 3, 64, &bytes[..cut]).unwrap_err(),
            Error::LengthMismatch {
                what: "quantized bytes",
                expected: 108,
                actual: cut
            }
        );
    }
    let mut long = bytes.to_vec();
    long.push(0);
    assert_eq!(
        QuantView::new(Format::Q4_0, 3, 64, &long).unwrap_err(),
        Error::LengthMismatch {
            what: "quantized bytes",
            expected: 108,
            actual: 109
        }
    );
}

#[test]
fn misaligned_views_work_like_aligned_ones() {
    for f in [
        Format::Q8_0,
        Format::Q4_0,
        Format::Q4_1,
        Format::Int8 {
            group: Group::Size(64),
            asymmetric: true,
        },
    ] {
        let m = q(f, 3, 64, &w(3, 64)).unwrap();
        let want = m.dequantize();
        for offset in 1..4 {
            let mut buf = vec![0u8; offset];
            buf.extend_from_slice(m.as_bytes());
            let view = QuantView::new(f, 3, 64, &buf[offset..]).unwrap();
            let mut got = vec![0.0f32; 3 * 64];
            view.dequantize_rows(0..3, &mut got).unwrap();
            assert_eq!(got, want, "{f} at offset {offset}");
        }
    }
    // The typed GGUF blocks are align 1, so any offset casts.
    let m = q(Format::Q4_0, 1, 64, &w(1, 64)).unwrap();
    let mut buf = vec![0u8; 1];
    buf.extend_from_slice(m.as_bytes());
    let view = QuantView::new(Format::Q4_0, 1, 64, &buf[1..]).unwrap();
    assert_eq!(view.blocks_q4_0().unwrap().len(), 2);
    assert!(matches!(
        view.blocks_q8_0().unwrap_err(),
        Error::InvalidParameter { .. }
    ));
}

#[test]
fn non_finite_scales_in_bytes() {
    let m = q(Format::Q4_1, 2, 64, &w(2, 64)).unwrap();
    for (pos, bits) in [(0usize, 0x7E00u16), (2, 0x7C00), (20, 0xFC00), (62, 0x7E01)] {
        let mut bytes = m.as_bytes().to_vec();
        bytes[pos..pos + 2].copy_from_slice(&bits.to_le_bytes());
        assert_eq!(
            QuantView::new(Format::Q4_1, 2, 64, &bytes).unwrap_err(),
            Error::NonFinite {
                what: "block scale or min",
                index: pos / 20
            }
        );
    }
}

#[test]
fn matmul_bad_arguments() {
    let m = q(Format::Q8_0, 4, 64, &w(4, 64)).unwrap();
    let v = m.view();
    let x = vec![1.0f32; 2 * 64];
    let mut y = vec![0.0f32; 2 * 4];
    assert_eq!(
        scalar::matmul(&v, &x[..127], 2, 0..4, &mut y).unwrap_err(),
        Error::LengthMismatch {
            what: "activations",
            expected: 128,
            actual: 127
        }
    );
    assert_eq!(
        scalar::matmul(&v, &x, 2, 0..4, &mut y[..7]).unwrap_err(),
        Error::LengthMismatch {
            what: "output tile",
            expected: 8,
            actual: 7
        }
    );
    assert_eq!(
        scalar::matmul(&v, &x, 2, 0..5, &mut y).unwrap_err(),
        Error::InvalidRowRange {
            start: 0,
            end: 5,
            n: 4
        }
    );
    #[allow(clippy::reversed_empty_ranges)]
    let inverted = 3..2;
    assert_eq!(
        scalar::matmul(&v, &x, 2, inverted, &mut y).unwrap_err(),
        Error::InvalidRowRange {
            start: 3,
            end: 2,
            n: 4
        }
    );
    assert_eq!(
        scalar::matmul(&v, &x[..0], 0, 0..4, &mut y[..0]).unwrap_err(),
        Error::ZeroDimension { what: "m" }
    );
    let mut out = vec![0.0f32; 64];
    assert_eq!(
        scalar::dequantize_rows(&v, 0..2, &mut out).unwrap_err(),
        Error::LengthMismatch {
            what: "dequantized output",
            expected: 128,
            actual: 64
        }
    );
}

#[test]
fn format_names_round_trip_and_reject_garbage() {
    for name in [
        "q8_0",
        "q4_0",
        "q4_1",
        "int4-g128",
        "int4a-g32",
        "int8-pc",
        "int8a-g64",
    ] {
        let f: Format = name.parse().unwrap();
        assert_eq!(f.to_string(), name);
    }
    for bad in [
        "", "q5_0", "int4", "int4-g", "int4-gx", "int3-g32", "int4-p",
    ] {
        assert!(
            matches!(
                bad.parse::<Format>().unwrap_err(),
                Error::InvalidParameter { .. }
            ),
            "{bad}"
        );
    }
}

#[test]
fn errors_display_their_numbers() {
    let e = Error::InvalidGroupSize { group: 48, k: 96 };
    let s = e.to_string();
    assert!(s.contains("48") && s.contains("96"), "{s}");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(!boxed.to_string().is_empty());
}

#[test]
fn huge_k_is_a_size_error_not_an_overflow() {
    // Found by the container fuzzer: a file may declare any k.
    assert_eq!(
        QuantShape::new(Format::int4(32), 1, usize::MAX / 2).unwrap_err(),
        Error::SizeOverflow { what: "k" }
    );
    assert!(
        Format::Int8 {
            group: Group::PerChannel,
            asymmetric: false
        }
        .layout(usize::MAX - 31)
        .is_err()
    );
}
