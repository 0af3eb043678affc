//! The cwpq container: named tensors, each a protected quantized linear
//! layer or a plain f32/f16/bf16 tensor, laid out so a reader can view them
//! in place.
//!
//! # Format, version 1.0
//!
//! All integers little-endian. Offsets and lengths are u64 byte counts from
//! the start of the file.
//!
//! **Header** (64 bytes at offset 0):
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | `[u8; 8]` | magic `"CWPQ\0\r\n\x1a"` |
//! | 8 | u16 | major version = 1 (another major is rejected) |
//! | 10 | u16 | minor version = 0 (a higher minor is read as 1.0) |
//! | 12 | u32 | alignment `A`: a power of two, 8 ≤ A ≤ 2²⁰ (the writer uses 64) |
//! | 16 | u64 | tensor count `T` |
//! | 24 | u64 | table offset (a multiple of `A`) |
//! | 32 | u64 | names offset |
//! | 40 | u64 | names length |
//! | 48 | u32 | flags: bit 0 = the table holds CRC-32s of the sections; other bits 0 |
//! | 52 | 12 bytes | reserved, 0 |
//!
//! **Table**: `T` entries of 192 bytes at the table offset:
//!
//! | offset | type | field |
//! |---|---|---|
//! | 0 | u64 | name start, relative to the names section |
//! | 8 | u64 | name length (UTF-8, unique in the file) |
//! | 16 | u32 | kind: 1 = protected linear, 2 = f32, 3 = f16, 4 = bf16 |
//! | 20 | u32 | rank `r`, 1 ≤ r ≤ 4 (linear: 2) |
//! | 24 | `[u64; 4]` | dims, row-major, unused ones 0; linear: `[n, k, 0, 0]` (W is n × k, y = x·Wᵀ) |
//! | 56 | u32 | format (linear): 1 = Q8_0, 2 = Q4_0, 3 = Q4_1, 4 = int8, 5 = int4; else 0 |
//! | 60 | u32 | asymmetric (int8/int4: 0 or 1; Q4_1: 1; else 0) |
//! | 64 | u64 | group (int8/int4: g, or 0 for per-channel; GGUF formats: 32) |
//! | 72 | u32 | scale search used: 0 unknown, 1 absmax, 2 MSE, 3 weighted |
//! | 76 | u32 | protected value type: 0 = no protected set, 1 = f16, 2 = bf16, 3 = f32 |
//! | 80 | `[(u64, u64); 4]` | sections as (offset, length): linear: blocks, row_ptr, cols, values; dense: data, then three (0, 0) |
//! | 144 | `[u32; 4]` | CRC-32 (zlib's) of each section, when flag bit 0; else 0 |
//! | 160 | 32 bytes | reserved, 0 |
//!
//! **Sections.** Every non-empty section starts at a multiple of `A` and
//! lies inside the file. The layout is strictly ordered: header, table,
//! names, then every tensor's non-empty sections in table order, each
//! starting at or after the end of the one before (so nothing overlaps).
//! Lengths must equal what the entry implies: blocks are the
//! [`crate::quant`] layout of the format (`n · k/g` blocks of header and
//! codes); row_ptr is u32 × (n + 1); cols are u16 when k ≤ 65 536, else u32;
//! values are 2 (f16, bf16) or 4 (f32) bytes each; a dense tensor is
//! `Π dims × dtype size`. A linear entry with value type 0 has three (0, 0)
//! protected sections. Scales, mins and protected values must be finite, and
//! the protected set must satisfy [`crate::protect::ProtectedView::new`].

use alloc::{string::String, vec, vec::Vec};

use super::{Limits, Reader, crc32, product, slice_at};
use crate::error::{Error, Result};
use crate::layer::LinearView;
use crate::protect::{ProtectedView, ValueType};
use crate::quant::{Format, Group, QuantShape, QuantView};

/// The magic bytes at offset 0.
pub const MAGIC: [u8; 8] = *b"CWPQ\0\r\n\x1a";
/// The major version this reader understands.
pub const MAJOR: u16 = 1;
/// The minor version this writer writes.
pub const MINOR: u16 = 0;
const HEADER: u64 = 64;
const ENTRY: u64 = 192;
const WRITE_ALIGN: u64 = 64;

/// Element type of a dense tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DType {
    /// f32.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    Bf16,
}

impl DType {
    /// Bytes per element.
    pub const fn size(self) -> u64 {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::Bf16 => 2,
        }
    }
}

/// Which scale search produced a stored layer (recorded, not checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SearchTag {
    /// Not recorded.
    Unknown,
    /// Absmax round-to-nearest.
    Absmax,
    /// MSE clip search.
    Mse,
    /// Importance-weighted search.
    Weighted,
}

