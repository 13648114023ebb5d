//! Time limits: a run past its job's `time_limit_s` is stopped and the job fails.

use super::{Engine, JobState, STOP_GRACE};

impl Engine {
    /// Stops every running job past its time limit; the exit then marks it failed (see
    /// `finish_run`). Called on the control loop's tick, so a limit holds to about a second.
    pub async fn enforce_time_limits(&mut self) {
        let now = self.now_s();
        let over: Vec<(i64, String)> = self
            .active
            .values()
            .filter(|job| job.state == JobState::Running && !self.timed_out.contains(&job.id))
            .filter_map(|job| {
                let limit_s = job.spec.run.time_limit_s?;
                let run = job.run.as_ref()?;
                let ran_s = now.saturating_sub(run.started_at_s);
                (ran_s >= i64::try_from(limit_s).unwrap_or(i64::MAX))
                    .then(|| (job.id, run.run_dir.clone()))
            })
            .collect();
        for (id, run_dir) in over {
            tracing::info!(job = id, "time limit reached; stopping the job");
            self.timed_out.insert(id);
            self.executor
                .stop(std::path::Path::new(&run_dir), STOP_GRACE)
                .await;
        }
    }
}
