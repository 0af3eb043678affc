//! The scalar reference kernels, written for clarity: decode a block to
//! f32, multiply, add. Every optimised path must agree with these.
//!
//! Output-row ranges let a caller split one product over its own threads:
//! `rows` selects output features `j`, and `y` holds only that tile,
//! `m × rows.len()` row-major (for `m = 1`, simply `y_full[rows]`).

use core::ops::Range;

use super::Element;
use crate::error::{Error, Result, check_len};
use crate::protect::ProtectedView;
use crate::quant::QuantView;
use crate::quant::block::{CHUNK, chunk_bytes, header_params, unpack_chunk};

pub(crate) fn check_rows(rows: &Range<usize>, n: usize) -> Result<()> {
    if rows.start > rows.end || rows.end > n {
        return Err(Error::InvalidRowRange {
            start: rows.start,
            end: rows.end,
            n,
        });
    }
    Ok(())
}

/// Calls `f(col, value)` for each of row `i`'s `k` dequantized weights in order.
fn for_each_weight(w: &QuantView<'_>, i: usize, mut f: impl FnMut(usize, f32)) {
    let layout = w.shape().layout();
    let row = w.row(i).expect("row index checked by the caller");
    for (b, block) in row.chunks_exact(layout.block_bytes()).enumerate() {
        let (header, codes) = block.split_at(layout.header_bytes());
        let (d, m) = header_params(layout.kind, header);
        for (c, chunk) in codes.chunks_exact(chunk_bytes(layout.kind)).enumerate() {
            let mut q = [0i32; CHUNK];
            unpack_chunk(layout.kind, chunk, &mut q);
            let base = b * layout.group + c * CHUNK;
            for (t, &q) in q.iter().enumerate() {
                f(base + t, q as f32 * d + m);
            }
        }
    }
}

/// Dequantizes rows `rows` of `w` into `out` (`rows.len() · k` values, row-major).
pub fn dequantize_rows(w: &QuantView<'_>, rows: Range<usize>, out: &mut [f32]) -> Result<()> {
    let k = w.k();
    check_rows(&rows, w.n())?;
    check_len("dequantized output", rows.len() * k, out.len())?;
    for (i, out_row) in rows.zip(out.chunks_exact_mut(k)) {
        for_each_weight(w, i, |j, v| out_row[j] = v);
    }
    Ok(())
}

/// `y = x · Wᵀ` for output rows `rows`: `x` is `m × k`, `y` the `m × rows.len()` tile.
///
/// Each output is accumulated in f32 in input order, one weight at a time.
pub fn matmul<A: Element>(
    w: &QuantView<'_>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    matmul_protected(w, None, x, m, rows, y)
}

/// `y = x · (Ŵ + P)ᵀ`: the dense product plus, for each output row, the
/// protected correction `Σ value_ij · x_j`, added in the same pass.
pub fn matmul_protected<A: Element>(
    w: &QuantView<'_>,
    protected: Option<&ProtectedView<'_>>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    let k = w.k();
    check_rows(&rows, w.n())?;
    if let Some(p) = protected {
        check_len("protected set rows", w.n(), p.n())?;
        check_len("protected set columns", k, p.k())?;
    }
    if m == 0 {
        return Err(Error::ZeroDimension { what: "m" });
    }
    let x_len = m
        .checked_mul(k)
        .ok_or(Error::SizeOverflow { what: "m · k" })?;
    check_len("activations", x_len, x.len())?;
    let width = rows.len();
    check_len("output tile", m * width, y.len())?;
    for (jj, j) in rows.enumerate() {
        for i in 0..m {
            let xi = &x[i * k..(i + 1) * k];
            let mut acc = 0.0f32;
            for_each_weight(w, j, |col, v| acc += xi[col].to_f32() * v);
            if let Some(p) = protected {
                for (col, v) in p.row(j) {
                    acc += xi[col].to_f32() * v;
                }
            }
            y[i * width + jj] = acc;
        }
    }
    Ok(())
}
