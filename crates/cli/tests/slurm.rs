//! The Slurm executor against the real Slurm cluster of `.ci/slurm.sh` (4 nodes x 8 fake h100),
//! through the real `suanli serve`: a gang across two nodes, cancel, a node drained mid-job,
//! a slurmctld restart, `kill -9` of suanli, and a local pool beside the Slurm one.
//!
//! Runs when SUANLI_TEST_SLURM=1 (and then fails on any problem); otherwise each test says it
//! was skipped. The tests share the cluster, so they run one at a time.

mod common;
#[path = "slurm/rig.rs"]
mod rig;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{free_port, unique_dir};
use reqwest::Method;
use rig::{cluster, is_running_in_slurm, serve, slurm, slurm_conf, slurm_job, slurm_server};
use serde_json::json;

#[test]
fn a_gang_spans_two_nodes_with_ranks_and_one_master() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&[]);
    let script = "echo rank=$RANK local=$LOCAL_RANK world=$WORLD_SIZE master=$MASTER_ADDR:$MASTER_PORT node=$SLURMD_NODENAME gpus=$CUDA_VISIBLE_DEVICES";
    let id = server.submit(json!({
        "gpus": 16, "processes": 4, "accelerators": ["h100"], "command": ["sh", "-c", script],
    }));
    let job = server.wait(id, "succeeded", 60, |j| j["state"] == "succeeded");
    assert_eq!(job["run"]["pool"], "slurm-h100");
    let logs = server.logs(id, 0);
    let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("rank=")).collect();
    assert_eq!(lines.len(), 4, "{logs}");
    for rank in 0..4 {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("rank={rank} "))),
            "{logs}"
        );
    }
    assert!(lines.iter().all(|l| l.contains("world=4")), "{logs}");
    // One master for every rank: the first node's address and a port from the job id.
    let masters: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| {
            l.split("master=")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(masters.len(), 1, "{logs}");
    assert!(
        masters.iter().next().unwrap().starts_with("127.0.0.1:"),
        "{logs}"
    );
    // Two nodes, two ranks each, each rank with its own 4 of the node's 8 GPUs.
    let nodes: std::collections::BTreeSet<&str> = lines
        .iter()
        .map(|l| l.split("node=").nth(1).unwrap().split(' ').next().unwrap())
        .collect();
    assert_eq!(nodes.len(), 2, "{logs}");
    assert!(lines.iter().any(|l| l.ends_with("gpus=0,1,2,3")), "{logs}");
    assert!(lines.iter().any(|l| l.ends_with("gpus=4,5,6,7")), "{logs}");
    assert_eq!(server.slurm_jobs(id).len(), 1);
    // suanli chose the nodes and pinned them (Slurm prints the list compressed: n[1-2]).
    let shown = slurm_job(&job);
    assert!(!shown.contains("ReqNodeList=(null)"), "{shown}");
    assert!(shown.contains(" NumNodes=2 "), "{shown}");
}

#[test]
fn in_slurm_mode_slurm_picks_the_nodes_and_suanli_reports_them() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&["--slurm-mode", "slurm"]);
    let id = server.submit(json!({ "gpus": 8, "priority": -3, "command": ["sleep", "3"] }));
    let running = server.wait(id, "running in Slurm", 30, is_running_in_slurm);
    let job = server.wait(id, "succeeded", 60, |j| j["state"] == "succeeded");
    let shown = slurm_job(&job);
    // No --nodelist; the priority hint became a nice value; the node is Slurm's choice.
    assert!(shown.contains("ReqNodeList=(null)"), "{shown}");
    assert!(shown.contains("Nice=3"), "{shown}");
    let node = running["run"]["node"].as_str().unwrap();
    assert!(
        shown.contains(&format!(" NodeList={node} ")),
        "{node}: {shown}"
    );
    assert!(
        running["reason"]
            .as_str()
            .unwrap()
            .ends_with(&format!("running on {node}")),
        "{running}"
    );
}

#[test]
fn cancel_reaches_slurm() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&[]);
    let id = server.submit(json!({ "gpus": 8, "command": ["sleep", "300"] }));
    server.wait(id, "running in Slurm", 30, is_running_in_slurm);
    server.call(
        Method::POST,
        &format!("/api/v1/jobs/{id}/cancel"),
        Some(json!({})),
    );
    let job = server.wait(id, "cancelled", 30, |j| j["state"] == "cancelled");
    assert_eq!(job["reason"], "cancelled");
    let runs = server.slurm_jobs(id);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].1, "CANCELLED");
}

