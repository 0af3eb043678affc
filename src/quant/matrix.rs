//! Quantized matrices: the owned [`QuantMatrix`] and the borrowed
//! [`QuantView`] over bytes, and the quantizer that fills them.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use super::block::{
    BlockQ4_0, BlockQ4_1, BlockQ8_0, CHUNK, chunk_bytes, header_params, pack_chunk, write_header,
};
use super::format::{Format, Layout};
use super::ggml;
use super::search::{ClipGrid, Importance, Params, ScaleSearch, fit_group};
use crate::error::{Error, Result, check_finite, check_len};

/// The validated shape of a quantized matrix: `n` rows of `k` inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuantShape {
    format: Format,
    layout: Layout,
    n: usize,
    k: usize,
    row_bytes: usize,
    total_bytes: usize,
}

impl QuantShape {
    /// Checks that `format` can hold `n × k` and that every size fits `usize`.
    pub fn new(format: Format, n: usize, k: usize) -> Result<QuantShape> {
        if n == 0 {
            return Err(Error::ZeroDimension { what: "n" });
        }
        let layout = format.layout(k)?;
        let row_bytes =
            (k / layout.group)
                .checked_mul(layout.block_bytes())
                .ok_or(Error::SizeOverflow {
                    what: "bytes per row",
                })?;
        let total_bytes = n.checked_mul(row_bytes).ok_or(Error::SizeOverflow {
            what: "bytes of the matrix",
        })?;
        n.checked_mul(k)
            .ok_or(Error::SizeOverflow { what: "n · k" })?;
        Ok(QuantShape {
            format,
            layout,
            n,
            k,
            row_bytes,
            total_bytes,
        })
    }

    /// The format.
    pub fn format(&self) -> Format {
        self.format
    }
    /// The byte layout.
    pub fn layout(&self) -> Layout {
        self.layout
    }
    /// Output rows.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Bytes of one quantized row.
    pub fn row_bytes(&self) -> usize {
        self.row_bytes
    }
    /// Bytes of the whole matrix.
    pub fn total_bytes(&self) -> usize {
        self.total_bytes
    }
    /// Storage cost in bits per weight (headers included).
    pub fn bits_per_weight(&self) -> f64 {
        (self.layout.block_bytes() * 8) as f64 / self.layout.group as f64
    }
}

/// Options of [`quantize`]: scale search, protected mask, clip grid.
#[derive(Debug, Clone, Copy, Default)]
pub struct QuantOptions<'a> {
    /// How each unit picks its scale.
    pub search: ScaleSearch<'a>,
    /// `n · k` flags; `true` leaves that weight out of its unit's statistics
    /// and gives it the code nearest to 0 (a protected weight is stored
    /// elsewhere at high precision).
    pub mask: Option<&'a [bool]>,
    /// The clip-ratio grid of the MSE and weighted searches.
    pub grid: ClipGrid,
}

/// A quantized `n × k` matrix viewed in borrowed bytes of any alignment.
#[derive(Debug, Clone, Copy)]
pub struct QuantView<'a> {
    shape: QuantShape,
    bytes: &'a [u8],
}

