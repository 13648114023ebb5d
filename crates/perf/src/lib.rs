//! The suanli performance model: training step time and memory per device from a model, an
//! accelerator type and count, a network and a parallel layout; the layout search; and
//! validation against published measurements.
//!
//! ```
//! use suanli_catalog::Catalog;
//! use suanli_perf::{train, Layout, LayoutSpec};
//!
//! let catalog = Catalog::builtin();
//! let model = catalog.model("llama-3.1-70b").unwrap().clone();
//! let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap().clone();
//! let setup = train::TrainSetup::new(model, h100, 64);
//! let layout: LayoutSpec = "tp=8,pp=4,mb=1".parse().unwrap();
//! let estimate = train::estimate(&setup, &layout.resolve(64).unwrap()).unwrap();
//! assert!(estimate.mfu > 0.2 && estimate.mfu < 0.7);
//! ```

pub mod collective;
pub mod efficiency;
pub mod export;
pub mod fit;
pub mod flops;
pub mod goal;
pub mod goal_plan;
pub mod kernels;
pub mod layout;
mod layout_error;
pub mod lora;
pub mod memory;
pub mod memory_train;
pub mod reliability;
pub mod search;
pub mod serve;
pub mod serve_disagg;
pub mod serve_search;
pub mod train;
mod train_comm;
mod train_micro;
pub mod validate;
mod validate_error;
pub mod validate_serve;
pub mod validate_serve_fit;
mod xla;

pub use kernels::AttentionImpl;
pub use layout::{Layout, LayoutError, LayoutSpec, Recompute};
