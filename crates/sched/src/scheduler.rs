//! The scheduler's public face: the calls a driver makes, on a virtual clock (the simulator) or
//! the wall clock (the server). Every call takes `now_s`; nothing here reads a clock.

use std::collections::BTreeMap;

use crate::SchedError;
use crate::cluster::{Cluster, NodeId, PoolConfig, PoolId};
use crate::job::{Job, JobId, JobSpec, Status};
use crate::policy::Policy;
use crate::state::{Decision, Interruption, SchedConfig, State};
use crate::tenant::{Tenant, TenantConfig};

/// A cluster, its queue and a policy.
pub struct Scheduler {
    state: State,
    policy: Box<dyn Policy>,
    tenant_index: BTreeMap<String, usize>,
    /// The pools a job being submitted can run on, reused from submit to submit.
    pools_scratch: Vec<(PoolId, f64)>,
}

impl std::fmt::Debug for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scheduler")
            .field("policy", &self.policy.name())
            .finish_non_exhaustive()
    }
}

impl Scheduler {
    /// A scheduler over `pools`, with `tenants` (others are created without a guarantee on first
    /// submit).
    pub fn new(
        pools: &[PoolConfig],
        tenants: &[TenantConfig],
        policy: Box<dyn Policy>,
        config: SchedConfig,
    ) -> Result<Self, SchedError> {
        let cluster = Cluster::new(pools)?;
        let mut tenant_index = BTreeMap::new();
        let mut tenant_list = Vec::new();
        for config in tenants {
            if tenant_index
                .insert(config.name.clone(), tenant_list.len())
                .is_some()
            {
                return Err(SchedError::InvalidTenant(format!(
                    "tenant `{}` is configured twice",
                    config.name
                )));
            }
            tenant_list.push(Tenant::new(config));
        }
        Ok(Scheduler {
            state: State::new(cluster, tenant_list, config),
            policy,
            tenant_index,
            pools_scratch: Vec::new(),
        })
    }

