//! Activation quantization for the integer kernels (DESIGN.md §4).
//!
//! * **Dynamic** int8 (LLM.int8 / ggml Q8_0 setting): an absmax scale per
//!   token (row of X) or per block of 32, computed at run time; optionally
//!   with LLM.int8's decomposition, where input columns whose |x| reaches a
//!   threshold anywhere in the batch stay in f32 and meet the dequantized
//!   weight columns, and the rest go through int8.
//! * **Static** int8 (SmoothQuant setting): one per-tensor scale fixed offline
//!   by an [`Observer`] from calibration statistics; values beyond it
//!   saturate. [`smooth_factors`] gives SmoothQuant's per-column factors to
//!   fold into the weights.
//!
//! [`QuantizedActivations`] is caller-owned: quantize once per forward, then
//! share it (read-only) among the threads that each compute a row range.

use alloc::{vec, vec::Vec};

use crate::Element;
use crate::error::{Error, Result, check_len};
use crate::importance::ColumnStats;
use crate::kernels::{Backend, quantize_activations_with};

/// Elements per activation block (and per weight code chunk).
pub const BLOCK: usize = 32;

/// Granularity of dynamic activation scales.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ActScale {
    /// One scale per token (row of X).
    #[default]
    PerToken,
    /// One scale per 32 consecutive inputs of a token (pairs with GGUF Q8_0).
    PerBlock,
}

/// How activations become int8.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ActQuant {
    /// Absmax scales computed from the activations themselves.
    Dynamic {
        /// Per token or per 32-block.
        scale: ActScale,
        /// LLM.int8 decomposition: columns with |x| ≥ threshold in this batch
        /// go through f32 (6.0 is LLM.int8's default).
        outlier_threshold: Option<f32>,
    },
    /// One fixed per-tensor scale: `q = clamp(round(x / scale), ±127)`.
    Static {
        /// The scale (> 0, finite).
        scale: f32,
    },
}

impl Default for ActQuant {
    fn default() -> Self {
        ActQuant::Dynamic {
            scale: ActScale::PerToken,
            outlier_threshold: None,
        }
    }
}

/// Int8 activations with their scales, ready for the integer kernels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QuantizedActivations {
    pub(crate) m: usize,
    pub(crate) k: usize,
    /// `m × k` codes in −127..=127 (0 in outlier columns).
    pub(crate) codes: Vec<i8>,
    /// `m × k/32` scales (repeated within a token for per-token scales).
    pub(crate) scales: Vec<f32>,
    /// `m × k/32` values `scale · Σ codes` of each block.
    pub(crate) sums: Vec<f32>,
    /// `m × k` original activations as f32 (protected weights and outlier
    /// columns use these).
    pub(crate) x: Vec<f32>,
    /// The same, transposed (`k × m`), when `m > 1`: the protected correction
    /// of a GEMM reads a column of x contiguously.
    pub(crate) xt: Vec<f32>,
    /// Outlier columns, increasing.
    pub(crate) outliers: Vec<usize>,
    /// All blocks of a token share one scale.
    pub(crate) per_token: bool,
}

impl QuantizedActivations {
    /// An empty buffer; [`QuantizedActivations::quantize`] fills it, reusing its memory.
    pub fn new() -> Self {
        Self::default()
    }

    /// Quantizes `m × k` activations (`k` a multiple of 32) with the best
    /// backend; `smooth` divides column `j` by `smooth[j]` first (SmoothQuant).
    pub fn quantize<A: Element>(
        &mut self,
        x: &[A],
        m: usize,
        k: usize,
        how: ActQuant,
        smooth: Option<&[f32]>,
    ) -> Result<()> {
        self.quantize_with(Backend::selected()?, x, m, k, how, smooth)
    }

