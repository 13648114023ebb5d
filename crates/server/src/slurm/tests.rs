//! Parser and script tests on output captured from a real Slurm 22.05 (crates/server/data/slurm).

use std::collections::BTreeMap;
use std::path::Path;

use super::nodes::{Health, parse_gres, parse_node_state, parse_sinfo, pools};
use super::parse::{
    Ending, JobState, ParseError, Phase, decode_wait_status, parse_sbatch, parse_show_job,
    parse_squeue,
};
use super::script::{Shape, batch_script, sbatch_args, shell_quote};
use super::{Mode, SlurmConfig};

const SQUEUE: &str = include_str!("../../data/slurm/squeue.txt");
const SQUEUE_ARRAY: &str = include_str!("../../data/slurm/squeue-array.txt");
const SHOW_JOB: &str = include_str!("../../data/slurm/scontrol-show-job.txt");
const SINFO: &str = include_str!("../../data/slurm/sinfo.txt");

#[test]
fn reads_captured_squeue() {
    let rows = parse_squeue(SQUEUE).unwrap();
    assert_eq!(rows.len(), 8);
    let by_id = |id: u64| rows.iter().find(|r| r.job_id == id.to_string()).unwrap();
    assert_eq!(by_id(1).state, JobState::Completed);
    assert_eq!(by_id(1).nodes, "n[1-2]");
    // `exit 3`: wait status 768 = 3 << 8.
    assert_eq!(by_id(2).state.phase(), Phase::Ended(Ending::Failed));
    assert_eq!(Ending::Failed.exit_code(by_id(2).wait_status), 3);
    // scancel: SIGTERM, and suanli records 128 + 15.
    assert_eq!(by_id(3).state.phase(), Phase::Ended(Ending::Cancelled));
    assert_eq!(decode_wait_status(by_id(3).wait_status), 143);
    assert_eq!(by_id(5).state.phase(), Phase::Running);
    assert_eq!(by_id(5).name, "suanli-x-7-a0");
    // The name is the last field, and may contain the separator.
    assert_eq!(by_id(6).name, "odd|name");
    assert_eq!(by_id(6).reason, "Resources");
    assert_eq!(by_id(7).state.phase(), Phase::Waiting);
    assert_eq!(by_id(10).state, JobState::NodeFail);
    assert_eq!(by_id(10).state.phase(), Phase::Ended(Ending::NodeFailed));
    assert_eq!(by_id(10).reason, "NodeDown");
}

#[test]
fn reads_captured_array_tasks() {
    let rows = parse_squeue(SQUEUE_ARRAY).unwrap();
    let ids: Vec<&str> = rows.iter().map(|r| r.job_id.as_str()).collect();
    assert_eq!(ids, ["19_2", "19_0", "19_1", "19_3"]);
    // Released with ExcNodeList=n1,n2,n4: Slurm ran it on the one node left.
    assert_eq!(rows[0].nodes, "n3");
    assert_eq!(rows[0].name, "r1");
    assert_eq!(rows[2].reason, "BeginTime");
    assert_eq!(rows[2].state.phase(), Phase::Waiting);
    for bad in ["", "12_", "_3", "1a", "12_3_4"] {
        assert_eq!(super::parse::job_id(bad), None, "{bad}");
    }
}

#[test]
fn reads_captured_scontrol_show_job_lines() {
    let rows: Vec<_> = SHOW_JOB
        .lines()
        .map(|l| parse_show_job(l).unwrap())
        .collect();
    let ids: Vec<&str> = rows.iter().map(|r| r.job_id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "41597_2", "41593", "41594", "41597_2", "41601", "41593", "41587", "41589", "41588",
            "41591", "41592", "41600", "41597_2"
        ]
    );
    let summary = |r: &super::parse::QueueRow| {
        let code = match r.state.phase() {
            Phase::Ended(ending) => ending.exit_code(r.wait_status).to_string(),
            _ => "-".into(),
        };
        format!("{} {} [{}] {}", r.state.name(), r.reason, r.nodes, code)
    };
    let got: Vec<String> = rows.iter().map(summary).collect();
    assert_eq!(
        got,
        [
            // A spare task still in its array, then (split off by its release) waiting.
            "PENDING BeginTime [] -",
            "PENDING Resources [] -",
            "PENDING Priority [] -",
            "PENDING Priority [] -",
            "RUNNING None [n[1-2]] -",
            // Cancelled while pending.
            "CANCELLED Resources [] 143",
            "COMPLETED None [n1] 0",
            "COMPLETED None [n1] 0",
            // `exit 3`: ExitCode=3:0.
            "FAILED NonZeroExitCode [n1] 3",
            // scancel while running: ExitCode=0:15.
            "CANCELLED None [n1] 143",
            "TIMEOUT TimeLimit [n1] 124",
            // `scontrol update nodename=n3 state=down` under a --no-requeue job.
            "NODE_FAIL NodeDown [n3] 137",
            "COMPLETED None [n1] 0",
        ]
    );
    assert_eq!(decode_wait_status(rows[8].wait_status), 3);
    assert_eq!(decode_wait_status(rows[9].wait_status), 128 + 15);
    assert_eq!(rows[0].name, "suanli-test-spare");
}

