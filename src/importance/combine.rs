//! Combining critical and utility scores into one ranking.
//!
//! * [`soft_subtract`]: CWP's `S = Σ_k a_k F^k − β Σ_u F^u` (β = 1 in the
//!   paper): weights that matter as much for utility rank lower. Scores may
//!   be negative.
//! * [`set_difference`]: Wei et al. 2024's hard version: the top-q critical
//!   weights that are not in the top-p utility weights.
//! * [`union`]: several critical sets (fairness, safety, languages) merged
//!   by each weight's best standing in any set, optionally after scaling each
//!   set to unit sum so that no objective dominates by its units.

use alloc::{vec, vec::Vec};

use super::select::{Budget, select_top};
use crate::error::{Error, Result, check_finite, check_len};

fn same_lengths(sets: &[&[f32]]) -> Result<usize> {
    let len = sets.first().map_or(0, |s| s.len());
    for s in sets {
        check_len("score set", len, s.len())?;
        check_finite("score set", s)?;
    }
    Ok(len)
}

/// `S = Σ_k a_k F^k − β Σ_u F^u`.
pub fn soft_subtract(
    critical: &[(&[f32], f32)],
    utility: &[&[f32]],
    beta: f32,
) -> Result<Vec<f32>> {
    if critical.is_empty() {
        return Err(Error::InvalidParameter {
            what: "soft_subtract needs at least one critical score set",
        });
    }
    if !beta.is_finite() || critical.iter().any(|(_, a)| !a.is_finite()) {
        return Err(Error::InvalidParameter {
            what: "weights a_k and β must be finite",
        });
    }
    let mut all: Vec<&[f32]> = critical.iter().map(|(s, _)| *s).collect();
    all.extend_from_slice(utility);
    let len = same_lengths(&all)?;
    let mut s = vec![0.0f32; len];
    for (set, a) in critical {
        for (s, v) in s.iter_mut().zip(*set) {
            *s += a * v;
        }
    }
    for set in utility {
        for (s, v) in s.iter_mut().zip(*set) {
            *s -= beta * v;
        }
    }
    check_finite("combined score", &s)?;
    Ok(s)
}

/// A mask of the top-`q` critical weights that are not among the top-`p`
/// utility weights.
pub fn set_difference(
    critical: &[f32],
    utility: &[f32],
    q: Budget,
    p: Budget,
) -> Result<Vec<bool>> {
    let len = same_lengths(&[critical, utility])?;
    let mut mask = vec![false; len];
    for i in select_top(critical, len.max(1), q, None)? {
        mask[i] = true;
    }
    for i in select_top(utility, len.max(1), p, None)? {
        mask[i] = false;
    }
    Ok(mask)
}

/// The element-wise maximum of several score sets, each first divided by
/// its sum when `normalize` (sets must then be non-negative with a positive
/// sum). Selecting the top of the result favours weights that rank high in
/// any one set.
pub fn union(sets: &[&[f32]], normalize: bool) -> Result<Vec<f32>> {
    if sets.is_empty() {
        return Err(Error::InvalidParameter {
            what: "union needs at least one score set",
        });
    }
    let len = same_lengths(sets)?;
    let mut out = vec![f32::NEG_INFINITY; len];
    for set in sets {
        let scale = if normalize {
            if let Some(index) = set.iter().position(|&v| v < 0.0) {
                return Err(Error::Negative {
                    what: "score set (normalised union)",
                    index,
                });
            }
            let sum: f64 = set.iter().map(|&v| f64::from(v)).sum();
            if sum <= 0.0 {
                return Err(Error::InvalidParameter {
                    what: "a normalised score set must have a positive sum",
                });
            }
            (1.0 / sum) as f32
        } else {
            1.0
        };
        for (o, &v) in out.iter_mut().zip(*set) {
            *o = o.max(v * scale);
        }
    }
    Ok(out)
}
