//! A run's life: start on the executor, preemption, its end (succeeded, cancelled, restarted or
//! failed) and cancellation; every change is written to the store before the executor acts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use suanli_sched::JobId;

use super::{Engine, EngineError, STOP_GRACE, external};
use crate::executor::{ExitEvent, Launch};
use crate::store::{Change, JobRecord, JobState, NewAuditEvent, RunRecord};

impl Engine {
    /// Records why a job waits, when that changed.
    pub(super) async fn set_reason(&mut self, id: i64, reason: String) -> Result<(), EngineError> {
        if let Some(job) = self.active.get_mut(&id)
            && job.reason != reason
        {
            job.reason = reason;
            let job = job.clone();
            self.write_job(&job).await?;
        }
        Ok(())
    }

    /// Writes a job and drops it from the active set once terminal.
    pub(super) async fn save(&mut self, job: JobRecord) -> Result<(), EngineError> {
        self.save_audited(job, None).await
    }

    /// `save`, appending `audit` in the same transaction when given.
    pub(super) async fn save_audited(
        &mut self,
        job: JobRecord,
        audit: Option<&NewAuditEvent>,
    ) -> Result<(), EngineError> {
        match audit {
            Some(audit) => {
                // Deferred writes go first, so the store sees every job's changes in order.
                self.flush_writes().await?;
                self.store
                    .change_audited(Change::UpdateJob(&job), audit)
                    .await?;
            }
            None => self.write_job(&job).await?,
        }
        if job.state.is_terminal() {
            self.active.remove(&job.id);
            self.held.remove(&job.id);
        } else {
            self.active.insert(job.id, job);
        }
        Ok(())
    }

