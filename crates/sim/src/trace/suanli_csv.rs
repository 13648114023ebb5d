//! The suanli CSV workload format: any [`TraceJob`] list a reader or the generator produces can be
//! written and read back exactly.
//!
//! ```text
//! id,arrival_s,gang_size,tenant,priority,total_units,units_per_s,runtime_estimate_s,checkpoint_interval_s
//! 0,0,4,resnet-18,0,3600,k80=0.5|p100=1.2|v100=2,1800,600
//! 1,30,8,team-a,1,7200,*=1,,
//! ```
//!
//! Required: `id` (unique), `arrival_s`, `gang_size`, and the work as either `total_units` plus
//! `units_per_s` (`type=rate` pairs separated by `|`; `*` = any type) or, for hand-written files,
//! `duration_s` plus an optional `allowed_types` (`|`-separated; empty or absent = any type, at
//! rate 1). Optional: `tenant` (default `default`), `priority` (0), `runtime_estimate_s` and
//! `checkpoint_interval_s` (empty = none). Lines starting with `#` are comments. The writer always
//! uses the first form and prints rates in Rust's shortest round-trip notation. What a checkpoint
//! costs is the run's choice, not the trace's: the reader leaves it at 0 and the writer refuses a
//! job that sets it.

use super::error::TraceError;
use super::report::ReadReport;
use super::table::{Columns, Row, for_each_row};
use super::{ANY_ACCELERATOR, DEFAULT_TENANT};
use crate::workload::{JobSpec, Rates, TraceJob, Work};
use std::collections::HashSet;

/// The header the writer produces.
pub const HEADER: [&str; 9] = [
    "id",
    "arrival_s",
    "gang_size",
    "tenant",
    "priority",
    "total_units",
    "units_per_s",
    "runtime_estimate_s",
    "checkpoint_interval_s",
];

const REQUIRED: [&str; 3] = ["id", "arrival_s", "gang_size"];
const OPTIONAL: [&str; 8] = [
    "tenant",
    "priority",
    "total_units",
    "units_per_s",
    "duration_s",
    "allowed_types",
    "runtime_estimate_s",
    "checkpoint_interval_s",
];

/// Parses a suanli CSV workload.
pub fn parse(text: &str, file: &str) -> Result<(Vec<TraceJob>, ReadReport), TraceError> {
    let mut report = ReadReport::new(file);
    let mut jobs = Vec::new();
    let mut ids = HashSet::new();
    let columns = Columns {
        required: &REQUIRED,
        optional: &OPTIONAL,
        reject_unknown: true,
    };
    report.data_rows = for_each_row(text, file, &columns, |row| {
        let id = row.text("id");
        if id.is_empty() {
            return Err(row.error("id", "a non-empty job id"));
        }
        if !ids.insert(id.to_string()) {
            return Err(row.error("id", "an id not used by an earlier row"));
        }
        let gang_size: u32 = row.parse("gang_size", "a whole number of accelerators > 0")?;
        if gang_size == 0 {
            return Err(row.error("gang_size", "a whole number of accelerators > 0"));
        }
        let tenant = match row.get("tenant") {
            None | Some("") => DEFAULT_TENANT.to_string(),
            Some(tenant) => tenant.to_string(),
        };
        let checkpoint_interval_s: Option<u64> =
            row.parse_optional("checkpoint_interval_s", "whole seconds > 0, or empty")?;
        if checkpoint_interval_s == Some(0) {
            return Err(row.error("checkpoint_interval_s", "whole seconds > 0, or empty"));
        }
        jobs.push(TraceJob {
            arrival_s: row.parse("arrival_s", "whole seconds >= 0")?,
            spec: JobSpec {
                name: id.to_string(),
                gang_size,
                tenant,
                priority: row
                    .parse_optional("priority", "a whole number")?
                    .unwrap_or(0),
                work: parse_work(row)?,
                runtime_estimate_s: row
                    .parse_optional("runtime_estimate_s", "whole seconds >= 0, or empty")?,
                checkpoint_interval_s,
                checkpoint_cost_s: 0,
            },
        });
        Ok(())
    })?;
    Ok((jobs, report))
}

