//! Reader of the Tiresias simulator's job CSVs (Gu et al., NSDI'19).
//!
//! Header `job_id,num_gpu,submit_time,iterations,model_name,duration,interval` (`60_job.csv`).
//! Only `duration` (seconds) is required: `yarn-gput1000.csv` has that column alone, and then
//! every job is 1 GPU, arrives at 0 and is numbered by its row. The trace names no accelerator
//! type, so a job runs for `duration` seconds on any type ([`super::ANY_ACCELERATOR`]).

use super::error::TraceError;
use super::report::ReadReport;
use super::table::{Columns, for_each_row};
use super::{ANY_ACCELERATOR, DEFAULT_TENANT};
use crate::workload::{JobSpec, TraceJob, Work};

/// Columns the reader understands; only `duration` is required.
pub const OPTIONAL_COLUMNS: [&str; 6] = [
    "job_id",
    "num_gpu",
    "submit_time",
    "iterations",
    "model_name",
    "interval",
];

/// Parses a Tiresias job CSV.
pub fn parse(text: &str, file: &str) -> Result<(Vec<TraceJob>, ReadReport), TraceError> {
    let mut report = ReadReport::new(file);
    let mut jobs = Vec::new();
    let columns = Columns {
        required: &["duration"],
        optional: &OPTIONAL_COLUMNS,
        reject_unknown: false,
    };
    report.data_rows = for_each_row(text, file, &columns, |row| {
        let id = match row.get("job_id") {
            Some(id) if !id.is_empty() => id.to_string(),
            Some(_) => return Err(row.error("job_id", "a job id")),
            None => jobs.len().to_string(),
        };
        let gang_size: u32 = row
            .parse_optional("num_gpu", "a whole number of GPUs > 0")?
            .unwrap_or(1);
        if gang_size == 0 {
            return Err(row.error("num_gpu", "a whole number of GPUs > 0"));
        }
        let arrival_s: u64 = row
            .parse_optional("submit_time", "whole seconds >= 0")?
            .unwrap_or(0);
        let duration_s: u64 = row.parse("duration", "whole seconds > 0")?;
        if duration_s == 0 {
            return Err(row.error("duration", "whole seconds > 0"));
        }
        // Validated for the file's sake, not used: the run time is `duration`.
        row.parse_optional::<u64>("iterations", "a whole number of iterations")?;
        row.parse_optional::<u64>("interval", "whole seconds to the next submission")?;
        jobs.push(TraceJob {
            arrival_s,
            spec: JobSpec {
                name: id,
                gang_size,
                tenant: DEFAULT_TENANT.to_string(),
                priority: 0,
                work: Work {
                    total_units: duration_s as f64,
                    units_per_s: [(ANY_ACCELERATOR.to_string(), 1.0)].into(),
                },
                runtime_estimate_s: Some(duration_s),
                checkpoint_interval_s: None,
                checkpoint_cost_s: 0,
            },
        });
        Ok(())
    })?;
    Ok((jobs, report))
}
