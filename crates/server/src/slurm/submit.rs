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

use super::spares::Spares;
use super::{SlurmConfig, SlurmError, SlurmEvent, Tracked, TrackedRuns, command, parse};

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
    /// A spare of the run's shape to release instead of `sbatch` (see `spares`).
    pub spare: Option<Spare>,
}

/// A spare taken for a run, and what its release needs.
#[derive(Debug)]
pub(super) struct Spare {
    /// `<array>_<task>`.
    pub id: String,
    pub script: PathBuf,
    pub job_name: String,
    /// The pool's nodes other than the run's (`n3,n4`), which the run is kept off.
    pub exclude: String,
}

/// Runs queued for `sbatch` or under way, by run directory: `true` once stopped.
pub(super) type Pending = Arc<Mutex<HashMap<PathBuf, bool>>>;

/// What the submitter shares with the executor.
pub(super) struct Submitter {
    pub config: SlurmConfig,
    pub tracked: TrackedRuns,
    pub pending: Pending,
    pub spares: Arc<Spares>,
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
            if let Some(spare) = &run.spare {
                self.spares.cancel(&spare.id);
            }
            self.ended(&run, 128 + 15, "stopped before it reached Slurm".into());
            return;
        }
        let started = Instant::now();
        let released = match &run.spare {
            Some(spare) => match self.release(&run, spare).await {
                Ok(()) => Some(spare.id.clone()),
                Err(error) => {
                    tracing::warn!(job = run.job_id, %error, "spare not released; submitting");
                    None
                }
            },
            None => None,
        };
        let from_spare = released.is_some();
        let submitted = match released {
            Some(id) => Ok(id),
            None => command(&self.config, "sbatch", &run.args)
                .await
                .and_then(|out| Ok(parse::parse_sbatch(&out)?.to_string())),
        };
        tracing::debug!(
            job = run.job_id,
            attempt = run.attempt,
            spare = from_spare,
            ms = started.elapsed().as_millis() as u64,
            "submitted"
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
            if let Err(error) = write_atomic(&id_file, &slurm_id) {
                // The job name still finds it after a restart.
                tracing::warn!(job = run.job_id, %error, "cannot record the Slurm job id");
            }
            self.tracked.lock().expect("tracked lock").insert(
                slurm_id.clone(),
                Tracked::new(run.job_id, run.attempt, &run.run_dir),
            );
            pending.remove(&run.run_dir).unwrap_or(false)
        };
        if stopped && let Err(error) = command(&self.config, "scancel", &[slurm_id]).await {
            tracing::warn!(job = run.job_id, %error, "scancel failed");
        }
    }

    /// Releases a spare for `run`. Its id is recorded first, so a server that dies before the
    /// update finds the spare (still named as one) and runs the run again (see `spares`).
    async fn release(&self, run: &Submission, spare: &Spare) -> Result<(), SlurmError> {
        let id_file = run.run_dir.join(JOB_ID_FILE);
        write_atomic(&id_file, &spare.id).map_err(|source| SlurmError::Dir {
            path: id_file.display().to_string(),
            source,
        })?;
        let bound = self
            .spares
            .bind(&spare.id, &spare.script, &spare.job_name, &spare.exclude)
            .await;
        if bound.is_err() {
            let _ = std::fs::remove_file(&id_file);
        }
        bound
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

#[cfg(test)]
pub(super) mod tests {
    //! The submitter against stand-in `sbatch`/`scancel` scripts (`bin_dir`): what matters here
    //! is the order of events around a stop, which a real Slurm cannot make happen on cue.

    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    use super::*;

    fn bin_dir(sbatch: &str) -> PathBuf {
        bin_dir_with(sbatch, "true")
    }

    /// Stand-ins for `sbatch` and `scontrol` (`scancel` only logs); every call is logged.
    pub(in crate::slurm) fn bin_dir_with(sbatch: &str, scontrol: &str) -> PathBuf {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("suanli-submit-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("calls");
        for (name, body) in [
            ("sbatch", sbatch.to_string()),
            ("scancel", "echo \"scancel $*\" >> \"$0.log\"".to_string()),
            // Interactive without arguments, as the session runs it: unknown words are
            // answered on stderr, as Slurm's scontrol does.
            (
                "scontrol",
                format!(
                    "if [ $# -eq 0 ]; then\n while IFS= read -r line; do case \"$line\" in\n \
                     update*) echo \"scontrol $line\" >> \"$0.log\"; {scontrol} ;;\n \
                     *) echo \"invalid keyword: $line\" >&2 ;;\n esac; done; exit 0\nfi\n\
                     echo \"scontrol $*\" >> \"$0.log\"\n{scontrol}"
                ),
            ),
        ] {
            let path = dir.join(name);
            let script = format!("#!/bin/sh\necho {name} >> '{}'\n{body}\n", log.display());
            std::fs::write(&path, script).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    fn submitter(
        dir: &std::path::Path,
    ) -> (
        mpsc::UnboundedSender<Submission>,
        mpsc::UnboundedReceiver<SlurmEvent>,
        Pending,
        TrackedRuns,
    ) {
        let mut config = SlurmConfig::new("test");
        config.bin_dir = Some(dir.to_path_buf());
        let (events, events_rx) = mpsc::unbounded_channel();
        let (queue, queue_rx) = mpsc::unbounded_channel();
        let pending = Pending::default();
        let tracked = Arc::new(Mutex::new(HashMap::new()));
        let spares = Spares::new(config.clone(), dir.join("spares"), "spare".into()).unwrap();
        let shared = Submitter {
            config,
            tracked: tracked.clone(),
            pending: pending.clone(),
            spares: Arc::new(spares),
            events,
        };
        spawn(shared, queue_rx);
        (queue, events_rx, pending, tracked)
    }

    fn run(dir: &std::path::Path, name: &str, job_id: i64) -> Submission {
        let run_dir = dir.join(name);
        std::fs::create_dir_all(&run_dir).unwrap();
        Submission {
            job_id,
            attempt: 0,
            run_dir,
            args: vec!["job.sh".into()],
            spare: None,
        }
    }

    fn calls(dir: &std::path::Path) -> String {
        std::fs::read_to_string(dir.join("calls")).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_run_stopped_before_its_sbatch_never_reaches_slurm() {
        let dir = bin_dir("echo 4242");
        let (queue, mut events, pending, tracked) = submitter(&dir);
        let submission = run(&dir, "a", 7);
        pending
            .lock()
            .unwrap()
            .insert(submission.run_dir.clone(), true);
        queue.send(submission).unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(
            matches!(
                event,
                SlurmEvent::Ended {
                    job_id: 7,
                    exit_code: 143,
                    ..
                }
            ),
            "{event:?}"
        );
        assert_eq!(calls(&dir), "", "sbatch must not run");
        assert!(tracked.lock().unwrap().is_empty());
        assert!(pending.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_run_stopped_during_its_sbatch_is_cancelled_once_it_has_an_id() {
        let dir = bin_dir("sleep 1; echo 4242");
        let (queue, _events, pending, tracked) = submitter(&dir);
        let submission = run(&dir, "b", 8);
        let run_dir = submission.run_dir.clone();
        pending.lock().unwrap().insert(run_dir.clone(), false);
        queue.send(submission).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(calls(&dir), "sbatch\n", "sbatch under way");
        // What `stop` does for a run still pending.
        *pending.lock().unwrap().get_mut(&run_dir).unwrap() = true;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !calls(&dir).contains("scancel") {
            assert!(std::time::Instant::now() < deadline, "never cancelled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = std::fs::read_to_string(dir.join("scancel.log")).unwrap();
        assert_eq!(log.trim(), "scancel 4242");
        // Followed, so Slurm's CANCELLED ends it; the id is on disk for a restarted server.
        assert!(tracked.lock().unwrap().contains_key("4242"));
        let id = std::fs::read_to_string(run_dir.join(JOB_ID_FILE)).unwrap();
        assert_eq!(id, "4242");
        assert!(pending.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_refused_sbatch_ends_the_run_with_slurms_words() {
        let dir = bin_dir(
            "echo 'sbatch: error: Batch job submission failed: Requested node configuration is not available' >&2; exit 1",
        );
        let (queue, mut events, pending, tracked) = submitter(&dir);
        let submission = run(&dir, "c", 9);
        pending
            .lock()
            .unwrap()
            .insert(submission.run_dir.clone(), false);
        queue.send(submission).unwrap();
        let event = tokio::time::timeout(Duration::from_secs(10), events.recv())
            .await
            .unwrap()
            .unwrap();
        match event {
            SlurmEvent::Ended {
                job_id: 9,
                exit_code: 127,
                note,
                ..
            } => assert!(
                note.contains("failed to start") && note.contains("node configuration"),
                "{note}"
            ),
            other => panic!("{other:?}"),
        }
        assert!(tracked.lock().unwrap().is_empty());
        assert!(pending.lock().unwrap().is_empty());
    }

    fn spare_run(dir: &std::path::Path, name: &str, job_id: i64, spare: &str) -> Submission {
        let mut submission = run(dir, name, job_id);
        submission.spare = Some(Spare {
            id: spare.into(),
            script: submission.run_dir.join("job.sh"),
            job_name: format!("suanli-x-{job_id}-a0"),
            exclude: "n1,n3,n4".into(),
        });
        submission
    }

    async fn wait_tracked(tracked: &TrackedRuns, id: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !tracked.lock().unwrap().contains_key(id) {
            assert!(std::time::Instant::now() < deadline, "{id} never tracked");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    #[tokio::test]
    async fn a_spare_is_renamed_pinned_and_released_in_one_update_without_sbatch() {
        let dir = bin_dir("echo 4242");
        let (queue, _events, pending, tracked) = submitter(&dir);
        let submission = spare_run(&dir, "d", 10, "77_3");
        let run_dir = submission.run_dir.clone();
        pending.lock().unwrap().insert(run_dir.clone(), false);
        queue.send(submission).unwrap();
        wait_tracked(&tracked, "77_3").await;
        // One scontrol process (the session), no sbatch.
        assert_eq!(calls(&dir), "scontrol\n", "no sbatch for a released spare");
        let update = std::fs::read_to_string(dir.join("scontrol.log")).unwrap();
        assert_eq!(
            update.trim(),
            "scontrol update JobId=77_3 JobName=suanli-x-10-a0 StartTime=now ExcNodeList=n1,n3,n4"
        );
        // The spare's script finds the run's script through its binding.
        let binding = std::fs::read_to_string(dir.join("spares/bound-77_3")).unwrap();
        assert_eq!(binding, run_dir.join("job.sh").display().to_string());
        assert_eq!(
            std::fs::read_to_string(run_dir.join(JOB_ID_FILE)).unwrap(),
            "77_3"
        );
    }

    #[tokio::test]
    async fn a_spare_slurm_refuses_is_cancelled_and_the_run_submitted_with_sbatch() {
        let dir = bin_dir_with("echo 4243", "echo 'Invalid job id specified' >&2; false");
        let (queue, _events, pending, tracked) = submitter(&dir);
        let submission = spare_run(&dir, "e", 11, "78_0");
        pending
            .lock()
            .unwrap()
            .insert(submission.run_dir.clone(), false);
        let run_dir = submission.run_dir.clone();
        queue.send(submission).unwrap();
        wait_tracked(&tracked, "4243").await;
        assert!(!tracked.lock().unwrap().contains_key("78_0"));
        assert!(
            !dir.join("spares/bound-78_0").exists(),
            "binding left behind"
        );
        assert_eq!(
            std::fs::read_to_string(run_dir.join(JOB_ID_FILE)).unwrap(),
            "4243"
        );
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !std::fs::read_to_string(dir.join("scancel.log"))
            .unwrap_or_default()
            .contains("scancel 78_0")
        {
            assert!(
                std::time::Instant::now() < deadline,
                "spare never cancelled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // The session's scontrol reported the refusal itself (no second scontrol spawned).
        assert_eq!(
            calls(&dir).matches("scontrol").count(),
            1,
            "{}",
            calls(&dir)
        );
    }
}
