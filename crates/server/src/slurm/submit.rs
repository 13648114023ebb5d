//! Submits runs to Slurm off the engine's lock: `start` writes the batch script and queues its
//! `sbatch`; this task runs up to `max_parallel_submits` of them at once and reports a refused
//! submission as the run's end (exit 127, as a start failure always was). A run stopped before
//! its `sbatch` ran is never submitted; one stopped while its `sbatch` was under way is
//! cancelled as soon as Slurm has given it an id.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::{Semaphore, mpsc};

use super::{SlurmConfig, SlurmEvent, Tracked, command, parse};

/// The file holding a submitted run's Slurm job id.
pub(super) const JOB_ID_FILE: &str = "slurm-job-id";

/// One `sbatch` to run.
#[derive(Debug)]
pub(super) struct Submission {
    pub job_id: i64,
    pub attempt: u32,
    pub run_dir: PathBuf,
    /// `sbatch` arguments, the script path last.
    pub args: Vec<String>,
}

/// Runs queued for `sbatch` or under way, by run directory: `true` once stopped.
pub(super) type Pending = Arc<Mutex<HashMap<PathBuf, bool>>>;

/// What the submitter shares with the executor.
pub(super) struct Submitter {
    pub config: SlurmConfig,
    pub tracked: Arc<Mutex<HashMap<u64, Tracked>>>,
    pub pending: Pending,
    pub events: mpsc::UnboundedSender<SlurmEvent>,
}

/// Writes `text` to `path` through a temporary file and a rename.
pub(super) fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

/// Starts the submitter; it ends when the executor (the last sender) is gone.
pub(super) fn spawn(submitter: Submitter, mut queue: mpsc::UnboundedReceiver<Submission>) {
    let submitter = Arc::new(submitter);
    let slots = Arc::new(Semaphore::new(submitter.config.max_parallel_submits.max(1)));
    tokio::spawn(async move {
        while let Some(submission) = queue.recv().await {
            let Ok(permit) = slots.clone().acquire_owned().await else {
                break;
            };
            let submitter = submitter.clone();
            tokio::spawn(async move {
                submitter.submit(submission).await;
                drop(permit);
            });
        }
    });
}

impl Submitter {
    async fn submit(&self, run: Submission) {
        let stopped = |pending: &Pending| {
            pending
                .lock()
                .expect("pending lock")
                .get(&run.run_dir)
                .copied()
                .unwrap_or(false)
        };
        if stopped(&self.pending) {
            self.pending
                .lock()
                .expect("pending lock")
                .remove(&run.run_dir);
            self.ended(&run, 128 + 15, "stopped before it reached Slurm".into());
            return;
        }
        let started = Instant::now();
        let submitted = command(&self.config, "sbatch", &run.args)
            .await
            .and_then(|out| Ok(parse::parse_sbatch(&out)?));
        tracing::debug!(
            job = run.job_id,
            attempt = run.attempt,
            ms = started.elapsed().as_millis() as u64,
            "sbatch"
        );
        let slurm_id = match submitted {
            Ok(id) => id,
            Err(error) => {
                self.pending
                    .lock()
                    .expect("pending lock")
                    .remove(&run.run_dir);
                self.ended(&run, 127, format!("failed to start: {error}"));
                return;
            }
        };
        // Under the pending lock, so `stop` sees either the pending entry or the id file.
        let stopped = {
            let mut pending = self.pending.lock().expect("pending lock");
            let id_file = run.run_dir.join(JOB_ID_FILE);
            if let Err(error) = write_atomic(&id_file, &slurm_id.to_string()) {
                // The job name still finds it after a restart.
                tracing::warn!(job = run.job_id, %error, "cannot record the Slurm job id");
            }
            self.tracked.lock().expect("tracked lock").insert(
                slurm_id,
                Tracked::new(run.job_id, run.attempt, &run.run_dir),
            );
            pending.remove(&run.run_dir).unwrap_or(false)
        };
        if stopped
            && let Err(error) = command(&self.config, "scancel", &[slurm_id.to_string()]).await
        {
            tracing::warn!(job = run.job_id, %error, "scancel failed");
        }
    }

    fn ended(&self, run: &Submission, exit_code: i32, note: String) {
        let _ = self.events.send(SlurmEvent::Ended {
            job_id: run.job_id,
            attempt: run.attempt,
            exit_code,
            note,
        });
    }
}
