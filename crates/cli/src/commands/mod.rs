//! One module per top-level command.

pub mod audit;
pub mod catalog;
pub mod client;
pub mod format;
pub mod job;
pub mod login;
pub mod node;
pub mod plan;
pub mod plan_checks;
pub mod plan_export;
pub mod plan_serve;
pub mod plan_serve_scenario;
pub mod plan_serve_search;
pub mod plan_time;
pub mod quota;
pub mod serve;
pub mod serve_slurm;
pub mod sim_busy;
pub mod simulate;
pub mod tenant;
pub mod token;
pub mod user;
pub mod validate;
pub mod validate_fit;
pub mod validate_serve_fit;
