//! Scale search for the general formats: which `(d, m)` a group gets.
//!
//! * [`ScaleSearch::Absmax`]: round-to-nearest over the full range
//!   (`d = max|w| / qmax`, or `(max − min) / levels` with `m = min`).
//! * [`ScaleSearch::Mse`]: the range is shrunk over a grid of clip ratios
//!   (AWQ's auto-clip idea), each candidate scored by `Σ (w − ŵ)²`, and the
//!   winner refined once by least squares on its codes (ggml's
//!   `make_qx_quants` idea).
//! * [`ScaleSearch::Weighted`]: the same search minimising
//!   `Σ a_j (w_j − ŵ_j)²` with caller-given importances `a`.
//!
//! Candidates are scored after rounding `d` and `m` to f16, since that is what
//! the kernels will use, and masked (protected) positions take no part.

use half::f16;

use super::format::CodeKind;

const F16_MAX: f32 = 65504.0;

/// Per-element weights `a_j ≥ 0` for [`ScaleSearch::Weighted`].
#[derive(Debug, Clone, Copy)]
pub enum Importance<'a> {
    /// One weight per matrix element, `n · k`, row-major (e.g. a Fisher map).
    PerElement(&'a [f32]),
    /// One weight per input column, `k` (e.g. activation second moments `E[x_j²]`).
    PerColumn(&'a [f32]),
}

/// How each quantization unit chooses its scale (and min).
#[derive(Debug, Clone, Copy, Default)]
pub enum ScaleSearch<'a> {
    /// Round-to-nearest with the full range; for the GGUF formats this is
    /// ggml's reference encoder, bit for bit.
    #[default]
    Absmax,
    /// Clip ratio chosen over a grid to minimise the squared error.
    Mse,
    /// Clip ratio chosen to minimise the importance-weighted squared error.
    Weighted(Importance<'a>),
}

/// The clip-ratio grid of the MSE and weighted searches: `steps` ratios
/// evenly spaced from 1 down to `min_ratio`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClipGrid {
    /// Number of candidate ratios (≥ 1).
    pub steps: u16,
    /// Smallest ratio tried, in (0, 1].
    pub min_ratio: f32,
}

impl Default for ClipGrid {
    /// 20 ratios from 1.0 to 0.5, as AWQ's auto-clip uses.
    fn default() -> Self {
        ClipGrid {
            steps: 20,
            min_ratio: 0.5,
        }
    }
}

/// 1.5·2²³: a float this large has no fraction bits, so adding it rounds
/// (to even), and its low mantissa bits then hold the integer.
const MAGIC: f32 = 12_582_912.0;

/// Round half to even, for |x| < 2^22 (callers clamp first).
#[inline]
pub(crate) fn round_even(x: f32) -> f32 {
    (x + MAGIC) - MAGIC
}

/// The integer value of an integral float with |r| < 2^22, without the
/// saturating `as` conversion (which does not vectorise on SSE2).
#[inline]
pub(crate) fn small_int(r: f32) -> i32 {
    (r + MAGIC).to_bits() as i32 - MAGIC.to_bits() as i32
}

/// A group's parameters, already rounded to f16 and back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Params {
    pub d: f32,
    pub m: f32,
    /// `1/d` (0 when `d = 0`): codes use a multiply, not a divide.
    inv: f32,
}

impl Params {
    const ZERO: Params = Params {
        d: 0.0,
        m: 0.0,
        inv: 0.0,
    };

    fn rounded(d: f32, m: f32) -> Params {
        let d = f16::from_f32(d.clamp(-F16_MAX, F16_MAX)).to_f32();
        let m = f16::from_f32(m.clamp(-F16_MAX, F16_MAX)).to_f32();
        let inv = if d == 0.0 { 0.0 } else { 1.0 / d };
        Params { d, m, inv }
    }

    /// The code for `w` (as the signed value `q`): nearest, ties to even.
    #[inline]
    pub fn code(&self, kind: CodeKind, w: f32) -> i32 {
        let t = ((w - self.m) * self.inv).clamp(kind.qmin() as f32, kind.qmax() as f32);
        small_int(t)
    }

    #[inline]
    pub fn value(&self, q: i32) -> f32 {
        q as f32 * self.d + self.m
    }
}

/// Order-preserving map of finite f32 bits to i32 (integer min/max vectorise).
#[inline]
pub(crate) fn ordered(v: f32) -> i32 {
    let b = v.to_bits() as i32;
    b ^ (((b >> 31) as u32) >> 1) as i32
}

#[inline]
pub(crate) fn unordered(b: i32) -> f32 {
    f32::from_bits((b ^ (((b >> 31) as u32) >> 1) as i32) as u32)
}

/// `(min, max, signed value of largest magnitude)` over the kept entries, or
/// `None` when every entry is masked.
fn group_stats(w: &[f32], mask: Option<&[bool]>) -> Option<(f32, f32, f32)> {
    let (mut lo, mut hi, mut amax) = (i32::MAX, i32::MIN, 0i32);
    let mut any = false;
    match mask {
        None => {
            for &v in w {
                lo = lo.min(ordered(v));
                hi = hi.max(ordered(v));
                amax = amax.max((v.to_bits() & 0x7FFF_FFFF) as i32);
            }
            any = !w.is_empty();
        }
        Some(mask) => {
            for (&v, &m) in w.iter().zip(mask) {
                if !m {
                    lo = lo.min(ordered(v));
                    hi = hi.max(ordered(v));
                    amax = amax.max((v.to_bits() & 0x7FFF_FFFF) as i32);
                    any = true;
                }
            }
        }
    }
    if !any {
        return None;
    }
    let (lo, hi) = (unordered(lo), unordered(hi));
    let signed_max = if f32::from_bits(amax as u32) == hi {
        hi
    } else {
        lo
    };
    Some((lo, hi, signed_max))
}