#[test]
fn a_show_job_line_that_is_not_one_is_refused_in_one_line() {
    let good = SHOW_JOB.lines().nth(6).unwrap();
    let bad = [
        String::new(),
        // What scontrol says of an id it no longer knows (on stderr).
        "slurm_load_jobs error: Invalid job id specified".into(),
        good.replace("JobState=COMPLETED", "JobState=HOVERING"),
        good.replace("ExitCode=0:0", "ExitCode=0"),
        good.replace("ExitCode=0:0", "ExitCode=300:0"),
        good.replace(" NodeList=n1", " Nodes=n1"),
        good.replace("JobId=41587", "JobId=x"),
        good.chars().take(200).collect(),
    ];
    for line in bad {
        let error = parse_show_job(&line).unwrap_err().to_string();
        assert!(!error.contains('\n'), "{error}");
        assert!(error.len() < 400, "{error}");
    }
    // A value with spaces (a job name) continues until the next key.
    let spaced = good.replace("JobName=wrap", "JobName=my job");
    assert_eq!(parse_show_job(&spaced).unwrap().name, "my job");
}

#[test]
fn every_slurm_state_maps_and_unknown_ones_are_refused() {
    // The 23 names of src/common/slurm_protocol_defs.c job_state_string().
    let names = [
        "PENDING",
        "CONFIGURING",
        "RUNNING",
        "SUSPENDED",
        "COMPLETING",
        "COMPLETED",
        "CANCELLED",
        "FAILED",
        "TIMEOUT",
        "NODE_FAIL",
        "PREEMPTED",
        "BOOT_FAIL",
        "DEADLINE",
        "OUT_OF_MEMORY",
        "REQUEUED",
        "REQUEUE_HOLD",
        "REQUEUE_FED",
        "RESIZING",
        "REVOKED",
        "SIGNALING",
        "SPECIAL_EXIT",
        "STAGE_OUT",
        "STOPPED",
    ];
    for name in names {
        let state = JobState::parse(name).unwrap();
        assert_eq!(state.name(), name);
    }
    assert_eq!(
        JobState::parse("CANCELLED by 0").unwrap(),
        JobState::Cancelled
    );
    assert_eq!(Ending::TimedOut.exit_code(0), 124);
    assert_eq!(
        JobState::parse("TIMEOUT").unwrap().phase(),
        Phase::Ended(Ending::TimedOut)
    );
    assert_eq!(
        JobState::parse("PREEMPTED").unwrap().phase(),
        Phase::Ended(Ending::Preempted)
    );
    assert!(matches!(
        JobState::parse("EXPLODED"),
        Err(ParseError::UnknownJobState(_))
    ));
    assert!(parse_squeue("12|RUNNING|None|n1|0|x|\n13|HOVERING|None||0|y|").is_err());
    assert!(parse_squeue("12|RUNNING|None").is_err());
    assert!(parse_squeue("x|RUNNING|None|n1|0|x|").is_err());
    // A failure without an exit code still counts as a failure.
    assert_eq!(Ending::Failed.exit_code(0), 1);
}

#[test]
fn reads_captured_sinfo_with_drained_and_down_nodes() {
    let nodes = parse_sinfo(SINFO).unwrap();
    assert_eq!(nodes.len(), 4);
    assert_eq!(nodes[0].partition, "gpu");
    assert_eq!(nodes[0].gpus, vec![("h100".to_string(), 8)]);
    assert_eq!(nodes[0].gpus_used, vec![("h100".to_string(), 0)]);
    assert_eq!(nodes[0].health, Health::Up);
    assert_eq!(nodes[2].health, Health::Drained);
    assert_eq!(nodes[2].reason, "maint | test");
    assert_eq!(nodes[3].health, Health::Down);
    assert_eq!(nodes[3].reason, "psu failed");
    let pools = pools(&nodes, Some("gpu"));
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0].accelerator, "h100-sxm5-80gb");
    assert_eq!(pools[0].nodes, ["n1", "n2", "n3", "n4"]);
    assert_eq!(pools[0].per_node, 8);
    assert!(super::nodes::pools(&nodes, Some("cpu")).is_empty());
}

