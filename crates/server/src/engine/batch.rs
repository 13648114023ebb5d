//! Deferred job writes: within one scheduling pass, or one executor report and the pass after
//! it, the engine's job writes are kept in memory and stored with one transaction
//! (`Store::update_jobs`) before any run of the pass is launched, so a run is still recorded as
//! started before its processes start, with one commit per pass instead of one per run.

use super::{Engine, EngineError};
use crate::store::JobRecord;

impl Engine {
    /// Writes `job` now, or at the next `flush_writes` while writes are deferred.
    pub(super) async fn write_job(&mut self, job: &JobRecord) -> Result<(), EngineError> {
        if self.deferring {
            self.deferred.push(job.clone());
            return Ok(());
        }
        self.store.update_job(job).await?;
        self.job_commits += 1;
        Ok(())
    }

    /// Defers job writes from here on; true when this call turned deferring on (the caller then
    /// owns the batch and ends it with `end_deferred`).
    pub(super) fn begin_deferred(&mut self) -> bool {
        !std::mem::replace(&mut self.deferring, true)
    }

    /// Stores the deferred writes, in order, in one transaction. On failure they are dropped
    /// (the in-memory state is ahead of the store, as after any failed write; `recover` rebuilds
    /// from the store).
    pub(super) async fn flush_writes(&mut self) -> Result<(), EngineError> {
        let jobs = std::mem::take(&mut self.deferred);
        if jobs.is_empty() {
            return Ok(());
        }
        self.store.update_jobs(&jobs).await?;
        self.job_commits += 1;
        Ok(())
    }

    /// Ends a batch begun by `begin_deferred` (when `owner`) and stores what it deferred.
    pub(super) async fn end_deferred(&mut self, owner: bool) -> Result<(), EngineError> {
        if owner {
            self.deferring = false;
        }
        self.flush_writes().await
    }
}
