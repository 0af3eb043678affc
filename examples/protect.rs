//! Critical Weight Protection on a real layer: the README's main example.
//!
//! `cargo run --release --example protect`
//!
//! Quantizes layer 3's `intermediate.dense` of all-MiniLM-L6-v2 (1536 × 384,
//! `tests/data/`) to 4 bits in several ways and prints, for each, the storage
//! cost (bits per weight, protected overhead included) and the relative
//! output error ‖X(W − Ŵ)ᵀ‖_F / ‖XWᵀ‖_F on the layer's real inputs from
//! critical (bias and safety) text and from neutral (utility) text.

use std::path::Path;
use std::time::Instant;

use cwpq::importance::{Budget, ColumnStats, FisherAccumulator, combine, score};
use cwpq::{Format, LinearConfig, ProtectedLinear, Protection, QuantOptions, ScaleSearch};
use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors};

const DATA: &str = "tests/data/minilm-l3-inter.safetensors";

fn floats(
    st: &SafeTensors<'_>,
    name: &str,
) -> Result<(Vec<usize>, Vec<f32>), Box<dyn std::error::Error>> {
    let t = st.tensor(name)?;
    let d = t.data();
    let v = match t.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32())
            .collect(),
        other => return Err(format!("{name}: unsupported dtype {other:?}").into()),
    };
    Ok((t.shape().to_vec(), v))
}

/// ‖X Eᵀ‖²_F through the Gram matrix G = XᵀX: Σ_i e_iᵀ G e_i.
struct Gram {
    k: usize,
    g: Vec<f32>,
}

impl Gram {
    fn new(x: &[f32], k: usize) -> Gram {
        let mut g = vec![0.0f64; k * k];
        for row in x.chunks_exact(k) {
            for a in 0..k {
                let xa = f64::from(row[a]);
                for (gb, &xb) in g[a * k..(a + 1) * k].iter_mut().zip(row) {
                    *gb += xa * f64::from(xb);
                }
            }
        }
        Gram {
            k,
            g: g.into_iter().map(|v| v as f32).collect(),
        }
    }

