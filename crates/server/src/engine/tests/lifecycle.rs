//! Admission, capacity, quota, preemption, cancel, restart and time limits.

use super::*;
use crate::engine::{EngineError, describe_exit};
use crate::store::Quota;

#[tokio::test]
async fn jobs_fill_the_pool_and_the_next_waits_for_capacity() {
    let mut rig = Rig::new("fifo", 8).await;
    let first = rig.submit("a", 4).await;
    let second = rig.submit("a", 4).await;
    let third = rig.submit("a", 4).await;
    assert_state(&first, JobState::Running);
    assert_state(&second, JobState::Running);
    assert_state(&third, JobState::Queued);
    assert_eq!(third.reason, "capacity: needs 4 of h100; 0 free");
    let starts = rig.executor.starts();
    assert_eq!(starts.len(), 2);
    // Two runs never share a device.
    let mut devices: Vec<u32> = starts.iter().flat_map(|l| l.devices.clone()).collect();
    devices.sort_unstable();
    assert_eq!(devices, (0..8).collect::<Vec<_>>());
    assert_eq!(rig.free(), 0);

    rig.exit(first.id, 0, 0).await;
    assert_state(&rig.job(first.id).await, JobState::Succeeded);
    assert_eq!(rig.job(first.id).await.reason, "exited 0");
    assert_state(&rig.job(third.id).await, JobState::Running);
    // The third run got exactly the devices the first gave back.
    assert_eq!(rig.executor.starts()[2].devices, starts[0].devices);
}

#[tokio::test]
async fn a_quota_holds_a_tenants_job_but_not_another_tenants() {
    let mut rig = Rig::new("fifo", 12).await;
    let quota = Quota {
        tenant: "a".into(),
        accelerator: "h100".into(),
        limit: 4,
    };
    rig.store.set_quota(&quota).await.unwrap();
    rig.engine.reload_quotas().await.unwrap();
    let a1 = rig.submit("a", 4).await;
    let a2 = rig.submit("a", 4).await;
    let b1 = rig.submit("b", 4).await;
    assert_state(&a1, JobState::Running);
    assert_state(&a2, JobState::Queued);
    assert_eq!(
        rig.job(a2.id).await.reason,
        "quota: tenant `a` has 4 of its 4 h100 in admitted jobs; this job needs 4"
    );
    assert_state(&rig.job(b1.id).await, JobState::Running);
    assert_eq!(rig.engine.admitted_usage("a", "h100"), 4);

    rig.exit(a1.id, 0, 0).await;
    assert_state(&rig.job(a2.id).await, JobState::Running);
    assert_eq!(rig.engine.admitted_usage("a", "h100"), 4);
}

#[tokio::test]
async fn requests_that_can_never_be_met_are_rejected_and_not_stored() {
    let mut rig = Rig::new("fifo", 8).await;
    let post = audit("POST /api/v1/jobs");
    let too_big = rig.engine.submit(spec("a", 16), &post).await;
    assert!(
        matches!(&too_big, Err(EngineError::Rejected(m)) if m.contains("needs 16 accelerators of any type; this cluster has h100:8")),
        "{too_big:?}"
    );
    let mut uneven = spec("a", 3);
    uneven.processes = 2;
    let uneven = rig.engine.submit(uneven, &post).await;
    assert!(
        matches!(uneven, Err(EngineError::Rejected(_))),
        "{uneven:?}"
    );
    let mut loud = spec("a", 1);
    loud.run.priority = 101;
    let loud = rig.engine.submit(loud, &post).await;
    assert!(matches!(loud, Err(EngineError::Rejected(_))), "{loud:?}");
    let quota = Quota {
        tenant: "a".into(),
        accelerator: "h100".into(),
        limit: 2,
    };
    rig.store.set_quota(&quota).await.unwrap();
    rig.engine.reload_quotas().await.unwrap();
    let over_quota = rig.engine.submit(spec("a", 4), &post).await;
    assert!(
        matches!(&over_quota, Err(EngineError::Rejected(m)) if m.contains("may hold at most 2")),
        "{over_quota:?}"
    );
    assert!(rig.store.list_jobs(None).await.unwrap().is_empty());
    assert!(rig.executor.starts().is_empty());
}

