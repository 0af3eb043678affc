//! Bytes on disk: the cwpq container ([`container`]) and GGUF interop
//! ([`gguf`]). Both readers take `&[u8]` of any alignment (an mmap),
//! validate everything once, and hand out borrowed views the kernels use
//! directly. A hostile file gets an `Err`: sizes use checked arithmetic,
//! every count is checked against the bytes that remain before anything is
//! allocated or sliced, and allocation stays proportional to the file size.

pub mod container;
mod crc32;
pub mod gguf;

pub use crc32::crc32;

use crate::error::{Error, Result};

/// Caps a reader enforces on top of the file's own consistency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most tensors in one file.
    pub max_tensors: u64,
    /// Longest tensor name, in bytes.
    pub max_name_len: u64,
    /// Highest tensor rank (at most 4).
    pub max_rank: u32,
    /// Most GGUF metadata entries.
    pub max_metadata: u64,
    /// Deepest nesting of GGUF metadata arrays.
    pub max_array_depth: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_tensors: 1 << 20,
            max_name_len: 4096,
            max_rank: 4,
            max_metadata: 1 << 20,
            max_array_depth: 4,
        }
    }
}

/// A little-endian cursor over a byte slice that never reads past its end.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], pos: usize) -> Self {
        Reader { bytes, pos }
    }

    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    pub(crate) fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8]> {
        let available = self.remaining() as u64;
        if n > available {
            return Err(Error::Truncated {
                what,
                needed: n,
                available,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n as usize];
        self.pos += n as usize;
        Ok(s)
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64> {
        let b = self.take(8, what)?;
        Ok(u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

/// `bytes[offset..offset + len]`, or the error that says why not.
pub(crate) fn slice_at<'a>(
    bytes: &'a [u8],
    offset: u64,
    len: u64,
    what: &'static str,
) -> Result<&'a [u8]> {
    let end = offset
        .checked_add(len)
        .ok_or(Error::SizeOverflow { what })?;
    if end > bytes.len() as u64 {
        return Err(Error::Truncated {
            what,
            needed: end,
            available: bytes.len() as u64,
        });
    }
    Ok(&bytes[offset as usize..end as usize])
}

/// Product of dimensions with overflow checked.
pub(crate) fn product(dims: &[u64], what: &'static str) -> Result<u64> {
    dims.iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or(Error::SizeOverflow { what })
}