#[test]
fn a_node_drained_mid_job_moves_the_job_to_another_node_from_its_checkpoint() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&[]);
    let ckpt = unique_dir("suanli-ckpt");
    std::fs::create_dir_all(&ckpt).unwrap();
    let script = r#"if [ -n "$SUANLI_RESUME_FROM" ]; then echo "resumed on $SLURMD_NODENAME from $(cat "$SUANLI_RESUME_FROM/step")"; else echo 500 > "$SUANLI_CHECKPOINT_DIR/step"; echo "first on $SLURMD_NODENAME"; sleep 300; fi"#;
    let id = server.submit(json!({
        "gpus": 8, "max_restarts": 2, "checkpoint_dir": ckpt.display().to_string(),
        "command": ["sh", "-c", script],
    }));
    let job = server.wait(id, "running in Slurm", 30, is_running_in_slurm);
    let node = job["run"]["node"].as_str().unwrap().to_string();
    server.wait(id, "checkpointed", 30, |_| ckpt.join("step").exists());
    slurm(
        "scontrol",
        &[
            "update",
            &format!("nodename={node}"),
            "state=drain",
            "reason=suanli test",
        ],
    );
    let job = server.wait(id, "succeeded elsewhere", 60, |j| j["state"] == "succeeded");
    slurm(
        "scontrol",
        &["update", &format!("nodename={node}"), "state=resume"],
    );
    assert_eq!(job["attempts"], 2, "{job}");
    let second = server.logs(id, 1);
    assert!(second.contains("resumed on"), "{second}");
    assert!(second.contains("from 500"), "{second}");
    assert!(!second.contains(&format!("resumed on {node} ")), "{second}");
    let nodes = server.call(Method::GET, "/api/v1/nodes", None);
    assert!(
        nodes
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["executor"] == "slurm")
    );
}

