//! Weight formats and the byte layout each one implies.
//!
//! Every format stores a row of `k` weights as `k / g` blocks, one per
//! quantization unit (group of `g` consecutive inputs). A block is a header
//! of f16 parameters followed by the codes, align 1, little-endian, so a row
//! is plain bytes that can be viewed in place. The GGUF formats are the
//! `g = 32` cases of the general ones and share their layout byte for byte:
//!
//! | format | header | codes | value of code `q` |
//! |---|---|---|---|
//! | `Q8_0`, `Int8` symmetric | `d` | `g` × i8 | `q·d` |
//! | `Q4_0`, `Int4` symmetric | `d` | `g/2` B of nibbles | `(q−8)·d` |
//! | `Q4_1`, `Int4` asymmetric | `d`, `m` | `g/2` B of nibbles | `q·d + m` |
//! | `Int8` asymmetric | `d`, `m` | `g` × u8 | `q·d + m` |
//!
//! Nibble order (ggml's): in each run of 32 codes, byte `j` holds code `j`
//! in its low nibble and code `j + 16` in its high nibble.

use crate::error::{Error, Result};

/// How many consecutive inputs of a row share one scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    /// One unit per output row (`g = k`; `k` must be a multiple of 32).
    PerChannel,
    /// Groups of `g` inputs; `g` is a positive multiple of 32 dividing `k`.
    Size(usize),
}

/// A weight format: GGUF-exact blocks or a general int8/int4 layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// GGUF `Q8_0`: group 32, f16 `d`, 32 × i8; value `q·d`. 34 bytes.
    Q8_0,
    /// GGUF `Q4_0`: group 32, f16 `d`, 16 B of nibbles; value `(q−8)·d`. 18 bytes.
    Q4_0,
    /// GGUF `Q4_1`: group 32, f16 `d`, f16 `m`, 16 B of nibbles; value `q·d + m`. 20 bytes.
    Q4_1,
    /// General int8: symmetric (codes −127..=127) or asymmetric (u8 codes, min `m`).
    Int8 {
        /// Quantization unit.
        group: Group,
        /// `q·d + m` with unsigned codes instead of `q·d`.
        asymmetric: bool,
    },
    /// General int4: symmetric (codes −8..=7) or asymmetric (codes 0..=15, min `m`).
    Int4 {
        /// Quantization unit.
        group: Group,
        /// `q·d + m` with unsigned codes instead of `(q−8)·d`.
        asymmetric: bool,
    },
}

/// How the codes of a block are stored and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodeKind {
    /// i8 codes, value `q·d`.
    I8,
    /// u8 codes, value `q·d + m`.
    U8Min,
    /// Nibbles holding `q + 8`, value `q·d` with `q` in −8..=7.
    Nibble,
    /// Nibbles holding `q`, value `q·d + m` with `q` in 0..=15.
    NibbleMin,
}

impl CodeKind {
    /// Smallest code the encoders produce (as the signed value `q`).
    pub const fn qmin(self) -> i32 {
        match self {
            CodeKind::I8 => -127,
            CodeKind::Nibble => -8,
            CodeKind::U8Min | CodeKind::NibbleMin => 0,
        }
    }

    /// Largest code the encoders produce.
    pub const fn qmax(self) -> i32 {
        match self {
            CodeKind::I8 => 127,
            CodeKind::Nibble => 7,
            CodeKind::U8Min => 255,
            CodeKind::NibbleMin => 15,
        }
    }

    /// Whether the block header carries a min `m` besides the scale `d`.
    pub const fn has_min(self) -> bool {
        matches!(self, CodeKind::U8Min | CodeKind::NibbleMin)
    }

    /// Bits per code.
    pub const fn bits(self) -> usize {
        match self {
            CodeKind::I8 | CodeKind::U8Min => 8,
            CodeKind::Nibble | CodeKind::NibbleMin => 4,
        }
    }
}

/// The resolved byte layout of a format for a given `k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Code storage.
    pub kind: CodeKind,
    /// Inputs per block.
    pub group: usize,
}

impl Layout {
    /// Bytes of f16 parameters in front of each block's codes.
    pub const fn header_bytes(&self) -> usize {
        if self.kind.has_min() { 4 } else { 2 }
    }

