//! One module per top-level command.

pub mod artifact;
pub mod audit;
pub mod catalog;
pub mod ckpt;
pub mod client;
pub mod format;
pub mod job;
pub mod login;
pub mod node;
pub mod plan;
pub mod plan_serve;
pub mod plan_serve_search;
pub mod quota;
pub mod serve;
pub mod simulate;
pub mod tenant;
pub mod token;
pub mod transfer;
pub mod user;
pub mod validate;