#[test]
fn jobs_survive_a_slurmctld_restart() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&[]);
    let id = server.submit(json!({ "gpus": 8, "command": ["sleep", "6"] }));
    server.wait(id, "running in Slurm", 30, is_running_in_slurm);
    let pid_file = Path::new(&slurm_conf())
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("slurmctld.pid");
    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    // A restart as `systemctl restart slurmctld` does it: SIGTERM (slurmctld saves its state),
    // then a new one. (After SIGKILL, Slurm 22.05 can forget jobs submitted since its last
    // state save; suanli then sees them vanish and applies the job's restart policy.)
    assert!(Command::new("kill").arg(&pid).status().unwrap().success());
    let gone = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() {
        assert!(Instant::now() < gone, "slurmctld did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(2));
    let status = Command::new("slurmctld")
        .env("SLURM_CONF", slurm_conf())
        .status()
        .unwrap();
    assert!(status.success());
    let job = server.wait(id, "succeeded", 90, |j| j["state"] == "succeeded");
    assert_eq!(job["attempts"], 1, "{job}");
    assert_eq!(server.slurm_jobs(id).len(), 1);
    // And new work goes through the restarted controller.
    let next = server.submit(json!({ "gpus": 8, "command": ["true"] }));
    server.wait(next, "succeeded", 60, |j| j["state"] == "succeeded");
}

#[test]
fn suanli_killed_and_restarted_neither_loses_nor_duplicates_slurm_jobs() {
    let Some(_cluster) = cluster() else { return };
    let mut server = slurm_server(&[]);
    // Long enough to be seen running (a state is reported once two polls agree) and, for
    // `running`, to outlive the server's restart.
    let running = server.submit(json!({ "gpus": 8, "command": ["sleep", "12"] }));
    server.wait(running, "running in Slurm", 30, is_running_in_slurm);
    let short = server.submit(json!({ "gpus": 8, "command": ["sleep", "3"] }));
    server.wait(short, "running in Slurm", 30, is_running_in_slurm);
    server.process.kill_9();
    // The short job ends while suanli is down.
    std::thread::sleep(Duration::from_secs(4));
    let (data_dir, port) = (server.data_dir.clone(), server.process.port);
    drop(server);
    let server = serve(&data_dir, port, &["--executor", "slurm"]);
    for id in [running, short] {
        let job = server.wait(id, "succeeded", 60, |j| j["state"] == "succeeded");
        assert_eq!(job["attempts"], 1, "{job}");
        assert_eq!(server.slurm_jobs(id).len(), 1, "job {id} ran twice");
    }
}

#[test]
fn a_local_pool_and_a_slurm_pool_take_jobs_by_type_and_quota() {
    let Some(_cluster) = cluster() else { return };
    let dir = unique_dir("suanli-two");
    let server = serve(
        &dir,
        free_port(),
        &["--executor", "local,slurm", "--devices", "a100:8"],
    );
    server.call(
        Method::POST,
        "/api/v1/tenants",
        Some(json!({ "name": "lab" })),
    );
    let nodes = server.call(Method::GET, "/api/v1/nodes", None);
    let executors: std::collections::BTreeSet<&str> = nodes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["executor"].as_str().unwrap())
        .collect();
    assert_eq!(executors, ["local", "slurm"].into_iter().collect());
    // The local a100s are busy ...
    let local =
        server.submit(json!({ "gpus": 8, "accelerators": ["a100"], "command": ["sleep", "30"] }));
    let job = server.wait(local, "running", 20, |j| j["state"] == "running");
    assert_eq!(job["run"]["pool"], "local-a100-sxm4-80gb");
    // ... so a job that may use either type goes to Slurm's h100s at once,
    let either =
        server.submit(json!({ "gpus": 8, "accelerators": ["a100", "h100"], "command": ["true"] }));
    let job = server.wait(either, "succeeded", 60, |j| j["state"] == "succeeded");
    assert_eq!(job["run"]["pool"], "slurm-h100");
    // ... while one that needs a100 waits for the local pool although Slurm has room.
    let a100 = server.submit(json!({ "gpus": 8, "accelerators": ["a100"], "command": ["true"] }));
    let job = server.job(a100);
    assert_eq!(job["state"], "queued", "{job}");
    assert!(
        job["reason"].as_str().unwrap().starts_with("capacity"),
        "{job}"
    );
    // A tenant without h100 quota is refused at submit, however free Slurm is.
    server.call(
        Method::PUT,
        "/api/v1/quotas",
        Some(json!({ "tenant": "lab", "accelerator": "h100", "limit": 0 })),
    );
    let refused = reqwest::blocking::Client::new()
        .post(format!(
            "http://127.0.0.1:{}/api/v1/jobs",
            server.process.port
        ))
        .bearer_auth(&server.token)
        .json(&json!({ "tenant": "lab", "gpus": 8, "accelerators": ["h100"], "command": ["true"] }))
        .send()
        .unwrap();
    assert_eq!(refused.status(), reqwest::StatusCode::BAD_REQUEST);
    let text = refused.text().unwrap();
    assert!(text.contains("at most 0"), "{text}");
    server.call(
        Method::POST,
        &format!("/api/v1/jobs/{local}/cancel"),
        Some(json!({})),
    );
    server.wait(a100, "succeeded", 60, |j| j["state"] == "succeeded");
}

#[test]
fn a_spare_submitted_ahead_runs_the_next_gang_of_its_shape_once() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&[]);
    let gang = |env: &str| {
        let script = "echo rank=$RANK world=$WORLD_SIZE who=$WHO dir=$(pwd)";
        json!({ "gpus": 16, "processes": 4, "accelerators": ["h100"],
                "env": { "WHO": env }, "command": ["sh", "-c", script] })
    };
    let first = server.submit(gang("sbatch"));
    server.wait(first, "succeeded", 60, |j| j["state"] == "succeeded");
    // The first run of its shape went through `sbatch` and asked for spares of that shape.
    let spares_dir = server.data_dir.join("slurm-spares/slurm");
    let name = std::fs::read_to_string(spares_dir.join("name")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = || {
        slurm(
            "squeue",
            &["-h", "-t", "pending", "--name", name.trim(), "-o", "%i"],
        )
    };
    while pending().trim().is_empty() {
        assert!(Instant::now() < deadline, "no spare submitted");
        std::thread::sleep(Duration::from_millis(200));
    }
    let id = server.submit(gang("spare"));
    let job = server.wait(id, "succeeded", 60, |j| j["state"] == "succeeded");
    let shown = slurm_job(&job);
    assert!(
        shown.contains(&format!("WorkDir={}", spares_dir.display())),
        "not run from a spare: {shown}"
    );
    let logs = server.logs(id, 0);
    let run_dir = job["run"]["run_dir"].as_str().unwrap();
    let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("rank=")).collect();
    assert_eq!(lines.len(), 4, "{logs}");
    for rank in 0..4 {
        let line = format!("rank={rank} world=4 who=spare dir={run_dir}");
        assert!(lines.contains(&line.as_str()), "{line} missing: {logs}");
    }
    assert_eq!(server.slurm_jobs(id).len(), 1, "ran twice");
}

