#![doc = include_str!("../README.md")]
#![no_std]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod error;
pub mod kernels;
pub mod quant;

pub use error::{Error, Result};
pub use kernels::Activation;
pub use quant::{
    ClipGrid, Format, Group, Importance, QuantOptions, QuantShape, QuantView, ScaleSearch,
    quantize_into,
};
#[cfg(feature = "alloc")]
pub use quant::{QuantMatrix, quantize};
