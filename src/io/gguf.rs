//! GGUF v3 interop, written in the crate: read a file's header, metadata
//! (skipped, with caps) and tensor infos; view Q4_0/Q4_1/Q8_0/F16/F32/BF16
//! tensors in place; write files of those types.
//!
//! A protected set travels as three companion tensors that other readers
//! ignore: `<name>.cwp.row_ptr` (I32, n + 1), `<name>.cwp.cols` (I16 holding
//! u16 columns when k ≤ 65 536, else I32) and `<name>.cwp.vals` (F16). Their
//! bytes are exactly the [`ProtectedView`] arrays, so reading them back is
//! lossless and copies nothing.
//!
//! GGUF lists dimensions innermost first: a row-major `n × k` weight has
//! dims `[k, n]`.

use alloc::{format, string::String, vec, vec::Vec};

use super::{Limits, Reader, product, slice_at};
use crate::error::{Error, Result};
use crate::layer::LinearView;
use crate::protect::{ProtectedView, ValueType};
use crate::quant::{Format, QuantView};

/// `"GGUF"` read as a little-endian u32.
pub const MAGIC: u32 = 0x4655_4747;
const VERSION: u32 = 3;
const DEFAULT_ALIGNMENT: u64 = 32;

/// The ggml tensor types this crate reads and writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// f32.
    F32,
    /// f16.
    F16,
    /// Q4_0 blocks.
    Q4_0,
    /// Q4_1 blocks.
    Q4_1,
    /// Q8_0 blocks.
    Q8_0,
    /// i16.
    I16,
    /// i32.
    I32,
    /// bf16.
    Bf16,
    /// Any other ggml type (its data is not sliced or checked).
    Other(u32),
}

impl GgmlType {
    fn from_id(id: u32) -> GgmlType {
        match id {
            0 => GgmlType::F32,
            1 => GgmlType::F16,
            2 => GgmlType::Q4_0,
            3 => GgmlType::Q4_1,
            8 => GgmlType::Q8_0,
            25 => GgmlType::I16,
            26 => GgmlType::I32,
            30 => GgmlType::Bf16,
            other => GgmlType::Other(other),
        }
    }

    fn id(self) -> u32 {
        match self {
            GgmlType::F32 => 0,
            GgmlType::F16 => 1,
            GgmlType::Q4_0 => 2,
            GgmlType::Q4_1 => 3,
            GgmlType::Q8_0 => 8,
            GgmlType::I16 => 25,
            GgmlType::I32 => 26,
            GgmlType::Bf16 => 30,
            GgmlType::Other(id) => id,
        }
    }

    /// `(elements per block, bytes per block)`, for the known types.
    fn block(self) -> Option<(u64, u64)> {
        Some(match self {
            GgmlType::F32 | GgmlType::I32 => (1, 4),
            GgmlType::F16 | GgmlType::I16 | GgmlType::Bf16 => (1, 2),
            GgmlType::Q4_0 => (32, 18),
            GgmlType::Q4_1 => (32, 20),
            GgmlType::Q8_0 => (32, 34),
            GgmlType::Other(_) => return None,
        })
    }
}

/// One tensor of a GGUF file.
#[derive(Debug, Clone, Copy)]
pub struct GgufTensor<'a> {
    /// Its name.
    pub name: &'a str,
    /// Dimensions, innermost first (`rank` of them).
    pub dims: [u64; 4],
    /// Number of dimensions.
    pub rank: usize,
    /// Element type.
    pub ty: GgmlType,
    /// Its bytes (empty for types this crate does not know).
    pub data: &'a [u8],
}

/// A validated GGUF file over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    tensors: Vec<GgufTensor<'a>>,
    alignment: u64,
    metadata: u64,
}

fn bad(what: &'static str, offset: usize) -> Error {
    Error::InvalidFile {
        what,
        offset: offset as u64,
    }
}

fn string<'a>(r: &mut Reader<'a>, max: u64, what: &'static str) -> Result<&'a [u8]> {
    let len = r.u64(what)?;
    if len > max {
        return Err(Error::LimitExceeded {
            what,
            limit: max,
            actual: len,
        });
    }
    r.take(len, what)
}

