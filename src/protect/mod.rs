//! The protected set: the few weights kept at high precision, stored as
//! sparse rows (CSR) beside the quantized matrix.
//!
//! Semantics (DESIGN.md §3): **effective weight = dequant(code) + value**.
//! Protected positions are quantized as 0 where the format represents 0
//! exactly (every symmetric format), so `value` is the original weight;
//! otherwise `value` is the residual `w − dequant(code)`. The dense part of
//! a kernel therefore needs no special case.
//!
//! All three arrays are kept as little-endian bytes, so a view over a file
//! (any alignment) and an owned set are the same type to the kernels:
//! `row_ptr` u32 × (n + 1); `cols` u16 when `k ≤ 65 536`, else u32;
//! `values` f16 (default), bf16 or f32.

#[cfg(feature = "alloc")]
use alloc::vec::Vec;

use half::{bf16, f16};

use crate::error::{Error, Result, SparseProblem, check_len};

/// Storage type of protected values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ValueType {
    /// IEEE half: exact for f16 checkpoints, |v| ≤ 65504.
    #[default]
    F16,
    /// bfloat16: f32's range, 8 bits of mantissa.
    Bf16,
    /// f32.
    F32,
}

impl ValueType {
    /// Bytes per value.
    pub const fn bytes(self) -> usize {
        match self {
            ValueType::F16 | ValueType::Bf16 => 2,
            ValueType::F32 => 4,
        }
    }
}

/// f16 bits to f32 without branches (the kernels' sparse loop calls this
/// per protected weight): move exponent and mantissa into place and rescale
/// by 2¹¹², which is exact for every finite f16, subnormals included. Only
/// for finite values, which validation guarantees.
#[inline(always)]
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let magnitude = f32::from_bits(u32::from(h & 0x7FFF) << 13) * f32::from_bits(0x7780_0000);
    if h & 0x8000 != 0 {
        -magnitude
    } else {
        magnitude
    }
}

/// Bytes per column index for rows of `k` inputs: 2 when `k ≤ 65 536`, else 4.
pub const fn col_bytes(k: usize) -> usize {
    if k <= 1 << 16 { 2 } else { 4 }
}

/// A validated protected set over borrowed little-endian bytes.
#[derive(Debug, Clone, Copy)]
pub struct ProtectedView<'a> {
    n: usize,
    k: usize,
    value_type: ValueType,
    row_ptr: &'a [u8],
    cols: &'a [u8],
    values: &'a [u8],
}

#[inline]
fn u32_at(bytes: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([
        bytes[4 * i],
        bytes[4 * i + 1],
        bytes[4 * i + 2],
        bytes[4 * i + 3],
    ])
}