#[test]
fn node_states_and_gres_lists() {
    assert_eq!(parse_node_state("mixed-").unwrap(), Health::Up);
    assert_eq!(parse_node_state("idle*").unwrap(), Health::Unknown);
    assert_eq!(parse_node_state("unknown").unwrap(), Health::Unknown);
    assert_eq!(parse_node_state("drained*").unwrap(), Health::Drained);
    assert_eq!(parse_node_state("idle~").unwrap(), Health::Down);
    assert_eq!(parse_node_state("draining").unwrap(), Health::Draining);
    assert_eq!(parse_node_state("down~").unwrap(), Health::Down);
    assert!(parse_node_state("sleepy").is_err());
    let gres = parse_gres("gpu:a100:2(S:0-1),gpu:h100:4(IDX:0,2-3),shard:8", 1).unwrap();
    assert_eq!(gres, vec![("a100".into(), 2), ("h100".into(), 4)]);
    assert_eq!(parse_gres("gpu:2", 1).unwrap(), vec![("gpu".into(), 2)]);
    assert_eq!(parse_gres("(null)", 1).unwrap(), vec![]);
    assert!(parse_gres("gpu:h100:lots", 1).is_err());
    assert_eq!(parse_sbatch("4711\n").unwrap(), 4711);
    assert_eq!(parse_sbatch("4711;site-b\n").unwrap(), 4711);
    assert!(parse_sbatch("sbatch: error: Batch job submission failed").is_err());
}

#[test]
fn scripts_quote_everything_and_pin_nodes_only_when_suanli_schedules() {
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    let mut env = BTreeMap::new();
    env.insert("NOTE".to_string(), "$(rm -rf /)'; x".to_string());
    let script = batch_script(
        &["echo".into(), "a b".into()],
        &env,
        Path::new("/r"),
        None,
        2,
    )
    .unwrap();
    assert!(script.contains(r"export NOTE='$(rm -rf /)'\''; x'"));
    assert!(script.contains("suanli-task 'echo' 'a b'"));
    env.insert("BAD NAME".into(), "x".into());
    assert!(script.contains("scontrol show hostnames"));
    let pinned = batch_script(
        &["true".into()],
        &BTreeMap::new(),
        Path::new("/r"),
        Some("10.0.0.1"),
        1,
    )
    .unwrap();
    assert!(pinned.contains("export MASTER_ADDR='10.0.0.1'\n"));
    // One process: its rank from the script, its command straight from `srun`.
    assert!(pinned.contains("export RANK=0 LOCAL_RANK=0\nsrun --kill-on-bad-exit=1 -- 'true'\n"));
    assert!(!pinned.contains("suanli-task"));
    assert!(batch_script(&["true".into()], &env, Path::new("/r"), None, 1).is_err());

    let mut config = SlurmConfig::new("slurm");
    config.partition = Some("gpu".into());
    let shape = Shape {
        gres_type: "h100".into(),
        nodes: vec![("n1".into(), 8), ("n2".into(), 8)],
        processes: 4,
    };
    let args = sbatch_args(&config, &shape, 16, "suanli-x-1-a0", Path::new("/r"), -5);
    for expected in [
        "--nodes=2",
        "--ntasks-per-node=2",
        "--gres=gpu:h100:8",
        "--nodelist=n1,n2",
        "--partition=gpu",
        "--no-requeue",
        "--time=1440",
    ] {
        assert!(
            args.iter().any(|a| a == expected),
            "{expected} missing from {args:?}"
        );
    }
    config.mode = Mode::Slurm;
    config.qos = Some("high".into());
    let args = sbatch_args(&config, &shape, 16, "suanli-x-1-a0", Path::new("/r"), -5);
    assert!(!args.iter().any(|a| a.starts_with("--nodelist")));
    assert!(args.iter().any(|a| a == "--qos=high"));
    assert!(args.iter().any(|a| a == "--nice=5"));
    // Uneven shares (6 + 2) cannot be one per-node GRES: total GPUs and tasks instead.
    let uneven = Shape {
        nodes: vec![("n1".into(), 6), ("n2".into(), 2)],
        ..shape
    };
    let args = sbatch_args(&config, &uneven, 8, "j", Path::new("/r"), 0);
    assert!(args.iter().any(|a| a == "--gpus=h100:8"));
    assert!(args.iter().any(|a| a == "--ntasks=4"));
}