#[test]
fn warm_spares_on_busy_nodes_run_the_next_jobs_placed_there_once_each() {
    let Some(_cluster) = cluster() else { return };
    let server = slurm_server(&[]);
    let whole_node = |n: usize| {
        json!({ "gpus": 8, "env": { "N": n.to_string() },
                "command": ["sh", "-c", "sleep 2; echo job=$N rank=$RANK"] })
    };
    // Three waves of four whole-node jobs on the four nodes: while jobs are queued, suanli
    // keeps warm spares released onto the nodes of the runs it places, and later runs on those
    // nodes are bound to them.
    let ids: Vec<i64> = (0..12).map(|n| server.submit(whole_node(n))).collect();
    for &id in &ids {
        server.wait(id, "succeeded", 120, |j| j["state"] == "succeeded");
    }
    let spare_name = std::fs::read_to_string(server.data_dir.join("slurm-spares/slurm/name"))
        .unwrap()
        .trim()
        .to_string();
    let mut warm = 0;
    for (n, &id) in ids.iter().enumerate() {
        let job = server.job(id);
        assert_eq!(job["attempts"], 1, "{job}");
        let logs = server.logs(id, 0);
        let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("job=")).collect();
        assert_eq!(
            lines,
            [format!("job={n} rank=0")],
            "job {id} ran other than once"
        );
        if slurm_job(&job).contains(&format!("JobName={spare_name} ")) {
            warm += 1;
        }
    }
    assert!(warm > 0, "no run was bound to a warm spare");
    // Nothing left holding GPUs once the queue is empty: unclaimed warm spares are given back.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let held = slurm(
            "squeue",
            &[
                "-h",
                "-t",
                "running,completing",
                "--name",
                &spare_name,
                "-o",
                "%i",
            ],
        );
        if held.trim().is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "warm spares still hold GPUs: {held}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn runs_bound_to_warm_spares_survive_suanli_killed_and_restarted_once_each() {
    let Some(_cluster) = cluster() else { return };
    let mut server = slurm_server(&[]);
    let whole_node = |n: usize| {
        json!({ "gpus": 8, "env": { "N": n.to_string() },
                "command": ["sh", "-c", "sleep 4; echo job=$N"] })
    };
    let ids: Vec<i64> = (0..12).map(|n| server.submit(whole_node(n))).collect();
    let spare_name = std::fs::read_to_string(server.data_dir.join("slurm-spares/slurm/name"))
        .unwrap()
        .trim()
        .to_string();
    // Killed while a run bound to a warm spare runs (others may be bound and still pending).
    let deadline = Instant::now() + Duration::from_secs(90);
    'wait: loop {
        for &id in &ids {
            let job = server.job(id);
            if job["state"] == "running" && job["run"]["run_dir"].is_string() {
                let shown = slurm_job(&job);
                if shown.contains(&format!("JobName={spare_name} "))
                    && shown.contains("JobState=RUNNING")
                {
                    break 'wait;
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "no run bound to a running warm spare"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    server.process.kill_9();
    let (data_dir, port) = (server.data_dir.clone(), server.process.port);
    drop(server);
    let server = serve(&data_dir, port, &["--executor", "slurm"]);
    for (n, &id) in ids.iter().enumerate() {
        let job = server.wait(id, "succeeded", 120, |j| j["state"] == "succeeded");
        assert_eq!(job["attempts"], 1, "{job}");
        let logs = server.logs(id, 0);
        let lines: Vec<&str> = logs.lines().filter(|l| l.starts_with("job=")).collect();
        assert_eq!(lines, [format!("job={n}")], "job {id} ran other than once");
    }
}
