//! Reader of Alibaba PAI's 2023 GPU pod lists (`openb_pod_list_*.csv`; Weng et al., "Beware of
//! Fragmentation", ATC'23).
//!
//! Header `name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,
//! deletion_time,scheduled_time`, times in seconds. A pod becomes a job that arrives at
//! `creation_time` and runs `deletion_time - scheduled_time` seconds on a gang of `num_gpu`
//! GPUs of one of the `|`-separated `gpu_spec` types (empty: any type). CPU-only pods and pods
//! that were never scheduled are skipped; a fractional GPU (`gpu_milli < 1000`) is rounded up
//! to a whole one. Every rule is counted in the [`ReadReport`].

use super::error::TraceError;
use super::report::ReadReport;
use super::table::{Columns, Row, for_each_row};
use super::{ANY_ACCELERATOR, DEFAULT_TENANT};
use crate::workload::{JobSpec, TraceJob, Work};

/// Skip rule: the pod asks for no GPU.
pub const SKIP_CPU_ONLY: &str = "cpu-only pod (num_gpu = 0)";
/// Skip rule: the pod never ran, so its run time is unknown.
pub const SKIP_NEVER_SCHEDULED: &str = "never scheduled (scheduled_time empty)";
/// Skip rule: the pod has no end.
pub const SKIP_NO_DELETION: &str = "no deletion_time";
/// Skip rule: the pod ended when it started (or the times are inverted).
pub const SKIP_NO_RUN_TIME: &str = "no run time (deletion_time <= scheduled_time)";
/// Adjust rule: a share of one GPU becomes a whole GPU.
pub const ADJUST_FRACTIONAL_GPU: &str = "fractional GPU (gpu_milli < 1000) rounded up to 1 GPU";

const REQUIRED: [&str; 6] = [
    "name",
    "num_gpu",
    "gpu_milli",
    "creation_time",
    "deletion_time",
    "scheduled_time",
];
const OPTIONAL: [&str; 5] = ["cpu_milli", "memory_mib", "gpu_spec", "qos", "pod_phase"];
const PHASES: [&str; 4] = ["Pending", "Running", "Succeeded", "Failed"];

/// Parses an `openb_pod_list_*.csv` file that has the time columns.
pub fn parse(text: &str, file: &str) -> Result<(Vec<TraceJob>, ReadReport), TraceError> {
    let mut report = ReadReport::new(file);
    let mut jobs = Vec::new();
    let columns = Columns {
        required: &REQUIRED,
        optional: &OPTIONAL,
        reject_unknown: false,
    };
    report.data_rows = for_each_row(text, file, &columns, |row| {
        if let Some(job) = pod_to_job(row, &mut report)? {
            jobs.push(job);
        }
        Ok(())
    })?;
    Ok((jobs, report))
}

fn pod_to_job(row: &Row<'_>, report: &mut ReadReport) -> Result<Option<TraceJob>, TraceError> {
    let name = row.text("name");
    if name.is_empty() {
        return Err(row.error("name", "a pod name"));
    }
    let num_gpu: u32 = row.parse("num_gpu", "a whole number of GPUs >= 0")?;
    let gpu_milli: u32 = row.parse("gpu_milli", "thousandths of a GPU, 0 to 1000")?;
    if gpu_milli > 1000 {
        return Err(row.error("gpu_milli", "thousandths of a GPU, 0 to 1000"));
    }
    let priority = qos_priority(row)?;
    if let Some(phase) = row.get("pod_phase")
        && !phase.is_empty()
        && !PHASES.contains(&phase)
    {
        return Err(row.error("pod_phase", &PHASES.join(", ")));
    }
    let allowed_types = allowed_types(row.get("gpu_spec").unwrap_or(""));
    let creation_s: u64 = row.parse("creation_time", "whole seconds >= 0")?;
    let scheduled_s: Option<u64> = row.parse_optional("scheduled_time", "whole seconds >= 0")?;
    let deletion_s: Option<u64> = row.parse_optional("deletion_time", "whole seconds >= 0")?;
    if num_gpu == 0 {
        report.skip(SKIP_CPU_ONLY, row.line);
        return Ok(None);
    }
    let Some(scheduled_s) = scheduled_s else {
        report.skip(SKIP_NEVER_SCHEDULED, row.line);
        return Ok(None);
    };
    let Some(deletion_s) = deletion_s else {
        report.skip(SKIP_NO_DELETION, row.line);
        return Ok(None);
    };
    if scheduled_s < creation_s {
        return Err(row.error("scheduled_time", "seconds >= creation_time"));
    }
    if deletion_s <= scheduled_s {
        report.skip(SKIP_NO_RUN_TIME, row.line);
        return Ok(None);
    }
    if num_gpu == 1 && gpu_milli < 1000 {
        report.adjust(ADJUST_FRACTIONAL_GPU, row.line);
    }
    let duration_s = deletion_s - scheduled_s;
    let units_per_s = allowed_types.into_iter().map(|t| (t, 1.0)).collect();
    Ok(Some(TraceJob {
        arrival_s: creation_s,
        spec: JobSpec {
            name: name.to_string(),
            gang_size: num_gpu,
            tenant: DEFAULT_TENANT.to_string(),
            priority,
            work: Work {
                total_units: duration_s as f64,
                units_per_s,
            },
            runtime_estimate_s: Some(duration_s),
            checkpoint_interval_s: None,
            checkpoint_cost_s: 0,
        },
    }))
}

/// Accelerator type ids from a `gpu_spec` cell ([`type_id`] of each model), duplicates
/// removed; empty (or `nan`) means any type.
pub fn allowed_types(gpu_spec: &str) -> Vec<String> {
    let mut types: Vec<String> = gpu_spec
        .split('|')
        .map(str::trim)
        .filter(|name| !name.is_empty() && *name != "nan")
        .map(type_id)
        .collect();
    types.sort();
    types.dedup();
    if types.is_empty() {
        types.push(ANY_ACCELERATOR.to_string());
    }
    types
}

/// The accelerator type id of an Alibaba GPU model name: the catalog id where the name
/// identifies one (`A100-SXM4-80GB` → `a100-sxm4-80gb`, `H800` → `h800-sxm5-80gb`), else the
/// name lower-cased (`V100M16` → `v100m16`, `GPU-series-1` → `gpu-series-1`).
pub fn type_id(model: &str) -> String {
    let lower = model.trim().to_ascii_lowercase();
    match lower.as_str() {
        "h800" => "h800-sxm5-80gb".to_string(),
        _ => lower,
    }
}

/// Priority from the QoS class: best-effort (`BE`) pods 0, all others (`LS`, `Burstable`,
/// `Guaranteed`) 1; an empty cell is 0.
fn qos_priority(row: &Row<'_>) -> Result<i32, TraceError> {
    match row.get("qos").unwrap_or("") {
        "" | "BE" => Ok(0),
        "LS" | "Burstable" | "Guaranteed" => Ok(1),
        _ => Err(row.error("qos", "one of LS, BE, Burstable, Guaranteed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gpu_spec_maps_to_type_ids() {
        assert_eq!(allowed_types(""), vec!["*"]);
        assert_eq!(
            allowed_types("V100M16|V100M32|V100M32"),
            vec!["v100m16", "v100m32"]
        );
    }
}
