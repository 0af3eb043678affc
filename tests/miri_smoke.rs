//! Small deterministic cases for `cargo miri test --test miri_smoke`: the
//! scalar kernels, the protected set and both file readers under the
//! interpreter's checks for undefined behaviour. (Also a normal test.)

use cwpq::act::{ActQuant, QuantizedActivations};
use cwpq::importance::Budget;
use cwpq::io::container::{Container, ContainerWriter, SearchTag};
use cwpq::io::gguf::{Gguf, GgufWriter};
use cwpq::kernels::{self, Backend, scalar};
use cwpq::protect::{ProtectedSet, ProtectedView, ValueType};
use cwpq::{
    Format, Group, LinearConfig, ProtectedLinear, Protection, QuantOptions, ScaleSearch, quantize,
};
use half::f16;

fn weights(n: usize, k: usize) -> Vec<f32> {
    (0..n * k)
        .map(|i| (((i * 37) % 23) as f32 - 11.0) / 8.0)
        .collect()
}

#[test]
fn scalar_kernels_on_every_format() {
    let (n, k, m) = (2, 64, 2);
    let w = weights(n, k);
    let x: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 - 2.0).collect();
    let xh: Vec<f16> = x.iter().map(|&v| f16::from_f32(v)).collect();
    for format in [
        Format::Q8_0,
        Format::Q4_0,
        Format::Q4_1,
        Format::int4(32),
        Format::Int8 {
            group: Group::PerChannel,
            asymmetric: true,
        },
    ] {
        for search in [ScaleSearch::Absmax, ScaleSearch::Mse] {
            let q = quantize(
                &w,
                n,
                k,
                format,
                &QuantOptions {
                    search,
                    ..Default::default()
                },
            )
            .unwrap();
            let deq = q.dequantize();
            assert!(deq.iter().all(|v| v.is_finite()));
            let mut y = vec![0.0f32; m * n];
            scalar::matmul(&q.view(), &x, m, 0..n, &mut y).unwrap();
            scalar::matmul(&q.view(), &xh, m, 1..n, &mut y[..m]).unwrap();
            let mut xq = QuantizedActivations::new();
            xq.quantize_with(Backend::Scalar, &x, m, k, ActQuant::default(), None)
                .unwrap();
            scalar::matmul_q8(&q.view(), None, &xq, 0..n, &mut y).unwrap();
            kernels::matmul_with(Backend::Portable, &q.view(), None, &x, m, 0..n, &mut y).unwrap();
        }
    }
}

#[test]
fn protected_set_and_layer() {
    let (n, k) = (3, 32);
    let set = ProtectedSet::from_flat(
        n,
        k,
        &[1, 5, 40, 95],
        &[1.0, -2.0, 0.5, 3.0],
        ValueType::F16,
    )
    .unwrap();
    let v = set.view();
    assert_eq!(v.row(1).collect::<Vec<_>>(), vec![(8, 0.5)]);
    let (rp, cols, vals) = v.as_bytes();
    let mut bad = cols.to_vec();
    bad[2] = 0; // second column of row 0 becomes 0 < 1
    assert!(ProtectedView::new(n, k, ValueType::F16, rp, &bad, vals).is_err());
    let w = weights(n, k);
    let scores: Vec<f32> = w.iter().map(|v| v.abs()).collect();
    let layer = ProtectedLinear::build(
        &w,
        n,
        k,
        &LinearConfig::new(Format::Q4_0),
        Protection::Top {
            scores: &scores,
            budget: Budget::Count(5),
            row_cap: Some(2),
        },
    )
    .unwrap();
    assert_eq!(layer.report().protected, 5);
    let mut y = vec![0.0f32; n];
    layer.forward(&vec![1.0f32; k], 1, 0..n, &mut y).unwrap();
}

#[test]
fn readers_accept_valid_and_reject_truncated_files() {
    let w = weights(2, 64);
    let layer = ProtectedLinear::build(
        &w,
        2,
        64,
        &LinearConfig::new(Format::Q4_0),
        Protection::Indices(&[3, 70]),
    )
    .unwrap();
    let mut c = ContainerWriter::new(true);
    c.add_linear("l", &layer.view(), SearchTag::Absmax);
    let bytes = c.finish().unwrap();
    let mut shifted = vec![0u8; 3];
    shifted.extend_from_slice(&bytes);
    assert_eq!(Container::parse(&shifted[3..]).unwrap().tensors().len(), 1);
    for cut in (0..bytes.len()).step_by(13) {
        assert!(Container::parse(&bytes[..cut]).is_err());
    }
    let mut g = GgufWriter::new();
    g.add_linear("l", &layer.view()).unwrap();
    let gb = g.finish().unwrap();
    let parsed = Gguf::parse(&gb).unwrap();
    assert_eq!(
        parsed.linear("l").unwrap().effective_weights(),
        layer.effective_weights()
    );
    for cut in (0..gb.len()).step_by(17) {
        let _ = Gguf::parse(&gb[..cut]);
    }
}
