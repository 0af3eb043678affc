//! aarch64 kernels.
mod neon;
pub use neon::Neon;
