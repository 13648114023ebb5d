//! One scheduling pass: run the scheduler, carry out its starts and preemptions, re-admit jobs
//! held for quota, and refresh the reasons queued jobs give for waiting.

use std::time::Instant;

use suanli_sched::Decision;

use super::{Engine, EngineError};
use crate::store::JobState;

impl Engine {
    /// Runs the scheduler and carries out its decisions, then re-admits held jobs and refreshes
    /// the reasons queued jobs wait. The pass's job writes (with any deferred by the caller,
    /// such as the run ends that freed the devices) are stored in one transaction before its
    /// runs are launched.
    pub async fn schedule_pass(&mut self) -> Result<(), EngineError> {
        if self.stopping {
            return Ok(());
        }
        let owner = self.begin_deferred();
        let mut launches = Vec::new();
        let placed = self.place(&mut launches).await;
        // Stored before any launch, even when placing failed part-way: what was placed and
        // stored is launched, so no run stays recorded as running without its processes.
        let result = match self.flush_writes().await {
            Ok(()) => {
                let launched = self.launch_and_refresh(launches).await;
                placed.and(launched)
            }
            Err(error) => Err(error),
        };
        let ended = self.end_deferred(owner).await;
        result.and(ended)
    }

    /// Launches the pass's runs, then refreshes the reasons of queued jobs.
    async fn launch_and_refresh(&mut self, launches: Vec<(i64, u32)>) -> Result<(), EngineError> {
        for (id, attempt) in launches {
            self.launch_run(id, attempt).await?;
        }
        if self.scheduler.state().pending_count() == 0 {
            self.executor.nothing_queued();
        }
        self.refresh_reasons().await
    }

    /// The scheduler's decisions, carried out in memory with their writes deferred; the runs to
    /// launch are added to `launches`.
    async fn place(&mut self, launches: &mut Vec<(i64, u32)>) -> Result<(), EngineError> {
        for _ in 0..16 {
            let started = Instant::now();
            let now_s = self.now_s() as u64;
            let decisions = self.scheduler.schedule(now_s);
            let elapsed = started.elapsed().as_secs_f64();
            self.metrics.observe_pass(elapsed);
            let mut again = false;
            for decision in decisions {
                match decision {
                    Decision::Start {
                        job,
                        pool,
                        allocation,
                        ..
                    } => {
                        let Some(&id) = self.by_sched.get(&job.0) else {
                            continue;
                        };
                        let id = self.priority_swap(id);
                        if let Some(attempt) =
                            self.prepare_start(id, pool.0 as usize, &allocation).await?
                        {
                            launches.push((id, attempt));
                        }
                    }
                    Decision::Preempt { job, reason } => {
                        if let Some(&id) = self.by_sched.get(&job.0) {
                            self.preempt_run(id, format!("{reason:?}")).await?;
                        }
                    }
                }
            }
            // Held jobs whose quota now allows them.
            let held: Vec<i64> = self.held.iter().copied().collect();
            for id in held {
                let problem = self
                    .active
                    .get(&id)
                    .and_then(|j| self.quota_problem(&j.spec));
                if problem.is_none() {
                    self.admit_or_hold(id).await?;
                    again = true;
                }
            }
            if !again {
                break;
            }
        }
        Ok(())
    }

    pub(super) async fn refresh_reasons(&mut self) -> Result<(), EngineError> {
        let free: Vec<usize> = self
            .pools
            .iter()
            .map(|p| if p.up { p.free.len() } else { 0 })
            .collect();
        let fresh = std::mem::take(&mut self.reasons_fresh);
        let candidates: Vec<i64> = if free != self.reasons_free {
            self.reasons_free = free;
            self.active.keys().copied().collect()
        } else {
            fresh
        };
        let queued: Vec<i64> = candidates
            .into_iter()
            .filter(|id| {
                self.sched_of.contains_key(id)
                    && self
                        .active
                        .get(id)
                        .is_some_and(|j| j.state == JobState::Queued)
            })
            .collect();
        for id in &queued {
            let job = &self.active[id];
            let types = self.job_types(&job.spec);
            let free = self
                .pools
                .iter()
                .filter(|p| types.contains(&p.accelerator))
                .map(|p| if p.up { p.free.len() as u32 } else { 0 })
                .max()
                .unwrap_or(0);
            let reason = if free >= job.spec.gpus {
                format!(
                    "priority: waiting behind earlier or higher-priority jobs ({} policy)",
                    self.scheduler.policy_name()
                )
            } else {
                format!(
                    "capacity: needs {} of {}; {free} free",
                    job.spec.gpus,
                    types.join(" or ")
                )
            };
            self.set_reason(*id, reason).await?;
        }
        Ok(())
    }
}
