//! The GGUF block structs and the code packing shared by every format.
//!
//! Layouts follow ggml's `ggml-common.h` (`block_q8_0`, `block_q4_0`,
//! `block_q4_1`). The f16 fields are stored as `[u8; 2]` little-endian so the
//! structs have align 1 and can be viewed in any byte buffer.

use bytemuck::{Pod, Zeroable};
use half::f16;

use super::format::CodeKind;

/// Codes per run of the nibble order (and per GGUF block).
pub const CHUNK: usize = 32;

/// GGUF `block_q8_0`: value `qs[j]·d`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ8_0 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// Codes.
    pub qs: [i8; 32],
}

/// GGUF `block_q4_0`: value `(nibble − 8)·d`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ4_0 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// Byte `j`: element `j` in the low nibble, element `j + 16` in the high one.
    pub qs: [u8; 16],
}

/// GGUF `block_q4_1`: value `nibble·d + m`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct BlockQ4_1 {
    /// Scale, f16 little-endian.
    pub d: [u8; 2],
    /// Min, f16 little-endian.
    pub m: [u8; 2],
    /// Byte `j`: element `j` in the low nibble, element `j + 16` in the high one.
    pub qs: [u8; 16],
}

const _: () = assert!(core::mem::size_of::<BlockQ8_0>() == 34);
const _: () = assert!(core::mem::size_of::<BlockQ4_0>() == 18);
const _: () = assert!(core::mem::size_of::<BlockQ4_1>() == 20);
const _: () = assert!(core::mem::align_of::<BlockQ8_0>() == 1);
const _: () = assert!(core::mem::align_of::<BlockQ4_0>() == 1);
const _: () = assert!(core::mem::align_of::<BlockQ4_1>() == 1);

/// Reads a little-endian f16 as f32.
#[inline]
pub fn f16_le(bytes: [u8; 2]) -> f32 {
    f16::from_le_bytes(bytes).to_f32()
}

/// The block header's `(d, m)` as f32 (`m = 0` for formats without a min).
#[inline]
pub(crate) fn header_params(kind: CodeKind, header: &[u8]) -> (f32, f32) {
    let d = f16_le([header[0], header[1]]);
    let m = if kind.has_min() {
        f16_le([header[2], header[3]])
    } else {
        0.0
    };
    (d, m)
}

/// Writes `(d, m)` into a block header.
#[inline]
pub(crate) fn write_header(kind: CodeKind, header: &mut [u8], d: f16, m: f16) {
    header[..2].copy_from_slice(&d.to_le_bytes());
    if kind.has_min() {
        header[2..4].copy_from_slice(&m.to_le_bytes());
    }
}

/// Bytes one run of 32 codes takes.
#[inline]
pub(crate) const fn chunk_bytes(kind: CodeKind) -> usize {
    CHUNK * kind.bits() / 8
}

/// Stores 32 codes (signed values `q`, already in range) into `out`
/// (`chunk_bytes(kind)` bytes).
#[inline]
pub(crate) fn pack_chunk(kind: CodeKind, q: &[i32; CHUNK], out: &mut [u8]) {
    match kind {
        CodeKind::I8 | CodeKind::U8Min => {
            for (o, &v) in out[..CHUNK].iter_mut().zip(q) {
                *o = v as u8;
            }
        }
        CodeKind::Nibble | CodeKind::NibbleMin => {
            let off = if kind == CodeKind::Nibble { 8 } else { 0 };
            for j in 0..CHUNK / 2 {
                let lo = (q[j] + off) as u8;
                let hi = (q[j + CHUNK / 2] + off) as u8;
                out[j] = lo | (hi << 4);
            }
        }
    }
}

/// Reads 32 codes (as the signed values `q`) from `codes`.
#[inline]
pub(crate) fn unpack_chunk(kind: CodeKind, codes: &[u8], q: &mut [i32; CHUNK]) {
    match kind {
        CodeKind::I8 => {
            for (v, &b) in q.iter_mut().zip(&codes[..CHUNK]) {
                *v = i32::from(b as i8);
            }
        }
        CodeKind::U8Min => {
            for (v, &b) in q.iter_mut().zip(&codes[..CHUNK]) {
                *v = i32::from(b);
            }
        }
        CodeKind::Nibble | CodeKind::NibbleMin => {
            let off = if kind == CodeKind::Nibble { 8 } else { 0 };
            for j in 0..CHUNK / 2 {
                q[j] = i32::from(codes[j] & 0x0F) - off;
                q[j + CHUNK / 2] = i32::from(codes[j] >> 4) - off;
            }
        }
    }
}
