//! One module per top-level command.

pub mod catalog;
pub mod format;
pub mod plan;
pub mod plan_serve;
pub mod plan_serve_search;
pub mod simulate;
pub mod validate;
