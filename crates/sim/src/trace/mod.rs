//! Trace readers: turn published cluster traces, parsed exactly as the files are, into
//! [`TraceJob`]s; plus the documented suanli CSV format (read and write) and the step that fits a
//! workload to a cluster.
//!
//! Formats: [`gavel`] (Gavel OSDI'20 `.trace` files with the measured throughput table),
//! [`tiresias`] (Tiresias NSDI'19 CSVs), [`alibaba`] (Alibaba PAI 2023 `openb_pod_list_*.csv`)
//! and [`suanli_csv`]. Every rule a reader applies (derived throughputs, fractional GPUs, skipped
//! rows, tenants, estimates) is written in `docs/traces.md`, and each read returns a
//! [`ReadReport`] that counts what the rules did.
//!
//! ```no_run
//! use suanli_sim::trace::{read_trace, fit_to_cluster};
//! let trace = read_trace("crates/sim/data/gavel/seed0/ee9e8c.trace".as_ref(), None).unwrap();
//! println!("{}", trace.report);
//! let cluster = suanli_sim::presets::preset("gavel-36-36-36").unwrap();
//! let (jobs, fit) = fit_to_cluster(trace.jobs, &cluster);
//! ```

pub mod alibaba;
mod error;
mod fit;
pub mod gavel;
mod report;
pub mod suanli_csv;
pub(crate) mod table;
pub mod throughputs;
pub mod tiresias;

pub use error::TraceError;
pub use fit::{FitReport, fit_to_cluster};
pub use report::{ReadReport, RowNote};

use crate::workload::TraceJob;
use std::path::Path;

/// Key of [`crate::workload::Work::units_per_s`] meaning "any accelerator type, at this rate".
/// Readers of traces that do not constrain the type (Tiresias, Alibaba rows with an empty
/// `gpu_spec`) use it; [`fit_to_cluster`] replaces it by the cluster's types.
pub const ANY_ACCELERATOR: &str = "*";

/// Tenant given to jobs of traces that name no user or group.
pub const DEFAULT_TENANT: &str = "default";

/// The trace formats, named on the command line as `--trace-format <name>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TraceFormat {
    /// Gavel `.trace` files (OSDI'20), with the embedded throughput table.
    Gavel,
    /// Tiresias job CSVs (NSDI'19).
    Tiresias,
    /// Alibaba PAI 2023 `openb_pod_list_*.csv` (ATC'23).
    AlibabaGpu2023,
    /// The suanli CSV format ([`suanli_csv`]).
    Suanli,
}

impl TraceFormat {
    /// Every format, in the order help texts list them.
    pub const ALL: [TraceFormat; 4] = [
        TraceFormat::Gavel,
        TraceFormat::Tiresias,
        TraceFormat::AlibabaGpu2023,
        TraceFormat::Suanli,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            TraceFormat::Gavel => "gavel",
            TraceFormat::Tiresias => "tiresias",
            TraceFormat::AlibabaGpu2023 => "alibaba-gpu-2023",
            TraceFormat::Suanli => "suanli",
        }
    }

    fn known_names() -> String {
        TraceFormat::ALL.map(TraceFormat::name).join(", ")
    }
}

impl std::fmt::Display for TraceFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for TraceFormat {
    type Err = TraceError;

    fn from_str(name: &str) -> Result<Self, TraceError> {
        TraceFormat::ALL
            .into_iter()
            .find(|format| format.name() == name.trim().to_ascii_lowercase())
            .ok_or_else(|| TraceError::UnknownFormat {
                name: name.to_string(),
                known: TraceFormat::known_names(),
            })
    }
}

/// A parsed trace: the jobs, in file order, and what the reader's rules did.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The format the file was read as (given or detected).
    pub format: TraceFormat,
    /// One job per accepted row, in file order.
    pub jobs: Vec<TraceJob>,
    /// Rows skipped or adjusted by a documented rule, and derived throughputs.
    pub report: ReadReport,
}

/// Reads a trace file; `format = None` detects it with [`detect_format`]. Gavel traces use the
/// embedded `simulation_throughputs.json`.
pub fn read_trace(path: &Path, format: Option<TraceFormat>) -> Result<Trace, TraceError> {
    let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let file = path.display().to_string();
    let format = match format {
        Some(format) => format,
        None => detect_format(&file, &text)?,
    };
    parse_trace(&text, &file, format)
}

/// Parses trace text; `file` is the name used in error messages and job ids.
pub fn parse_trace(text: &str, file: &str, format: TraceFormat) -> Result<Trace, TraceError> {
    let (jobs, report) = match format {
        TraceFormat::Gavel => gavel::parse(text, file, throughputs::Throughputs::embedded())?,
        TraceFormat::Tiresias => tiresias::parse(text, file)?,
        TraceFormat::AlibabaGpu2023 => alibaba::parse(text, file)?,
        TraceFormat::Suanli => suanli_csv::parse(text, file)?,
    };
    Ok(Trace {
        format,
        jobs,
        report,
    })
}

/// Tells the format from the file name and first line: `.trace` or seven tab-separated fields
/// is Gavel; a CSV header with `gpu_milli` is Alibaba, with `arrival_s` suanli, with `duration`
/// Tiresias.
pub fn detect_format(file: &str, text: &str) -> Result<TraceFormat, TraceError> {
    if file.ends_with(".trace") {
        return Ok(TraceFormat::Gavel);
    }
    let first_line = text
        .lines()
        .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .unwrap_or("");
    if first_line.split('\t').count() == gavel::FIELDS {
        return Ok(TraceFormat::Gavel);
    }
    let header: Vec<&str> = first_line.split(',').map(str::trim).collect();
    let has = |column: &str| header.contains(&column);
    let format = if has("gpu_milli") && has("creation_time") {
        TraceFormat::AlibabaGpu2023
    } else if has("arrival_s") {
        TraceFormat::Suanli
    } else if has("duration") {
        TraceFormat::Tiresias
    } else {
        return Err(TraceError::Undetected {
            file: file.to_string(),
            reason: format!("first line {first_line:?} is not a header this crate knows"),
            known: TraceFormat::known_names(),
        });
    };
    Ok(format)
}
