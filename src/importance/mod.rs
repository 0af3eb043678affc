//! Importance: calibration statistics, per-weight scores, combination of
//! objectives, and exact selection of the weights to protect
//! (DESIGN.md §1).

pub mod combine;
pub mod score;
mod select;
mod stats;

pub use select::Budget;
pub use select::{GlobalSelection, select_top};
pub use stats::{ColumnStats, FisherAccumulator};
