//! `Executor` for Slurm: write the batch script and queue its `sbatch` (see `submit`),
//! re-attach through the job id file (or the job name when the server died between `sbatch` and
//! writing it), stop with `scancel`.

use std::path::Path;
use std::time::Duration;

use super::parse::{self, Phase};
use super::script::{Shape, allocation_args, batch_script, sbatch_args};
use super::submit::{JOB_ID_FILE, Spare, Submission, write_atomic};
use super::{SlurmExecutor, Tracked, command};
use crate::executor::{Adopted, ExecError, Executor, Launch};

const JOB_NAME_FILE: &str = "slurm-job-name";

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

fn slurm_error(program: &str, error: impl std::fmt::Display) -> ExecError {
    ExecError::Spawn {
        program: program.into(),
        source: std::io::Error::other(error.to_string()),
    }
}

impl SlurmExecutor {
    /// Where a launch's devices are: node names and GPUs per node, from the pool's layout.
    fn shape(&self, launch: &Launch) -> Result<Shape, ExecError> {
        let (_, pool) = self
            .pools
            .iter()
            .find(|(name, _)| *name == launch.pool)
            .ok_or_else(|| slurm_error("sbatch", format!("no Slurm pool `{}`", launch.pool)))?;
        let mut nodes: Vec<(String, u32)> = Vec::new();
        for device in &launch.devices {
            let index = (device / pool.per_node.max(1)) as usize;
            let name = pool.nodes.get(index).ok_or_else(|| {
                slurm_error("sbatch", format!("device {device} is beyond the pool"))
            })?;
            match nodes.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 += 1,
                None => nodes.push((name.clone(), 1)),
            }
        }
        Ok(Shape {
            gres_type: pool.gres_type.clone(),
            nodes,
            processes: launch.processes.max(1),
        })
    }

    /// The address of the first pinned node: the allocation's first node in Slurm's node order,
    /// which is `sinfo`'s and so the pool's.
    fn master_address(&self, launch: &Launch, shape: &Shape) -> Option<String> {
        let (_, pool) = self.pools.iter().find(|(name, _)| *name == launch.pool)?;
        let index = shape
            .nodes
            .iter()
            .filter_map(|(n, _)| pool.nodes.iter().position(|p| p == n))
            .min()?;
        pool.addresses.get(index).cloned()
    }

    /// The pool's nodes other than `shape`'s: a spare released with them excluded can only
    /// start on `shape`'s nodes (see `spares`).
    fn other_nodes(&self, launch: &Launch, shape: &Shape) -> String {
        let Some((_, pool)) = self.pools.iter().find(|(name, _)| *name == launch.pool) else {
            return String::new();
        };
        pool.nodes
            .iter()
            .filter(|node| !shape.nodes.iter().any(|(n, _)| n == *node))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(",")
    }

    fn track(&self, slurm_id: String, job_id: i64, attempt: u32, run_dir: &Path) {
        self.tracked
            .lock()
            .expect("tracked lock")
            .insert(slurm_id, Tracked::new(job_id, attempt, run_dir));
    }

    /// The Slurm job of a run directory: its id file, or a job of its name still in the queue.
    async fn find_job(&self, run_dir: &Path) -> Result<Option<parse::QueueRow>, ExecError> {
        let id = read_trimmed(&run_dir.join(JOB_ID_FILE)).and_then(|s| parse::job_id(&s));
        let name = read_trimmed(&run_dir.join(JOB_NAME_FILE));
        let mut args = ["-h", "-a", "-r", "-t", "all", "-O", parse::SQUEUE_FORMAT]
            .map(String::from)
            .to_vec();
        match (&id, &name) {
            (Some(id), _) => args.push(format!("--jobs={id}")),
            (None, Some(name)) => args.push(format!("--name={name}")),
            (None, None) => return Ok(None),
        }
        let text = match command(&self.config, "squeue", &args).await {
            Ok(text) => text,
            // An id Slurm no longer knows: `squeue --jobs` fails with "Invalid job id".
            Err(super::SlurmError::Failed { stderr, .. }) if stderr.contains("Invalid job id") => {
                String::new()
            }
            Err(error) => return Err(slurm_error("squeue", error)),
        };
        let rows = parse::parse_squeue(&text).map_err(|e| slurm_error("squeue", e))?;
        Ok(rows
            .into_iter()
            .find(|row| id.as_ref().is_none_or(|id| row.job_id == *id)))
    }
}