impl<'a> QuantView<'a> {
    /// Views `bytes` as an `n × k` matrix of `format`. The length must match
    /// exactly and every scale and min must be finite.
    pub fn new(format: Format, n: usize, k: usize, bytes: &'a [u8]) -> Result<QuantView<'a>> {
        let shape = QuantShape::new(format, n, k)?;
        check_len("quantized bytes", shape.total_bytes, bytes.len())?;
        let view = QuantView { shape, bytes };
        view.check_headers()?;
        Ok(view)
    }

    fn check_headers(&self) -> Result<()> {
        let layout = self.shape.layout;
        for (b, block) in self.bytes.chunks_exact(layout.block_bytes()).enumerate() {
            let (d, m) = header_params(layout.kind, &block[..layout.header_bytes()]);
            if !d.is_finite() || !m.is_finite() {
                return Err(Error::NonFinite {
                    what: "block scale or min",
                    index: b,
                });
            }
        }
        Ok(())
    }

    /// The validated shape.
    pub fn shape(&self) -> &QuantShape {
        &self.shape
    }
    /// The format.
    pub fn format(&self) -> Format {
        self.shape.format
    }
    /// Output rows.
    pub fn n(&self) -> usize {
        self.shape.n
    }
    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.shape.k
    }
    /// All bytes, row after row.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// The bytes of row `i` (`i < n`).
    pub fn row(&self, i: usize) -> Option<&'a [u8]> {
        let rb = self.shape.row_bytes;
        self.bytes.get(i.checked_mul(rb)?..(i + 1).checked_mul(rb)?)
    }

    /// The `Q8_0` blocks, or `Err` for another format.
    pub fn blocks_q8_0(&self) -> Result<&'a [BlockQ8_0]> {
        self.blocks(Format::Q8_0)
    }
    /// The `Q4_0` blocks, or `Err` for another format.
    pub fn blocks_q4_0(&self) -> Result<&'a [BlockQ4_0]> {
        self.blocks(Format::Q4_0)
    }
    /// The `Q4_1` blocks, or `Err` for another format.
    pub fn blocks_q4_1(&self) -> Result<&'a [BlockQ4_1]> {
        self.blocks(Format::Q4_1)
    }

    fn blocks<T: bytemuck::Pod>(&self, want: Format) -> Result<&'a [T]> {
        if self.shape.format != want {
            return Err(Error::InvalidParameter {
                what: "block type does not match the matrix format",
            });
        }
        // Align-1 blocks and a length checked at construction: this cannot fail.
        bytemuck::try_cast_slice(self.bytes).map_err(|_| Error::InvalidParameter {
            what: "bytes are not a whole number of blocks",
        })
    }

    /// Dequantizes rows `rows` into `out` (`rows.len() · k` values).
    pub fn dequantize_rows(&self, rows: core::ops::Range<usize>, out: &mut [f32]) -> Result<()> {
        crate::kernels::scalar::dequantize_rows(self, rows, out)
    }
}

/// An owned quantized matrix.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuantMatrix {
    shape: QuantShape,
    bytes: Vec<u8>,
}

#[cfg(feature = "alloc")]
impl QuantMatrix {
    /// Takes ownership of quantized bytes, with the checks of [`QuantView::new`].
    pub fn from_bytes(format: Format, n: usize, k: usize, bytes: Vec<u8>) -> Result<QuantMatrix> {
        let shape = *QuantView::new(format, n, k, &bytes)?.shape();
        Ok(QuantMatrix { shape, bytes })
    }

    /// A borrowed view, the type every kernel takes.
    pub fn view(&self) -> QuantView<'_> {
        QuantView {
            shape: self.shape,
            bytes: &self.bytes,
        }
    }
    /// The validated shape.
    pub fn shape(&self) -> &QuantShape {
        &self.shape
    }
    /// All bytes, row after row (compare these with another GGUF writer's).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The bytes, giving up the matrix.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
    /// The whole matrix dequantized to f32, row-major.
    pub fn dequantize(&self) -> Vec<f32> {
        let mut out = alloc::vec![0.0; self.shape.n * self.shape.k];
        self.view()
            .dequantize_rows(0..self.shape.n, &mut out)
            .expect("shape is validated");
        out
    }
}

/// Quantizes the row-major `n × k` matrix `weights` to `format`.
#[cfg(feature = "alloc")]
pub fn quantize(
    weights: &[f32],
    n: usize,
    k: usize,
    format: Format,
    options: &QuantOptions<'_>,
) -> Result<QuantMatrix> {
    let shape = QuantShape::new(format, n, k)?;
    let mut bytes = alloc::vec![0u8; shape.total_bytes];
    quantize_into(weights, n, k, format, options, &mut bytes)?;
    Ok(QuantMatrix { shape, bytes })
}

