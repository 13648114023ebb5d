//! The batch script and `sbatch` arguments for one run (pure: no I/O, tested without Slurm).

use std::collections::BTreeMap;
use std::path::Path;

use super::{Mode, SlurmConfig};

/// Where a run goes: nodes (empty when Slurm chooses) and GPUs per node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Shape {
    pub gres_type: String,
    /// Node names suanli chose, with the GPUs on each.
    pub nodes: Vec<(String, u32)>,
    pub processes: u32,
}

/// Quotes a word for `sh`: `'...'` with every `'` as `'\''`.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A valid shell variable name (others are refused rather than quoted).
fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Each task: its rank from Slurm, and its share of the node's GPUs (Slurm gives every task of
/// a node all of the node's GPUs in `CUDA_VISIBLE_DEVICES`; rank `LOCAL_RANK` takes slice
/// `LOCAL_RANK` of `SLURM_GPUS_ON_NODE / SLURM_NTASKS_PER_NODE`). Shell built-ins only: the
/// slice is cut by `IFS=,` and a loop, and a node's only task keeps the whole list, so a task
/// starts no process but its command (on a 2-core host every process costs ~1 ms of CPU per
/// run, see docs/slurm.md). No `'`: the batch script quotes it.
pub(super) const TASK: &str = r#"export RANK=$SLURM_PROCID LOCAL_RANK=$SLURM_LOCALID; n=0; [ -n "$SLURM_NTASKS_PER_NODE" ] && n=$(( ${SLURM_GPUS_ON_NODE:-0} / SLURM_NTASKS_PER_NODE )); if [ -n "$CUDA_VISIBLE_DEVICES" ] && [ "$n" -gt 0 ] && [ "$SLURM_NTASKS_PER_NODE" -gt 1 ]; then first=$((LOCAL_RANK * n)); i=0; s=; IFS=,; for g in $CUDA_VISIBLE_DEVICES; do [ $i -ge $first ] && [ $i -lt $((first + n)) ] && s=${s:+$s,}$g; i=$((i + 1)); done; unset IFS; CUDA_VISIBLE_DEVICES=$s; export CUDA_VISIBLE_DEVICES; fi; exec "$@""#;

/// An environment variable name a shell cannot `export`.
#[derive(Debug, thiserror::Error)]
#[error("environment variable name `{0}` is not valid in a shell")]
pub struct InvalidEnvName(pub String);

/// The batch script: the job's environment, `MASTER_ADDR`/`MASTER_PORT` from the first node of
/// the allocation, then one `srun` task per process with `RANK`, `LOCAL_RANK` and `WORLD_SIZE`
/// from Slurm's `SLURM_PROCID`, `SLURM_LOCALID` and `SLURM_NTASKS` (a run of one process gets
/// `RANK=0 LOCAL_RANK=0` from the script and its command straight from `srun`, without the
/// per-task shell). The exit code lands in `exit` in the run directory, so it is known even
/// after Slurm forgets the job: one `echo` (one write), so a reader takes it once its newline is
/// there (see `run::exit_file`), and no `mv` process per run.
pub fn batch_script(
    command: &[String],
    env: &BTreeMap<String, String>,
    run_dir: &Path,
    master_addr: Option<&str>,
    processes: u32,
) -> Result<String, InvalidEnvName> {
    let mut script = String::from("#!/bin/sh\n# Written by suanli; one run of one job.\n");
    for (key, value) in env {
        if !valid_name(key) {
            return Err(InvalidEnvName(key.clone()));
        }
        script.push_str(&format!("export {key}={}\n", shell_quote(value)));
    }
    let run_dir = shell_quote(&run_dir.display().to_string());
    // Also when a spare runs it (see `spares`): its own directory and log.
    script.push_str(&format!(
        "cd {run_dir} || exit 1\nexec >> {run_dir}/log 2>&1\n"
    ));
    // The first node's address: known when suanli chose the nodes, else asked of Slurm.
    match master_addr {
        Some(addr) => script.push_str(&format!("export MASTER_ADDR={}\n", shell_quote(addr))),
        None => script.push_str(
            r#"first=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
addr=$(scontrol show node -o "$first" | tr ' ' '\n' | sed -n 's/^NodeAddr=//p')
export MASTER_ADDR="${addr:-$first}"
"#,
        ),
    }
    script.push_str(
        "export MASTER_PORT=$((20000 + SLURM_JOB_ID % 20000))\nexport WORLD_SIZE=\"$SLURM_NTASKS\"\n",
    );
    if processes == 1 {
        script.push_str("export RANK=0 LOCAL_RANK=0\nsrun --kill-on-bad-exit=1 --");
    } else {
        script.push_str(&format!(
            "srun --kill-on-bad-exit=1 sh -c '{TASK}' suanli-task"
        ));
    }
    for word in command {
        script.push(' ');
        script.push_str(&shell_quote(word));
    }
    script.push_str(&format!(
        "\ncode=$?\necho $code > {run_dir}/exit\nexit $code\n"
    ));
    Ok(script)
}

/// The allocation of a run as `sbatch` arguments: `--nodes`, then `--ntasks-per-node` and
/// `--gres` when every node has the same share, else `--ntasks` and `--gpus` in all.
pub fn allocation_args(shape: &Shape, gpus: u32) -> Vec<String> {
    let nodes = shape.nodes.len().max(1) as u32;
    let even = shape.nodes.windows(2).all(|w| w[0].1 == w[1].1)
        && shape.processes.is_multiple_of(nodes)
        && gpus.is_multiple_of(nodes);
    if even {
        vec![
            format!("--nodes={nodes}"),
            format!("--ntasks-per-node={}", shape.processes / nodes),
            format!("--gres=gpu:{}:{}", shape.gres_type, gpus / nodes),
        ]
    } else {
        vec![
            format!("--nodes={nodes}"),
            format!("--ntasks={}", shape.processes),
            format!("--gpus={}:{gpus}", shape.gres_type),
        ]
    }
}

/// `sbatch` arguments (before the script path) for a run.
pub fn sbatch_args(
    config: &SlurmConfig,
    shape: &Shape,
    gpus: u32,
    name: &str,
    run_dir: &Path,
    priority: i32,
) -> Vec<String> {
    let mut args = vec![
        "--parsable".to_string(),
        format!("--job-name={name}"),
        format!("--chdir={}", run_dir.display()),
        format!("--output={}", run_dir.join("log").display()),
        "--open-mode=append".into(),
        // A node failure ends the job (NODE_FAIL); suanli's restart logic requeues it, from
        // its checkpoint, on nodes it knows are up.
        "--no-requeue".into(),
        "--export=ALL".into(),
        format!("--time={}", config.time_limit_min.max(1)),
    ];
    args.extend(allocation_args(shape, gpus));
    if let Some(partition) = &config.partition {
        args.push(format!("--partition={partition}"));
    }
    if let Some(account) = &config.account {
        args.push(format!("--account={account}"));
    }
    match config.mode {
        Mode::Suanli => {
            let names: Vec<&str> = shape.nodes.iter().map(|(n, _)| n.as_str()).collect();
            if !names.is_empty() {
                args.push(format!("--nodelist={}", names.join(",")));
            }
        }
        Mode::Slurm => {
            if let Some(qos) = &config.qos {
                args.push(format!("--qos={qos}"));
            }
            // Any user may lower their own priority; raising it takes a QOS (above).
            if priority < 0 {
                args.push(format!("--nice={}", priority.unsigned_abs().min(10_000)));
            }
        }
    }
    args
}
