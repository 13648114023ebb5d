//! Reader of Gavel's `.trace` files (Narayanan et al., OSDI'20; Philly-derived workloads).
//!
//! Tab-separated, no header, seven fields: `job_type, command, num_steps_arg, needs_data_dir,
//! total_steps, arrival_time, scale_factor`. A job is `total_steps` steps on a gang of
//! `scale_factor` devices of one type, at the steps/s of [`Throughputs`]; unmeasured scale
//! factors get a derived rate ([`super::throughputs::derive_rate`]) and are listed in
//! [`ReadReport::derived_throughput_job_ids`].

use super::error::TraceError;
use super::report::ReadReport;
use super::throughputs::Throughputs;
use crate::workload::{JobSpec, TraceJob, Work};

/// Fields per line.
pub const FIELDS: usize = 7;

/// Field names, in file order (used in error messages).
pub const FIELD_NAMES: [&str; FIELDS] = [
    "job_type",
    "command",
    "num_steps_arg",
    "needs_data_dir",
    "total_steps",
    "arrival_time",
    "scale_factor",
];

/// Skip rule: the job fits no accelerator type of the table (measured rate 0 everywhere).
pub const SKIP_NO_RUNNABLE_TYPE: &str = "no accelerator type can run the job (rate 0 on all)";

/// Parses a Gavel trace. Job ids are the 0-based line index, as in Gavel's simulator.
pub fn parse(
    text: &str,
    file: &str,
    throughputs: &Throughputs,
) -> Result<(Vec<TraceJob>, ReadReport), TraceError> {
    let mut report = ReadReport::new(file);
    let mut jobs = Vec::new();
    for (index, line_text) in text.lines().enumerate() {
        let line = index as u64 + 1;
        if line_text.trim().is_empty() {
            continue;
        }
        report.data_rows += 1;
        let fields: Vec<&str> = line_text.split('\t').collect();
        if fields.len() != FIELDS {
            return Err(TraceError::FieldCount {
                file: file.to_string(),
                line,
                found: fields.len(),
                expected: format!("{FIELDS} tab-separated: {}", FIELD_NAMES.join(", ")),
            });
        }
        let row = GavelRow::parse(&fields, file, line, throughputs)?;
        let id = index.to_string();
        let Some((job, derived)) = row.into_job(id.clone(), throughputs) else {
            report.skip(SKIP_NO_RUNNABLE_TYPE, line);
            continue;
        };
        if derived {
            report.derived_throughput_job_ids.push(id);
        }
        jobs.push(job);
    }
    Ok((jobs, report))
}

/// One validated line.
struct GavelRow<'t> {
    job_type: &'t str,
    total_steps: u64,
    arrival_s: u64,
    scale_factor: u32,
}

impl<'t> GavelRow<'t> {
    fn parse(
        fields: &[&'t str],
        file: &str,
        line: u64,
        throughputs: &Throughputs,
    ) -> Result<Self, TraceError> {
        let error = |position: usize, expected: &str| {
            TraceError::field(
                file,
                line,
                FIELD_NAMES[position],
                fields[position],
                expected,
            )
        };
        let job_type = fields[0];
        if throughputs.job_rates(job_type, 1).is_none() {
            let known = throughputs.job_types().join("; ");
            return Err(error(
                0,
                &format!("a job type of simulation_throughputs.json: {known}"),
            ));
        }
        if fields[1].trim().is_empty() {
            return Err(error(1, "a command line"));
        }
        if fields[2].trim().is_empty() {
            return Err(error(2, "the name of the steps argument, e.g. --num_steps"));
        }
        if fields[3] != "0" && fields[3] != "1" {
            return Err(error(3, "0 or 1"));
        }
        let total_steps: u64 = fields[4]
            .parse()
            .ok()
            .filter(|steps| *steps > 0)
            .ok_or_else(|| error(4, "a whole number of steps > 0"))?;
        let arrival_time: f64 = fields[5]
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| error(5, "seconds >= 0, e.g. 336541.000000"))?;
        let scale_factor: u32 = fields[6]
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| error(6, "a whole number of accelerators > 0"))?;
        Ok(GavelRow {
            job_type,
            total_steps,
            arrival_s: arrival_time.round() as u64,
            scale_factor,
        })
    }

    /// The job and whether its rates were derived; `None` when no type can run it.
    fn into_job(self, id: String, throughputs: &Throughputs) -> Option<(TraceJob, bool)> {
        let rates = throughputs.job_rates(self.job_type, self.scale_factor)?;
        let fastest_steps_per_s = rates.steps_per_s.values().copied().fold(0.0, f64::max);
        if fastest_steps_per_s <= 0.0 {
            return None;
        }
        let total_units = self.total_steps as f64;
        let job = TraceJob {
            arrival_s: self.arrival_s,
            spec: JobSpec {
                name: id,
                gang_size: self.scale_factor,
                tenant: job_family(self.job_type),
                priority: 0,
                work: Work {
                    total_units,
                    units_per_s: rates.steps_per_s.into(),
                },
                runtime_estimate_s: Some((total_units / fastest_steps_per_s).ceil() as u64),
                checkpoint_interval_s: None,
                checkpoint_cost_s: 0,
            },
        };
        Some((job, rates.derived))
    }
}

/// The tenant of a Gavel job: its model family, lower-case, without the batch size
/// (`"ResNet-18 (batch size 16)"` → `"resnet-18"`).
pub fn job_family(job_type: &str) -> String {
    let family = job_type.split(" (").next().unwrap_or(job_type);
    family.trim().to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_drops_batch_size() {
        assert_eq!(job_family("ResNet-18 (batch size 16)"), "resnet-18");
        assert_eq!(job_family("A3C"), "a3c");
    }
}
