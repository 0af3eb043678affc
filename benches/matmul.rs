//! Kernels by backend × format × act × m. GEMV (m = 1) throughput is weight
//! bytes streamed per second; GEMM is multiply-adds per second
//! (`Throughput::Elements(m·n·k)`). Compare backends within one run.
//!
//! `cargo bench --bench matmul` (the weights stay in cache here: for
//! DRAM-bound numbers use `cargo run --release --example bench`).
#![allow(missing_docs)] // criterion_group! generates undocumented items

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use cwpq::act::{ActQuant, QuantizedActivations};
use cwpq::kernels::{self, Backend};
use cwpq::{Format, QuantOptions, quantize};
use std::hint::black_box;

fn bench(c: &mut Criterion) {
    let (n, k) = (1024, 4096);
    let w: Vec<f32> = (0..n * k)
        .map(|i| ((i * 2_654_435_761usize) % 1000) as f32 / 1e4 - 0.05)
        .collect();
    for format in [Format::Q4_0, Format::Q8_0, Format::Q4_1, Format::int4(128)] {
        let q = quantize(&w, n, k, format, &QuantOptions::default()).unwrap();
        let bytes = q.as_bytes().len() as u64;
        for m in [1usize, 8] {
            let x: Vec<f32> = (0..m * k).map(|i| (i % 13) as f32 / 6.0 - 1.0).collect();
            let mut xq = QuantizedActivations::new();
            xq.quantize(&x, m, k, ActQuant::default(), None).unwrap();
            let mut y = vec![0.0f32; m * n];
            let mut g = c.benchmark_group(format!(
                "{}_{format}_m{m}",
                if m == 1 { "gemv" } else { "gemm" }
            ));
            g.sample_size(10);
            g.throughput(if m == 1 {
                Throughput::Bytes(bytes)
            } else {
                Throughput::Elements((m * n * k) as u64)
            });
            for b in Backend::available() {
                g.bench_function(BenchmarkId::new("f32", b.name()), |bench| {
                    bench.iter(|| {
                        kernels::matmul_with(b, &q.view(), None, black_box(&x), m, 0..n, &mut y)
                            .unwrap()
                    })
                });
                g.bench_function(BenchmarkId::new("dyn8", b.name()), |bench| {
                    bench.iter(|| {
                        kernels::matmul_q8_with(b, &q.view(), None, black_box(&xq), 0..n, &mut y)
                            .unwrap()
                    })
                });
            }
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
