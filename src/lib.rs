#![doc = include_str!("../README.md")]
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "alloc")]
pub mod act;
mod error;
#[cfg(feature = "alloc")]
pub mod importance;
#[cfg(feature = "alloc")]
pub mod io;
pub mod kernels;
mod layer;
pub mod protect;
pub mod quant;

pub use error::{Error, Result, SparseProblem};
pub use kernels::Element;
#[cfg(feature = "alloc")]
pub use layer::{LinearConfig, ProtectedLinear, Protection};
pub use layer::{LinearView, Report};
pub use quant::{
    ClipGrid, Format, Group, Importance, QuantOptions, QuantShape, QuantView, ScaleSearch,
    quantize_into,
};
#[cfg(feature = "alloc")]
pub use quant::{QuantMatrix, quantize};