    /// [`QuantizedActivations::quantize`] on a chosen backend.
    pub fn quantize_with<A: Element>(
        &mut self,
        backend: Backend,
        x: &[A],
        m: usize,
        k: usize,
        how: ActQuant,
        smooth: Option<&[f32]>,
    ) -> Result<()> {
        if m == 0 {
            return Err(Error::ZeroDimension { what: "m" });
        }
        if k == 0 || !k.is_multiple_of(BLOCK) {
            return Err(Error::InvalidGroupSize { group: BLOCK, k });
        }
        let mk = m
            .checked_mul(k)
            .ok_or(Error::SizeOverflow { what: "m · k" })?;
        check_len("activations", mk, x.len())?;
        if let Some(s) = smooth {
            check_len("smoothing factors", k, s.len())?;
            if let Some(index) = s.iter().position(|v| !(v.is_finite() && *v > 0.0)) {
                return Err(Error::NonFinite {
                    what: "smoothing factors (must be finite and > 0)",
                    index,
                });
            }
        }
        self.m = m;
        self.k = k;
        self.x.clear();
        self.x.extend(x.iter().map(|v| v.to_f32()));
        if let Some(index) = self.x.iter().position(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: "activations",
                index,
            });
        }
        if let Some(s) = smooth {
            for row in self.x.chunks_exact_mut(k) {
                for (v, s) in row.iter_mut().zip(s) {
                    *v /= s;
                }
            }
        }
        self.xt.clear();
        if m > 1 {
            self.xt.resize(mk, 0.0);
            for (i, row) in self.x.chunks_exact(k).enumerate() {
                for (j, &v) in row.iter().enumerate() {
                    self.xt[j * m + i] = v;
                }
            }
        }
        self.outliers.clear();
        let (per_token, fixed) = match how {
            ActQuant::Dynamic {
                scale,
                outlier_threshold,
            } => {
                if let Some(t) = outlier_threshold {
                    if !(t.is_finite() && t > 0.0) {
                        return Err(Error::InvalidParameter {
                            what: "outlier threshold must be finite and > 0",
                        });
                    }
                    self.outliers.extend(
                        (0..k).filter(|&j| self.x.chunks_exact(k).any(|row| row[j].abs() >= t)),
                    );
                }
                (scale == ActScale::PerToken, None)
            }
            ActQuant::Static { scale } => {
                if !(scale.is_finite() && scale > 0.0) {
                    return Err(Error::InvalidParameter {
                        what: "static activation scale must be finite and > 0",
                    });
                }
                (true, Some(scale))
            }
        };
        self.per_token = per_token;
        let blocks = mk / BLOCK;
        self.codes.clear();
        self.codes.resize(mk, 0);
        self.scales.clear();
        self.scales.resize(blocks, 0.0);
        self.sums.clear();
        self.sums.resize(blocks, 0.0);
        // Outlier columns take no part in the int8 part: zero them in a copy.
        let zeroed;
        let src: &[f32] = if self.outliers.is_empty() {
            &self.x
        } else {
            let mut z = self.x.clone();
            for row in z.chunks_exact_mut(k) {
                for &j in &self.outliers {
                    row[j] = 0.0;
                }
            }
            zeroed = z;
            &zeroed
        };
        quantize_activations_with(
            backend,
            src,
            k,
            per_token,
            fixed,
            &mut self.codes,
            &mut self.scales,
            &mut self.sums,
        )
    }

    /// Tokens.
    pub fn m(&self) -> usize {
        self.m
    }
    /// Inputs per token.
    pub fn k(&self) -> usize {
        self.k
    }
    /// The int8 codes, `m × k`.
    pub fn codes(&self) -> &[i8] {
        &self.codes
    }
    /// The scale of each 32-block, `m × k/32`.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }
    /// The columns kept in f32 by the LLM.int8 decomposition.
    pub fn outliers(&self) -> &[usize] {
        &self.outliers
    }
}

/// The scalar reference activation quantizer, shared by every backend's
/// scale computation: `s = amax / 127`, `q = round_even(x · (1/s))` clamped
/// to ±127, and `sums[b] = s · Σ q`.
pub(crate) fn scale_of(amax: f32) -> (f32, f32) {
    let s = amax / 127.0;
    (s, if s != 0.0 { 1.0 / s } else { 0.0 })
}

/// How a static per-tensor activation scale is chosen from calibration statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Observer {
    /// `max |x|` over all columns and tokens: nothing saturates.
    Absmax,
    /// The given quantile of |x| (e.g. 0.9999): the rare largest values saturate.
    Percentile(f64),
    /// The clip value minimising the expected squared error: saturation of
    /// the values above it against rounding noise `(c/127)²/12` below it.
    Mse,
}

