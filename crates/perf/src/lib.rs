//! The suanli performance model.