/// Skips one metadata value of type `ty`; returns a u32 value when it is one.
fn skip_value(r: &mut Reader<'_>, ty: u32, depth: u32, limits: &Limits) -> Result<Option<u64>> {
    let fixed = |ty: u32| -> Option<u64> {
        Some(match ty {
            0 | 1 | 7 => 1,
            2 | 3 => 2,
            4..=6 => 4,
            10..=12 => 8,
            _ => return None,
        })
    };
    if let Some(size) = fixed(ty) {
        let b = r.take(size, "metadata value")?;
        return Ok((ty == 4).then(|| u64::from(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))));
    }
    match ty {
        8 => {
            string(r, u64::MAX, "metadata string")?;
        }
        9 => {
            if depth >= limits.max_array_depth {
                return Err(Error::LimitExceeded {
                    what: "metadata array depth",
                    limit: u64::from(limits.max_array_depth),
                    actual: u64::from(depth) + 1,
                });
            }
            let at = r.pos();
            let elem = r.u32("metadata array")?;
            let count = r.u64("metadata array")?;
            if let Some(size) = fixed(elem) {
                let total = count.checked_mul(size).ok_or(Error::SizeOverflow {
                    what: "metadata array",
                })?;
                r.take(total, "metadata array")?;
            } else if elem == 8 || elem == 9 {
                // Each element takes at least 8 (string) or 12 (array) bytes:
                // a count beyond that is a lie, caught before looping.
                let least = if elem == 8 { 8 } else { 12 };
                if count > r.remaining() as u64 / least {
                    return Err(Error::Truncated {
                        what: "metadata array",
                        needed: count.saturating_mul(least),
                        available: r.remaining() as u64,
                    });
                }
                for _ in 0..count {
                    skip_value(r, elem, depth + 1, limits)?;
                }
            } else {
                return Err(bad("unknown metadata array element type", at));
            }
        }
        _ => return Err(bad("unknown metadata value type", r.pos())),
    }
    Ok(None)
}

