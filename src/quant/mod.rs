//! Weight formats, quantizers and scale search.
//!
//! See [`format`] for the byte layouts, [`ggml`](self) for the bit-exact
//! GGUF encoders and [`ScaleSearch`] for how a group picks its scale.

pub(crate) mod block;
mod format;
mod ggml;
mod matrix;
pub(crate) mod search;

pub use block::{BlockQ4_0, BlockQ4_1, BlockQ8_0, f16_le};
pub use format::{CodeKind, Format, Group, Layout};
#[cfg(feature = "alloc")]
pub use matrix::{QuantMatrix, quantize};
pub use matrix::{QuantOptions, QuantShape, QuantView, quantize_into};
pub use search::{ClipGrid, Importance, ScaleSearch};