/// Chooses `(d, m)` for one group. `w`, `mask` and `a` are the group's
/// elements; `a` is `None` for unweighted searches.
///
/// Symmetric int4 follows ggml's Q4_0 rule, `d = max / −8` with `max` the
/// signed value of largest magnitude, which gives that side the extra level;
/// symmetric int8 uses `d = max|w| / 127` (codes stay in −127..=127 so the
/// integer kernels cannot saturate).
pub(crate) fn fit_group(
    kind: CodeKind,
    w: &[f32],
    mask: Option<&[bool]>,
    a: Option<&[f32]>,
    search: bool,
    grid: ClipGrid,
) -> Params {
    let Some((lo, hi, signed_max)) = group_stats(w, mask) else {
        return Params::ZERO; // all protected: nothing to fit
    };
    let candidate = |ratio: f32| -> Params {
        match kind {
            CodeKind::U8Min | CodeKind::NibbleMin => {
                // Shrink the range around its centre.
                let centre = 0.5 * lo + 0.5 * hi;
                let half = ratio * (0.5 * hi - 0.5 * lo);
                Params::rounded(2.0 * half / kind.qmax() as f32, centre - half)
            }
            CodeKind::Nibble => Params::rounded(ratio * signed_max / -8.0, 0.0),
            CodeKind::I8 => Params::rounded(ratio * signed_max.abs() / 127.0, 0.0),
        }
    };
    let mut best = candidate(1.0);
    if !search || best.d == 0.0 {
        return best;
    }
    let kept = |j: usize| mask.is_none_or(|m| !m[j]);
    let error = |p: &Params| -> f64 {
        let mut e = 0.0f64;
        for (j, &v) in w.iter().enumerate() {
            if kept(j) {
                let r = f64::from(v - p.value(p.code(kind, v)));
                e += f64::from(a.map_or(1.0, |a| a[j])) * r * r;
            }
        }
        e
    };
    let mut best_err = error(&best);
    let steps = grid.steps.max(1);
    for s in 1..steps {
        let ratio = 1.0 - (1.0 - grid.min_ratio) * f32::from(s) / f32::from(steps - 1).max(1.0);
        let p = candidate(ratio);
        let e = error(&p);
        if e < best_err {
            best = p;
            best_err = e;
        }
    }
    if let Some(p) = refit(kind, w, &kept, a, &best)
        && error(&p) < best_err
    {
        best = p;
    }
    best
}

/// One weighted least-squares step on fixed codes: the `d` (and `m`) that
/// minimise `Σ a (w − q·d − m)²` for the codes `p` gives.
fn refit(
    kind: CodeKind,
    w: &[f32],
    kept: &dyn Fn(usize) -> bool,
    a: Option<&[f32]>,
    p: &Params,
) -> Option<Params> {
    let (mut s_a, mut s_q, mut s_qq, mut s_w, mut s_qw) = (0.0f64, 0.0, 0.0, 0.0, 0.0);
    for (j, &v) in w.iter().enumerate() {
        if kept(j) {
            let wt = f64::from(a.map_or(1.0, |a| a[j]));
            let q = f64::from(p.code(kind, v));
            let v = f64::from(v);
            s_a += wt;
            s_q += wt * q;
            s_qq += wt * q * q;
            s_w += wt * v;
            s_qw += wt * q * v;
        }
    }
    if kind.has_min() {
        let det = s_a * s_qq - s_q * s_q;
        if det <= 0.0 {
            return None;
        }
        let d = (s_a * s_qw - s_q * s_w) / det;
        let m = (s_qq * s_w - s_q * s_qw) / det;
        (d > 0.0).then(|| Params::rounded(d as f32, m as f32))
    } else {
        if s_qq <= 0.0 {
            return None;
        }
        let d = s_qw / s_qq;
        (d != 0.0).then(|| Params::rounded(d as f32, 0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_even_ties() {
        for (x, r) in [
            (0.5, 0.0),
            (1.5, 2.0),
            (2.5, 2.0),
            (-0.5, -0.0),
            (-1.5, -2.0),
            (7.49, 7.0),
        ] {
            assert_eq!(round_even(x), r, "{x}");
        }
    }

    #[test]
    fn mse_never_worse_than_absmax() {
        let w: [f32; 32] = core::array::from_fn(|j| {
            ((j * 37 % 29) as f32 - 14.0) * 0.1 + if j == 5 { 9.0 } else { 0.0 }
        });
        for kind in [
            CodeKind::I8,
            CodeKind::Nibble,
            CodeKind::U8Min,
            CodeKind::NibbleMin,
        ] {
            let err = |p: Params| -> f64 {
                w.iter()
                    .map(|&v| f64::from(v - p.value(p.code(kind, v))).powi(2))
                    .sum()
            };
            let rtn = fit_group(kind, &w, None, None, false, ClipGrid::default());
            let mse = fit_group(kind, &w, None, None, true, ClipGrid::default());
            assert!(
                err(mse) <= err(rtn),
                "{kind:?}: {} > {}",
                err(mse),
                err(rtn)
            );
        }
    }
}