/// A static activation scale (`clip / 127`) from the |x| histogram in `stats`.
pub fn static_scale(stats: &ColumnStats, observer: Observer) -> Result<f32> {
    let hist = stats.abs_histogram();
    let total: u64 = hist.iter().sum();
    let amax = stats.max_abs().iter().fold(0.0f32, |a, &b| a.max(b));
    if total == 0 || amax == 0.0 {
        return Err(Error::InvalidParameter {
            what: "static scale needs statistics with a non-zero activation",
        });
    }
    let clip = match observer {
        Observer::Absmax => amax,
        Observer::Percentile(p) => {
            if !(p > 0.0 && p <= 1.0) {
                return Err(Error::InvalidParameter {
                    what: "percentile must be in (0, 1]",
                });
            }
            let want = num_traits::Float::ceil(p * total as f64) as u64;
            let mut seen = 0u64;
            let mut clip = amax;
            for (b, &c) in hist.iter().enumerate() {
                seen += c;
                if seen >= want {
                    clip = ColumnStats::bin_upper(b).min(amax);
                    break;
                }
            }
            clip
        }
        Observer::Mse => {
            let mut best = (f64::INFINITY, amax);
            let candidates = (0..hist.len())
                .filter(|&b| hist[b] > 0)
                .map(|b| ColumnStats::bin_upper(b).min(amax));
            for c in candidates {
                let step = f64::from(c) / 127.0;
                let mut err = 0.0f64;
                for (b, &count) in hist.iter().enumerate() {
                    if count == 0 {
                        continue;
                    }
                    let v = f64::from(ColumnStats::bin_mid(b).min(amax));
                    let e = if v > f64::from(c) {
                        (v - f64::from(c)) * (v - f64::from(c))
                    } else {
                        step * step / 12.0
                    };
                    err += count as f64 * e;
                }
                if err < best.0 {
                    best = (err, c);
                }
            }
            best.1
        }
    };
    Ok(clip.max(f32::MIN_POSITIVE) / 127.0)
}

/// SmoothQuant factors `s_j = max|X_j|^α / max|W_:,j|^(1−α)` (α = 0.5 in
/// the paper): multiply column `j` of W by `s_j` and divide x_j by it (pass
/// them as `smooth` to [`QuantizedActivations::quantize`]). Columns where
/// either maximum is 0 get 1.
pub fn smooth_factors(
    act_max: &[f32],
    w: &[f32],
    n: usize,
    k: usize,
    alpha: f32,
) -> Result<Vec<f32>> {
    check_len("activation maxima", k, act_max.len())?;
    check_len(
        "weights",
        n.checked_mul(k)
            .ok_or(Error::SizeOverflow { what: "n · k" })?,
        w.len(),
    )?;
    crate::error::check_finite("weights", w)?;
    crate::error::check_finite("activation maxima", act_max)?;
    if !(0.0..=1.0).contains(&alpha) {
        return Err(Error::InvalidParameter {
            what: "SmoothQuant alpha must be in [0, 1]",
        });
    }
    let mut wmax = vec![0.0f32; k];
    for row in w.chunks_exact(k) {
        for (m, v) in wmax.iter_mut().zip(row) {
            *m = m.max(v.abs());
        }
    }
    Ok(act_max
        .iter()
        .zip(&wmax)
        .map(|(&a, &b)| {
            if a > 0.0 && b > 0.0 {
                let s = num_traits::Float::powf(a.abs(), alpha)
                    / num_traits::Float::powf(b, 1.0 - alpha);
                if s.is_finite() && s > 0.0 { s } else { 1.0 }
            } else {
                1.0
            }
        })
        .collect())
}

/// Multiplies column `j` of the `n × k` weights by `s_j` (folds SmoothQuant
/// factors into the weights before quantizing them).
pub fn fold_smoothing(w: &[f32], n: usize, k: usize, s: &[f32]) -> Result<Vec<f32>> {
    check_len(
        "weights",
        n.checked_mul(k)
            .ok_or(Error::SizeOverflow { what: "n · k" })?,
        w.len(),
    )?;
    check_len("smoothing factors", k, s.len())?;
    Ok(w.chunks_exact(k)
        .flat_map(|row| row.iter().zip(s).map(|(w, s)| w * s))
        .collect())
}