/// One tensor of a container.
#[derive(Debug, Clone, Copy)]
pub enum Tensor<'a> {
    /// A quantized linear layer and its protected set, viewed in place.
    Linear {
        /// The layer, ready for the kernels.
        view: LinearView<'a>,
        /// How its scales were chosen.
        search: SearchTag,
    },
    /// A plain tensor: little-endian elements of `dtype`, row-major.
    Dense {
        /// Element type.
        dtype: DType,
        /// Dimensions (`rank` of them).
        dims: [u64; 4],
        /// Number of dimensions.
        rank: usize,
        /// The raw elements (any alignment).
        data: &'a [u8],
    },
}

/// A validated container over borrowed bytes.
#[derive(Debug, Clone)]
pub struct Container<'a> {
    tensors: Vec<(&'a str, Tensor<'a>)>,
    minor: u16,
}

fn bad(what: &'static str, offset: u64) -> Error {
    Error::InvalidFile { what, offset }
}

fn format_of(code: u32, asym: u32, group: u64, at: u64) -> Result<Format> {
    let asymmetric = match asym {
        0 => false,
        1 => true,
        _ => return Err(bad("asymmetric flag must be 0 or 1", at + 60)),
    };
    let gguf = |f: Format, want_asym: bool| {
        if asymmetric != want_asym || group != 32 {
            Err(bad(
                "GGUF format with a group other than 32 or a wrong asymmetric flag",
                at + 56,
            ))
        } else {
            Ok(f)
        }
    };
    let group = if group == 0 {
        Group::PerChannel
    } else {
        Group::Size(usize::try_from(group).map_err(|_| Error::SizeOverflow { what: "group" })?)
    };
    match code {
        1 => gguf(Format::Q8_0, false),
        2 => gguf(Format::Q4_0, false),
        3 => gguf(Format::Q4_1, true),
        4 => Ok(Format::Int8 { group, asymmetric }),
        5 => Ok(Format::Int4 { group, asymmetric }),
        _ => Err(bad("unknown weight format", at + 56)),
    }
}

fn format_code(f: Format) -> (u32, u32, u64) {
    let g = |group: Group| match group {
        Group::PerChannel => 0,
        Group::Size(g) => g as u64,
    };
    match f {
        Format::Q8_0 => (1, 0, 32),
        Format::Q4_0 => (2, 0, 32),
        Format::Q4_1 => (3, 1, 32),
        Format::Int8 { group, asymmetric } => (4, u32::from(asymmetric), g(group)),
        Format::Int4 { group, asymmetric } => (5, u32::from(asymmetric), g(group)),
    }
}

