//! Matmul kernels over quantized weights.
//!
//! [`scalar`] is the reference: the definition of every format's product
//! and the oracle the optimised paths are tested against.

pub mod scalar;

use half::{bf16, f16};

mod sealed {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// An element type cwpq reads (activations, weights, scores): `f32`, `f16` or `bf16`.
pub trait Element: Copy + Send + Sync + sealed::Sealed + 'static {
    /// The value as f32 (exact for all three types).
    fn to_f32(self) -> f32;
}

impl Element for f32 {
    #[inline]
    fn to_f32(self) -> f32 {
        self
    }
}

impl Element for f16 {
    #[inline]
    fn to_f32(self) -> f32 {
        f16::to_f32(self)
    }
}

impl Element for bf16 {
    #[inline]
    fn to_f32(self) -> f32 {
        bf16::to_f32(self)
    }
}
