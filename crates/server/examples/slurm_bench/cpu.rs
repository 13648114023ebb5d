//! CPU time per phase of the Slurm benchmark: the host's (`/proc/stat`), this process's with
//! its reaped commands (`getrusage`), processes started on the host (`/proc/stat`'s
//! `processes`, host-wide, so other work on the host counts too) and, when
//! `SUANLI_BENCH_SLURM_CGROUP` names a cgroup v1 `cpuacct` directory holding slurmctld, the
//! slurmd and munged (their jobs and steps are forked into it), Slurm's.

use std::time::Instant;

pub struct Cpu {
    wall: Instant,
    host_busy_s: f64,
    bench_s: f64,
    processes: f64,
    slurm_s: Option<f64>,
}

/// The first line of `/proc/stat` starting with `key`, its numbers.
fn proc_stat(key: &str) -> Vec<f64> {
    std::fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find(|l| l.split_whitespace().next() == Some(key))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|f| f.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

impl Cpu {
    pub fn now() -> Cpu {
        let ticks = 100.0; // USER_HZ, as /proc/stat counts
        let fields = proc_stat("cpu");
        // user nice system idle iowait irq softirq steal
        let busy: f64 = fields.iter().take(8).sum::<f64>()
            - fields.get(3).copied().unwrap_or(0.0)
            - fields.get(4).copied().unwrap_or(0.0);
        let usage = |who| {
            // SAFETY: getrusage only writes the struct it is given.
            let mut r: libc::rusage = unsafe { std::mem::zeroed() };
            unsafe { libc::getrusage(who, &mut r) };
            let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
            secs(r.ru_utime) + secs(r.ru_stime)
        };
        let slurm_s = std::env::var("SUANLI_BENCH_SLURM_CGROUP").ok().map(|dir| {
            let usage_ns: f64 = std::fs::read_to_string(format!("{dir}/cpuacct.usage"))
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .expect("SUANLI_BENCH_SLURM_CGROUP: no cpuacct.usage there");
            usage_ns / 1e9
        });
        Cpu {
            wall: Instant::now(),
            host_busy_s: busy / ticks,
            bench_s: usage(libc::RUSAGE_SELF) + usage(libc::RUSAGE_CHILDREN),
            processes: proc_stat("processes").first().copied().unwrap_or(0.0),
            slurm_s,
        }
    }

    /// What a phase of `jobs` jobs used since `start`: host CPU per job, how busy the cores
    /// were, this process's share, Slurm's (if measured) and processes started per job.
    pub fn since(&self, start: &Cpu, label: &str, jobs: usize) -> String {
        let wall_s = self.wall.duration_since(start.wall).as_secs_f64();
        let host_s = self.host_busy_s - start.host_busy_s;
        let bench_s = self.bench_s - start.bench_s;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
        let per_job_ms = |s: f64| 1e3 * s / jobs.max(1) as f64;
        let slurm = match (self.slurm_s, start.slurm_s) {
            (Some(end), Some(begin)) => {
                format!(", Slurm {:.1} ms per job", per_job_ms(end - begin))
            }
            _ => String::new(),
        };
        format!(
            "cpu, {label}: host {:.1} ms per job ({:.0}% of {cores} cores busy over {wall_s:.1} s), \
             of which this process and its commands {:.1} ms per job{slurm}; \
             {:.2} processes started per job (host-wide)",
            per_job_ms(host_s),
            100.0 * host_s / (wall_s * cores).max(1e-9),
            per_job_ms(bench_s),
            (self.processes - start.processes) / jobs.max(1) as f64,
        )
    }
}
