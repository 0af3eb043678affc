//! [`ProtectedLinear`]: a quantized matrix plus its protected set, the
//! deployable form of Critical Weight Protection.
//!
//! Building one: choose the protected weights (a mask, explicit indices, or
//! the top of a score), quantize with those weights left out of every
//! group's statistics (and coded as 0), and store each protected weight's
//! `w − dequant(code)` in the sparse set. Then `effective = dequant + value`
//! everywhere, so a protected weight is exact up to the value type (exact
//! for f16 weights with f16 values on symmetric formats).

#[cfg(feature = "alloc")]
use alloc::{vec, vec::Vec};
use core::ops::Range;

use crate::Element;
use crate::error::{Result, check_len};
use crate::protect::ProtectedView;
use crate::quant::{Format, QuantView};
#[cfg(feature = "alloc")]
use crate::{
    error::{Error, check_finite},
    importance::{Budget, select_top},
    protect::{ProtectedSet, ValueType},
    quant::{ClipGrid, QuantMatrix, QuantOptions, ScaleSearch, quantize},
};

#[cfg(feature = "alloc")]
/// Which weights to keep at high precision.
#[derive(Debug, Clone, Copy, Default)]
pub enum Protection<'a> {
    /// None: plain quantization.
    #[default]
    None,
    /// `n · k` flags, `true` = protect.
    Mask(&'a [bool]),
    /// Strictly increasing flat indices `i·k + j`.
    Indices(&'a [usize]),
    /// The top `budget` weights by `scores` (`n · k`), at most `row_cap` per row.
    Top {
        /// One score per weight, larger = more important.
        scores: &'a [f32],
        /// How many to protect.
        budget: Budget,
        /// Optional cap per output row.
        row_cap: Option<usize>,
    },
}

#[cfg(feature = "alloc")]
/// How to quantize the unprotected weights and store the protected ones.
#[derive(Debug, Clone, Copy)]
pub struct LinearConfig<'a> {
    /// Base weight format.
    pub format: Format,
    /// Scale search for each group.
    pub search: ScaleSearch<'a>,
    /// Clip grid of the MSE and weighted searches.
    pub grid: ClipGrid,
    /// Storage type of protected values.
    pub values: ValueType,
}

#[cfg(feature = "alloc")]
impl LinearConfig<'_> {
    /// Absmax RTN into `format`, f16 protected values.
    pub fn new(format: Format) -> Self {
        LinearConfig {
            format,
            search: ScaleSearch::Absmax,
            grid: ClipGrid::default(),
            values: ValueType::F16,
        }
    }
}

/// A quantized matrix and its protected set, borrowed: the type the kernels
/// run on, whether the bytes are owned by a [`ProtectedLinear`] or a file.
#[derive(Debug, Clone, Copy)]
pub struct LinearView<'a> {
    /// The dense quantized part.
    pub quant: QuantView<'a>,
    /// The protected weights, if any.
    pub protected: Option<ProtectedView<'a>>,
}

impl<'a> LinearView<'a> {
    /// Pairs a matrix and a protected set of the same shape.
    pub fn new(quant: QuantView<'a>, protected: Option<ProtectedView<'a>>) -> Result<Self> {
        if let Some(p) = &protected {
            check_len("protected set rows", quant.n(), p.n())?;
            check_len("protected set columns", quant.k(), p.k())?;
        }
        Ok(LinearView { quant, protected })
    }

    /// `y = x · W_effᵀ` for output rows `rows` on the selected backend: `x`
    /// is `m × k`, `y` the `m × rows.len()` tile.
    pub fn forward<A: Element>(
        &self,
        x: &[A],
        m: usize,
        rows: Range<usize>,
        y: &mut [f32],
    ) -> Result<()> {
        crate::kernels::matmul(&self.quant, self.protected.as_ref(), x, m, rows, y)
    }

    /// `y = x · W_effᵀ` with int8 activations (dynamic or static).
    #[cfg(feature = "alloc")]
    pub fn forward_q8(
        &self,
        xq: &crate::act::QuantizedActivations,
        rows: Range<usize>,
        y: &mut [f32],
    ) -> Result<()> {
        crate::kernels::matmul_q8(&self.quant, self.protected.as_ref(), xq, rows, y)
    }

    #[cfg(feature = "alloc")]
    /// The dense effective weights `dequant + value`, f32 row-major: the
    /// paper's "simulation mode" (fake quantization) for any budget.
    pub fn effective_weights(&self) -> Vec<f32> {
        let (n, k) = (self.quant.n(), self.quant.k());
        let mut w = vec![0.0f32; n * k];
        crate::kernels::scalar::dequantize_rows(&self.quant, 0..n, &mut w)
            .expect("validated shapes");
        if let Some(p) = &self.protected {
            for i in 0..n {
                for (j, v) in p.row(i) {
                    w[i * k + j] += v;
                }
            }
        }
        w
    }

    /// Storage and budget figures.
    pub fn report(&self) -> Report {
        let (n, k) = (self.quant.n(), self.quant.k());
        let weights = (n * k) as f64;
        let dense_bits = self.quant.as_bytes().len() as f64 * 8.0 / weights;
        // An empty set needs no storage at all (not even row_ptr).
        let nnz = self.protected.as_ref().map_or(0, |p| p.nnz());
        let sparse_bytes = match &self.protected {
            Some(p) if nnz > 0 => p.storage_bytes(),
            _ => 0,
        };
        let sparse_bits = sparse_bytes as f64 * 8.0 / weights;
        Report {
            n,
            k,
            format: self.quant.format(),
            protected: nnz,
            fraction: nnz as f64 / weights,
            dense_bits,
            sparse_bits,
            bits_per_weight: dense_bits + sparse_bits,
            dense_f16_is_smaller: dense_bits + sparse_bits >= 16.0,
        }
    }
}

