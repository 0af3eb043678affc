//! Quantizer throughput, in weights (elements) per second.
//!
//! `cargo bench --bench quantize` — the 11008×4096 Q4_0 RTN case is the one
//! to compare with other GGUF writers (candle-core: ≈0.09 s per matrix here).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cwpq::{Format, Importance, QuantOptions, ScaleSearch, quantize_into};
use std::hint::black_box;

fn weights(n: usize, k: usize) -> Vec<f32> {
    let mut s = 0x2545_F491_4F6C_DD1Du64;
    (0..n * k)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 0.1
        })
        .collect()
}

fn bench_rtn(c: &mut Criterion) {
    let (n, k) = (11008, 4096);
    let w = weights(n, k);
    let mut g = c.benchmark_group("quantize_rtn_11008x4096");
    g.sample_size(10)
        .throughput(Throughput::Elements((n * k) as u64));
    for format in [
        Format::Q4_0,
        Format::Q4_1,
        Format::Q8_0,
        Format::int4(128),
        Format::int8(128),
    ] {
        let shape = cwpq::QuantShape::new(format, n, k).unwrap();
        let mut out = vec![0u8; shape.total_bytes()];
        g.bench_with_input(BenchmarkId::from_parameter(format), &format, |b, &f| {
            b.iter(|| {
                quantize_into(black_box(&w), n, k, f, &QuantOptions::default(), &mut out).unwrap()
            })
        });
    }
    g.finish();
}

fn bench_search(c: &mut Criterion) {
    let (n, k) = (1024, 4096);
    let w = weights(n, k);
    let a: Vec<f32> = w.iter().map(|v| v * v + 1e-3).collect();
    let mut g = c.benchmark_group("quantize_search_1024x4096");
    g.sample_size(10)
        .throughput(Throughput::Elements((n * k) as u64));
    for format in [Format::Q4_0, Format::int4(128), Format::int8(128)] {
        let shape = cwpq::QuantShape::new(format, n, k).unwrap();
        let mut out = vec![0u8; shape.total_bytes()];
        for (name, search) in [
            ("absmax", ScaleSearch::Absmax),
            ("mse", ScaleSearch::Mse),
            (
                "weighted",
                ScaleSearch::Weighted(Importance::PerElement(&a)),
            ),
        ] {
            let opts = QuantOptions {
                search,
                ..Default::default()
            };
            g.bench_function(BenchmarkId::new(name, format), |b| {
                b.iter(|| quantize_into(black_box(&w), n, k, format, &opts, &mut out).unwrap())
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench_rtn, bench_search);
criterion_main!(benches);
