//! Per-weight importance scores. Each returns one finite score per weight of
//! the row-major `n × k` matrix, or an error (NaN/Inf in, or overflow out).
//!
//! | score | formula | source |
//! |---|---|---|
//! | [`magnitude`] | `|w|` | baseline |
//! | [`wanda`] | `|w_ij|·‖x_j‖₂` | Sun et al. 2023 |
//! | [`snip`] | `|w_ij·g_ij|` | Lee et al. 2019 |
//! | [`fisher`] | `F_ij` | CWP (arXiv 2601.12033) |
//! | [`quantization_aware`] | `F_ij·(w_ij − Q(w)_ij)²` | TaCQ / SqueezeLLM idea |
//! | [`activation_weighted_error`] | `E[x_j²]·(w_ij − Q(w)_ij)²` | llama.cpp imatrix idea |

use alloc::vec::Vec;

use super::stats::{ColumnStats, FisherAccumulator};
use crate::error::{Error, Result, check_finite, check_len};
use crate::quant::{Format, QuantOptions, quantize};

fn finish(scores: Vec<f32>) -> Result<Vec<f32>> {
    check_finite("score", &scores)?;
    Ok(scores)
}

fn check_matrix(w: &[f32], n: usize, k: usize) -> Result<()> {
    let nk = n
        .checked_mul(k)
        .ok_or(Error::SizeOverflow { what: "n · k" })?;
    check_len("weights", nk, w.len())?;
    check_finite("weights", w)
}

/// `|w|`.
pub fn magnitude(w: &[f32]) -> Result<Vec<f32>> {
    check_finite("weights", w)?;
    Ok(w.iter().map(|v| v.abs()).collect())
}

/// Wanda: `|w_ij|·‖x_j‖₂` with the column norms of calibration activations.
pub fn wanda(w: &[f32], n: usize, k: usize, x: &ColumnStats) -> Result<Vec<f32>> {
    check_matrix(w, n, k)?;
    check_len("column statistics", k, x.k())?;
    let norm = x.l2_norm();
    finish(
        w.chunks_exact(k)
            .flat_map(|row| row.iter().zip(&norm).map(|(w, x)| w.abs() * x))
            .collect(),
    )
}

/// SNIP: `|w·g|` with the mean gradient `g`.
pub fn snip(w: &[f32], grad: &[f32]) -> Result<Vec<f32>> {
    check_len("gradient", w.len(), grad.len())?;
    check_finite("weights", w)?;
    check_finite("gradient", grad)?;
    finish(w.iter().zip(grad).map(|(w, g)| (w * g).abs()).collect())
}

/// The CWP criticality: the empirical diagonal Fisher `F_ij`.
pub fn fisher(acc: &FisherAccumulator) -> Result<Vec<f32>> {
    acc.fisher()
}

/// `(w − Q(w))²` under the base quantizer (no protection).
fn squared_quant_error(
    w: &[f32],
    n: usize,
    k: usize,
    format: Format,
    options: &QuantOptions<'_>,
) -> Result<Vec<f32>> {
    let deq = quantize(w, n, k, format, options)?.dequantize();
    Ok(w.iter().zip(&deq).map(|(a, b)| (a - b) * (a - b)).collect())
}

/// `F_ij·(w_ij − Q(w)_ij)²`: the expected loss increase (second order) of
/// quantizing that weight with `format`.
pub fn quantization_aware(
    w: &[f32],
    n: usize,
    k: usize,
    fisher: &[f32],
    format: Format,
    options: &QuantOptions<'_>,
) -> Result<Vec<f32>> {
    check_matrix(w, n, k)?;
    check_len("Fisher map", w.len(), fisher.len())?;
    check_finite("Fisher map", fisher)?;
    let e = squared_quant_error(w, n, k, format, options)?;
    finish(e.iter().zip(fisher).map(|(e, f)| e * f).collect())
}

/// `E[x_j²]·(w_ij − Q(w)_ij)²`: the output error a weight's quantization
/// causes on the calibration activations.
pub fn activation_weighted_error(
    w: &[f32],
    n: usize,
    k: usize,
    x: &ColumnStats,
    format: Format,
    options: &QuantOptions<'_>,
) -> Result<Vec<f32>> {
    check_matrix(w, n, k)?;
    check_len("column statistics", k, x.k())?;
    let ex2 = x.mean_sq()?;
    let e = squared_quant_error(w, n, k, format, options)?;
    finish(
        e.chunks_exact(k)
            .flat_map(|row| row.iter().zip(&ex2).map(|(e, a)| e * a))
            .collect(),
    )
}
