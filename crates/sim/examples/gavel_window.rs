//! Gavel's continuous-single measurement through the library: per policy, the simulation's wall
//! time and the mean JCT of the jobs whose ids fall in a window (Gavel's `run_sweep_continuous.py
//! -s 4000 -e 5000` measures jobs 4000-4999), as `generator/compare.sh` reads it from the CLI's
//! per-job CSVs, without building the CLI:
//!
//! ```sh
//! python3 crates/sim/data/gavel/generator/generate_continuous.py --rate 5.6 --seed 0 --jobs 6000 > r.trace
//! cargo run --release -p suanli-sim --example gavel_window -- r.trace gavel-36-36-36 \
//!     gavel-max-min-fairness,gavel-max-min-fairness-hetero 0 4000 5000
//! ```
//!
//! Arguments: trace, cluster, comma-separated policies, restart delay (s), first id, end id.

use std::path::Path;
use std::process::ExitCode;

use suanli_sim::trace::{fit_to_cluster, read_trace};
use suanli_sim::{SimConfig, presets, simulate};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [trace, cluster, policies, restart, first, end] = args.as_slice() else {
        eprintln!(
            "usage: gavel_window <trace> <cluster> <policies> <restart s> <first id> <end id>"
        );
        return ExitCode::from(2);
    };
    let numbers: Result<Vec<u64>, _> = [restart, first, end].iter().map(|a| a.parse()).collect();
    let Ok([restart_s, first, end]) = numbers.as_deref().map(|n| [n[0], n[1], n[2]]) else {
        eprintln!("restart delay and ids must be whole numbers");
        return ExitCode::from(2);
    };
    let loaded = presets::load_cluster(cluster)
        .map_err(|e| e.to_string())
        .and_then(|cluster| {
            let trace = read_trace(Path::new(trace), None).map_err(|e| e.to_string())?;
            Ok((fit_to_cluster(trace.jobs, &cluster).0, cluster))
        });
    let (jobs, cluster) = match loaded {
        Ok(loaded) => loaded,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    for policy in policies.split(',') {
        let mut config = SimConfig {
            policy: policy.to_string(),
            ..SimConfig::default()
        };
        config.sched.restart_delay_s = restart_s;
        let started = std::time::Instant::now();
        let run = match simulate(&cluster, &jobs, &config, None) {
            Ok(run) => run,
            Err(error) => {
                eprintln!("{error}");
                return ExitCode::FAILURE;
            }
        };
        let window: Vec<f64> = run
            .jobs
            .iter()
            .filter(|j| {
                j.id.parse::<u64>()
                    .is_ok_and(|id| (first..end).contains(&id))
            })
            .map(|j| j.jct_s as f64 / 3600.0)
            .collect();
        let mean_h = window.iter().sum::<f64>() / window.len().max(1) as f64;
        println!(
            "{policy}\t{} jobs in window\tmean JCT {mean_h:.2} h\tsimulation {:.2} s",
            window.len(),
            started.elapsed().as_secs_f64()
        );
    }
    ExitCode::SUCCESS
}