impl<'a> Gguf<'a> {
    /// Parses and validates a GGUF v3 file with the default [`Limits`].
    pub fn parse(bytes: &'a [u8]) -> Result<Gguf<'a>> {
        Gguf::parse_with(bytes, &Limits::default())
    }

    /// Parses and validates a GGUF v3 file; `bytes` may have any alignment.
    pub fn parse_with(bytes: &'a [u8], limits: &Limits) -> Result<Gguf<'a>> {
        let mut r = Reader::new(bytes, 0);
        if r.u32("header")? != MAGIC {
            return Err(bad("not a GGUF file (magic)", 0));
        }
        if r.u32("header")? != VERSION {
            return Err(bad("unsupported GGUF version (only 3)", 4));
        }
        let count = r.u64("header")?;
        let kvs = r.u64("header")?;
        if count > limits.max_tensors {
            return Err(Error::LimitExceeded {
                what: "tensor count",
                limit: limits.max_tensors,
                actual: count,
            });
        }
        if kvs > limits.max_metadata {
            return Err(Error::LimitExceeded {
                what: "metadata count",
                limit: limits.max_metadata,
                actual: kvs,
            });
        }
        let mut alignment = DEFAULT_ALIGNMENT;
        for _ in 0..kvs {
            let key = string(&mut r, limits.max_name_len, "metadata key")?;
            let at = r.pos();
            let ty = r.u32("metadata type")?;
            let v = skip_value(&mut r, ty, 0, limits)?;
            if key == b"general.alignment" {
                alignment = v.ok_or(bad("general.alignment must be a u32", at))?;
                if alignment == 0 || !alignment.is_power_of_two() {
                    return Err(bad("general.alignment must be a non-zero power of two", at));
                }
            }
        }
        // Each tensor info takes at least 8 + 4 + 4 + 8 = 24 bytes.
        if count > r.remaining() as u64 / 24 {
            return Err(Error::Truncated {
                what: "tensor infos",
                needed: count.saturating_mul(24),
                available: r.remaining() as u64,
            });
        }
        let mut infos = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let at = r.pos();
            let name = string(&mut r, limits.max_name_len, "tensor name")?;
            let name =
                core::str::from_utf8(name).map_err(|_| bad("tensor name is not UTF-8", at))?;
            let rank = r.u32("tensor info")?;
            let max_rank = limits.max_rank.min(4);
            if rank == 0 || rank > max_rank {
                return Err(Error::LimitExceeded {
                    what: "rank",
                    limit: u64::from(max_rank),
                    actual: u64::from(rank),
                });
            }
            let mut dims = [0u64; 4];
            for d in dims.iter_mut().take(rank as usize) {
                *d = r.u64("tensor info")?;
                if *d == 0 {
                    return Err(Error::ZeroDimension {
                        what: "tensor dimension",
                    });
                }
            }
            let ty = GgmlType::from_id(r.u32("tensor info")?);
            let offset = r.u64("tensor info")?;
            if offset % alignment != 0 {
                return Err(bad("tensor offset is not a multiple of the alignment", at));
            }
            infos.push((name, dims, rank as usize, ty, offset));
        }
        let data_start = (r.pos() as u64).next_multiple_of(alignment);
        let mut tensors = Vec::with_capacity(infos.len());
        let mut spans = Vec::with_capacity(infos.len());
        for (name, dims, rank, ty, offset) in infos {
            let data = match ty.block() {
                Some((per, size)) => {
                    if dims[0] % per != 0 {
                        return Err(bad("row length is not a multiple of the block size", 0));
                    }
                    let elems = product(&dims[..rank], "tensor size")?;
                    let len = (elems / per).checked_mul(size).ok_or(Error::SizeOverflow {
                        what: "tensor bytes",
                    })?;
                    let start = data_start.checked_add(offset).ok_or(Error::SizeOverflow {
                        what: "tensor offset",
                    })?;
                    let data = slice_at(bytes, start, len, "tensor data")?;
                    if len > 0 {
                        spans.push((start, start + len));
                    }
                    data
                }
                None => &[][..],
            };
            tensors.push(GgufTensor {
                name,
                dims,
                rank,
                ty,
                data,
            });
        }
        spans.sort_unstable();
        if spans.windows(2).any(|w| w[1].0 < w[0].1) {
            return Err(bad("tensor data overlap", spans[0].0 as usize));
        }
        let mut names: Vec<&str> = tensors.iter().map(|t| t.name).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("duplicate tensor name", 0));
        }
        Ok(Gguf {
            tensors,
            alignment,
            metadata: kvs,
        })
    }

    /// The tensors in file order.
    pub fn tensors(&self) -> &[GgufTensor<'a>] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&GgufTensor<'a>> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// The data alignment (`general.alignment`, default 32).
    pub fn alignment(&self) -> u64 {
        self.alignment
    }

    /// Number of metadata entries (skipped).
    pub fn metadata_count(&self) -> u64 {
        self.metadata
    }

    /// The Q4_0/Q4_1/Q8_0 tensor `name` as a kernel view, with its protected
    /// set when the `.cwp.*` companions are present.
    pub fn linear(&self, name: &str) -> Result<LinearView<'a>> {
        let t = self.get(name).ok_or(Error::InvalidParameter {
            what: "no tensor of that name",
        })?;
        let format = match t.ty {
            GgmlType::Q4_0 => Format::Q4_0,
            GgmlType::Q4_1 => Format::Q4_1,
            GgmlType::Q8_0 => Format::Q8_0,
            _ => {
                return Err(Error::InvalidParameter {
                    what: "tensor is not Q4_0, Q4_1 or Q8_0",
                });
            }
        };
        if t.rank != 2 {
            return Err(Error::InvalidParameter {
                what: "a linear tensor has 2 dimensions",
            });
        }
        let k = usize::try_from(t.dims[0]).map_err(|_| Error::SizeOverflow { what: "k" })?;
        let n = usize::try_from(t.dims[1]).map_err(|_| Error::SizeOverflow { what: "n" })?;
        let quant = QuantView::new(format, n, k, t.data)?;
        let part = |suffix: &str| self.get(&format!("{name}.cwp.{suffix}"));
        let protected = match (part("row_ptr"), part("cols"), part("vals")) {
            (None, None, None) => None,
            (Some(rp), Some(cols), Some(vals)) => {
                let want_cols = if k <= 1 << 16 {
                    GgmlType::I16
                } else {
                    GgmlType::I32
                };
                if rp.ty != GgmlType::I32 || cols.ty != want_cols || vals.ty != GgmlType::F16 {
                    return Err(Error::InvalidParameter {
                        what: "companions must be row_ptr I32, cols I16 (I32 when k > 65536), vals F16",
                    });
                }
                Some(ProtectedView::new(
                    n,
                    k,
                    ValueType::F16,
                    rp.data,
                    cols.data,
                    vals.data,
                )?)
            }
            _ => {
                return Err(Error::InvalidParameter {
                    what: "a protected set needs all three .cwp companions",
                });
            }
        };
        LinearView::new(quant, protected)
    }
}

struct Pending {
    name: String,
    dims: Vec<u64>,
    ty: GgmlType,
    data: Vec<u8>,
}