#[tokio::test]
async fn a_tenant_at_its_cap_of_active_jobs_is_told_to_wait() {
    let mut rig = Rig::new("fifo", 8).await;
    rig.engine.admission.max_active_jobs_per_tenant = 2;
    rig.submit("a", 8).await;
    rig.submit("a", 8).await;
    let third = rig
        .engine
        .submit(spec("a", 1), &audit("POST /api/v1/jobs"))
        .await;
    assert!(
        matches!(third, Err(EngineError::TenantFull(_))),
        "{third:?}"
    );
    // Another tenant is not held by a's cap.
    rig.submit("b", 1).await;
}

#[tokio::test]
async fn cancel_ends_a_queued_job_at_once_and_a_running_one_when_it_exits() {
    let mut rig = Rig::new("fifo", 8).await;
    let running = rig.submit("a", 8).await;
    let queued = rig.submit("a", 8).await;
    let cancel = audit("POST /api/v1/jobs/cancel");

    let (job, changed) = rig.engine.cancel(queued.id, &cancel).await.unwrap();
    assert!(changed);
    assert_state(&job, JobState::Cancelled);
    assert_eq!(job.reason, "cancelled while queued");
    assert!(rig.executor.stops().is_empty());

    let (job, changed) = rig.engine.cancel(running.id, &cancel).await.unwrap();
    assert!(changed);
    assert_state(&job, JobState::Running);
    assert_eq!(job.reason, "cancelling: stopping its processes");
    let run_dir = job.run.as_ref().unwrap().run_dir.clone();
    assert_eq!(rig.executor.stops(), vec![PathBuf::from(&run_dir)]);
    // A second cancel while the first is under way changes nothing.
    let (_, changed) = rig.engine.cancel(running.id, &cancel).await.unwrap();
    assert!(!changed);
    assert_eq!(rig.executor.stops().len(), 1);

    rig.exit(running.id, 0, 143).await;
    let job = rig.job(running.id).await;
    assert_state(&job, JobState::Cancelled);
    assert_eq!(job.exit_code, Some(143));
    assert_eq!(rig.free(), 8);

    let again = rig.engine.cancel(running.id, &cancel).await;
    assert!(
        matches!(&again, Err(EngineError::WrongState(m)) if m == &format!("job {} has already ended (cancelled)", running.id)),
        "{again:?}"
    );
    let unknown = rig.engine.cancel(999, &cancel).await;
    assert!(
        matches!(unknown, Err(EngineError::NotFound(_))),
        "{unknown:?}"
    );
    // Two cancels that changed something, two audit entries after the two submissions.
    assert_eq!(rig.store.list_audit().await.unwrap().len(), 4);
}

#[tokio::test]
async fn a_failed_run_restarts_from_its_checkpoint_until_restarts_run_out() {
    let mut rig = Rig::new("fifo", 8).await;
    let mut with_restart = spec("a", 2);
    with_restart.run.max_restarts = 1;
    with_restart.run.checkpoint_dir = Some("/ckpt/a".into());
    let job = rig
        .engine
        .submit(with_restart, &audit("POST /api/v1/jobs"))
        .await
        .unwrap();
    let first = &rig.executor.starts()[0];
    assert_eq!(first.env["SUANLI_ATTEMPT"], "0");
    assert!(!first.env.contains_key("SUANLI_RESUME_FROM"));

    rig.exit(job.id, 0, 1).await;
    let restarted = rig.job(job.id).await;
    assert_state(&restarted, JobState::Running);
    assert_eq!((restarted.restarts, restarted.attempts), (1, 2));
    let second = &rig.executor.starts()[1];
    assert_eq!(second.attempt, 1);
    assert_eq!(second.env["SUANLI_RESUME_FROM"], "/ckpt/a");

    // A late report of the first attempt changes nothing.
    rig.exit(job.id, 0, 0).await;
    assert_state(&rig.job(job.id).await, JobState::Running);

    rig.exit(job.id, 1, 137).await;
    let failed = rig.job(job.id).await;
    assert_state(&failed, JobState::Failed);
    assert_eq!(
        failed.reason,
        "killed by signal 9 (exit code 137); no restarts left (1 of 1 used)"
    );
    assert_eq!(failed.finished_at_s, Some(T0_S));
    assert_eq!(rig.executor.starts().len(), 2);
}

