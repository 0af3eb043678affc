//! Matmul kernels over quantized weights, with the protected correction in
//! the same pass.
//!
//! [`scalar`] is the reference: the definition of every format's product
//! and the oracle the optimised paths are tested against. [`matmul`] and
//! [`matmul_q8`] dispatch once per call to the best [`Backend`]; the `_with`
//! forms force one. Every function takes an output-row range and writes the
//! `m × rows.len()` tile, so a caller splits work over its own threads.

#[cfg(all(target_arch = "aarch64", not(miri)))]
pub mod aarch64;
mod dispatch;
pub(crate) mod driver;
mod portable;
pub mod scalar;
#[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
pub mod x86_64;

pub use dispatch::Backend;

use core::ops::Range;

#[cfg(feature = "alloc")]
use crate::act::QuantizedActivations;
use crate::error::{Error, Result, check_len};
use crate::protect::ProtectedView;
use crate::quant::QuantView;

use half::{bf16, f16};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// Which of the three element types a generic kernel was given.
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElemKind {
    F32,
    F16,
    Bf16,
}

/// An element type cwpq reads (activations, weights, scores): `f32`, `f16` or `bf16`.
pub trait Element: Copy + Send + Sync + sealed::Sealed + 'static {
    /// Lets SIMD kernels pick the right load for a generic slice.
    #[doc(hidden)]
    const KIND: ElemKind;
    /// The value as f32 (exact for all three types).
    fn to_f32(self) -> f32;
}

impl Element for f32 {
    const KIND: ElemKind = ElemKind::F32;
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
}

impl Element for f16 {
    const KIND: ElemKind = ElemKind::F16;
    #[inline]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

impl Element for bf16 {
    const KIND: ElemKind = ElemKind::Bf16;
    #[inline]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}

/// The token of a backend `require()` has already accepted.
#[cfg(all(
    any(
        all(target_arch = "x86_64", target_feature = "sse2"),
        target_arch = "aarch64"
    ),
    not(miri)
))]
fn token<T>(t: Option<T>, backend: &'static str) -> Result<T> {
    t.ok_or(Error::Unsupported { backend })
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
fn avx2() -> Result<x86_64::Avx2> {
    token(x86_64::Avx2::new(), "avx2")
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
fn avx512() -> Result<x86_64::Avx512> {
    token(x86_64::Avx512::new(), "avx512")
}

#[cfg(all(target_arch = "aarch64", not(miri)))]
fn neon() -> Result<aarch64::Neon> {
    token(aarch64::Neon::new(), "neon")
}

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

fn check_protected(w: &QuantView<'_>, p: Option<&ProtectedView<'_>>) -> Result<()> {
    if let Some(p) = p {
        check_len("protected set rows", w.n(), p.n())?;
        check_len("protected set columns", w.k(), p.k())?;
    }
    Ok(())
}

pub(crate) fn check_f32_args(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    x_len: usize,
    m: usize,
    rows: &Range<usize>,
    y: &[f32],
) -> Result<()> {
    check_rows(rows, w.n())?;
    check_protected(w, p)?;
    if m == 0 {
        return Err(Error::ZeroDimension { what: "m" });
    }
    let mk = m
        .checked_mul(w.k())
        .ok_or(Error::SizeOverflow { what: "m · k" })?;
    check_len("activations", mk, x_len)?;
    check_len("output tile", m * rows.len(), y.len())
}

#[cfg(feature = "alloc")]
pub(crate) fn check_q8_args(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: &Range<usize>,
    y: &[f32],
) -> Result<()> {
    check_rows(rows, w.n())?;
    check_protected(w, p)?;
    if xq.m() == 0 {
        return Err(Error::InvalidParameter {
            what: "quantized activations are empty: call quantize first",
        });
    }
    check_len("quantized activations (k)", w.k(), xq.k())?;
    check_len("output tile", xq.m() * rows.len(), y.len())
}

/// `y = x · (Ŵ + P)ᵀ` with f32/f16/bf16 activations dequantizing the weights
/// in registers, on the selected backend; `p` adds the protected weights.
pub fn matmul<A: Element>(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    matmul_with(Backend::selected()?, w, p, x, m, rows, y)
}

/// [`matmul`] on a chosen backend (`Err(Unsupported)` if this CPU lacks it).
pub fn matmul_with<A: Element>(
    backend: Backend,
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    x: &[A],
    m: usize,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    check_f32_args(w, p, x.len(), m, &rows, y)?;
    match backend.require()? {
        Backend::Scalar => scalar::matmul_protected(w, p, x, m, rows, y)?,
        Backend::Portable => driver::gemm_f32(portable::Portable, w, p, x, m, rows, y),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        Backend::Avx2 => avx2()?.gemm_f32(w, p, x, m, rows, y),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        Backend::Avx512 => avx512()?.gemm_f32(w, p, x, m, rows, y),
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        Backend::Neon => neon()?.gemm_f32(w, p, x, m, rows, y),
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::Unsupported {
                backend: other.name(),
            });
        }
    }
    Ok(())
}

#[cfg(feature = "alloc")]
/// `y = x · (Ŵ + P)ᵀ` with int8 activations (dynamic or static, see
/// [`QuantizedActivations`]): integer dot products per block, one f32 scale
/// per block, on the selected backend.
pub fn matmul_q8(
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    matmul_q8_with(Backend::selected()?, w, p, xq, rows, y)
}

#[cfg(feature = "alloc")]
/// [`matmul_q8`] on a chosen backend.
pub fn matmul_q8_with(
    backend: Backend,
    w: &QuantView<'_>,
    p: Option<&ProtectedView<'_>>,
    xq: &QuantizedActivations,
    rows: Range<usize>,
    y: &mut [f32],
) -> Result<()> {
    check_q8_args(w, p, xq, &rows, y)?;
    match backend.require()? {
        Backend::Scalar => scalar::matmul_q8(w, p, xq, rows, y)?,
        Backend::Portable => driver::gemm_q8(portable::Portable, w, p, xq, rows, y),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        Backend::Avx2 => avx2()?.gemm_q8(w, p, xq, rows, y),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        Backend::Avx512 => avx512()?.gemm_q8(w, p, xq, rows, y),
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        Backend::Neon => neon()?.gemm_q8(w, p, xq, rows, y),
        #[allow(unreachable_patterns)]
        other => {
            return Err(Error::Unsupported {
                backend: other.name(),
            });
        }
    }
    Ok(())
}

#[cfg(feature = "alloc")]
/// Fills codes, scales and sums for `QuantizedActivations` on `backend`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn quantize_activations_with(
    backend: Backend,
    x: &[f32],
    k: usize,
    per_token: bool,
    fixed: Option<f32>,
    codes: &mut [i8],
    scales: &mut [f32],
    sums: &mut [f32],
) -> Result<()> {
    match backend.require()? {
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        Backend::Avx2 => avx2()?.quantize_acts(x, k, per_token, fixed, codes, scales, sums),
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2", not(miri)))]
        Backend::Avx512 => avx512()?.quantize_acts(x, k, per_token, fixed, codes, scales, sums),
        #[cfg(all(target_arch = "aarch64", not(miri)))]
        Backend::Neon => neon()?.quantize_acts(x, k, per_token, fixed, codes, scales, sums),
        _ => scalar::quantize_acts(x, k, per_token, fixed, codes, scales, sums),
    }
    Ok(())
}