/// Builds a GGUF v3 file in memory.
#[derive(Default)]
pub struct GgufWriter {
    tensors: Vec<Pending>,
}

impl GgufWriter {
    /// An empty file.
    pub fn new() -> GgufWriter {
        GgufWriter::default()
    }

    /// Adds a Q4_0/Q4_1/Q8_0 layer and, when it has one, its protected set
    /// (f16 values) as `.cwp.*` companions.
    pub fn add_linear(&mut self, name: &str, layer: &LinearView<'_>) -> Result<&mut Self> {
        let q = &layer.quant;
        let ty = match q.format() {
            Format::Q4_0 => GgmlType::Q4_0,
            Format::Q4_1 => GgmlType::Q4_1,
            Format::Q8_0 => GgmlType::Q8_0,
            _ => {
                return Err(Error::InvalidParameter {
                    what: "GGUF holds Q4_0, Q4_1 or Q8_0 layers",
                });
            }
        };
        let (n, k) = (q.n() as u64, q.k() as u64);
        self.push(name.into(), vec![k, n], ty, q.as_bytes().to_vec());
        if let Some(p) = &layer.protected {
            if p.value_type() != ValueType::F16 {
                return Err(Error::InvalidParameter {
                    what: "GGUF companions hold f16 protected values",
                });
            }
            let (rp, cols, vals) = p.as_bytes();
            let nnz = p.nnz() as u64;
            let col_ty = if k <= 1 << 16 {
                GgmlType::I16
            } else {
                GgmlType::I32
            };
            self.push(
                format!("{name}.cwp.row_ptr"),
                vec![n + 1],
                GgmlType::I32,
                rp.to_vec(),
            );
            if nnz > 0 {
                self.push(format!("{name}.cwp.cols"), vec![nnz], col_ty, cols.to_vec());
                self.push(
                    format!("{name}.cwp.vals"),
                    vec![nnz],
                    GgmlType::F16,
                    vals.to_vec(),
                );
            } else {
                // GGUF has no empty tensors: an empty set is written as none.
                self.tensors.pop();
            }
        }
        Ok(self)
    }

    /// Adds an f32 tensor with row-major `dims`.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], data: &[f32]) -> Result<&mut Self> {
        if dims.is_empty() || dims.len() > 4 || product(dims, "tensor size")? != data.len() as u64 {
            return Err(Error::InvalidParameter {
                what: "dims must be 1..=4 and match the data",
            });
        }
        let d: Vec<u64> = dims.iter().rev().copied().collect();
        self.push(
            name.into(),
            d,
            GgmlType::F32,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        );
        Ok(self)
    }

    fn push(&mut self, name: String, dims: Vec<u64>, ty: GgmlType, data: Vec<u8>) {
        self.tensors.push(Pending {
            name,
            dims,
            ty,
            data,
        });
    }

    /// The file's bytes (metadata: `general.alignment` = 32).
    pub fn finish(&self) -> Result<Vec<u8>> {
        let mut names: Vec<&str> = self.tensors.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidParameter {
                what: "duplicate tensor name",
            });
        }
        let mut out = Vec::new();
        let put_str = |out: &mut Vec<u8>, s: &str| {
            out.extend_from_slice(&(s.len() as u64).to_le_bytes());
            out.extend_from_slice(s.as_bytes());
        };
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.tensors.len() as u64).to_le_bytes());
        out.extend_from_slice(&1u64.to_le_bytes());
        put_str(&mut out, "general.alignment");
        out.extend_from_slice(&4u32.to_le_bytes());
        out.extend_from_slice(&(DEFAULT_ALIGNMENT as u32).to_le_bytes());
        let mut offset = 0u64;
        let mut offsets = Vec::with_capacity(self.tensors.len());
        for t in &self.tensors {
            put_str(&mut out, &t.name);
            out.extend_from_slice(&(t.dims.len() as u32).to_le_bytes());
            for d in &t.dims {
                out.extend_from_slice(&d.to_le_bytes());
            }
            out.extend_from_slice(&t.ty.id().to_le_bytes());
            out.extend_from_slice(&offset.to_le_bytes());
            offsets.push(offset);
            offset = (offset + t.data.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT);
        }
        let start = (out.len() as u64).next_multiple_of(DEFAULT_ALIGNMENT);
        out.resize((start + offset) as usize, 0);
        for (t, off) in self.tensors.iter().zip(offsets) {
            let at = (start + off) as usize;
            out[at..at + t.data.len()].copy_from_slice(&t.data);
        }
        Ok(out)
    }
}