#[tokio::test]
async fn a_run_past_its_time_limit_is_stopped_and_fails_without_restart() {
    let mut rig = Rig::new("fifo", 8).await;
    let mut limited = spec("a", 1);
    limited.run.time_limit_s = Some(60);
    limited.run.max_restarts = 3;
    let job = rig
        .engine
        .submit(limited, &audit("POST /api/v1/jobs"))
        .await
        .unwrap();
    rig.clock.advance_s(59);
    rig.engine.enforce_time_limits().await;
    assert!(rig.executor.stops().is_empty(), "stopped a second early");
    rig.clock.advance_s(1);
    rig.engine.enforce_time_limits().await;
    rig.engine.enforce_time_limits().await;
    assert_eq!(rig.executor.stops().len(), 1, "stopped once, at 60 s");

    rig.exit(job.id, 0, 143).await;
    let failed = rig.job(job.id).await;
    assert_state(&failed, JobState::Failed);
    assert_eq!(
        failed.reason,
        format!(
            "time limit of 60 s reached; stopped ({})",
            describe_exit(143)
        )
    );
    assert_eq!(failed.finished_at_s, Some(T0_S + 60));
    assert_eq!(failed.restarts, 0);
}

/// Tiresias LAS demotes a job after 3,600 accelerator-seconds of service (its first queue
/// threshold, `sched::policy::Las::default`): 8 devices reach it after 450 s, and a newcomer in
/// the first queue then preempts it.
#[tokio::test]
async fn las_preempts_a_job_once_it_has_had_its_first_queue_of_service() {
    let mut rig = Rig::new("las", 8).await;
    let old = rig.submit("a", 8).await;
    rig.clock.advance_s(449);
    let new = rig.submit("b", 8).await;
    assert_state(&new, JobState::Queued);
    assert!(rig.executor.stops().is_empty());

    rig.clock.advance_s(1);
    rig.engine.schedule_pass().await.unwrap();
    let preempted = rig.job(old.id).await;
    assert_state(&preempted, JobState::Queued);
    assert!(
        preempted.reason.starts_with("preempted by the scheduler"),
        "{}",
        preempted.reason
    );
    assert_eq!(
        rig.executor.stops(),
        vec![PathBuf::from(&old.run.as_ref().unwrap().run_dir)]
    );
    assert_state(&rig.job(new.id).await, JobState::Running);
    // The preempted run's end, reported after it was stopped, is stale.
    rig.exit(old.id, 0, 143).await;
    assert_state(&rig.job(old.id).await, JobState::Queued);
}

#[tokio::test]
async fn a_failed_node_requeues_its_run_and_a_repaired_one_restarts_it() {
    let mut rig = Rig::new("fifo", 8).await;
    let job = rig.submit("a", 4).await;
    let stopped = rig.engine.node_down("h100").await.unwrap();
    assert_eq!(stopped, vec![job.id]);
    let queued = rig.job(job.id).await;
    assert_state(&queued, JobState::Queued);
    assert_eq!(queued.reason, "capacity: needs 4 of h100; 0 free");
    assert_eq!(rig.executor.stops().len(), 1);

    rig.engine.node_up("h100").await.unwrap();
    let running = rig.job(job.id).await;
    assert_state(&running, JobState::Running);
    assert_eq!(rig.executor.starts()[1].attempt, 1);
    let unknown = rig.engine.node_down("tpu").await;
    assert!(
        matches!(unknown, Err(EngineError::NotFound(_))),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_run_that_cannot_start_fails_and_frees_its_devices() {
    let mut rig = Rig::new("fifo", 8).await;
    *rig.executor.refuse_starts.lock().unwrap() = true;
    let job = rig.submit("a", 8).await;
    assert_state(&job, JobState::Failed);
    assert!(
        job.reason
            .starts_with("failed to start: cannot start `train`")
    );
    assert_eq!(job.exit_code, Some(127));
    assert_eq!(rig.free(), 8);
}
