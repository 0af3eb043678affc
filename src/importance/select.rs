//! Exact, deterministic top-k selection of weights to protect.
//!
//! Scores are ranked by value, larger first (as IEEE total order, so −0 ranks
//! below +0); ties go to the lower tensor index, then the lower flat index.
//! NaN or infinite scores are an error, never a silent rank.
//!
//! * One tensor: [`select_top`], O(n) via `select_nth_unstable` on 4-byte keys.
//! * A whole model with one global budget: [`GlobalSelection`], which streams
//!   the tensors three times (two histogram passes fix the exact threshold,
//!   the third selects) and holds only two 65 536-bucket histograms plus one
//!   tensor's keys at a time, so memory does not grow with the model.
//!
//! An optional per-row cap keeps at most `cap` weights of any output row: a
//! weight is eligible when it ranks in the top `cap` of its own row, and the
//! budget is then spent on eligible weights in global order (this equals
//! taking weights greedily in rank order and skipping full rows).

use alloc::{vec, vec::Vec};

use num_traits::float::FloatCore;

use crate::error::{Error, Result, check_finite};

/// How many weights to protect.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// A fraction of the weights in scope, rounded to the nearest count.
    Fraction(f64),
    /// An exact count.
    Count(u64),
}

impl Budget {
    /// The count this budget means for `total` weights.
    pub fn count(self, total: u64) -> Result<u64> {
        match self {
            Budget::Fraction(f) if (0.0..=1.0).contains(&f) => {
                Ok(FloatCore::round(f * total as f64) as u64)
            }
            Budget::Fraction(_) => Err(Error::InvalidParameter {
                what: "budget fraction must be in [0, 1]",
            }),
            Budget::Count(c) if c <= total => Ok(c),
            Budget::Count(c) => Err(Error::Budget {
                requested: c,
                available: total,
            }),
        }
    }
}

/// A sort key: a larger score gives a larger key; key 0 is below every
/// finite score and marks weights a row cap made ineligible.
#[inline]
fn key(v: f32) -> u32 {
    let b = v.to_bits();
    if b >> 31 == 1 { !b } else { b | 0x8000_0000 }
}

/// Fills `out` with the keys of `scores` (rows of `k`), zeroing every weight
/// outside the top `cap` of its row. Returns the number of eligible weights.
fn tensor_keys(scores: &[f32], k: usize, cap: Option<usize>, out: &mut Vec<u32>) -> Result<u64> {
    check_finite("scores", scores)?;
    if k == 0 || !scores.len().is_multiple_of(k) {
        return Err(Error::LengthMismatch {
            what: "scores (a whole number of rows)",
            expected: scores.len() / k.max(1) * k.max(1),
            actual: scores.len(),
        });
    }
    out.clear();
    out.extend(scores.iter().map(|&v| key(v)));
    let Some(cap) = cap else {
        return Ok(scores.len() as u64);
    };
    let mut scratch = Vec::new();
    let mut eligible = 0u64;
    for row in out.chunks_exact_mut(k) {
        if row.len() <= cap {
            eligible += row.len() as u64;
            continue;
        }
        let (threshold, mut ties) = if cap == 0 {
            (u32::MAX, 0)
        } else {
            threshold_of(row, cap as u64, &mut scratch)
        };
        for v in row.iter_mut() {
            if *v > threshold || (*v == threshold && ties > 0) {
                if *v == threshold {
                    ties -= 1;
                }
            } else {
                *v = 0;
            }
        }
        eligible += cap as u64;
    }
    Ok(eligible)
}

/// The key of the `count`-th largest entry, and how many entries equal to it
/// are taken (the first ones in index order). `count ≥ 1`, `≤ keys.len()`.
fn threshold_of(keys: &[u32], count: u64, scratch: &mut Vec<u32>) -> (u32, u64) {
    scratch.clear();
    scratch.extend_from_slice(keys);
    let pos = count as usize - 1;
    let (_, &mut t, _) = scratch.select_nth_unstable_by(pos, |a, b| b.cmp(a));
    let above = keys.iter().filter(|&&v| v > t).count() as u64;
    (t, count - above)
}

/// Flat indices (increasing) of the top `budget` scores of one tensor laid
/// out in rows of `k` (`k = scores.len()` for no row structure), at most
/// `row_cap` per row.
pub fn select_top(
    scores: &[f32],
    k: usize,
    budget: Budget,
    row_cap: Option<usize>,
) -> Result<Vec<usize>> {
    let mut keys = Vec::new();
    let eligible = tensor_keys(scores, k, row_cap, &mut keys)?;
    let count = budget.count(scores.len() as u64)?;
    if count > eligible {
        return Err(Error::Budget {
            requested: count,
            available: eligible,
        });
    }
    if count == 0 {
        return Ok(Vec::new());
    }
    let (t, ties) = threshold_of(&keys, count, &mut Vec::new());
    let mut picker = Picker { key: t, ties };
    Ok(picker.pick(&keys))
}

/// Streaming state of the final pass: the threshold key and how many entries
/// equal to it remain to be taken, in (tensor, index) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Picker {
    key: u32,
    ties: u64,
}

impl Picker {
    fn pick(&mut self, keys: &[u32]) -> Vec<usize> {
        let mut out = Vec::new();
        for (i, &v) in keys.iter().enumerate() {
            if v > self.key || (v == self.key && self.ties > 0 && v != 0) {
                if v == self.key {
                    self.ties -= 1;
                }
                out.push(i);
            }
        }
        out
    }
}