    /// Places attempt `attempts` of job `id` on `allocation` of pool `pool` and records it as
    /// running (deferred when the caller batches); returns the attempt for `launch_run`, which
    /// the caller calls once the record is stored.
    pub(super) async fn prepare_start(
        &mut self,
        id: i64,
        pool: usize,
        allocation: &[(suanli_sched::NodeId, u32)],
    ) -> Result<Option<u32>, EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Ok(None);
        };
        let slot = &mut self.pools[pool];
        let devices = external::pick_devices(slot, allocation);
        for device in &devices {
            slot.free.remove(device);
        }
        let (accelerator, pool_name, node) = (
            slot.accelerator.clone(),
            slot.name.clone(),
            external::node_names(slot, &devices),
        );
        let attempt = job.attempts;
        let run_dir = self.run_dir(id, attempt);
        let now = self.now_s();
        job.state = JobState::Running;
        job.reason = format!("running on {node} {accelerator} [{}]", join(&devices));
        job.attempts += 1;
        job.started_at_s.get_or_insert(now);
        job.run = Some(RunRecord {
            attempt,
            pool: pool_name,
            accelerator,
            node,
            devices,
            run_dir: run_dir.display().to_string(),
            started_at_s: now,
            cancel_requested: false,
        });
        // Recorded before the processes start, so a crash in between is seen by `recover`.
        self.save(job).await?;
        Ok(Some(attempt))
    }

    /// Hands attempt `attempt` of job `id`, recorded as running by `prepare_start` and stored,
    /// to the executor; a start failure ends the attempt with code 127.
    pub(super) async fn launch_run(&mut self, id: i64, attempt: u32) -> Result<(), EngineError> {
        let Some(job) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        let Some(run) = job.run.clone().filter(|r| r.attempt == attempt) else {
            return Ok(());
        };
        if job.state != JobState::Running {
            return Ok(());
        }
        let mut env = self.run_env(&job, attempt);
        let (run_as, work_dir) = match self.job_identity(&job.spec.tenant, id, attempt) {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(job = id, %error, "cannot prepare the job's user");
                let note = format!("failed to start: {error}");
                return self.finish_run(id, attempt, 127, Some(note)).await;
            }
        };
        let run_dir = PathBuf::from(&run.run_dir);
        if let Some(file) = self.progress_file(id, work_dir.as_ref().unwrap_or(&run_dir)) {
            env.insert("SUANLI_PROGRESS_FILE".into(), file.display().to_string());
        }
        let launch = Launch {
            job_id: id,
            attempt,
            command: job.spec.run.command.clone(),
            env,
            accelerator: run.accelerator,
            devices: run.devices,
            processes: job.spec.processes,
            work_dir: work_dir.unwrap_or_else(|| run_dir.clone()),
            run_dir,
            run_as,
            pool: run.pool,
            priority: job.spec.run.priority,
            queued_jobs: self.scheduler.state().pending_count(),
        };
        if let Err(error) = self.executor.start(&launch).await {
            tracing::warn!(job = id, %error, "failed to start run");
            self.finish_run(id, attempt, 127, Some(format!("failed to start: {error}")))
                .await?;
        }
        Ok(())
    }

    /// Stops a running job and queues it again (the scheduler preempted it or its node left).
    pub(super) async fn preempt_run(&mut self, id: i64, why: String) -> Result<(), EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        if let Some(run) = job.run.take() {
            self.release(&run);
            self.executor
                .stop(std::path::Path::new(&run.run_dir), STOP_GRACE)
                .await;
        }
        job.state = JobState::Queued;
        job.reason = format!("preempted by the scheduler ({why})");
        self.save(job).await
    }

    /// Returns a run's devices to its pool.
    pub(super) fn release(&mut self, run: &RunRecord) {
        if let Some(slot) = self.pools.iter_mut().find(|p| p.name == run.pool) {
            // A device past the pool's end was declared by an earlier server with more.
            let total = slot.total;
            slot.free
                .extend(run.devices.iter().copied().filter(|&d| d < total));
        }
    }

    /// A run ended (reported by the executor). Its end and the starts of the pass after it
    /// are stored in one transaction.
    pub async fn on_exit(&mut self, event: ExitEvent) -> Result<(), EngineError> {
        let owner = self.begin_deferred();
        let result = match self
            .finish_run(event.job_id, event.attempt, event.exit_code, None)
            .await
        {
            Ok(()) => self.schedule_pass().await,
            Err(error) => Err(error),
        };
        let flushed = self.end_deferred(owner).await;
        result.and(flushed)
    }

    /// Ends attempt `attempt` of a running job with `exit_code`: succeeded, cancelled, restarted
    /// or failed. Stale events (an older attempt, a job no longer running) are ignored.
    pub(super) async fn finish_run(
        &mut self,
        id: i64,
        attempt: u32,
        exit_code: i32,
        note: Option<String>,
    ) -> Result<(), EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Ok(());
        };
        let Some(run) = job.run.clone() else {
            return Ok(());
        };
        if job.state != JobState::Running || run.attempt != attempt {
            return Ok(());
        }
        let now = self.now_s();
        if let Some(sched_id) = self.sched_of.remove(&id) {
            self.by_sched.remove(&sched_id);
            let _ = self.scheduler.on_finish(JobId(sched_id), now as u64);
        }
        self.release(&run);
        job.exit_code = Some(exit_code);
        let described = note.unwrap_or_else(|| describe_exit(exit_code));
        if let Some(limit_s) = job
            .spec
            .run
            .time_limit_s
            .filter(|_| self.timed_out.remove(&id))
        {
            job.state = JobState::Failed;
            job.reason = format!("time limit of {limit_s} s reached; stopped ({described})");
            job.finished_at_s = Some(now);
        } else if run.cancel_requested {
            job.state = JobState::Cancelled;
            job.reason = "cancelled".into();
            job.finished_at_s = Some(now);
        } else if exit_code == 0 {
            job.state = JobState::Succeeded;
            job.reason = "exited 0".into();
            job.finished_at_s = Some(now);
        } else if job.restarts < job.spec.run.max_restarts {
            job.restarts += 1;
            job.state = JobState::Queued;
            job.run = None;
            job.reason = format!(
                "restarting: {described} (restart {} of {})",
                job.restarts, job.spec.run.max_restarts
            );
            self.save(job).await?;
            if self.recovering {
                return Ok(());
            }
            // A goal job may come back on another gang (elastic restart); stored with its reason.
            self.replan_restart(id);
            return self.admit_or_hold(id).await;
        } else {
            job.state = JobState::Failed;
            job.reason = format!(
                "{described}; no restarts left ({} of {} used)",
                job.restarts, job.spec.run.max_restarts
            );
            job.finished_at_s = Some(now);
        }
        self.save(job).await
    }

    /// Cancels a job: a queued one at once, a running one by stopping its process group (it
    /// becomes `cancelled` when its processes are gone). The change is stored with the request's
    /// audit entry `audit`; the flag is false when nothing changed (a cancel already under way)
    /// and so nothing was appended.
    pub async fn cancel(
        &mut self,
        id: i64,
        audit: &NewAuditEvent,
    ) -> Result<(JobRecord, bool), EngineError> {
        let Some(mut job) = self.active.get(&id).cloned() else {
            return match self.store.get_job(id).await? {
                Some(job) => Err(EngineError::WrongState(format!(
                    "job {id} has already ended ({})",
                    job.state.as_str()
                ))),
                None => Err(EngineError::NotFound(format!("job {id}"))),
            };
        };
        match job.state {
            JobState::Running => {
                let run = job.run.as_mut().expect("a running job has a run");
                if run.cancel_requested {
                    return Ok((job, false));
                }
                run.cancel_requested = true;
                job.reason = "cancelling: stopping its processes".into();
                let run_dir = PathBuf::from(&run.run_dir);
                self.save_audited(job.clone(), Some(audit)).await?;
                self.executor.stop(&run_dir, STOP_GRACE).await;
            }
            _ => {
                job.state = JobState::Cancelled;
                job.reason = "cancelled while queued".into();
                job.finished_at_s = Some(self.now_s());
                // Stored first: if that fails, the job is still queued everywhere.
                self.save_audited(job.clone(), Some(audit)).await?;
                // Out of the scheduler's queue for good, so it never starts; a job held for
                // quota was never submitted to it.
                if let Some(sched_id) = self.sched_of.remove(&id) {
                    self.by_sched.remove(&sched_id);
                    // Only a job that has already ended can be refused, and an ended job is
                    // not active; nothing to undo if that ever happens.
                    let now_s = self.now_s() as u64;
                    if let Err(error) = self.scheduler.cancel(JobId(sched_id), now_s) {
                        debug_assert!(
                            false,
                            "queued job {id} not pending in the scheduler: {error}"
                        );
                        tracing::warn!(job = id, %error, "scheduler refused to cancel a queued job");
                    }
                }
                self.schedule_pass().await?;
            }
        }
        Ok((job, true))
    }

    /// The job's environment plus what the server adds for attempt `attempt`.
    fn run_env(&self, job: &JobRecord, attempt: u32) -> BTreeMap<String, String> {
        let id = job.id;
        let mut env = job.spec.run.env.clone();
        env.insert("SUANLI_JOB_ID".into(), id.to_string());
        env.insert("SUANLI_ATTEMPT".into(), attempt.to_string());
        env.extend(super::goal::goal_env(&job.spec));
        if let Some(base) = &self.checkpoint_base {
            // The same artefact on every attempt, wherever it runs: `suanli ckpt` uses it.
            let url = format!("{base}/{}/ckpt-job-{id}", job.spec.tenant);
            env.entry("SUANLI_CHECKPOINT_URL".into()).or_insert(url);
        }
        if let Some(dir) = &job.spec.run.checkpoint_dir {
            env.insert("SUANLI_CHECKPOINT_DIR".into(), dir.clone());
            if attempt > 0 {
                env.insert("SUANLI_RESUME_FROM".into(), dir.clone());
            }
        }
        env
    }
}

fn join(devices: &[u32]) -> String {
    devices
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// `exit code 3`, or `killed by signal 9` for codes above 128.
pub fn describe_exit(code: i32) -> String {
    if code > 128 && code < 160 {
        format!("killed by signal {} (exit code {code})", code - 128)
    } else {
        format!("exit code {code}")
    }
}
