//! The suanli performance model.

pub mod goal;