impl<'a> ProtectedView<'a> {
    /// Views and validates a protected set for an `n × k` matrix: `row_ptr`
    /// has n + 1 entries starting at 0, is monotone and ends at nnz; columns
    /// are `< k` and strictly increasing within each row; values are finite.
    pub fn new(
        n: usize,
        k: usize,
        value_type: ValueType,
        row_ptr: &'a [u8],
        cols: &'a [u8],
        values: &'a [u8],
    ) -> Result<ProtectedView<'a>> {
        if n == 0 {
            return Err(Error::ZeroDimension { what: "n" });
        }
        if k == 0 {
            return Err(Error::ZeroDimension { what: "k" });
        }
        let rp_len =
            n.checked_add(1)
                .and_then(|r| r.checked_mul(4))
                .ok_or(Error::SizeOverflow {
                    what: "row_ptr bytes",
                })?;
        if row_ptr.len() != rp_len {
            return Err(Error::InvalidProtectedSet {
                problem: SparseProblem::RowPtrStart,
                index: row_ptr.len() / 4,
            });
        }
        let cb = col_bytes(k);
        if !cols.len().is_multiple_of(cb) {
            return Err(Error::LengthMismatch {
                what: "protected columns (bytes)",
                expected: cols.len() / cb * cb,
                actual: cols.len(),
            });
        }
        let nnz = cols.len() / cb;
        check_len(
            "protected values (bytes)",
            nnz * value_type.bytes(),
            values.len(),
        )?;
        let view = ProtectedView {
            n,
            k,
            value_type,
            row_ptr,
            cols,
            values,
        };
        view.validate()?;
        Ok(view)
    }

    fn validate(&self) -> Result<()> {
        let bad = |problem, index| Err(Error::InvalidProtectedSet { problem, index });
        if u32_at(self.row_ptr, 0) != 0 {
            return bad(SparseProblem::RowPtrStart, 0);
        }
        for i in 0..self.n {
            if u32_at(self.row_ptr, i + 1) < u32_at(self.row_ptr, i) {
                return bad(SparseProblem::RowPtrNotMonotone, i);
            }
        }
        if u32_at(self.row_ptr, self.n) as usize != self.nnz() {
            return bad(SparseProblem::RowPtrEnd, self.n);
        }
        for i in 0..self.n {
            let range = self.row_range(i);
            let mut prev: Option<usize> = None;
            for e in range {
                let c = self.col(e);
                if c >= self.k {
                    return bad(SparseProblem::ColumnOutOfRange, e);
                }
                if prev.is_some_and(|p| c <= p) {
                    return bad(SparseProblem::ColumnsNotIncreasing, e);
                }
                prev = Some(c);
            }
        }
        for e in 0..self.nnz() {
            if !self.value_exact(e).is_finite() {
                return bad(SparseProblem::NonFiniteValue, e);
            }
        }
        Ok(())
    }

    /// Output rows.
    pub fn n(&self) -> usize {
        self.n
    }
    /// Inputs per row.
    pub fn k(&self) -> usize {
        self.k
    }
    /// Number of protected weights.
    pub fn nnz(&self) -> usize {
        self.cols.len() / col_bytes(self.k)
    }
    /// Storage type of the values.
    pub fn value_type(&self) -> ValueType {
        self.value_type
    }
    /// The raw little-endian arrays `(row_ptr, cols, values)`.
    pub fn as_bytes(&self) -> (&'a [u8], &'a [u8], &'a [u8]) {
        (self.row_ptr, self.cols, self.values)
    }
    /// Bytes of storage (all three arrays).
    pub fn storage_bytes(&self) -> usize {
        self.row_ptr.len() + self.cols.len() + self.values.len()
    }

    /// Entry indices of row `i` (`i < n`).
    #[inline]
    pub fn row_range(&self, i: usize) -> core::ops::Range<usize> {
        u32_at(self.row_ptr, i) as usize..u32_at(self.row_ptr, i + 1) as usize
    }

    /// Column of entry `e`.
    #[inline]
    pub fn col(&self, e: usize) -> usize {
        if col_bytes(self.k) == 2 {
            usize::from(u16::from_le_bytes([self.cols[2 * e], self.cols[2 * e + 1]]))
        } else {
            u32_at(self.cols, e) as usize
        }
    }

    /// Value of entry `e`, widened to f32.
    #[inline]
    pub fn value(&self, e: usize) -> f32 {
        let v = self.values;
        match self.value_type {
            ValueType::F16 => f16_to_f32(u16::from_le_bytes([v[2 * e], v[2 * e + 1]])),
            ValueType::Bf16 => bf16::from_le_bytes([v[2 * e], v[2 * e + 1]]).to_f32(),
            ValueType::F32 => f32::from_bits(u32_at(v, e)),
        }
    }

    /// Adds `Σ value · x[col]` over row `i`'s entries to `acc[t]` for each
    /// activation row `x[t]` (`x[t].len() == k`): the kernels' sparse
    /// correction, one tight loop per storage type.
    #[cfg(feature = "alloc")] // only the int8 path, which needs alloc, uses it
    #[inline(always)]
    pub(crate) fn accumulate_row<const T: usize>(
        &self,
        i: usize,
        x: [&[f32]; T],
        acc: &mut [f32; T],
    ) {
        let r = self.row_range(i);
        let cb = col_bytes(self.k);
        let cols = &self.cols[r.start * cb..r.end * cb];
        let vb = self.value_type.bytes();
        let vals = &self.values[r.start * vb..r.end * vb];
        if cb == 2 && self.value_type == ValueType::F16 {
            // Four partial sums, so the adds do not wait on each other.
            let mut part = [[0.0f32; T]; 4];
            let (cols4, vals4) = (cols.chunks_exact(8), vals.chunks_exact(8));
            let (cols_tail, vals_tail) = (cols4.remainder(), vals4.remainder());
            for (c, v) in cols4.zip(vals4) {
                for (l, part) in part.iter_mut().enumerate() {
                    let col = usize::from(u16::from_le_bytes([c[2 * l], c[2 * l + 1]]));
                    let v = f16_to_f32(u16::from_le_bytes([v[2 * l], v[2 * l + 1]]));
                    for t in 0..T {
                        part[t] += v * x[t][col];
                    }
                }
            }
            for (c, v) in cols_tail.chunks_exact(2).zip(vals_tail.chunks_exact(2)) {
                let col = usize::from(u16::from_le_bytes([c[0], c[1]]));
                let v = f16_to_f32(u16::from_le_bytes([v[0], v[1]]));
                for t in 0..T {
                    part[0][t] += v * x[t][col];
                }
            }
            for t in 0..T {
                acc[t] += (part[0][t] + part[1][t]) + (part[2][t] + part[3][t]);
            }
        } else {
            for e in r {
                let (col, v) = (self.col(e), self.value(e));
                for t in 0..T {
                    acc[t] += v * x[t][col];
                }
            }
        }
    }

    /// Value of entry `e` through `half`'s conversion, which keeps Inf and
    /// NaN (validation reads this; the kernels' fast path assumes finite).
    fn value_exact(&self, e: usize) -> f32 {
        let v = self.values;
        match self.value_type {
            ValueType::F16 => f16::from_le_bytes([v[2 * e], v[2 * e + 1]]).to_f32(),
            _ => self.value(e),
        }
    }

    /// Row `i`'s raw columns and values when they are u16 and f16 (the
    /// layout SIMD gathers read), else `None`.
    #[cfg(feature = "alloc")]
    #[cfg_attr(
        not(all(target_arch = "x86_64", target_feature = "sse2")),
        allow(dead_code)
    )] // x86 gathers only
    #[inline(always)]
    pub(crate) fn row_u16_f16(&self, i: usize) -> Option<(&'a [u8], &'a [u8])> {
        if col_bytes(self.k) != 2 || self.value_type != ValueType::F16 {
            return None;
        }
        let r = self.row_range(i);
        Some((
            &self.cols[2 * r.start..2 * r.end],
            &self.values[2 * r.start..2 * r.end],
        ))
    }

    /// `(column, value)` of each entry of row `i`.
    pub fn row(&self, i: usize) -> impl Iterator<Item = (usize, f32)> + '_ {
        self.row_range(i).map(|e| (self.col(e), self.value(e)))
    }
}

