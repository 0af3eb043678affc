//! The scalar reference matmul: the baseline the SIMD kernels are measured
//! against. GEMV throughput is weight bytes streamed per second; GEMM is
//! multiply-adds per second (`Throughput::Elements(m·n·k)`).
//!
//! `cargo bench --bench matmul`
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cwpq::kernels::scalar;
use cwpq::{Format, QuantOptions, quantize};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (n, k) = (4096, 4096);
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 1e4 - 0.05)
        .collect();
    for format in [Format::Q4_0, Format::Q8_0, Format::int4(128)] {
        let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
        let bytes = q.as_bytes().len() as u64;

        let mut g = c.benchmark_group("scalar_gemv_4096x4096");
        g.sample_size(10).throughput(Throughput::Bytes(bytes));
        let x = vec![0.5f32; k];
        let mut y = vec![0.0f32; n];
        g.bench_function(BenchmarkId::from_parameter(format), |b| {
            b.iter(|| scalar::matmul(&q.view(), black_box(&x), 1, 0..n, &mut y).unwrap())
        });
        g.finish();

        let m = 8;
        let mut g = c.benchmark_group("scalar_gemm_m8_4096x4096");
        g.sample_size(10)
            .throughput(Throughput::Elements((m * n * k) as u64));
        let x = vec![0.5f32; m * k];
        let mut y = vec![0.0f32; m * n];
        g.bench_function(BenchmarkId::from_parameter(format), |b| {
            b.iter(|| scalar::matmul(&q.view(), black_box(&x), m, 0..n, &mut y).unwrap())
        });
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