    /// The policy's name as given on the command line.
    pub fn policy_name(&self) -> &'static str {
        self.policy.name()
    }

    /// Everything the scheduler knows, read-only.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// One job's record.
    pub fn job(&self, id: JobId) -> Result<&Job, SchedError> {
        self.state
            .jobs
            .get(id.0 as usize)
            .ok_or(SchedError::UnknownJob(id.0))
    }

    /// Room for `additional` more jobs in the scheduler's records, so that a driver that knows
    /// how many jobs will come (a replay) does not pay for the records being moved as they grow.
    pub fn reserve(&mut self, additional: usize) {
        self.state.reserve(additional);
    }

    /// Queues a job. Fails if no pool of an allowed type could ever hold its gang.
    pub fn submit(&mut self, spec: JobSpec, now_s: u64) -> Result<JobId, SchedError> {
        let tenant = self.admit(&spec, &spec.name, &spec.tenant)?;
        Ok(self.enqueue(spec, tenant, now_s))
    }

    /// Queues a job whose name and tenant the driver keeps: `name` (used in error messages) and
    /// `tenant` are borrowed, and `spec.name` and `spec.tenant` are ignored (leave them empty,
    /// which allocates nothing). The record then holds an empty name and tenant from the start;
    /// the tenant stays known by index (`Job::tenant`). Otherwise the same as `submit`.
    pub fn submit_borrowed(
        &mut self,
        mut spec: JobSpec,
        name: &str,
        tenant: &str,
        now_s: u64,
    ) -> Result<JobId, SchedError> {
        let tenant = self.admit(&spec, name, tenant)?;
        spec.name = String::new();
        spec.tenant = String::new();
        Ok(self.enqueue(spec, tenant, now_s))
    }

    /// Checks that the job can ever run, leaves the pools it can run on (with its rates there)
    /// in `pools_scratch`, and returns its tenant's index (a tenant seen for the first time is
    /// created without a guarantee).
    fn admit(&mut self, spec: &JobSpec, name: &str, tenant: &str) -> Result<usize, SchedError> {
        if spec.gang_size == 0 {
            return Err(SchedError::InvalidJob(format!(
                "job `{name}`: gang size is 0; it must be at least 1"
            )));
        }
        if !(spec.work.total_units > 0.0 && spec.work.total_units.is_finite()) {
            return Err(SchedError::InvalidJob(format!(
                "job `{name}`: total work is {}; it must be a positive number",
                spec.work.total_units
            )));
        }
        let mut pools = std::mem::take(&mut self.pools_scratch);
        pools.clear();
        pools.extend(
            self.state
                .cluster
                .pools
                .iter()
                .enumerate()
                .filter_map(|(i, pool)| {
                    let rate = spec.work.units_per_s.get(&pool.accelerator).copied()?;
                    let fits = pool.accelerators_per_node * pool.node_count >= spec.gang_size;
                    (rate > 0.0 && rate.is_finite() && fits).then_some((PoolId(i as u32), rate))
                }),
        );
        let placeable = !pools.is_empty();
        self.pools_scratch = pools;
        if !placeable {
            let types: Vec<&str> = spec.work.units_per_s.keys().map(String::as_str).collect();
            let offered: Vec<String> = self
                .state
                .cluster
                .pools
                .iter()
                .map(|p| {
                    format!(
                        "{} ({} accelerators)",
                        p.accelerator,
                        p.accelerators_per_node * p.node_count
                    )
                })
                .collect();
            return Err(SchedError::Unplaceable(format!(
                "job `{name}` needs {} accelerators of [{}]; the cluster has {}",
                spec.gang_size,
                types.join(", "),
                offered.join(", ")
            )));
        }
        Ok(match self.tenant_index.get(tenant) {
            Some(&t) => t,
            None => {
                let t = self.state.tenants.len();
                self.state.tenants.push(Tenant::new(&TenantConfig {
                    name: tenant.to_string(),
                    guaranteed: BTreeMap::new(),
                    weight: 1.0,
                }));
                self.state.pending_by_tenant.push(Default::default());
                self.tenant_index.insert(tenant.to_string(), t);
                t
            }
        })
    }

    /// Files an admitted job (its pools in `pools_scratch`) in the queue.
    fn enqueue(&mut self, spec: JobSpec, tenant: usize, now_s: u64) -> JobId {
        let pools = std::mem::take(&mut self.pools_scratch);
        let id = JobId(self.state.jobs.len() as u32);
        let job = Job {
            id,
            spec,
            tenant,
            submitted_s: now_s,
            status: Status::Pending,
            done_units: 0.0,
            attained_acc_s: 0,
            useful_acc_s: 0,
            lost_compute_s: 0,
            lost_units: 0.0,
            preemptions: 0,
            failures: 0,
            first_start_s: None,
            pending_since_s: now_s,
        };
        let key = self.policy.queue_key(&job, &pools);
        self.state.enqueue(job, &pools, key);
        self.pools_scratch = pools;
        id
    }

    /// A running job completed.
    pub fn on_finish(&mut self, id: JobId, now_s: u64) -> Result<(), SchedError> {
        match self.job(id)?.status {
            Status::Running(_) => {
                self.state.finish(id, now_s);
                Ok(())
            }
            _ => Err(SchedError::NotRunning(id.0)),
        }
    }

    /// The driver cancelled a job. A pending job leaves the queue (and every policy's view of
    /// it) and never starts; a running job releases its accelerators as `on_finish` would, keeping
    /// only the work it had checkpointed. Either way it ends as `Status::Cancelled`.
    pub fn cancel(&mut self, id: JobId, now_s: u64) -> Result<(), SchedError> {
        match self.job(id)?.status {
            Status::Pending => self.state.cancel_pending(id, now_s),
            Status::Running(_) => self.state.cancel_running(id, now_s),
            Status::Finished { .. } | Status::Cancelled { .. } => {
                return Err(SchedError::AlreadyEnded(id.0));
            }
        }
        Ok(())
    }

    /// A node failed: every job on it loses work since its last checkpoint and is requeued.
    /// Returns the jobs that were killed, in id order.
    pub fn on_node_failure(&mut self, node: NodeId, now_s: u64) -> Result<Vec<JobId>, SchedError> {
        if !self.state.cluster.node(node)?.up {
            return Ok(Vec::new());
        }
        // Running jobs are kept in id order.
        let killed: Vec<JobId> = self
            .state
            .running
            .iter()
            .map(|&id| JobId(id))
            .filter(|&id| {
                self.state
                    .job(id)
                    .run()
                    .is_some_and(|r| r.allocation.iter().any(|(n, _)| *n == node))
            })
            .collect();
        for &id in &killed {
            self.state.interrupt(id, now_s, Interruption::Failed);
        }
        self.state.cluster.set_down(node);
        Ok(killed)
    }

    /// A failed node is back.
    pub fn on_node_repair(&mut self, node: NodeId, _now_s: u64) -> Result<(), SchedError> {
        if !self.state.cluster.node(node)?.up {
            self.state.cluster.set_up(node);
        }
        Ok(())
    }

    /// Runs quota reclaim and the policy; returns what to start and stop, in order.
    pub fn schedule(&mut self, now_s: u64) -> Vec<Decision> {
        let mut decisions = Vec::new();
        self.schedule_into(now_s, &mut decisions);
        decisions
    }

    /// `schedule`, appending the decisions to `decisions`: a driver that calls it at every
    /// event reuses one vector instead of receiving a new one each time.
    pub fn schedule_into(&mut self, now_s: u64, decisions: &mut Vec<Decision>) {
        if self.state.has_quotas() {
            self.state.reclaim_guarantees(now_s);
        }
        self.policy.schedule(&mut self.state, now_s);
        decisions.append(&mut self.state.decisions);
    }

    /// True when `schedule` changes nothing at an instant without a state change other than the
    /// policy's own wake-ups (its `acts_only_at_wakeups`, and no tenant guarantees to reclaim).
    pub fn passes_only_at_wakeups(&self) -> bool {
        self.policy.acts_only_at_wakeups() && !self.state.has_quotas()
    }

    /// When the policy wants to be called again even if nothing happens (round ends, LAS
    /// demotions), if ever.
    pub fn next_wakeup_s(&self, now_s: u64) -> Option<u64> {
        self.policy
            .next_wakeup_s(&self.state, now_s)
            .filter(|&t| t > now_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::Work;

    fn gang_of_four(name: &str) -> JobSpec {
        JobSpec {
            name: name.into(),
            gang_size: 4,
            tenant: "t".into(),
            priority: 0,
            work: Work::duration_on("a100", 1000.0),
            runtime_estimate_s: Some(1000),
            checkpoint_interval_s: None,
            checkpoint_cost_s: 0,
        }
    }

    #[test]
    fn cancelling_a_running_job_frees_its_accelerators() {
        let pools = [PoolConfig {
            name: "p".into(),
            accelerator: "a100".into(),
            nodes: 1,
            accelerators_per_node: 4,
            nodes_per_leaf: 1,
            leaves_per_pod: 1,
        }];
        for policy_name in crate::policy::NAMES {
            let policy = crate::policy::by_name(policy_name).unwrap();
            let mut scheduler =
                Scheduler::new(&pools, &[], policy, SchedConfig::default()).unwrap();
            let running = scheduler.submit(gang_of_four("running"), 0).unwrap();
            let waiting = scheduler.submit(gang_of_four("waiting"), 0).unwrap();
            scheduler.schedule(0);
            assert!(
                scheduler.job(running).unwrap().run().is_some(),
                "{policy_name}"
            );
            assert_eq!(scheduler.state().cluster.pools[0].free, 0);

            scheduler.cancel(running, 50).unwrap();
            let state = scheduler.state();
            assert_eq!(state.cluster.pools[0].free, 4, "{policy_name}");
            assert_eq!(state.running_count(), 0);
            assert_eq!(state.tenants[0].used_total, 0);
            assert_eq!(
                scheduler.job(running).unwrap().status,
                Status::Cancelled { cancelled_s: 50 }
            );
            assert_eq!(scheduler.job(running).unwrap().attained_acc_s, 200);
            assert_eq!(
                scheduler.on_finish(running, 60),
                Err(SchedError::NotRunning(running.0))
            );

            // A round-based policy acts at its next round; the others at once.
            let mut decisions = scheduler.schedule(50);
            if decisions.is_empty()
                && let Some(round_s) = scheduler.next_wakeup_s(50)
            {
                decisions = scheduler.schedule(round_s);
            }
            assert!(
                matches!(decisions.as_slice(), [Decision::Start { job, .. }] if *job == waiting),
                "{policy_name}: {decisions:?}"
            );
            assert_eq!(scheduler.state().cluster.pools[0].free, 0);
        }
    }
}