impl<'a> Container<'a> {
    /// Parses and validates a container with the default [`Limits`].
    pub fn parse(bytes: &'a [u8]) -> Result<Container<'a>> {
        Container::parse_with(bytes, &Limits::default())
    }

    /// Parses and validates a container; `bytes` may have any alignment.
    pub fn parse_with(bytes: &'a [u8], limits: &Limits) -> Result<Container<'a>> {
        let len = bytes.len() as u64;
        let mut r = Reader::new(bytes, 0);
        if r.take(8, "header")? != MAGIC {
            return Err(bad("not a cwpq container (magic)", 0));
        }
        let major = r.u16("header")?;
        let minor = r.u16("header")?;
        if major != MAJOR {
            return Err(bad("unsupported major version", 8));
        }
        let align = u64::from(r.u32("header")?);
        if !align.is_power_of_two() || !(8..=1 << 20).contains(&align) {
            return Err(bad("alignment must be a power of two in 8..=2^20", 12));
        }
        let count = r.u64("header")?;
        let table_off = r.u64("header")?;
        let names_off = r.u64("header")?;
        let names_len = r.u64("header")?;
        let flags = r.u32("header")?;
        if flags & !1 != 0 {
            return Err(bad("unknown flags", 48));
        }
        if r.take(12, "header")?.iter().any(|&b| b != 0) {
            return Err(bad("reserved header bytes must be 0", 52));
        }
        if count > limits.max_tensors {
            return Err(Error::LimitExceeded {
                what: "tensor count",
                limit: limits.max_tensors,
                actual: count,
            });
        }
        let table_len = count
            .checked_mul(ENTRY)
            .ok_or(Error::SizeOverflow { what: "table" })?;
        if table_off % align != 0 || table_off < HEADER {
            return Err(bad("table offset misaligned or inside the header", 24));
        }
        let table = slice_at(bytes, table_off, table_len, "tensor table")?;
        let table_end = table_off + table_len;
        if names_off < table_end {
            return Err(bad("names section overlaps the table", 32));
        }
        let names = slice_at(bytes, names_off, names_len, "names section")?;
        let mut cursor = names_off + names_len; // sections must start here or later
        // Bounded by the file size: each entry took 192 bytes of it.
        let mut tensors = Vec::with_capacity(count as usize);
        for e in 0..count {
            let at = table_off + e * ENTRY;
            let mut r = Reader::new(table, (e * ENTRY) as usize);
            let name_start = r.u64("entry")?;
            let name_len = r.u64("entry")?;
            let kind = r.u32("entry")?;
            let rank = r.u32("entry")?;
            let mut dims = [0u64; 4];
            for d in &mut dims {
                *d = r.u64("entry")?;
            }
            let format = r.u32("entry")?;
            let asym = r.u32("entry")?;
            let group = r.u64("entry")?;
            let search = r.u32("entry")?;
            let value_type = r.u32("entry")?;
            let mut sections = [(0u64, 0u64); 4];
            for s in &mut sections {
                *s = (r.u64("entry")?, r.u64("entry")?);
            }
            let mut crcs = [0u32; 4];
            for c in &mut crcs {
                *c = r.u32("entry")?;
            }
            if r.take(32, "entry")?.iter().any(|&b| b != 0) {
                return Err(bad("reserved entry bytes must be 0", at + 160));
            }
            if name_len > limits.max_name_len {
                return Err(Error::LimitExceeded {
                    what: "name length",
                    limit: limits.max_name_len,
                    actual: name_len,
                });
            }
            let name = slice_at(names, name_start, name_len, "tensor name")?;
            let name = core::str::from_utf8(name).map_err(|_| bad("name is not UTF-8", at))?;
            let max_rank = limits.max_rank.min(4);
            if rank == 0 || rank > max_rank {
                return Err(Error::LimitExceeded {
                    what: "rank",
                    limit: u64::from(max_rank),
                    actual: u64::from(rank),
                });
            }
            let rank = rank as usize;
            if dims[..rank].contains(&0) {
                return Err(Error::ZeroDimension {
                    what: "tensor dimension",
                });
            }
            if dims[rank..].iter().any(|&d| d != 0) {
                return Err(bad("unused dimensions must be 0", at + 24));
            }
            // Each non-empty section: aligned, after the previous one, inside the file.
            let mut data: [&'a [u8]; 4] = [&[]; 4];
            for (i, &(off, slen)) in sections.iter().enumerate() {
                if slen == 0 {
                    if off != 0 {
                        return Err(bad("an empty section must have offset 0", at + 80));
                    }
                    continue;
                }
                if off % align != 0 {
                    return Err(bad(
                        "section offset is not aligned",
                        at + 80 + 16 * i as u64,
                    ));
                }
                if off < cursor {
                    return Err(bad(
                        "sections overlap or are out of order",
                        at + 80 + 16 * i as u64,
                    ));
                }
                data[i] = slice_at(bytes, off, slen, "section")?;
                cursor = off + slen;
                if flags & 1 != 0 && crc32(data[i]) != crcs[i] {
                    return Err(bad("section CRC-32 mismatch", off));
                }
            }
            let search = match search {
                0 => SearchTag::Unknown,
                1 => SearchTag::Absmax,
                2 => SearchTag::Mse,
                3 => SearchTag::Weighted,
                _ => return Err(bad("unknown scale search tag", at + 72)),
            };
            let tensor = match kind {
                1 => {
                    if rank != 2 {
                        return Err(bad("a linear tensor has rank 2", at + 20));
                    }
                    let n =
                        usize::try_from(dims[0]).map_err(|_| Error::SizeOverflow { what: "n" })?;
                    let k =
                        usize::try_from(dims[1]).map_err(|_| Error::SizeOverflow { what: "k" })?;
                    let format = format_of(format, asym, group, at)?;
                    let shape = QuantShape::new(format, n, k)?;
                    if sections[0].1 != shape.total_bytes() as u64 {
                        return Err(Error::LengthMismatch {
                            what: "quantized blocks section",
                            expected: shape.total_bytes(),
                            actual: sections[0].1 as usize,
                        });
                    }
                    let quant = QuantView::new(format, n, k, data[0])?;
                    let protected = match value_type {
                        0 => {
                            if sections[1..].iter().any(|s| s.1 != 0) {
                                return Err(bad(
                                    "protected sections without a value type",
                                    at + 76,
                                ));
                            }
                            None
                        }
                        1..=3 => {
                            let vt = [ValueType::F16, ValueType::Bf16, ValueType::F32]
                                [value_type as usize - 1];
                            Some(ProtectedView::new(n, k, vt, data[1], data[2], data[3])?)
                        }
                        _ => return Err(bad("unknown protected value type", at + 76)),
                    };
                    Tensor::Linear {
                        view: LinearView::new(quant, protected)?,
                        search,
                    }
                }
                2..=4 => {
                    if format != 0
                        || asym != 0
                        || group != 0
                        || value_type != 0
                        || sections[1..].iter().any(|s| s.1 != 0)
                    {
                        return Err(bad("a dense tensor has only a data section", at + 56));
                    }
                    let dtype = [DType::F32, DType::F16, DType::Bf16][kind as usize - 2];
                    let want = product(&dims[..rank], "tensor size")?
                        .checked_mul(dtype.size())
                        .ok_or(Error::SizeOverflow {
                            what: "tensor bytes",
                        })?;
                    if want != sections[0].1 {
                        return Err(Error::InvalidFile {
                            what: "dense section length does not match its dims",
                            offset: at + 88,
                        });
                    }
                    Tensor::Dense {
                        dtype,
                        dims,
                        rank,
                        data: data[0],
                    }
                }
                _ => return Err(bad("unknown tensor kind", at + 16)),
            };
            tensors.push((name, tensor));
        }
        if cursor > len {
            return Err(Error::Truncated {
                what: "sections",
                needed: cursor,
                available: len,
            });
        }
        let mut sorted: Vec<&str> = tensors.iter().map(|t| t.0).collect();
        sorted.sort_unstable();
        if sorted.windows(2).any(|w| w[0] == w[1]) {
            return Err(bad("duplicate tensor name", table_off));
        }
        Ok(Container { tensors, minor })
    }

    /// The tensors in file order.
    pub fn tensors(&self) -> &[(&'a str, Tensor<'a>)] {
        &self.tensors
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<'a>> {
        self.tensors.iter().find(|t| t.0 == name).map(|t| &t.1)
    }

    /// The minor version the file declared.
    pub fn minor(&self) -> u16 {
        self.minor
    }
}

struct Pending {
    name: String,
    kind: u32,
    rank: u32,
    dims: [u64; 4],
    format: (u32, u32, u64),
    search: u32,
    value_type: u32,
    sections: [Vec<u8>; 4],
}

/// Builds a container in memory.
#[derive(Default)]
pub struct ContainerWriter {
    entries: Vec<Pending>,
    crc: bool,
}

impl ContainerWriter {
    /// An empty container; `crc` stores a CRC-32 of every section.
    pub fn new(crc: bool) -> ContainerWriter {
        ContainerWriter {
            entries: Vec::new(),
            crc,
        }
    }

    /// Adds a protected linear layer (the view's bytes are copied).
    pub fn add_linear(
        &mut self,
        name: &str,
        layer: &LinearView<'_>,
        search: SearchTag,
    ) -> &mut Self {
        let q = &layer.quant;
        let (rp, cols, vals, vt) = match &layer.protected {
            Some(p) => {
                let (a, b, c) = p.as_bytes();
                let vt = match p.value_type() {
                    ValueType::F16 => 1,
                    ValueType::Bf16 => 2,
                    ValueType::F32 => 3,
                };
                (a.to_vec(), b.to_vec(), c.to_vec(), vt)
            }
            None => (Vec::new(), Vec::new(), Vec::new(), 0),
        };
        self.entries.push(Pending {
            name: name.into(),
            kind: 1,
            rank: 2,
            dims: [q.n() as u64, q.k() as u64, 0, 0],
            format: format_code(q.format()),
            search: match search {
                SearchTag::Unknown => 0,
                SearchTag::Absmax => 1,
                SearchTag::Mse => 2,
                SearchTag::Weighted => 3,
            },
            value_type: vt,
            sections: [q.as_bytes().to_vec(), rp, cols, vals],
        });
        self
    }

    /// Adds a dense tensor from raw little-endian elements of `dtype`.
    pub fn add_dense(
        &mut self,
        name: &str,
        dtype: DType,
        dims: &[u64],
        data: Vec<u8>,
    ) -> Result<&mut Self> {
        if dims.is_empty() || dims.len() > 4 {
            return Err(Error::InvalidParameter {
                what: "rank must be 1..=4",
            });
        }
        let want = product(dims, "tensor size")?
            .checked_mul(dtype.size())
            .ok_or(Error::SizeOverflow {
                what: "tensor bytes",
            })?;
        if want != data.len() as u64 {
            return Err(Error::LengthMismatch {
                what: "dense tensor bytes",
                expected: want as usize,
                actual: data.len(),
            });
        }
        let mut d = [0u64; 4];
        d[..dims.len()].copy_from_slice(dims);
        self.entries.push(Pending {
            name: name.into(),
            kind: match dtype {
                DType::F32 => 2,
                DType::F16 => 3,
                DType::Bf16 => 4,
            },
            rank: dims.len() as u32,
            dims: d,
            format: (0, 0, 0),
            search: 0,
            value_type: 0,
            sections: [data, Vec::new(), Vec::new(), Vec::new()],
        });
        Ok(self)
    }

    /// Adds a dense f32 tensor.
    pub fn add_f32(&mut self, name: &str, dims: &[u64], data: &[f32]) -> Result<&mut Self> {
        self.add_dense(
            name,
            DType::F32,
            dims,
            data.iter().flat_map(|v| v.to_le_bytes()).collect(),
        )
    }

    /// The file's bytes.
    pub fn finish(&self) -> Result<Vec<u8>> {
        let mut names: Vec<&str> = self.entries.iter().map(|e| e.name.as_str()).collect();
        names.sort_unstable();
        if names.windows(2).any(|w| w[0] == w[1]) {
            return Err(Error::InvalidParameter {
                what: "duplicate tensor name",
            });
        }
        let up = |x: u64| x.next_multiple_of(WRITE_ALIGN);
        let count = self.entries.len() as u64;
        let table_off = HEADER;
        let names_off = table_off + count * ENTRY;
        let names_len: u64 = self.entries.iter().map(|e| e.name.len() as u64).sum();
        let mut end = names_off + names_len;
        let mut offsets = Vec::with_capacity(self.entries.len());
        for e in &self.entries {
            let mut offs = [(0u64, 0u64); 4];
            for (i, s) in e.sections.iter().enumerate() {
                if !s.is_empty() {
                    offs[i] = (up(end), s.len() as u64);
                    end = up(end) + s.len() as u64;
                }
            }
            offsets.push(offs);
        }
        // No padding after the last section: every byte of the file is needed.
        let mut out = vec![0u8; end as usize];
        out[..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&MAJOR.to_le_bytes());
        out[10..12].copy_from_slice(&MINOR.to_le_bytes());
        out[12..16].copy_from_slice(&(WRITE_ALIGN as u32).to_le_bytes());
        out[16..24].copy_from_slice(&count.to_le_bytes());
        out[24..32].copy_from_slice(&table_off.to_le_bytes());
        out[32..40].copy_from_slice(&names_off.to_le_bytes());
        out[40..48].copy_from_slice(&names_len.to_le_bytes());
        out[48..52].copy_from_slice(&u32::from(self.crc).to_le_bytes());
        let mut name_pos = 0u64;
        for (i, (e, offs)) in self.entries.iter().zip(&offsets).enumerate() {
            let mut w = Vec::with_capacity(ENTRY as usize);
            w.extend_from_slice(&name_pos.to_le_bytes());
            w.extend_from_slice(&(e.name.len() as u64).to_le_bytes());
            w.extend_from_slice(&e.kind.to_le_bytes());
            w.extend_from_slice(&e.rank.to_le_bytes());
            for d in e.dims {
                w.extend_from_slice(&d.to_le_bytes());
            }
            w.extend_from_slice(&e.format.0.to_le_bytes());
            w.extend_from_slice(&e.format.1.to_le_bytes());
            w.extend_from_slice(&e.format.2.to_le_bytes());
            w.extend_from_slice(&e.search.to_le_bytes());
            w.extend_from_slice(&e.value_type.to_le_bytes());
            for (off, len) in offs {
                w.extend_from_slice(&off.to_le_bytes());
                w.extend_from_slice(&len.to_le_bytes());
            }
            for s in &e.sections {
                let c = if self.crc && !s.is_empty() {
                    crc32(s)
                } else {
                    0
                };
                w.extend_from_slice(&c.to_le_bytes());
            }
            w.resize(ENTRY as usize, 0);
            let at = (table_off + i as u64 * ENTRY) as usize;
            out[at..at + ENTRY as usize].copy_from_slice(&w);
            let np = (names_off + name_pos) as usize;
            out[np..np + e.name.len()].copy_from_slice(e.name.as_bytes());
            name_pos += e.name.len() as u64;
            for (s, (off, len)) in e.sections.iter().zip(offs) {
                out[*off as usize..(*off + *len) as usize].copy_from_slice(s);
            }
        }
        Ok(out)
    }
}
