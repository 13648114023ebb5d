//! Admission limits a hostile tenant cannot get around: bounded priority, a cap on the jobs one
//! tenant may have queued or running, one tenant only on a server that cannot switch users, and
//! the OS user and working directory of each run.

use std::path::PathBuf;
use std::sync::Arc;

use super::{Engine, EngineError};
use crate::isolation::{Identity, Isolation, IsolationError};
use crate::store::{JobQuery, JobSpec};

/// What one tenant may ask of the engine.
#[derive(Clone, Copy, Debug)]
pub struct AdmissionLimits {
    /// Most jobs one tenant may have queued or running at once.
    pub max_active_jobs_per_tenant: usize,
    /// Priorities run from `-max_priority` to `max_priority`.
    pub max_priority: i32,
}

impl Default for AdmissionLimits {
    fn default() -> Self {
        AdmissionLimits {
            max_active_jobs_per_tenant: 10_000,
            max_priority: 100,
        }
    }
}

impl Engine {
    /// Runs jobs as the users `isolation` names.
    pub fn set_isolation(&mut self, isolation: Arc<Isolation>) {
        self.isolation = Some(isolation);
    }

    /// Why `spec` may not be queued now, if it may not.
    pub(super) async fn admission_problem(&mut self, spec: &JobSpec) -> Result<(), EngineError> {
        let limit = self.admission.max_priority;
        if !(-limit..=limit).contains(&spec.run.priority) {
            return Err(EngineError::Rejected(format!(
                "priority {} is out of range; use -{limit} to {limit} (it orders a tenant's own jobs)",
                spec.run.priority
            )));
        }
        let active = self
            .active
            .values()
            .filter(|job| job.spec.tenant == spec.tenant)
            .count();
        let cap = self.admission.max_active_jobs_per_tenant;
        if active >= cap {
            return Err(EngineError::TenantFull(format!(
                "tenant `{}` already has {active} queued or running jobs, the most allowed ({cap}); wait for some to end",
                spec.tenant
            )));
        }
        self.check_sole_tenant(&spec.tenant).await
    }

    /// On a server that cannot switch users every job runs as the server: one tenant only.
    async fn check_sole_tenant(&mut self, tenant: &str) -> Result<(), EngineError> {
        let Some(isolation) = &self.isolation else {
            return Ok(());
        };
        if isolation.isolates() {
            return Ok(());
        }
        if self.sole_tenant.is_none() {
            let query = JobQuery {
                limit: 1,
                ..JobQuery::default()
            };
            self.sole_tenant = self
                .store
                .query_jobs(&query)
                .await?
                .first()
                .map(|job| job.spec.tenant.clone());
        }
        match &self.sole_tenant {
            Some(sole) if sole != tenant => Err(EngineError::Rejected(format!(
                "this server runs jobs as its own OS user (it is not root), so only tenant `{sole}` may run jobs here; start it as root to isolate tenants"
            ))),
            Some(_) => Ok(()),
            None => {
                self.sole_tenant = Some(tenant.to_string());
                Ok(())
            }
        }
    }

    /// Priority within a tenant: when the scheduler starts `id`, the tenant's highest-priority
    /// pending job of the same shape (gang size, allowed types, no goal) takes its place,
    /// oldest first among equals. The two are interchangeable to the scheduler (same gang, same
    /// nominal work, same quota), so swapping which store job each scheduler job stands for
    /// keeps its accounting exact and never moves a job ahead of another tenant's.
    pub(super) fn priority_swap(&mut self, id: i64) -> i64 {
        let Some(job) = self.active.get(&id) else {
            return id;
        };
        let same_shape = |other: &crate::store::JobRecord| {
            other.state == crate::store::JobState::Queued
                && other.spec.tenant == job.spec.tenant
                && other.spec.gpus == job.spec.gpus
                && other.spec.run.accelerators == job.spec.run.accelerators
                && other.spec.goal.is_none()
                && job.spec.goal.is_none()
                && other.spec.run.priority > job.spec.run.priority
        };
        let best = self
            .sched_of
            .keys()
            .filter_map(|other| self.active.get(other))
            .filter(|other| same_shape(other))
            .max_by_key(|other| (other.spec.run.priority, std::cmp::Reverse(other.id)))
            .map(|other| other.id);
        let Some(best) = best else {
            return id;
        };
        let (mine, theirs) = (self.sched_of[&id], self.sched_of[&best]);
        self.sched_of.insert(id, theirs);
        self.sched_of.insert(best, mine);
        self.by_sched.insert(mine, best);
        self.by_sched.insert(theirs, id);
        best
    }

    /// The user a run of `tenant` runs as and its working directory (`None`, `None` for an
    /// engine without isolation).
    pub(super) fn job_identity(
        &self,
        tenant: &str,
        job_id: i64,
        attempt: u32,
    ) -> Result<(Option<Identity>, Option<PathBuf>), IsolationError> {
        let Some(isolation) = &self.isolation else {
            return Ok((None, None));
        };
        let identity = isolation.identity(tenant)?;
        let work_dir = isolation
            .work_dir(identity.as_ref(), job_id, attempt)
            .map_err(IsolationError::RunDir)?;
        Ok((identity, Some(work_dir)))
    }
}
