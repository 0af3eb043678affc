//! Quantize generated weights to every format, multiply, and report the error.
//!
//! `cargo run --release --example quickstart`
//!
//! The weights are Gaussian with a few outlier columns (the shape of real LLM
//! layers); the activations are Gaussian. For each format the table gives the
//! storage cost, the relative output error ‖x(W − Ŵ)ᵀ‖ / ‖xWᵀ‖ of the scalar
//! reference matmul, and the time to quantize.

use std::time::Instant;

use cwpq::kernels::scalar;
use cwpq::{Format, Group, QuantOptions, ScaleSearch, quantize};

/// SplitMix64 then Box–Muller: deterministic, no dependency.
struct Rng(u64);
impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform(), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()) as f32
    }
}

fn main() -> Result<(), cwpq::Error> {
    let (n, k, m) = (1024, 2048, 16);
    let mut rng = Rng(42);
    let mut w: Vec<f32> = (0..n * k).map(|_| 0.02 * rng.normal()).collect();
    for j in (0..k).step_by(331) {
        for i in 0..n {
            w[i * k + j] *= 8.0; // outlier input columns
        }
    }
    let x: Vec<f32> = (0..m * k).map(|_| rng.normal()).collect();

    let mut exact = vec![0.0f64; m * n];
    for i in 0..m {
        for j in 0..n {
            exact[i * n + j] = (0..k)
                .map(|t| f64::from(x[i * k + t]) * f64::from(w[j * k + t]))
                .sum();
        }
    }
    let norm: f64 = exact.iter().map(|v| v * v).sum::<f64>().sqrt();

    println!("{n}×{k} weights, {m} activation rows");
    println!(
        "{:<14} {:<7} {:>10} {:>12} {:>12}",
        "format", "search", "bits/w", "rel. error", "quantize ms"
    );
    let formats = [
        Format::Q8_0,
        Format::Q4_0,
        Format::Q4_1,
        Format::int8(128),
        Format::Int8 {
            group: Group::PerChannel,
            asymmetric: false,
        },
        Format::int4(32),
        Format::int4(128),
        Format::Int4 {
            group: Group::Size(128),
            asymmetric: true,
        },
    ];
    for format in formats {
        for (name, search) in [("absmax", ScaleSearch::Absmax), ("mse", ScaleSearch::Mse)] {
            let t = Instant::now();
            let q = quantize(
                &w,
                n,
                k,
                format,
                &QuantOptions {
                    search,
                    ..Default::default()
                },
            )?;
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let mut y = vec![0.0f32; m * n];
            scalar::matmul(&q.view(), &x, m, 0..n, &mut y)?;
            let err: f64 = y
                .iter()
                .zip(&exact)
                .map(|(&a, &b)| (f64::from(a) - b).powi(2))
                .sum::<f64>()
                .sqrt();
            println!(
                "{:<14} {:<7} {:>10.3} {:>12.5} {:>12.1}",
                format.to_string(),
                name,
                q.shape().bits_per_weight(),
                err / norm,
                ms
            );
        }
    }
    Ok(())
}
