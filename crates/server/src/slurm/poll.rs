//! Follows the cluster: once per interval, Slurm's view of every tracked run (state changes
//! become notes, ends become `Ended`), one `sinfo` for node health, and, more often, the exit files
//! the batch scripts write (a run ends as soon as its script has recorded how). A failing
//! command (slurmctld down or restarting) only skips that pass: nothing is concluded from
//! silence.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::nodes::{Health, SlurmNode};
use super::parse::{self, Phase, QueueRow};
use super::{SlurmEvent, SlurmExecutor, command, read_nodes, run::exit_file};

/// Polls without `squeue` listing a tracked job before it counts as gone (Slurm forgets ended
/// jobs after MinJobAge; the exit file then says how it ended).
const MISSING_POLLS: u32 = 3;

/// Tracked runs up to which `squeue` is asked for them by id rather than for every job.
const MAX_LISTED_JOBS: usize = 4000;

/// Tracked runs up to which each is asked for with `show job <id>` in the poller's `scontrol`
/// session rather than with one `squeue`. Slurm 22.05 answers every `squeue` (even `--jobs`
/// with two ids, `--me`) with all the jobs it remembers (REQUEST_JOB_INFO); `show job <id>` is
/// REQUEST_FED_INFO plus REQUEST_JOB_INFO_SINGLE. See docs/slurm.md ("Following runs") for the
/// measurements this bound comes from.
const MAX_ASKED_BY_ID: usize = 64;

pub(super) fn spawn(executor: Arc<SlurmExecutor>, nodes: &[SlurmNode]) {
    let mut health: HashMap<String, Health> =
        nodes.iter().map(|n| (n.name.clone(), n.health)).collect();
    // Report the starting health of nodes that are not up.
    report_nodes(&executor, nodes, &mut HashMap::new());
    let exits = executor.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(exits.config.exit_check_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if exits.events.is_closed() {
                break;
            }
            check_exit_files(&exits);
        }
    });
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(executor.config.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if executor.events.is_closed() {
                break;
            }
            poll_jobs(&executor).await;
            match read_nodes(&executor.config).await {
                Ok(nodes) => report_nodes(&executor, &nodes, &mut health),
                Err(error) => {
                    tracing::warn!(cluster = %executor.config.label, %error, "sinfo failed")
                }
            }
        }
    });
}

fn report_nodes(
    executor: &SlurmExecutor,
    nodes: &[SlurmNode],
    health: &mut HashMap<String, Health>,
) {
    for node in nodes {
        if node.health == Health::Unknown {
            continue;
        }
        let before = health.insert(node.name.clone(), node.health);
        if before == Some(node.health) || (before.is_none() && node.health == Health::Up) {
            continue;
        }
        for (pool, slurm_pool) in &executor.pools {
            if let Some(index) = slurm_pool.nodes.iter().position(|n| *n == node.name) {
                let _ = executor.events.send(SlurmEvent::Node {
                    pool: pool.clone(),
                    node: index,
                    health: node.health,
                    state: node.state.clone(),
                    reason: node.reason.clone(),
                });
            }
        }
    }
}

/// Ends every tracked run whose batch script has written its exit code: its processes are done,
/// so its devices may take the next run at once (Slurm starts that one when the allocation is
/// released). Runs ended otherwise (cancelled, node failure, time limit) have no exit file and
/// are settled by `squeue`.
fn check_exit_files(executor: &SlurmExecutor) {
    let runs: Vec<(String, std::path::PathBuf)> = {
        let tracked = executor.tracked.lock().expect("tracked lock");
        tracked
            .iter()
            .map(|(id, run)| (id.clone(), run.run_dir.clone()))
            .collect()
    };
    let exited: Vec<(String, i32)> = runs
        .into_iter()
        .filter_map(|(id, dir)| exit_file(&dir).map(|code| (id, code)))
        .collect();
    if exited.is_empty() {
        return;
    }
    let mut tracked = executor.tracked.lock().expect("tracked lock");
    for (slurm_id, exit_code) in exited {
        // `squeue` may have settled it in between.
        let Some(run) = tracked.remove(&slurm_id) else {
            continue;
        };
        executor.spares.forget(&slurm_id);
        let _ = executor.events.send(SlurmEvent::Ended {
            job_id: run.job_id,
            attempt: run.attempt,
            exit_code,
            note: format!(
                "slurm job {slurm_id} ended: its batch script recorded {}",
                crate::engine::describe_exit(exit_code)
            ),
        });
    }
}

async fn poll_jobs(executor: &SlurmExecutor) {
    let ids: Vec<String> = {
        let tracked = executor.tracked.lock().expect("tracked lock");
        tracked.keys().cloned().collect()
    };
    if ids.is_empty() {
        return;
    }
    let rows = match ids.len() <= MAX_ASKED_BY_ID {
        true => match ask_by_id(executor, &ids).await {
            Ok(rows) => Some(rows),
            Err(error) => {
                tracing::warn!(cluster = %executor.config.label, %error, "scontrol show job failed; asking squeue");
                list_jobs(executor, &ids).await
            }
        },
        false => list_jobs(executor, &ids).await,
    };
    if let Some(rows) = rows {
        settle(executor, &rows);
    }
}

