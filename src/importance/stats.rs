//! Calibration statistics, streaming and mergeable across batches, workers
//! and datasets: per input column (Σx², max|x|, tokens) and per weight (the
//! empirical diagonal Fisher, Σg² and a sample count).

use alloc::{vec, vec::Vec};

use crate::Element;
use crate::error::{Error, Result, check_len};

/// Per-input-column statistics of a layer's activations.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnStats {
    sum_sq: Vec<f64>,
    max_abs: Vec<f32>,
    tokens: u64,
    /// Counts of |x| over all columns, binned by exponent and 3 mantissa
    /// bits (12.5 % wide bins): what the static-scale observers read.
    hist: Vec<u64>,
}

/// Histogram bins: |x| bits >> 20 covers every finite f32.
const HIST_BINS: usize = 2040;

impl ColumnStats {
    /// Empty statistics for `k` input columns.
    pub fn new(k: usize) -> Result<ColumnStats> {
        if k == 0 {
            return Err(Error::ZeroDimension { what: "k" });
        }
        Ok(ColumnStats {
            sum_sq: vec![0.0; k],
            max_abs: vec![0.0; k],
            tokens: 0,
            hist: vec![0; HIST_BINS],
        })
    }

    /// Adds a batch of tokens: `x` holds whole rows of `k` values.
    pub fn observe<T: Element>(&mut self, x: &[T]) -> Result<()> {
        let k = self.k();
        if !x.len().is_multiple_of(k) {
            return Err(Error::LengthMismatch {
                what: "activations (whole rows of k)",
                expected: x.len() / k * k,
                actual: x.len(),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.to_f32().is_finite()) {
            return Err(Error::NonFinite {
                what: "activations",
                index,
            });
        }
        for row in x.chunks_exact(k) {
            for ((s, m), v) in self.sum_sq.iter_mut().zip(&mut self.max_abs).zip(row) {
                let v = v.to_f32();
                *s += f64::from(v) * f64::from(v);
                *m = m.max(v.abs());
                self.hist[((v.to_bits() & 0x7FFF_FFFF) >> 20) as usize] += 1;
            }
        }
        self.tokens += (x.len() / k) as u64;
        Ok(())
    }

    /// Adds another worker's or dataset's statistics for the same layer.
    pub fn merge(&mut self, other: &ColumnStats) -> Result<()> {
        check_len("column statistics", self.k(), other.k())?;
        for (a, b) in self.sum_sq.iter_mut().zip(&other.sum_sq) {
            *a += b;
        }
        for (a, b) in self.max_abs.iter_mut().zip(&other.max_abs) {
            *a = a.max(*b);
        }
        for (a, b) in self.hist.iter_mut().zip(&other.hist) {
            *a += b;
        }
        self.tokens += other.tokens;
        Ok(())
    }

    /// Counts of |x| per histogram bin (bin `b` holds the |x| whose f32 bits
    /// shifted right by 20 equal `b`).
    pub fn abs_histogram(&self) -> &[u64] {
        &self.hist
    }

    /// The upper edge of histogram bin `b`.
    pub fn bin_upper(b: usize) -> f32 {
        f32::from_bits(((b as u32) + 1) << 20).min(f32::MAX)
    }

    /// The middle of histogram bin `b`.
    pub fn bin_mid(b: usize) -> f32 {
        let lo = f32::from_bits((b as u32) << 20);
        0.5 * lo + 0.5 * Self::bin_upper(b)
    }

    /// Number of input columns.
    pub fn k(&self) -> usize {
        self.sum_sq.len()
    }
    /// Tokens observed.
    pub fn tokens(&self) -> u64 {
        self.tokens
    }
    /// Σx² per column.
    pub fn sum_sq(&self) -> &[f64] {
        &self.sum_sq
    }
    /// max|x| per column (the static activation scale's input).
    pub fn max_abs(&self) -> &[f32] {
        &self.max_abs
    }
    /// ‖x_j‖₂ = √Σx² per column (Wanda's norm).
    pub fn l2_norm(&self) -> Vec<f32> {
        self.sum_sq
            .iter()
            .map(|&s| num_traits::Float::sqrt(s) as f32)
            .collect()
    }
    /// E[x_j²] per column, or an error before any token.
    pub fn mean_sq(&self) -> Result<Vec<f32>> {
        if self.tokens == 0 {
            return Err(Error::InvalidParameter {
                what: "column statistics have seen no tokens",
            });
        }
        let t = self.tokens as f64;
        Ok(self.sum_sq.iter().map(|&s| (s / t) as f32).collect())
    }
}

/// Streaming empirical diagonal Fisher of one weight tensor:
/// `F_ij = (1/N) Σ_n g_n,ij²`, from per-sample gradients `g_n`.
#[derive(Debug, Clone, PartialEq)]
pub struct FisherAccumulator {
    sum_sq: Vec<f64>,
    count: u64,
}

impl FisherAccumulator {
    /// An empty accumulator for a tensor of `len` weights (8 bytes each).
    pub fn new(len: usize) -> Result<FisherAccumulator> {
        if len == 0 {
            return Err(Error::ZeroDimension {
                what: "weights in the tensor",
            });
        }
        Ok(FisherAccumulator {
            sum_sq: vec![0.0; len],
            count: 0,
        })
    }

    /// From a finished mean-squared-gradient map over `count` samples (as a
    /// PyTorch script computes it): Σg² = mean · count.
    pub fn from_mean(mean_sq: &[f32], count: u64) -> Result<FisherAccumulator> {
        if count == 0 {
            return Err(Error::ZeroDimension {
                what: "Fisher sample count",
            });
        }
        crate::error::check_finite("Fisher map", mean_sq)?;
        if let Some(index) = mean_sq.iter().position(|&v| v < 0.0) {
            return Err(Error::Negative {
                what: "Fisher map",
                index,
            });
        }
        let mut acc = FisherAccumulator::new(mean_sq.len())?;
        for (s, &m) in acc.sum_sq.iter_mut().zip(mean_sq) {
            *s = f64::from(m) * count as f64;
        }
        acc.count = count;
        Ok(acc)
    }

    /// Adds one per-sample gradient.
    pub fn add_sample<T: Element>(&mut self, grad: &[T]) -> Result<()> {
        self.add_batch(grad, 1)
    }

    /// Adds `batch` per-sample gradients laid end to end.
    pub fn add_batch<T: Element>(&mut self, grads: &[T], batch: usize) -> Result<()> {
        let len = self.sum_sq.len();
        check_len(
            "gradients (batch · weights)",
            batch.saturating_mul(len),
            grads.len(),
        )?;
        if let Some(index) = grads.iter().position(|v| !v.to_f32().is_finite()) {
            return Err(Error::NonFinite {
                what: "gradients",
                index,
            });
        }
        for g in grads.chunks_exact(len) {
            for (s, v) in self.sum_sq.iter_mut().zip(g) {
                let v = f64::from(v.to_f32());
                *s += v * v;
            }
        }
        self.count += batch as u64;
        Ok(())
    }

    /// Adds another worker's accumulator for the same tensor.
    pub fn merge(&mut self, other: &FisherAccumulator) -> Result<()> {
        check_len("Fisher accumulator", self.sum_sq.len(), other.sum_sq.len())?;
        for (a, b) in self.sum_sq.iter_mut().zip(&other.sum_sq) {
            *a += b;
        }
        self.count += other.count;
        Ok(())
    }

    /// Samples seen.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// The Fisher map `Σg² / N`, or an error before any sample.
    pub fn fisher(&self) -> Result<Vec<f32>> {
        if self.count == 0 {
            return Err(Error::InvalidParameter {
                what: "Fisher accumulator has seen no samples",
            });
        }
        let n = self.count as f64;
        let f: Vec<f32> = self.sum_sq.iter().map(|&s| (s / n) as f32).collect();
        crate::error::check_finite("Fisher map (overflows f32)", &f)?;
        Ok(f)
    }
}
