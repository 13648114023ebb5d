//! Recovery after a (re)start: re-attach to runs that survived the previous server process,
//! settle runs that ended while it was down, and queue the rest again.

use std::collections::{BTreeMap, HashSet};

use suanli_sched::Decision;

use super::{Engine, EngineError, STOP_GRACE};
use crate::executor::Adopted;
use crate::store::{JobRecord, JobState, RunRecord};

impl Engine {
    /// Rebuilds the scheduler from the store after a (re)start: re-attaches to runs whose
    /// processes survived, settles runs that ended while the server was down, and queues the rest
    /// again in submission order.
    pub async fn recover(&mut self) -> Result<(), EngineError> {
        self.load_quotas().await?;
        let jobs = self.store.list_active_jobs().await?;
        self.recovering = true;
        let mut adopted: BTreeMap<i64, RunRecord> = BTreeMap::new();
        let mut queued = Vec::new();
        for job in jobs {
            let id = job.id;
            self.active.insert(id, job.clone());
            let run = match (&job.state, job.run.clone()) {
                (JobState::Running, Some(run)) => run,
                _ => {
                    queued.push(id);
                    continue;
                }
            };
            let outcome = self
                .executor
                .adopt(id, run.attempt, std::path::Path::new(&run.run_dir))
                .await;
            tracing::info!(job = id, attempt = run.attempt, ?outcome, "recovering run");
            self.settle_run(job, run, outcome, &mut adopted, &mut queued)
                .await?;
        }
        self.place_adopted(adopted).await?;
        self.recovering = false;
        queued.sort_unstable();
        for id in queued {
            match self.admit_or_hold(id).await {
                Ok(()) => {}
                // The cluster changed under it (`--devices`): say so instead of refusing to start.
                Err(EngineError::Rejected(problem)) => {
                    if let Some(mut job) = self.active.get(&id).cloned() {
                        tracing::warn!(job = id, %problem, "queued job can no longer run");
                        job.state = JobState::Failed;
                        job.reason = format!("can no longer run on this cluster: {problem}");
                        job.finished_at_s = Some(self.now_s());
                        self.save(job).await?;
                    }
                }
                Err(error) => return Err(error),
            }
        }
        self.schedule_pass().await
    }

    /// Acts on what re-attaching to job `job`'s run found: keeps a live run (into `adopted`),
    /// settles an ended one, and queues again (into `queued`) one that must run again.
    async fn settle_run(
        &mut self,
        job: JobRecord,
        run: RunRecord,
        outcome: Adopted,
        adopted: &mut BTreeMap<i64, RunRecord>,
        queued: &mut Vec<i64>,
    ) -> Result<(), EngineError> {
        let id = job.id;
        let pool_ok = self
            .pools
            .iter()
            .any(|p| p.name == run.pool && run.devices.iter().all(|d| p.free.contains(d)));
        match outcome {
            Adopted::Alive if pool_ok => {
                if let Some(slot) = self.pools.iter_mut().find(|p| p.name == run.pool) {
                    for device in &run.devices {
                        slot.free.remove(device);
                    }
                }
                if run.cancel_requested {
                    self.executor
                        .stop(std::path::Path::new(&run.run_dir), STOP_GRACE)
                        .await;
                }
                adopted.insert(id, run);
            }
            Adopted::Alive => {
                // The devices it holds are no longer declared: stop it and queue it again
                // (or finish its cancel).
                self.executor
                    .stop(std::path::Path::new(&run.run_dir), STOP_GRACE)
                    .await;
                let mut job = job;
                job.run = None;
                if run.cancel_requested {
                    job.state = JobState::Cancelled;
                    job.reason = "cancelled".into();
                    job.finished_at_s = Some(self.now_s());
                } else {
                    job.state = JobState::Queued;
                    job.reason = "requeued: its devices are gone after a server restart".into();
                    queued.push(id);
                }
                self.save(job).await?;
            }
            Adopted::Exited(code) => {
                // Not in the scheduler yet: settle it directly.
                self.finish_run(id, run.attempt, code, None).await?;
                if self
                    .active
                    .get(&id)
                    .is_some_and(|j| j.state == JobState::Queued)
                {
                    queued.push(id);
                }
            }
            Adopted::NeverStarted | Adopted::Incomplete { .. } => {
                if self.run_again(job, &run, outcome).await? {
                    queued.push(id);
                }
            }
        }
        Ok(())
    }

    /// A run that never started, or whose gang was cut short by the crash: queued again (true),
    /// or cancelled when a cancel was asked for before the crash.
    async fn run_again(
        &mut self,
        mut job: JobRecord,
        run: &RunRecord,
        outcome: Adopted,
    ) -> Result<bool, EngineError> {
        job.run = None;
        if run.cancel_requested {
            job.state = JobState::Cancelled;
            job.reason = "cancelled".into();
            job.finished_at_s = Some(self.now_s());
            self.save(job).await?;
            return Ok(false);
        }
        job.state = JobState::Queued;
        job.reason = match outcome {
            Adopted::Incomplete { started, declared } => format!(
                "requeued: the server stopped after starting {started} of the gang's {declared} processes; the started ones were killed"
            ),
            _ => {
                // Nothing ran: this attempt number is used again.
                job.attempts = run.attempt;
                "requeued: the server stopped before the run started".into()
            }
        };
        self.save(job).await?;
        Ok(true)
    }

    /// Puts adopted runs into the empty scheduler on their own type, so its accounting matches
    /// the devices they hold; a run it does not place again is stopped and queued.
    async fn place_adopted(
        &mut self,
        adopted: BTreeMap<i64, RunRecord>,
    ) -> Result<(), EngineError> {
        for (id, run) in &adopted {
            self.submit_to_scheduler(*id, std::slice::from_ref(&run.accelerator))?;
        }
        let now_s = self.now_s() as u64;
        let decisions = self.scheduler.schedule(now_s);
        let mut started = HashSet::new();
        for decision in decisions {
            if let Decision::Start { job, .. } = decision
                && let Some(&id) = self.by_sched.get(&job.0)
            {
                started.insert(id);
            }
        }
        for (id, run) in adopted {
            if !started.contains(&id) {
                tracing::warn!(
                    job = id,
                    "scheduler did not re-place an adopted run; stopping it"
                );
                self.release(&run);
                self.executor
                    .stop(std::path::Path::new(&run.run_dir), STOP_GRACE)
                    .await;
                if let Some(mut job) = self.active.get(&id).cloned() {
                    job.state = JobState::Queued;
                    job.run = None;
                    job.reason = "requeued after a server restart".into();
                    self.save(job).await?;
                }
            }
        }
        Ok(())
    }
}