/// Storage and budget figures of a protected layer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Report {
    /// Output rows.
    pub n: usize,
    /// Inputs per row.
    pub k: usize,
    /// Base format.
    pub format: Format,
    /// Protected weights.
    pub protected: usize,
    /// Protected fraction of all weights.
    pub fraction: f64,
    /// Bits per weight of the quantized blocks.
    pub dense_bits: f64,
    /// Bits per weight of the sparse set (row_ptr, columns, values).
    pub sparse_bits: f64,
    /// Total bits per weight.
    pub bits_per_weight: f64,
    /// True when dense f16 (16 bits/weight) would take no more room: the
    /// budget is past break-even (≈37 % on a 4-bit base) and only the
    /// simulation mode makes sense.
    pub dense_f16_is_smaller: bool,
}

impl core::fmt::Display for Report {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}×{} {}: {} protected ({:.3} %), {:.3} bits/weight ({:.3} dense + {:.3} sparse)",
            self.n,
            self.k,
            self.format,
            self.protected,
            100.0 * self.fraction,
            self.bits_per_weight,
            self.dense_bits,
            self.sparse_bits
        )?;
        if self.dense_f16_is_smaller {
            f.write_str("; dense f16 would be smaller")?;
        }
        Ok(())
    }
}

/// A quantized linear layer with its protected weights, owned.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedLinear {
    quant: QuantMatrix,
    protected: ProtectedSet,
}

#[cfg(feature = "alloc")]
impl ProtectedLinear {
    /// Builds the layer from row-major `n × k` weights (f32, f16 or bf16).
    pub fn build<T: Element>(
        weights: &[T],
        n: usize,
        k: usize,
        config: &LinearConfig<'_>,
        protection: Protection<'_>,
    ) -> Result<ProtectedLinear> {
        let nk = n
            .checked_mul(k)
            .ok_or(Error::SizeOverflow { what: "n · k" })?;
        check_len("weights", nk, weights.len())?;
        let w: Vec<f32> = weights.iter().map(|v| v.to_f32()).collect();
        check_finite("weights", &w)?;
        let indices: Vec<usize> = match protection {
            Protection::None => Vec::new(),
            Protection::Mask(mask) => {
                check_len("protection mask", nk, mask.len())?;
                mask.iter()
                    .enumerate()
                    .filter(|(_, m)| **m)
                    .map(|(i, _)| i)
                    .collect()
            }
            Protection::Indices(idx) => idx.to_vec(),
            Protection::Top {
                scores,
                budget,
                row_cap,
            } => {
                check_len("scores", nk, scores.len())?;
                select_top(scores, k, budget, row_cap)?
            }
        };
        // Validates order and range before anything is quantized.
        let mut mask = vec![false; nk];
        for (e, &i) in indices.iter().enumerate() {
            if i >= nk || (e > 0 && i <= indices[e - 1]) {
                return Err(Error::InvalidProtectedSet {
                    problem: if i >= nk {
                        crate::SparseProblem::ColumnOutOfRange
                    } else {
                        crate::SparseProblem::ColumnsNotIncreasing
                    },
                    index: e,
                });
            }
            mask[i] = true;
        }
        let options = QuantOptions {
            search: config.search,
            mask: Some(&mask),
            grid: config.grid,
        };
        let quant = quantize(&w, n, k, config.format, &options)?;
        let deq = quant.dequantize();
        let values: Vec<f32> = indices.iter().map(|&i| w[i] - deq[i]).collect();
        let protected = ProtectedSet::from_flat(n, k, &indices, &values, config.values)?;
        Ok(ProtectedLinear { quant, protected })
    }

    /// Pairs an existing matrix and protected set of the same shape.
    pub fn from_parts(quant: QuantMatrix, protected: ProtectedSet) -> Result<ProtectedLinear> {
        LinearView::new(quant.view(), Some(protected.view()))?;
        Ok(ProtectedLinear { quant, protected })
    }

    /// The borrowed view the kernels run on.
    pub fn view(&self) -> LinearView<'_> {
        LinearView {
            quant: self.quant.view(),
            protected: Some(self.protected.view()),
        }
    }
    /// The quantized part.
    pub fn quant(&self) -> &QuantMatrix {
        &self.quant
    }
    /// The protected set.
    pub fn protected(&self) -> &ProtectedSet {
        &self.protected
    }

    /// `y = x · W_effᵀ` for output rows `rows`; see [`LinearView::forward`].
    pub fn forward<A: Element>(
        &self,
        x: &[A],
        m: usize,
        rows: Range<usize>,
        y: &mut [f32],
    ) -> Result<()> {
        self.view().forward(x, m, rows, y)
    }

    /// `y = x · W_effᵀ` with int8 activations; see [`LinearView::forward_q8`].
    pub fn forward_q8(
        &self,
        xq: &crate::act::QuantizedActivations,
        rows: Range<usize>,
        y: &mut [f32],
    ) -> Result<()> {
        self.view().forward_q8(xq, rows, y)
    }

    /// Dense effective weights (simulation mode); see [`LinearView::effective_weights`].
    pub fn effective_weights(&self) -> Vec<f32> {
        self.view().effective_weights()
    }

    /// Storage and budget figures.
    pub fn report(&self) -> Report {
        self.view().report()
    }
}