/// An owned protected set; [`ProtectedSet::view`] lends the kernel type.
#[cfg(feature = "alloc")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtectedSet {
    n: usize,
    k: usize,
    value_type: ValueType,
    row_ptr: Vec<u8>,
    cols: Vec<u8>,
    values: Vec<u8>,
}

#[cfg(feature = "alloc")]
impl ProtectedSet {
    /// An empty set for an `n × k` matrix.
    pub fn empty(n: usize, k: usize, value_type: ValueType) -> Result<ProtectedSet> {
        ProtectedSet::from_flat(n, k, &[], &[], value_type)
    }

    /// Builds a set from strictly increasing flat indices `i·k + j` and their
    /// values. Values must be finite and fit `value_type`.
    pub fn from_flat(
        n: usize,
        k: usize,
        indices: &[usize],
        values: &[f32],
        value_type: ValueType,
    ) -> Result<ProtectedSet> {
        check_len("protected values", indices.len(), values.len())?;
        let nk = n
            .checked_mul(k)
            .ok_or(Error::SizeOverflow { what: "n · k" })?;
        if indices.len() > u32::MAX as usize {
            return Err(Error::SizeOverflow {
                what: "protected entries (row_ptr is u32)",
            });
        }
        let cb = col_bytes(k.max(1));
        let mut row_ptr = Vec::with_capacity((n + 1) * 4);
        let mut cols = Vec::with_capacity(indices.len() * cb);
        let mut vals = Vec::with_capacity(indices.len() * value_type.bytes());
        row_ptr.extend_from_slice(&0u32.to_le_bytes());
        let mut row = 0usize;
        for (e, (&flat, &v)) in indices.iter().zip(values).enumerate() {
            if flat >= nk {
                return Err(Error::InvalidProtectedSet {
                    problem: SparseProblem::ColumnOutOfRange,
                    index: e,
                });
            }
            if e > 0 && flat <= indices[e - 1] {
                return Err(Error::InvalidProtectedSet {
                    problem: SparseProblem::ColumnsNotIncreasing,
                    index: e,
                });
            }
            while row < flat / k {
                row += 1;
                row_ptr.extend_from_slice(&(e as u32).to_le_bytes());
            }
            let c = flat % k;
            if cb == 2 {
                cols.extend_from_slice(&(c as u16).to_le_bytes());
            } else {
                cols.extend_from_slice(&(c as u32).to_le_bytes());
            }
            push_value(&mut vals, value_type, v, e)?;
        }
        while row < n {
            row += 1;
            row_ptr.extend_from_slice(&(indices.len() as u32).to_le_bytes());
        }
        let set = ProtectedSet {
            n,
            k,
            value_type,
            row_ptr,
            cols,
            values: vals,
        };
        set.view_checked()?;
        Ok(set)
    }