/// Quantizes into caller-owned bytes (`QuantShape::total_bytes` of them).
/// Rows are independent, so a caller may quantize blocks of rows on its own
/// threads by splitting `weights`, `out` and a per-element mask or importance
/// at row boundaries.
pub fn quantize_into(
    weights: &[f32],
    n: usize,
    k: usize,
    format: Format,
    options: &QuantOptions<'_>,
    out: &mut [u8],
) -> Result<()> {
    let shape = QuantShape::new(format, n, k)?;
    let nk = n * k;
    check_len("weights", nk, weights.len())?;
    check_len("quantized bytes", shape.total_bytes, out.len())?;
    if let Some(mask) = options.mask {
        check_len("mask", nk, mask.len())?;
    }
    check_finite("weights", weights)?;
    let (search, importance) = match options.search {
        ScaleSearch::Absmax => (false, None),
        ScaleSearch::Mse => (true, None),
        ScaleSearch::Weighted(imp) => {
            let a = match imp {
                Importance::PerElement(a) => {
                    check_len("importance (per element)", nk, a.len())?;
                    a
                }
                Importance::PerColumn(a) => {
                    check_len("importance (per column)", k, a.len())?;
                    a
                }
            };
            check_finite("importance", a)?;
            if let Some(index) = a.iter().position(|&v| v < 0.0) {
                return Err(Error::Negative {
                    what: "importance",
                    index,
                });
            }
            (true, Some(imp))
        }
    };
    if options.grid.steps == 0 || !(options.grid.min_ratio > 0.0 && options.grid.min_ratio <= 1.0) {
        return Err(Error::InvalidParameter {
            what: "clip grid: steps ≥ 1 and min_ratio in (0, 1]",
        });
    }

    let layout = shape.layout;
    let g = layout.group;
    for (i, (w_row, out_row)) in weights
        .chunks_exact(k)
        .zip(out.chunks_exact_mut(shape.row_bytes))
        .enumerate()
    {
        let mask_row = options.mask.map(|m| &m[i * k..(i + 1) * k]);
        for (b, (w, block)) in w_row
            .chunks_exact(g)
            .zip(out_row.chunks_exact_mut(layout.block_bytes()))
            .enumerate()
        {
            let cols = b * g..(b + 1) * g;
            let mask = mask_row.map(|m| &m[cols.clone()]);
            if format.is_gguf() && !search {
                encode_gguf(format, w, mask, block);
                continue;
            }
            let a = importance.map(|imp| match imp {
                Importance::PerElement(a) => &a[i * k + cols.start..i * k + cols.end],
                Importance::PerColumn(a) => &a[cols],
            });
            let p = fit_group(layout.kind, w, mask, a, search, options.grid);
            encode_with(layout, &p, w, mask, block);
        }
    }
    Ok(())
}

fn encode_gguf(format: Format, w: &[f32], mask: Option<&[bool]>, block: &mut [u8]) {
    match format {
        Format::Q8_0 => block.copy_from_slice(bytemuck::bytes_of(&ggml::encode_q8_0(w, mask))),
        Format::Q4_0 => block.copy_from_slice(bytemuck::bytes_of(&ggml::encode_q4_0(w, mask))),
        Format::Q4_1 => block.copy_from_slice(bytemuck::bytes_of(&ggml::encode_q4_1(w, mask))),
        _ => unreachable!("only GGUF formats reach here"),
    }
}

/// Writes one block: header `p`, then the codes of `w` (0 where masked).
fn encode_with(layout: Layout, p: &Params, w: &[f32], mask: Option<&[bool]>, block: &mut [u8]) {
    let (header, codes) = block.split_at_mut(layout.header_bytes());
    write_header(
        layout.kind,
        header,
        half::f16::from_f32(p.d),
        half::f16::from_f32(p.m),
    );
    let cb = chunk_bytes(layout.kind);
    for (c, (wc, out)) in w
        .chunks_exact(CHUNK)
        .zip(codes.chunks_exact_mut(cb))
        .enumerate()
    {
        let mut q = [0i32; CHUNK];
        for (t, (q, &v)) in q.iter_mut().zip(wc).enumerate() {
            let kept = mask.is_none_or(|m| !m[c * CHUNK + t]);
            *q = p.code(layout.kind, if kept { v } else { 0.0 });
        }
        pack_chunk(layout.kind, &q, out);
    }
}