/// Every tracked run Slurm still knows, by id: one `show job <id>` each in the poller's
/// `scontrol` session. An id Slurm has forgotten is left out (as `squeue` leaves it out);
/// any other error fails the whole pass.
async fn ask_by_id(
    executor: &SlurmExecutor,
    ids: &[String],
) -> Result<HashMap<String, QueueRow>, super::SlurmError> {
    let commands: Vec<String> = ids.iter().map(|id| format!("show job {id}")).collect();
    let started = Instant::now();
    let answers = executor.queries.query(&commands).await?;
    tracing::debug!(
        runs = ids.len(),
        ms = started.elapsed().as_millis() as u64,
        "scontrol show job"
    );
    let mut rows = HashMap::new();
    for (id, answer) in ids.iter().zip(answers) {
        if let Some(error) = answer.errors.first() {
            if error.contains("Invalid job id") {
                continue;
            }
            return Err(super::SlurmError::Failed {
                program: format!("scontrol show job {id}"),
                stderr: answer.errors.join("; ").chars().take(500).collect(),
            });
        }
        // The rest of the output is the session's echo of the command.
        for line in answer.output.iter().filter(|l| l.starts_with("JobId=")) {
            match parse::parse_show_job(line) {
                Ok(row) if row.job_id == *id => {
                    rows.insert(id.clone(), row);
                }
                Ok(_) => {}
                // Unknown states are reported, never guessed; the job stays tracked.
                Err(error) => {
                    tracing::error!(cluster = %executor.config.label, %error, "scontrol line not understood")
                }
            }
        }
    }
    Ok(rows)
}

/// Tracked runs as one `squeue` lists them; `None` when it failed (the pass is skipped).
async fn list_jobs(executor: &SlurmExecutor, ids: &[String]) -> Option<HashMap<String, QueueRow>> {
    // Only this server's runs (Slurm may hold many thousands of other jobs), while their ids
    // fit well within one argument (Linux allows 128 KiB).
    // `-r`: one line per array task, also for tasks still pending in their array.
    let mut args = ["-h", "-a", "-r", "-t", "all", "-O", parse::SQUEUE_FORMAT]
        .map(String::from)
        .to_vec();
    if ids.len() <= MAX_LISTED_JOBS {
        args.push(format!("--jobs={}", ids.join(",")));
    }
    let started = Instant::now();
    let answer = command(&executor.config, "squeue", &args).await;
    tracing::debug!(
        runs = ids.len(),
        ms = started.elapsed().as_millis() as u64,
        "squeue"
    );
    let text = match answer {
        Ok(text) => text,
        // Every id is one Slurm has forgotten: none is listed.
        Err(super::SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => {
            String::new()
        }
        Err(error) => {
            tracing::warn!(cluster = %executor.config.label, %error, "squeue failed; will retry");
            return None;
        }
    };
    let mut rows: HashMap<String, QueueRow> = HashMap::new();
    for line in text.lines() {
        match parse::parse_squeue(line) {
            Ok(parsed) => rows.extend(parsed.into_iter().map(|r| (r.job_id.clone(), r))),
            // Unknown states are reported, never guessed; the job stays tracked.
            Err(error) => {
                tracing::error!(cluster = %executor.config.label, %error, "squeue line not understood")
            }
        }
    }
    Some(rows)
}

/// Turns Slurm's view of the tracked runs into notes and ends.
fn settle(executor: &SlurmExecutor, rows: &HashMap<String, QueueRow>) {
    let mut events = Vec::new();
    {
        let mut tracked = executor.tracked.lock().expect("tracked lock");
        let mut ended = Vec::new();
        for (slurm_id, run) in tracked.iter_mut() {
            let Some(row) = rows.get(slurm_id) else {
                run.missing += 1;
                if run.missing >= MISSING_POLLS {
                    let (exit_code, note) = match exit_file(&run.run_dir) {
                        Some(code) => (code, format!("slurm job {slurm_id} ended (exit file)")),
                        None => (
                            128 + 9,
                            format!(
                                "slurm job {slurm_id} vanished from the queue without an exit code"
                            ),
                        ),
                    };
                    events.push(SlurmEvent::Ended {
                        job_id: run.job_id,
                        attempt: run.attempt,
                        exit_code,
                        note,
                    });
                    ended.push(slurm_id.clone());
                }
                continue;
            };
            run.missing = 0;
            let where_ = if row.nodes.is_empty() {
                String::new()
            } else {
                format!(" on {}", row.nodes)
            };
            match row.state.phase() {
                Phase::Ended(ending) => {
                    let exit_code = ending.exit_code(row.wait_status);
                    events.push(SlurmEvent::Ended {
                        job_id: run.job_id,
                        attempt: run.attempt,
                        exit_code,
                        note: format!(
                            "slurm job {slurm_id} {}{where_}, {}",
                            row.state.name(),
                            crate::engine::describe_exit(exit_code)
                        ),
                    });
                    ended.push(slurm_id.clone());
                }
                phase => {
                    let text = match phase {
                        Phase::Running => format!("slurm job {slurm_id} running{where_}"),
                        _ => format!("slurm job {slurm_id} {} ({})", row.state.name(), row.reason),
                    };
                    let confirmed = text == run.seen;
                    run.seen = text.clone();
                    if confirmed && text != run.last_note {
                        run.last_note = text.clone();
                        events.push(SlurmEvent::Note {
                            job_id: run.job_id,
                            attempt: run.attempt,
                            text,
                            nodes: (!row.nodes.is_empty()).then(|| row.nodes.clone()),
                        });
                    }
                }
            }
        }
        for id in ended {
            tracked.remove(&id);
            executor.spares.forget(&id);
        }
    }
    for event in events {
        let _ = executor.events.send(event);
    }
}