/// Model-wide exact top-k with memory independent of model size.
///
/// Feed every tensor, in the same order, to each pass:
///
/// ```
/// use cwpq::importance::{Budget, GlobalSelection};
/// let tensors: [(&[f32], usize); 2] = [(&[0.5, 0.1, 0.9, 0.3], 2), (&[0.7, 0.2], 2)];
/// let mut sel = GlobalSelection::new(Budget::Count(3), None);
/// for (s, k) in tensors { sel.observe(s, k)?; } // pass 1: coarse histogram
/// sel.next_pass()?;
/// for (s, k) in tensors { sel.observe(s, k)?; } // pass 2: fine histogram
/// sel.next_pass()?;
/// let picked: Vec<Vec<usize>> = tensors
///     .iter()
///     .map(|&(s, k)| sel.select(s, k))          // pass 3: the indices
///     .collect::<Result<_, _>>()?;
/// assert_eq!(picked, vec![vec![0, 2], vec![0]]);
/// # Ok::<(), cwpq::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct GlobalSelection {
    budget: Budget,
    row_cap: Option<usize>,
    stage: Stage,
    hist: Vec<u64>,
    total: u64,
    eligible: u64,
    keys: Vec<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    Coarse,
    Fine { high: u32, need: u64 },
    Select(Picker),
}

impl GlobalSelection {
    /// Starts a selection of `budget` weights over all tensors fed to it.
    pub fn new(budget: Budget, row_cap: Option<usize>) -> GlobalSelection {
        GlobalSelection {
            budget,
            row_cap,
            stage: Stage::Coarse,
            hist: vec![0; 1 << 16],
            total: 0,
            eligible: 0,
            keys: Vec::new(),
        }
    }

    /// Feeds one tensor's scores (rows of `k`) to the current histogram pass.
    pub fn observe(&mut self, scores: &[f32], k: usize) -> Result<()> {
        let eligible = tensor_keys(scores, k, self.row_cap, &mut self.keys)?;
        match self.stage {
            Stage::Coarse => {
                self.total += scores.len() as u64;
                self.eligible += eligible;
                for &v in &self.keys {
                    self.hist[(v >> 16) as usize] += 1;
                }
            }
            Stage::Fine { high, .. } => {
                for &v in &self.keys {
                    if v >> 16 == high {
                        self.hist[(v & 0xFFFF) as usize] += 1;
                    }
                }
            }
            Stage::Select(_) => {
                return Err(Error::InvalidParameter {
                    what: "selection: both histogram passes are done; call select",
                });
            }
        }
        Ok(())
    }

    /// Closes a histogram pass.
    pub fn next_pass(&mut self) -> Result<()> {
        self.stage = match self.stage {
            Stage::Coarse => {
                let count = self.budget.count(self.total)?;
                if count > self.eligible {
                    return Err(Error::Budget {
                        requested: count,
                        available: self.eligible,
                    });
                }
                let (high, need) = if count == 0 {
                    (NO_BUCKET, 0)
                } else {
                    let (high, need) = descend(&self.hist, count);
                    (high as u32, need)
                };
                self.hist.iter_mut().for_each(|h| *h = 0);
                Stage::Fine { high, need }
            }
            Stage::Fine { need: 0, .. } => Stage::Select(Picker {
                key: u32::MAX, // above every finite score's key: nothing selected
                ties: 0,
            }),
            Stage::Fine { high, need } => {
                let (low, ties) = descend(&self.hist, need);
                Stage::Select(Picker {
                    key: (high << 16) | low as u32,
                    ties,
                })
            }
            Stage::Select(_) => {
                return Err(Error::InvalidParameter {
                    what: "selection: already in the select pass",
                });
            }
        };
        Ok(())
    }

    /// The number of weights this selection protects (after pass 1).
    pub fn count(&self) -> Result<u64> {
        self.budget.count(self.total)
    }

    /// Pass 3: the flat indices (increasing) selected in this tensor. Call it
    /// for every tensor in the order of the histogram passes.
    pub fn select(&mut self, scores: &[f32], k: usize) -> Result<Vec<usize>> {
        let Stage::Select(mut picker) = self.stage else {
            return Err(Error::InvalidParameter {
                what: "selection: run both histogram passes first",
            });
        };
        tensor_keys(scores, k, self.row_cap, &mut self.keys)?;
        let picked = picker.pick(&self.keys);
        self.stage = Stage::Select(picker);
        Ok(picked)
    }

    /// Runs all three passes over tensors held in memory.
    pub fn run(
        budget: Budget,
        row_cap: Option<usize>,
        tensors: &[(&[f32], usize)],
    ) -> Result<Vec<Vec<usize>>> {
        let mut sel = GlobalSelection::new(budget, row_cap);
        for _ in 0..2 {
            for &(s, k) in tensors {
                sel.observe(s, k)?;
            }
            sel.next_pass()?;
        }
        tensors.iter().map(|&(s, k)| sel.select(s, k)).collect()
    }
}

/// A coarse bucket no key falls in (keys have 16 high bits).
const NO_BUCKET: u32 = 1 << 16;

/// Walks a histogram from the top bucket down until `count` entries are
/// covered: returns the boundary bucket and how many of it are still needed.
fn descend(hist: &[u64], count: u64) -> (usize, u64) {
    let mut remaining = count;
    for b in (0..hist.len()).rev() {
        if hist[b] >= remaining {
            return (b, remaining);
        }
        remaining -= hist[b];
    }
    unreachable!("count is at most the number of eligible entries")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_order_like_floats() {
        let v = [-f32::MAX, -1.0, -1e-30, -0.0, 0.0, 1e-30, 1.0, f32::MAX];
        for w in v.windows(2) {
            assert!(key(w[0]) < key(w[1]), "{} !< {}", w[0], w[1]);
        }
        assert!(key(-f32::MAX) > 0);
    }
}