#[async_trait::async_trait]
impl Executor for SlurmExecutor {
    fn name(&self) -> &'static str {
        "slurm"
    }

    async fn start(&self, launch: &Launch) -> Result<(), ExecError> {
        let run_dir = &launch.run_dir;
        let dir_error = ExecError::run_dir(run_dir);
        launch.create_run_dir()?;
        let shape = self.shape(launch)?;
        // Pinned nodes (suanli schedules): the first one's address is known here.
        let master = match self.config.mode {
            super::Mode::Suanli => self.master_address(launch, &shape),
            super::Mode::Slurm => None,
        };
        let script = batch_script(
            &launch.command,
            &launch.env,
            run_dir,
            master.as_deref(),
            shape.processes,
        )
        .map_err(|e| slurm_error("sh", e))?;
        let script_path = run_dir.join("job.sh");
        std::fs::write(&script_path, script).map_err(&dir_error)?;
        let name = self.job_name(launch.job_id, launch.attempt);
        // The name first: a server killed during `sbatch` finds the job by it. (An id left by
        // a spare that was never released is stale.)
        let _ = std::fs::remove_file(run_dir.join(JOB_ID_FILE));
        write_atomic(&run_dir.join(JOB_NAME_FILE), &name).map_err(&dir_error)?;
        let gpus = launch.devices.len() as u32;
        let mut args = sbatch_args(&self.config, &shape, gpus, &name, run_dir, launch.priority);
        args.push(script_path.display().to_string());
        // Spares serve runs whose nodes suanli picks (Slurm's own choices carry per-run hints).
        let spare = match self.config.mode {
            super::Mode::Suanli => {
                let key = allocation_args(&shape, gpus);
                let exclude = self.other_nodes(launch, &shape);
                let set = (node_set(&shape), key.clone());
                // A warm spare on these nodes: bound by a file, nothing asked of Slurm.
                let warm = self
                    .spares
                    .claim_warm(&set, &script_path, &run_dir.join(JOB_ID_FILE));
                if launch.queued_jobs > 0 {
                    self.spares.warm_up(&set, &exclude);
                }
                if let Some(id) = warm {
                    tracing::debug!(job = launch.job_id, spare = %id, "bound to a warm spare");
                    self.track(id, launch.job_id, launch.attempt, run_dir);
                    return Ok(());
                }
                self.spares.take(&key).map(|id| Spare {
                    id,
                    script: script_path.clone(),
                    job_name: name.clone(),
                    exclude,
                })
            }
            super::Mode::Slurm => None,
        };
        // `sbatch` runs in the submitter, off the engine's lock; a refusal ends the run there.
        self.pending
            .lock()
            .expect("pending lock")
            .insert(run_dir.clone(), false);
        let submission = Submission {
            job_id: launch.job_id,
            attempt: launch.attempt,
            run_dir: run_dir.clone(),
            args,
            spare,
        };
        if self.submissions.send(submission).is_err() {
            self.pending.lock().expect("pending lock").remove(run_dir);
            return Err(slurm_error("sbatch", "the submitter has stopped"));
        }
        Ok(())
    }

    async fn adopt(&self, job_id: i64, attempt: u32, run_dir: &Path) -> Adopted {
        let has_files = run_dir.join(JOB_ID_FILE).exists() || run_dir.join(JOB_NAME_FILE).exists();
        if !has_files {
            return Adopted::NeverStarted;
        }
        // slurmctld may be restarting: ask a few times before concluding anything.
        let mut found = Err(slurm_error("squeue", "not asked"));
        for _ in 0..5 {
            found = self.find_job(run_dir).await;
            if found.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match found {
            // A spare bound to this run that never took its binding (not released: the server
            // died before its update; or released warm and not yet started): nothing ran. With
            // its binding revoked it never will; run it again. A warm spare that took its
            // binding runs the run under the spare's name: followed below like any run.
            Ok(Some(row))
                if self.spares.is_spare(&row.name) && !self.spares.took_binding(&row.job_id) =>
            {
                let _ = std::fs::remove_file(self.spares.binding(&row.job_id));
                self.spares.cancel(&row.job_id);
                let _ = std::fs::remove_file(run_dir.join(JOB_ID_FILE));
                Adopted::NeverStarted
            }
            Ok(Some(row)) => match row.state.phase() {
                Phase::Ended(ending) => Adopted::Exited(ending.exit_code(row.wait_status)),
                _ => {
                    if !run_dir.join(JOB_ID_FILE).exists() {
                        let _ = write_atomic(&run_dir.join(JOB_ID_FILE), &row.job_id);
                    }
                    self.track(row.job_id, job_id, attempt, run_dir);
                    Adopted::Alive
                }
            },
            Ok(None) => match exit_file(run_dir) {
                Some(code) => Adopted::Exited(code),
                // Submitted (id known) but gone from Slurm without an exit file: lost.
                None if run_dir.join(JOB_ID_FILE).exists() => Adopted::Exited(128 + 9),
                // Never reached Slurm: the server died during `sbatch`.
                None => Adopted::NeverStarted,
            },
            Err(error) => {
                // Slurm unreachable: keep following it by id; the poller settles it later.
                tracing::warn!(job = job_id, %error, "Slurm unreachable while re-attaching; will keep polling");
                match read_trimmed(&run_dir.join(JOB_ID_FILE)).and_then(|s| parse::job_id(&s)) {
                    Some(id) => {
                        self.track(id, job_id, attempt, run_dir);
                        Adopted::Alive
                    }
                    None => Adopted::NeverStarted,
                }
            }
        }
    }

    async fn shutdown(&self) {
        self.spares.cancel_all().await;
    }

    fn nothing_queued(&self) {
        self.spares.cool_down();
    }

    async fn stop(&self, run_dir: &Path, _grace: Duration) {
        // Not yet in Slurm: the submitter drops it, or cancels it once it has an id.
        if let Some(stopped) = self.pending.lock().expect("pending lock").get_mut(run_dir) {
            *stopped = true;
            return;
        }
        // Slurm's own KillWait is the grace between SIGTERM and SIGKILL.
        let args = match (
            read_trimmed(&run_dir.join(JOB_ID_FILE)),
            read_trimmed(&run_dir.join(JOB_NAME_FILE)),
        ) {
            (Some(id), _) => vec![id],
            (None, Some(name)) => vec![format!("--name={name}")],
            (None, None) => return,
        };
        if let Err(error) = command(&self.config, "scancel", &args).await {
            tracing::warn!(run_dir = %run_dir.display(), %error, "scancel failed");
        }
    }
}

/// The nodes of a shape, `n1,n2`: warm spares are kept per node set.
fn node_set(shape: &Shape) -> String {
    let names: Vec<&str> = shape.nodes.iter().map(|(n, _)| n.as_str()).collect();
    names.join(",")
}

/// The exit code the batch script recorded, if it got that far. The script writes it in place
/// with one `echo`, so it counts once its newline is there.
pub(super) fn exit_file(run_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(run_dir.join("exit")).ok()?;
    text.strip_suffix('\n')?.trim().parse().ok()
}
