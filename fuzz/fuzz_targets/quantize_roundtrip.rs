//! Quantize arbitrary finite weights of arbitrary shape and format: the
//! bytes view back identically and every element stays within its block's
//! error bound (RTN), or the search never loses to RTN (MSE).
#![no_main]

mod common;

use common::Input;
use cwpq::{Format, Group, QuantOptions, QuantView, ScaleSearch, quantize};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let n = 1 + input.below(6);
    let k = 32 * (1 + input.below(8));
    let asymmetric = input.byte() & 1 == 1;
    let group = if input.byte() & 1 == 1 {
        Group::PerChannel
    } else {
        Group::Size(32)
    };
    let format = match input.below(5) {
        0 => Format::Q8_0,
        1 => Format::Q4_0,
        2 => Format::Q4_1,
        3 => Format::Int8 { group, asymmetric },
        _ => Format::Int4 { group, asymmetric },
    };
    let scale = (f32::from(input.byte()) + 1.0) / 64.0;
    let w: Vec<f32> = (0..n * k)
        .map(|_| f32::from(input.u16() as i16) / 32768.0 * scale)
        .collect();
    let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
    let view = QuantView::new(format, n, k, q.as_bytes()).unwrap();
    let deq = q.dequantize();
    let mut again = vec![0.0f32; n * k];
    view.dequantize_rows(0..n, &mut again).unwrap();
    assert_eq!(deq, again);
    let layout = format.layout(k).unwrap();
    let per_row = k / layout.group;
    let qmax = layout.kind.qmax() as f32;
    for i in 0..n {
        for j in 0..k {
            let h = &q.as_bytes()[(i * per_row + j / layout.group) * layout.block_bytes()..];
            let d = half::f16::from_le_bytes([h[0], h[1]]).to_f32().abs();
            let m = if layout.kind.has_min() {
                half::f16::from_le_bytes([h[2], h[3]]).to_f32().abs()
            } else {
                0.0
            };
            // f16 rounds d (and m) by 2⁻¹¹ relative, or by 2⁻²⁵ absolute when
            // subnormal; each code multiplies that by up to qmax.
            let bound = 1.01 * d + (m + qmax * d) / 512.0 + (qmax + 1.0) / 16_777_216.0;
            let err = (w[i * k + j] - deq[i * k + j]).abs();
            assert!(
                err <= bound,
                "{format} ({i},{j}): {} vs {} (d {d}, m {m})",
                w[i * k + j],
                deq[i * k + j]
            );
        }
    }
    if !format.is_gguf() {
        let mse = quantize(
            &w,
            n,
            k,
            format,
            &QuantOptions {
                search: ScaleSearch::Mse,
                ..Default::default()
            },
        )
        .unwrap()
        .dequantize();
        let sse =
            |v: &[f32]| -> f64 { w.iter().zip(v).map(|(a, b)| f64::from(a - b).powi(2)).sum() };
        assert!(
            sse(&mse) <= sse(&deq) * (1.0 + 1e-9) + 1e-30,
            "{format}: MSE search lost to RTN"
        );
    }
});
