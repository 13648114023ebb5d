//! One module per top-level command.

pub mod catalog;
pub mod format;
pub mod plan;
pub mod simulate;
pub mod validate;
