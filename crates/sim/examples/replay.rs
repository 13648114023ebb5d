//! One policy's replay through the library, for timing and peak-memory measurements without the
//! CLI's report (`/usr/bin/time -v` around it gives the peak RSS of the simulation alone):
//!
//! ```sh
//! cargo run --release -p suanli-sim --example replay -- \
//!     trace crates/sim/data/gavel/seed0/ee9e8c.trace gavel-36-36-36 gavel-makespan
//! cargo run --release -p suanli-sim --example replay -- \
//!     synthetic jobs=1000000,accelerators=100000 - fifo
//! ```
//!
//! Arguments: `trace <file> <cluster> <policy>` or `synthetic <spec> - <policy>`, then optionally
//! the restart delay in seconds (60 by default; Gavel's simulator charges 0). Prints the
//! simulation's wall time, events and mean JCT on one line.

use std::path::Path;
use std::process::ExitCode;

use suanli_sim::trace::{fit_to_cluster, read_trace};
use suanli_sim::{SimConfig, Summary, presets, simulate, synthetic};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (kind, source, cluster, policy, restart) = match args.as_slice() {
        [k, s, c, p] => (k, s, c, p, None),
        [k, s, c, p, r] => (k, s, c, p, Some(r)),
        _ => {
            eprintln!(
                "usage: replay trace <file> <cluster> <policy> [restart delay s] | \
                 replay synthetic <spec> - <policy> [restart delay s]"
            );
            return ExitCode::from(2);
        }
    };
    let restart_delay_s = match restart.map(|r| r.parse::<u64>()) {
        None => None,
        Some(Ok(seconds)) => Some(seconds),
        Some(Err(_)) => {
            eprintln!("restart delay must be whole seconds, e.g. 0 or 60");
            return ExitCode::from(2);
        }
    };
    let workload = match kind.as_str() {
        "trace" => presets::load_cluster(cluster)
            .map_err(|e| e.to_string())
            .and_then(|cluster| {
                let trace = read_trace(Path::new(source), None).map_err(|e| e.to_string())?;
                Ok((fit_to_cluster(trace.jobs, &cluster).0, cluster))
            }),
        "synthetic" => synthetic::from_spec(source)
            .map_err(|e| e.to_string())
            .map(|w| (w.jobs, w.cluster)),
        other => Err(format!(
            "unknown workload kind `{other}`; use trace or synthetic"
        )),
    };
    let (jobs, cluster) = match workload {
        Ok(w) => w,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    let mut config = SimConfig {
        policy: policy.clone(),
        ..SimConfig::default()
    };
    if let Some(seconds) = restart_delay_s {
        config.sched.restart_delay_s = seconds;
    }
    let code = match simulate(&cluster, &jobs, &config, None) {
        Ok(run) => {
            let summary = Summary::of(&run);
            println!(
                "{policy}: {} jobs, {} events, simulation {:.2} s, mean JCT {:.2} h, preemptions {}",
                summary.jobs_completed,
                summary.events,
                summary.wall_s,
                summary.jct_s.mean / 3600.0,
                run.jobs
                    .iter()
                    .map(|j| u64::from(j.preemptions))
                    .sum::<u64>()
            );
            // The process ends here: leave the million result records to the OS instead of
            // freeing them one by one (about 4% of the instructions of a 1M-job run).
            std::mem::forget(run);
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    };
    // Likewise the workload.
    std::mem::forget(jobs);
    code
}
