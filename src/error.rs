//! The crate's one error type. Every variant carries the numbers that were
//! wrong, so a caller can print or match on them without parsing text.

use core::fmt;

/// Everything that can go wrong in cwpq. New variants may be added.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A slice or byte buffer has the wrong length.
    LengthMismatch {
        /// Which argument.
        what: &'static str,
        /// The length the other arguments imply.
        expected: usize,
        /// The length that was passed.
        actual: usize,
    },
    /// A dimension that must be at least 1 is 0.
    ZeroDimension {
        /// Which dimension.
        what: &'static str,
    },
    /// A size computation (`n · k`, bytes per row, ...) overflows `usize`.
    SizeOverflow {
        /// Which computation.
        what: &'static str,
    },
    /// The group size is 0, not a multiple of 32, or does not divide `k`.
    InvalidGroupSize {
        /// The requested group size.
        group: usize,
        /// The number of inputs per row.
        k: usize,
    },
    /// A value that must be finite is NaN or infinite.
    NonFinite {
        /// Which argument.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// A value that must be non-negative is negative.
    Negative {
        /// Which argument.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// An output-row range is empty-inverted or runs past `n`.
    InvalidRowRange {
        /// Start of the range.
        start: usize,
        /// End of the range (exclusive).
        end: usize,
        /// Number of output rows of the matrix.
        n: usize,
    },
    /// A parameter is outside the range the operation accepts.
    InvalidParameter {
        /// Which parameter, and what it must be.
        what: &'static str,
    },
    /// A finite value does not fit the storage type (e.g. |v| > 65504 for f16).
    OutOfRange {
        /// Which argument.
        what: &'static str,
        /// Flat index of the first offending element.
        index: usize,
    },
    /// A protected (sparse) set breaks one of its invariants.
    InvalidProtectedSet {
        /// Which invariant.
        problem: SparseProblem,
        /// The row (for `row_ptr` problems) or entry (for column problems).
        index: usize,
    },
    /// A forced kernel backend is not available on this CPU or build.
    Unsupported {
        /// The backend's name.
        backend: &'static str,
    },
    /// A file (container or GGUF) is malformed at a given byte offset.
    InvalidFile {
        /// What is wrong.
        what: &'static str,
        /// Byte offset in the file where it was found.
        offset: u64,
    },
    /// A file declares more bytes than it has.
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Bytes it needs.
        needed: u64,
        /// Bytes that remain.
        available: u64,
    },
    /// A file exceeds a configured cap (tensor count, name length, rank, ...).
    LimitExceeded {
        /// Which cap.
        what: &'static str,
        /// The cap.
        limit: u64,
        /// The value in the file.
        actual: u64,
    },
    /// The requested selection cannot be made (e.g. more weights than exist
    /// or than the per-row cap allows).
    Budget {
        /// Weights requested.
        requested: u64,
        /// Weights available.
        available: u64,
    },
}

/// The invariant a protected set breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SparseProblem {
    /// `row_ptr` does not have `n + 1` entries or does not start at 0.
    RowPtrStart,
    /// `row_ptr[i + 1] < row_ptr[i]`.
    RowPtrNotMonotone,
    /// The last `row_ptr` entry is not the number of entries.
    RowPtrEnd,
    /// A column is `≥ k`.
    ColumnOutOfRange,
    /// Columns within a row are not strictly increasing (unsorted or duplicated).
    ColumnsNotIncreasing,
    /// A value is NaN or infinite.
    NonFiniteValue,
}

/// `Result` with [`Error`].
pub type Result<T> = core::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LengthMismatch {
                what,
                expected,
                actual,
            } => write!(f, "{what}: expected length {expected}, got {actual}"),
            Error::ZeroDimension { what } => write!(f, "{what} must be at least 1"),
            Error::SizeOverflow { what } => write!(f, "{what} overflows usize"),
            Error::InvalidGroupSize { group, k } => write!(
                f,
                "group size {group} is invalid for k = {k}: it must be a positive multiple of 32 that divides k"
            ),
            Error::NonFinite { what, index } => {
                write!(f, "{what}[{index}] is NaN or infinite")
            }
            Error::Negative { what, index } => write!(f, "{what}[{index}] is negative"),
            Error::InvalidRowRange { start, end, n } => {
                write!(f, "row range {start}..{end} is not inside 0..{n}")
            }
            Error::InvalidParameter { what } => write!(f, "invalid parameter: {what}"),
            Error::OutOfRange { what, index } => {
                write!(f, "{what}[{index}] does not fit its storage type")
            }
            Error::InvalidProtectedSet { problem, index } => {
                write!(f, "invalid protected set: {problem:?} at {index}")
            }
            Error::Unsupported { backend } => {
                write!(f, "backend {backend} is not available on this CPU or build")
            }
            Error::InvalidFile { what, offset } => {
                write!(f, "invalid file at byte {offset}: {what}")
            }
            Error::Truncated {
                what,
                needed,
                available,
            } => write!(
                f,
                "truncated {what}: needs {needed} bytes, {available} remain"
            ),
            Error::LimitExceeded {
                what,
                limit,
                actual,
            } => {
                write!(f, "{what} is {actual}, above the limit {limit}")
            }
            Error::Budget {
                requested,
                available,
            } => write!(
                f,
                "cannot select {requested} weights: only {available} are eligible"
            ),
        }
    }
}

impl core::error::Error for Error {}

/// Returns the index of the first NaN or infinite element, as an error.
pub(crate) fn check_finite(what: &'static str, values: &[f32]) -> Result<()> {
    // Scan in chunks without early exit (that vectorises), then locate.
    const CHUNK: usize = 256;
    for (c, chunk) in values.chunks(CHUNK).enumerate() {
        let bad = chunk.iter().fold(false, |bad, v| {
            bad | (v.to_bits() & 0x7F80_0000 == 0x7F80_0000)
        });
        if bad {
            let index = c * CHUNK + chunk.iter().position(|v| !v.is_finite()).unwrap_or(0);
            return Err(Error::NonFinite { what, index });
        }
    }
    Ok(())
}

/// Checks that `actual == expected`.
pub(crate) fn check_len(what: &'static str, expected: usize, actual: usize) -> Result<()> {
    if expected == actual {
        Ok(())
    } else {
        Err(Error::LengthMismatch {
            what,
            expected,
            actual,
        })
    }
}