/// What `srun` task `local` of `per_node` tasks sees of `visible` (`None`: unset), run by `sh`
/// as `srun` runs it: its rank and its slice of the node's GPUs.
fn task_sees(visible: Option<&str>, gpus: u32, per_node: Option<u32>, local: u32) -> String {
    let mut command = std::process::Command::new("sh");
    command
        .args(["-c", super::script::TASK, "suanli-task", "sh", "-c"])
        .arg(r#"echo "$RANK $LOCAL_RANK ${CUDA_VISIBLE_DEVICES-unset}""#)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("SLURM_PROCID", (10 + local).to_string())
        .env("SLURM_LOCALID", local.to_string())
        .env("SLURM_GPUS_ON_NODE", gpus.to_string());
    if let Some(visible) = visible {
        command.env("CUDA_VISIBLE_DEVICES", visible);
    }
    if let Some(per_node) = per_node {
        command.env("SLURM_NTASKS_PER_NODE", per_node.to_string());
    }
    let output = command.output().expect("sh");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_string()
}

#[test]
fn each_task_gets_its_slice_of_the_nodes_gpus_with_shell_builtins() {
    let all = Some("0,1,2,3,4,5,6,7");
    // 4 tasks x 2 GPUs: task 2 takes the third pair.
    assert_eq!(task_sees(all, 8, Some(4), 2), "12 2 4,5");
    assert_eq!(task_sees(all, 8, Some(4), 0), "10 0 0,1");
    // 2 tasks x 2 GPUs of devices Slurm numbered unevenly: positions, not values.
    assert_eq!(task_sees(Some("3,5,6,7"), 4, Some(2), 1), "11 1 6,7");
    // 8 tasks x 1 GPU.
    assert_eq!(task_sees(all, 8, Some(8), 7), "17 7 7");
    // A node's only task keeps every GPU; no GPUs or no per-node count: left as Slurm set it.
    assert_eq!(task_sees(Some("2"), 1, Some(1), 0), "10 0 2");
    assert_eq!(task_sees(all, 8, Some(1), 0), "10 0 0,1,2,3,4,5,6,7");
    assert_eq!(task_sees(None, 0, Some(2), 1), "11 1 unset");
    assert_eq!(task_sees(all, 8, None, 0), "10 0 0,1,2,3,4,5,6,7");
    // The batch script quotes the task in `'...'`.
    assert!(!super::script::TASK.contains('\''));
}

/// The batch script of a one-process run, run by `sh` with a stand-in `srun` (which runs the
/// command after `--`, as Slurm's does for one task): the rank variables, and the exit code
/// written in place and read back only once whole.
#[test]
fn a_one_process_script_runs_its_command_through_srun_and_records_its_exit_code() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("suanli-script-{}-{nanos}", std::process::id()));
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let srun = bin.join("srun");
    let stand_in = "#!/bin/sh\nwhile [ \"$1\" != -- ]; do shift; done\nshift\nexec \"$@\"\n";
    std::fs::write(&srun, stand_in).unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(&srun)
        .status()
        .unwrap();
    let command = [
        "sh",
        "-c",
        r#"echo "$RANK $LOCAL_RANK $WORLD_SIZE"; exit 3"#,
    ]
    .map(String::from);
    let script = batch_script(&command, &BTreeMap::new(), &dir, Some("n1"), 1).unwrap();
    let path = dir.join("job.sh");
    std::fs::write(&path, script).unwrap();
    let status = std::process::Command::new("sh")
        .arg(&path)
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("SLURM_JOB_ID", "7")
        .env("SLURM_NTASKS", "1")
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(3));
    assert_eq!(std::fs::read_to_string(dir.join("log")).unwrap(), "0 0 1\n");
    assert_eq!(std::fs::read_to_string(dir.join("exit")).unwrap(), "3\n");
    assert_eq!(super::run::exit_file(&dir), Some(3));
    // Caught between `echo`'s open and its write, or cut short: not yet an exit code.
    for partial in ["", "3", " \n"] {
        std::fs::write(dir.join("exit"), partial).unwrap();
        assert_eq!(super::run::exit_file(&dir), None, "{partial:?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
