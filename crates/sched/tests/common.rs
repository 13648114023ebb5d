//! Builders shared by the scenario tests.

#![allow(dead_code)]

use suanli_sched::{
    JobId, JobSpec, PoolConfig, SchedConfig, Scheduler, TenantConfig, Work, policy,
};

pub fn pool(
    name: &str,
    accelerator: &str,
    nodes: u32,
    per_node: u32,
    nodes_per_leaf: u32,
    leaves_per_pod: u32,
) -> PoolConfig {
    PoolConfig {
        name: name.into(),
        accelerator: accelerator.into(),
        nodes,
        accelerators_per_node: per_node,
        nodes_per_leaf,
        leaves_per_pod,
    }
}

pub fn scheduler(policy_name: &str, pools: &[PoolConfig], tenants: &[TenantConfig]) -> Scheduler {
    Scheduler::new(
        pools,
        tenants,
        policy::by_name(policy_name).unwrap(),
        SchedConfig::default(),
    )
    .unwrap()
}

/// A job of `duration_s` seconds on type `accelerator`.
pub fn job(name: &str, gang_size: u32, accelerator: &str, duration_s: f64) -> JobSpec {
    JobSpec {
        name: name.into(),
        gang_size,
        tenant: "t".into(),
        priority: 0,
        work: Work::duration_on(accelerator, duration_s),
        runtime_estimate_s: Some(duration_s as u64),
        checkpoint_interval_s: None,
        checkpoint_cost_s: 0,
    }
}

/// A job with a rate per type.
pub fn hetero_job(name: &str, gang_size: u32, total_units: f64, rates: &[(&str, f64)]) -> JobSpec {
    JobSpec {
        work: Work {
            total_units,
            units_per_s: rates.iter().map(|(t, r)| (t.to_string(), *r)).collect(),
        },
        ..job(name, gang_size, "x", 1.0)
    }
}

pub fn tenant(name: &str, guaranteed: &[(&str, u32)]) -> TenantConfig {
    TenantConfig {
        name: name.into(),
        guaranteed: guaranteed
            .iter()
            .map(|(t, n)| (t.to_string(), *n))
            .collect(),
        weight: 1.0,
    }
}

/// Runs a scheduling pass and renders its decisions one per line.
pub fn pass(scheduler: &mut Scheduler, now_s: u64) -> Vec<String> {
    scheduler
        .schedule(now_s)
        .iter()
        .map(ToString::to_string)
        .collect()
}

pub fn submit(scheduler: &mut Scheduler, spec: JobSpec, now_s: u64) -> JobId {
    scheduler.submit(spec, now_s).unwrap()
}