    fn sq_norm(&self, e: &[f32]) -> f64 {
        let k = self.k;
        let mut total = 0.0f64;
        let mut v = vec![0.0f32; k];
        for row in e.chunks_exact(k) {
            v.iter_mut().for_each(|x| *x = 0.0);
            for (a, &ea) in row.iter().enumerate() {
                if ea != 0.0 {
                    for (vb, &gb) in v.iter_mut().zip(&self.g[a * k..(a + 1) * k]) {
                        *vb += ea * gb;
                    }
                }
            }
            total += row
                .iter()
                .zip(&v)
                .map(|(&a, &b)| f64::from(a) * f64::from(b))
                .sum::<f64>();
        }
        total
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let t0 = Instant::now();
    let bytes = std::fs::read(Path::new(DATA))
        .map_err(|e| format!("{DATA}: {e} (run from the crate root)"))?;
    let st = SafeTensors::deserialize(&bytes)?;
    let (shape, w) = floats(&st, "weight")?;
    let (n, k) = (shape[0], shape[1]);
    let (_, f_crit) = floats(&st, "fisher_critical")?;
    let (_, f_util) = floats(&st, "fisher_utility")?;
    let (_, x_crit) = floats(&st, "x_critical")?;
    let (_, x_util) = floats(&st, "x_utility")?;

    // Calibration statistics, as a caller would stream them.
    let mut stats = ColumnStats::new(k)?;
    stats.observe(&x_crit)?;
    let fisher = score::fisher(&FisherAccumulator::from_mean(&f_crit, 80)?)?;
    let utility = score::fisher(&FisherAccumulator::from_mean(&f_util, 150)?)?;

    let g_crit = Gram::new(&x_crit, k);
    let g_util = Gram::new(&x_util, k);
    let (norm_crit, norm_util) = (g_crit.sq_norm(&w), g_util.sq_norm(&w));

    let g128 = Format::int4(128);
    let rtn = QuantOptions::default();
    let magnitude = score::magnitude(&w)?;
    let wanda = score::wanda(&w, n, k, &stats)?;
    let cwp_minus_util = combine::soft_subtract(&[(&fisher, 1.0)], &[&utility], 1.0)?;
    let quant_aware = score::quantization_aware(&w, n, k, &fisher, g128, &rtn)?;
    let act_err = score::activation_weighted_error(&w, n, k, &stats, g128, &rtn)?;
    let mse_opts = QuantOptions {
        search: ScaleSearch::Mse,
        ..Default::default()
    };
    let quant_aware_mse = score::quantization_aware(&w, n, k, &fisher, g128, &mse_opts)?;
    let quant_aware_g64 = score::quantization_aware(&w, n, k, &fisher, Format::int4(64), &rtn)?;
    let hard_diff = combine::set_difference(
        &fisher,
        &utility,
        Budget::Fraction(0.02),
        Budget::Fraction(0.01),
    )?;

    let one = Budget::Fraction(0.01);
    let top = |scores| Protection::Top {
        scores,
        budget: one,
        row_cap: None,
    };
    let cfg = LinearConfig::new;
    let mse = |format| LinearConfig {
        search: ScaleSearch::Mse,
        ..LinearConfig::new(format)
    };
    let rows: Vec<(&str, LinearConfig<'_>, Protection<'_>)> = vec![
        ("RTN int4-g32", cfg(Format::int4(32)), Protection::None),
        ("RTN int4-g64", cfg(Format::int4(64)), Protection::None),
        ("RTN int4-g128", cfg(g128), Protection::None),
        ("MSE-clip int4-g128", mse(g128), Protection::None),
        ("g128 + 1% magnitude", cfg(g128), top(&magnitude)),
        ("g128 + 1% Wanda", cfg(g128), top(&wanda)),
        ("g128 + 1% Fisher (CWP)", cfg(g128), top(&fisher)),
        ("g128 + 1% CWP − utility", cfg(g128), top(&cwp_minus_util)),
        (
            "g128 + top2% crit − top1% util",
            cfg(g128),
            Protection::Mask(&hard_diff),
        ),
        ("g128 + 1% quant-aware F·Δ²", cfg(g128), top(&quant_aware)),
        ("g128 + 1% act-weighted E[x²]·Δ²", cfg(g128), top(&act_err)),
        (
            "g64 + 0.5% Fisher (≈ g32 memory)",
            cfg(Format::int4(64)),
            Protection::Top {
                scores: &fisher,
                budget: Budget::Fraction(0.005),
                row_cap: None,
            },
        ),
        (
            "g64 + 0.5% quant-aware",
            cfg(Format::int4(64)),
            Protection::Top {
                scores: &quant_aware_g64,
                budget: Budget::Fraction(0.005),
                row_cap: None,
            },
        ),
        (
            "MSE g128 + 1% quant-aware",
            mse(g128),
            top(&quant_aware_mse),
        ),
    ];

    println!(
        "all-MiniLM-L6-v2 layer 3 intermediate.dense, {n}×{k}; X: {} critical / {} utility tokens",
        x_crit.len() / k,
        x_util.len() / k
    );
    println!(
        "{:<36} {:>9} {:>10} {:>13} {:>13}",
        "method", "bits/w", "protected", "err critical", "err utility"
    );
    for (name, config, protection) in rows {
        let layer = ProtectedLinear::build(&w, n, k, &config, protection)?;
        let e: Vec<f32> = w
            .iter()
            .zip(layer.effective_weights())
            .map(|(a, b)| a - b)
            .collect();
        let report = layer.report();
        println!(
            "{:<36} {:>9.3} {:>10} {:>13.5} {:>13.5}",
            name,
            report.bits_per_weight,
            report.protected,
            (g_crit.sq_norm(&e) / norm_crit).sqrt(),
            (g_util.sq_norm(&e) / norm_util).sqrt(),
        );
    }
    println!("({:.2} s)", t0.elapsed().as_secs_f64());
    Ok(())
}