    /// Takes ownership of little-endian arrays, with the checks of [`ProtectedView::new`].
    pub fn from_bytes(
        n: usize,
        k: usize,
        value_type: ValueType,
        row_ptr: Vec<u8>,
        cols: Vec<u8>,
        values: Vec<u8>,
    ) -> Result<ProtectedSet> {
        let set = ProtectedSet {
            n,
            k,
            value_type,
            row_ptr,
            cols,
            values,
        };
        set.view_checked()?;
        Ok(set)
    }

    fn view_checked(&self) -> Result<ProtectedView<'_>> {
        ProtectedView::new(
            self.n,
            self.k,
            self.value_type,
            &self.row_ptr,
            &self.cols,
            &self.values,
        )
    }

    /// The borrowed view the kernels take (already validated).
    pub fn view(&self) -> ProtectedView<'_> {
        ProtectedView {
            n: self.n,
            k: self.k,
            value_type: self.value_type,
            row_ptr: &self.row_ptr,
            cols: &self.cols,
            values: &self.values,
        }
    }

    /// Number of protected weights.
    pub fn nnz(&self) -> usize {
        self.view().nnz()
    }
}

#[cfg(feature = "alloc")]
fn push_value(out: &mut Vec<u8>, ty: ValueType, v: f32, e: usize) -> Result<()> {
    if !v.is_finite() {
        return Err(Error::InvalidProtectedSet {
            problem: SparseProblem::NonFiniteValue,
            index: e,
        });
    }
    match ty {
        ValueType::F16 => {
            let h = f16::from_f32(v);
            if !h.is_finite() {
                return Err(Error::OutOfRange {
                    what: "protected value (f16)",
                    index: e,
                });
            }
            out.extend_from_slice(&h.to_le_bytes());
        }
        ValueType::Bf16 => {
            let h = bf16::from_f32(v);
            if !h.is_finite() {
                return Err(Error::OutOfRange {
                    what: "protected value (bf16)",
                    index: e,
                });
            }
            out.extend_from_slice(&h.to_le_bytes());
        }
        ValueType::F32 => out.extend_from_slice(&v.to_le_bytes()),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn f16_conversion_is_exact_for_every_finite_value() {
        for h in 0..=u16::MAX {
            let want = half::f16::from_bits(h);
            if want.is_finite() {
                assert_eq!(
                    super::f16_to_f32(h).to_bits(),
                    want.to_f32().to_bits(),
                    "{h:#06x}"
                );
            }
        }
    }
}
