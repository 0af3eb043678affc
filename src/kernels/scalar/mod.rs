//! The scalar reference kernels, written for clarity: decode a block to
//! f32, multiply, add. Every optimised path must agree with these.
//!
//! Output-row ranges let a caller split one product over its own threads:
//! `rows` selects output features `j`, and `y` holds only that tile,
//! `m × rows.len()` row-major (for `m = 1`, simply `y_full[rows]`).

use core::ops::Range;

use super::Element;
#[cfg(feature = "alloc")]
use crate::act::QuantizedActivations;
use crate::error::{Result, check_len};
use crate::protect::ProtectedView;
use crate::quant::Layout;
use crate::quant::QuantView;
use crate::quant::block::{CHUNK, chunk_bytes, header_params, unpack_chunk};
#[cfg(feature = "alloc")]
use crate::quant::search::small_int;

/// The 32 dequantized weights of chunk `c` (inputs `32c..32c + 32`) of a
/// quantized row.
pub(crate) fn chunk_values(layout: Layout, row: &[u8], c: usize) -> [f32; CHUNK] {
    let per_block = layout.group / CHUNK;
    let block = &row[(c / per_block) * layout.block_bytes()..][..layout.block_bytes()];
    let (header, codes) = block.split_at(layout.header_bytes());
    let (d, m) = header_params(layout.kind, header);
    let cb = chunk_bytes(layout.kind);
    let mut q = [0i32; CHUNK];
    unpack_chunk(layout.kind, &codes[(c % per_block) * cb..][..cb], &mut q);
    q.map(|q| q as f32 * d + m)
}

/// Dequantizes rows `rows` of `w` into `out` (`rows.len() · k` values, row-major).
pub fn dequantize_rows(w: &QuantView<'_>, rows: Range<usize>, out: &mut [f32]) -> Result<()> {
    let k = w.k();
    super::check_rows(&rows, w.n())?;
    check_len("dequantized output", rows.len() * k, out.len())?;
    let layout = w.shape().layout();
    for (i, out_row) in rows.zip(out.chunks_exact_mut(k)) {
        let row = w.row(i).expect("row range checked");
        for (c, out) in out_row.chunks_exact_mut(CHUNK).enumerate() {
            out.copy_from_slice(&chunk_values(layout, row, c));
        }
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
    super::check_f32_args(w, protected, x.len(), m, &rows, y)?;
    let (k, width) = (w.k(), rows.len());
    let layout = w.shape().layout();
    for (jj, j) in rows.enumerate() {
        let row = w.row(j).expect("row range checked");
        for i in 0..m {
            let xi = &x[i * k..(i + 1) * k];
            let mut acc = 0.0f32;
            for (c, xc) in xi.chunks_exact(CHUNK).enumerate() {
                for (x, v) in xc.iter().zip(chunk_values(layout, row, c)) {
                    acc += x.to_f32() * v;
                }
            }
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

#[cfg(feature = "alloc")]
/// The integer-activation product, defined in floats for clarity:
/// `y = Σ_blocks s_c · Σ_t a_t · ŵ_t` over the int8 codes `a` and their
/// block scales `s_c`, plus the LLM.int8 outlier columns and the protected
/// weights against the original activations.
pub fn matmul_q8(
    w: &QuantView<'_>,
    protected: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    super::check_q8_args(w, protected, xq, &rows, y)?;
    let (k, m, width, layout) = (w.k(), xq.m(), rows.len(), w.shape().layout());
    let kb = k / CHUNK;
    for (jj, j) in rows.enumerate() {
        let row = w.row(j).expect("row range checked");
        for i in 0..m {
            let a = &xq.codes[i * k..(i + 1) * k];
            let x = &xq.x[i * k..(i + 1) * k];
            let mut acc = 0.0f32;
            for (c, ac) in a.chunks_exact(CHUNK).enumerate() {
                let dot: f32 = ac
                    .iter()
                    .zip(chunk_values(layout, row, c))
                    .map(|(&a, v)| f32::from(a) * v)
                    .sum();
                acc += xq.scales[i * kb + c] * dot;
            }
            for &col in &xq.outliers {
                acc += x[col] * chunk_values(layout, row, col / CHUNK)[col % CHUNK];
            }
            if let Some(p) = protected {
                for (col, v) in p.row(j) {
                    acc += x[col] * v;
                }
            }
            y[i * width + jj] = acc;
        }
    }
    Ok(())
}

#[cfg(feature = "alloc")]
/// The reference activation quantizer: per row (or per 32-block) scale
/// `s = amax / 127` (or the fixed static scale), codes
/// `round_half_even(clamp(x · (1/s), ±127))`, and `sums = s · Σ codes`.
pub(crate) fn quantize_acts(
    x: &[f32],
    k: usize,
    per_token: bool,
    fixed: Option<f32>,
    codes: &mut [i8],
    scales: &mut [f32],
    sums: &mut [f32],
) {
    use crate::act::scale_of;
    let amax = |v: &[f32]| v.iter().fold(0.0f32, |a, x| a.max(x.abs()));
    let kb = k / CHUNK;
    for (r, row) in x.chunks_exact(k).enumerate() {
        let row_scale = match fixed {
            Some(f) => Some((f, 1.0 / f)),
            None if per_token => Some(scale_of(amax(row))),
            None => None,
        };
        for (c, chunk) in row.chunks_exact(CHUNK).enumerate() {
            let (s, id) = row_scale.unwrap_or_else(|| scale_of(amax(chunk)));
            let mut sum = 0i32;
            for (q, &v) in codes[r * k + c * CHUNK..][..CHUNK].iter_mut().zip(chunk) {
                let t = small_int((v * id).clamp(-127.0, 127.0));
                sum += t;
                *q = t as i8;
            }
            scales[r * kb + c] = s;
            sums[r * kb + c] = s * sum as f32;
        }
    }
}
