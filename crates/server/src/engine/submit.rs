//! Accepting a job: checks that it can ever run here, stores it, and admits it to the scheduler
//! or holds it for its tenant's quota.

use super::{Engine, EngineError};
use crate::store::{JobRecord, JobSpec, NewAuditEvent};

impl Engine {
    /// Checks a spec can ever run here; the message says what would be right.
    pub(super) fn validate(&self, spec: &JobSpec) -> Result<(), EngineError> {
        if spec.run.command.is_empty() {
            return Err(EngineError::Rejected("the command is empty".into()));
        }
        if spec.gpus == 0 || spec.processes == 0 || !spec.gpus.is_multiple_of(spec.processes) {
            return Err(EngineError::Rejected(format!(
                "gpus ({}) must be at least 1 and a multiple of processes ({})",
                spec.gpus, spec.processes
            )));
        }
        let offered: Vec<String> = self
            .pools
            .iter()
            .map(|p| format!("{}:{}", p.accelerator, p.total))
            .collect();
        let fits = self.pools.iter().any(|p| {
            (spec.run.accelerators.is_empty() || spec.run.accelerators.contains(&p.accelerator))
                && p.total >= spec.gpus
        });
        if !fits {
            return Err(EngineError::Rejected(format!(
                "job can never run: it needs {} accelerators of {}; this cluster has {}",
                spec.gpus,
                if spec.run.accelerators.is_empty() {
                    "any type".to_string()
                } else {
                    spec.run.accelerators.join(" or ")
                },
                offered.join(", ")
            )));
        }
        // A job bigger than its tenant's quota would be held forever: refuse it now.
        for accelerator in self.job_types(spec) {
            let key = (spec.tenant.clone(), accelerator.clone());
            if let Some(&limit) = self.quotas.get(&key).filter(|&&limit| limit < spec.gpus) {
                return Err(EngineError::Rejected(format!(
                    "job can never run: it needs {} {accelerator} and tenant `{}` may hold at most {limit}; ask an admin to raise the quota (suanli quota set) or ask for fewer",
                    spec.gpus, spec.tenant
                )));
            }
        }
        Ok(())
    }

    /// Accepts a job: stores it with the request's audit entry `audit` (one transaction), admits
    /// it and runs a scheduling pass.
    pub async fn submit(
        &mut self,
        spec: JobSpec,
        audit: &NewAuditEvent,
    ) -> Result<JobRecord, EngineError> {
        self.validate(&spec)?;
        self.admission_problem(&spec).await?;
        let (record, _) = self
            .store
            .insert_job_audited(&spec, self.now_s(), audit)
            .await?;
        let id = record.id;
        self.metrics.jobs_submitted.inc();
        self.active.insert(id, record);
        self.admit_or_hold(id).await?;
        self.schedule_pass().await?;
        match self.active.get(&id) {
            Some(job) => Ok(job.clone()),
            // Already ended within this pass (a start failure).
            None => self
                .store
                .get_job(id)
                .await?
                .ok_or_else(|| EngineError::NotFound(format!("job {id}"))),
        }
    }

    /// Accelerators of `accelerator` that `tenant`'s admitted jobs ask for.
    pub fn admitted_usage(&self, tenant: &str, accelerator: &str) -> u32 {
        self.sched_of
            .keys()
            .filter_map(|id| self.active.get(id))
            .filter(|job| job.spec.tenant == tenant)
            .filter(|job| self.job_types(&job.spec).iter().any(|t| t == accelerator))
            .map(|job| job.spec.gpus)
            .sum()
    }

    /// Why the tenant's quota keeps a job out, if it does.
    pub(super) fn quota_problem(&self, spec: &JobSpec) -> Option<String> {
        for accelerator in self.job_types(spec) {
            let key = (spec.tenant.clone(), accelerator.clone());
            if let Some(&limit) = self.quotas.get(&key) {
                let used = self.admitted_usage(&spec.tenant, &accelerator);
                if used + spec.gpus > limit {
                    return Some(format!(
                        "quota: tenant `{}` has {used} of its {limit} {accelerator} in admitted jobs; this job needs {}",
                        spec.tenant, spec.gpus
                    ));
                }
            }
        }
        None
    }

    /// Submits a job to the scheduler, or holds it for quota.
    pub(super) async fn admit_or_hold(&mut self, id: i64) -> Result<(), EngineError> {
        let Some(job) = self.active.get(&id) else {
            return Ok(());
        };
        if let Some(problem) = self.quota_problem(&job.spec) {
            self.held.insert(id);
            return self.set_reason(id, problem).await;
        }
        self.held.remove(&id);
        self.reasons_fresh.push(id);
        let types = self.job_types(&job.spec);
        self.submit_to_scheduler(id, &types)
    }

    pub(super) fn submit_to_scheduler(
        &mut self,
        id: i64,
        types: &[String],
    ) -> Result<(), EngineError> {
        let job = &self.active[&id];
        let (work, estimate_s) = super::forecast::sched_work(&job.spec, types);
        let spec = suanli_sched::JobSpec {
            name: format!("job-{id}"),
            gang_size: job.spec.gpus,
            tenant: job.spec.tenant.clone(),
            // A job's priority orders its own tenant's jobs only (`priority_swap`); across
            // tenants the policy (submission order, fair share) decides, so no tenant can jump
            // the others.
            priority: 0,
            work,
            runtime_estimate_s: estimate_s,
            checkpoint_interval_s: None,
            checkpoint_cost_s: 0,
        };
        let now_s = self.now_s() as u64;
        let sched_id = self
            .scheduler
            .submit(spec, now_s)
            .map_err(|e| EngineError::Rejected(e.to_string()))?;
        self.by_sched.insert(sched_id.0, id);
        self.sched_of.insert(id, sched_id.0);
        Ok(())
    }
}