fn parse_work(row: &Row<'_>) -> Result<Work, TraceError> {
    let rates_form = row.get("total_units").is_some() || row.get("units_per_s").is_some();
    let duration_form = row.get("duration_s").is_some();
    if rates_form == duration_form || (rates_form && row.get("allowed_types").is_some()) {
        return Err(TraceError::Header {
            file: row.file.to_string(),
            problem: "must give the work either as total_units and units_per_s, or as \
                      duration_s with optional allowed_types"
                .to_string(),
            expected: HEADER.join(","),
        });
    }
    if duration_form {
        let duration_s: f64 = row.parse("duration_s", "seconds > 0")?;
        if !(duration_s.is_finite() && duration_s > 0.0) {
            return Err(row.error("duration_s", "seconds > 0"));
        }
        let mut units_per_s = Rates::new();
        for name in row.get("allowed_types").unwrap_or("").split('|') {
            if !name.trim().is_empty() {
                units_per_s.insert(name.trim().to_string(), 1.0);
            }
        }
        if units_per_s.is_empty() {
            units_per_s.insert(ANY_ACCELERATOR.to_string(), 1.0);
        }
        return Ok(Work {
            total_units: duration_s,
            units_per_s,
        });
    }
    let expected_rates = "type=rate pairs separated by |, rates > 0, e.g. v100=2.5|p100=1.1";
    let total_units: f64 = row.parse("total_units", "a number > 0")?;
    if !(total_units.is_finite() && total_units > 0.0) {
        return Err(row.error("total_units", "a number > 0"));
    }
    let mut units_per_s = Rates::new();
    for pair in row.get("units_per_s").unwrap_or("").split('|') {
        let (name, rate) = pair
            .split_once('=')
            .ok_or_else(|| row.error("units_per_s", expected_rates))?;
        let rate: f64 = rate
            .trim()
            .parse()
            .ok()
            .filter(|rate: &f64| rate.is_finite() && *rate > 0.0)
            .ok_or_else(|| row.error("units_per_s", expected_rates))?;
        let name = name.trim();
        if name.is_empty() || units_per_s.insert(name.to_string(), rate).is_some() {
            return Err(row.error("units_per_s", expected_rates));
        }
    }
    Ok(Work {
        total_units,
        units_per_s,
    })
}

/// Writes `jobs` in the suanli CSV format (header [`HEADER`]); refuses what it could not read
/// back (an accelerator type with `=`, `|` or surrounding blanks, a checkpoint cost).
pub fn write(jobs: &[TraceJob], out: impl std::io::Write) -> std::io::Result<()> {
    let unwritable =
        |problem: String| std::io::Error::new(std::io::ErrorKind::InvalidData, problem);
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(HEADER)?;
    for TraceJob { arrival_s, spec } in jobs {
        if spec.checkpoint_cost_s != 0 {
            return Err(unwritable(format!(
                "job {}: a checkpoint cost ({} s) is the run's choice and cannot be written; \
                 leave it at 0",
                spec.name, spec.checkpoint_cost_s
            )));
        }
        let mut rates = Vec::with_capacity(spec.work.units_per_s.len());
        for (name, rate) in &spec.work.units_per_s {
            if name.contains(['=', '|']) || name.trim() != name || name.is_empty() {
                return Err(unwritable(format!(
                    "job {}: accelerator type {name:?} cannot be written",
                    spec.name
                )));
            }
            rates.push(format!("{name}={rate}"));
        }
        let optional = |value: Option<u64>| value.map(|v| v.to_string()).unwrap_or_default();
        writer.write_record([
            spec.name.clone(),
            arrival_s.to_string(),
            spec.gang_size.to_string(),
            spec.tenant.clone(),
            spec.priority.to_string(),
            spec.work.total_units.to_string(),
            rates.join("|"),
            optional(spec.runtime_estimate_s),
            optional(spec.checkpoint_interval_s),
        ])?;
    }
    writer.flush()
}

/// [`write`] into a string.
pub fn to_csv_string(jobs: &[TraceJob]) -> std::io::Result<String> {
    let mut bytes = Vec::new();
    write(jobs, &mut bytes)?;
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}