    /// Bytes of codes in one block.
    pub const fn code_bytes(&self) -> usize {
        self.group * self.kind.bits() / 8
    }

    /// Bytes of one block (header and codes).
    pub const fn block_bytes(&self) -> usize {
        self.header_bytes() + self.code_bytes()
    }
}

impl Format {
    /// The general symmetric int4 format with groups of `g`.
    pub const fn int4(g: usize) -> Format {
        Format::Int4 {
            group: Group::Size(g),
            asymmetric: false,
        }
    }

    /// The general symmetric int8 format with groups of `g`.
    pub const fn int8(g: usize) -> Format {
        Format::Int8 {
            group: Group::Size(g),
            asymmetric: false,
        }
    }

    /// True for the bit-exact GGUF block formats.
    pub const fn is_gguf(&self) -> bool {
        matches!(self, Format::Q8_0 | Format::Q4_0 | Format::Q4_1)
    }

    /// The byte layout for rows of `k` inputs, or why this format cannot hold them.
    pub fn layout(&self, k: usize) -> Result<Layout> {
        let (kind, group) = match *self {
            Format::Q8_0 => (CodeKind::I8, Group::Size(32)),
            Format::Q4_0 => (CodeKind::Nibble, Group::Size(32)),
            Format::Q4_1 => (CodeKind::NibbleMin, Group::Size(32)),
            Format::Int8 { group, asymmetric } => (
                if asymmetric {
                    CodeKind::U8Min
                } else {
                    CodeKind::I8
                },
                group,
            ),
            Format::Int4 { group, asymmetric } => (
                if asymmetric {
                    CodeKind::NibbleMin
                } else {
                    CodeKind::Nibble
                },
                group,
            ),
        };
        if k == 0 {
            return Err(Error::ZeroDimension { what: "k" });
        }
        // Keeps `group · bits` and every per-block size below in range.
        if k > usize::MAX / 16 {
            return Err(Error::SizeOverflow { what: "k" });
        }
        let group = match group {
            Group::PerChannel => k,
            Group::Size(g) => g,
        };
        if group == 0 || !group.is_multiple_of(32) || !k.is_multiple_of(group) {
            return Err(Error::InvalidGroupSize { group, k });
        }
        Ok(Layout { kind, group })
    }
}

impl core::fmt::Display for Format {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let (bits, group, asym) = match *self {
            Format::Q8_0 => return f.write_str("q8_0"),
            Format::Q4_0 => return f.write_str("q4_0"),
            Format::Q4_1 => return f.write_str("q4_1"),
            Format::Int8 { group, asymmetric } => (8, group, asymmetric),
            Format::Int4 { group, asymmetric } => (4, group, asymmetric),
        };
        write!(f, "int{bits}")?;
        if asym {
            f.write_str("a")?;
        }
        match group {
            Group::PerChannel => f.write_str("-pc"),
            Group::Size(g) => write!(f, "-g{g}"),
        }
    }
}

impl core::str::FromStr for Format {
    type Err = Error;

    /// Parses the names `Display` writes: `q8_0`, `q4_0`, `q4_1`,
    /// `int4-g128`, `int8a-g32`, `int4-pc`, ...
    fn from_str(s: &str) -> Result<Format> {
        let bad = Error::InvalidParameter {
            what: "format name: q8_0, q4_0, q4_1, int{4,8}[a]-g<size> or int{4,8}[a]-pc",
        };
        match s {
            "q8_0" => return Ok(Format::Q8_0),
            "q4_0" => return Ok(Format::Q4_0),
            "q4_1" => return Ok(Format::Q4_1),
            _ => {}
        }
        let (head, tail) = s.split_once('-').ok_or(bad.clone())?;
        let (bits, asymmetric) = match head {
            "int4" => (4, false),
            "int4a" => (4, true),
            "int8" => (8, false),
            "int8a" => (8, true),
            _ => return Err(bad),
        };
        let group = if tail == "pc" {
            Group::PerChannel
        } else {
            let g = tail.strip_prefix('g').ok_or(bad.clone())?;
            Group::Size(g.parse().map_err(|_| bad.clone())?)
        };
        Ok(if bits == 4 {
            Format::Int4 { group, asymmetric }
        } else {
            Format::Int8 { group, asymmetric }
        })
    }
}
