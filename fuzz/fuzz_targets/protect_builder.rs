//! Arbitrary weights, scores (any bits, NaN included) and masks into
//! `ProtectedLinear::build`: either the documented error, or a layer that
//! protects exactly what was asked and reconstructs protected weights.
#![no_main]

mod common;

use common::Input;
use cwpq::importance::Budget;
use cwpq::{Error, Format, LinearConfig, ProtectedLinear, Protection};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let n = 1 + input.below(6);
    let k = 32 * (1 + input.below(4));
    let format = [
        Format::Q4_0,
        Format::Q8_0,
        Format::Q4_1,
        Format::int4(32),
        Format::int8(32),
    ][input.below(5)];
    // f16-representable weights, so symmetric formats reconstruct exactly.
    let w: Vec<f32> = (0..n * k)
        .map(|_| half::f16::from_bits(input.u16() & 0x7BFF).to_f32())
        .collect();
    let config = LinearConfig::new(format);
    let (result, want) = if input.byte() & 1 == 0 {
        let mask: Vec<bool> = (0..n * k).map(|_| input.byte() < 32).collect();
        let count = mask.iter().filter(|&&m| m).count();
        (
            ProtectedLinear::build(&w, n, k, &config, Protection::Mask(&mask)),
            Some(count),
        )
    } else {
        let scores: Vec<f32> = (0..n * k)
            .map(|_| f32::from_bits(u32::from(input.u16()) << 16 | u32::from(input.u16())))
            .collect();
        let frac = f64::from(input.byte()) / 255.0;
        let r = ProtectedLinear::build(
            &w,
            n,
            k,
            &config,
            Protection::Top {
                scores: &scores,
                budget: Budget::Fraction(frac),
                row_cap: None,
            },
        );
        if scores.iter().any(|s| !s.is_finite()) {
            assert!(
                matches!(r, Err(Error::NonFinite { .. })),
                "non-finite scores must be an error"
            );
            return;
        }
        (r, Some((frac * (n * k) as f64).round() as usize))
    };
    let layer = match result {
        Ok(layer) => layer,
        // Only an f16 overflow of a residual can fail here.
        Err(e) => {
            assert!(matches!(e, Error::OutOfRange { .. }), "unexpected {e:?}");
            return;
        }
    };
    assert_eq!(Some(layer.report().protected), want);
    let eff = layer.effective_weights();
    let symmetric = matches!(
        format,
        Format::Q4_0
            | Format::Q8_0
            | Format::Int4 {
                asymmetric: false,
                ..
            }
            | Format::Int8 {
                asymmetric: false,
                ..
            }
    );
    let p = layer.protected().view();
    for i in 0..n {
        for (j, _) in p.row(i) {
            if symmetric {
                assert_eq!(eff[i * k + j], w[i * k + j]);
            }
        }
    }
});
