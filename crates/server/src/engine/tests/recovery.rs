//! Recovery: a new engine over the store of one that stopped, with what the executor finds.

use super::*;
use crate::executor::Adopted;

/// Runs `setup` on a first engine, then recovers a second over the same store whose executor
/// finds `adoptions`.
async fn restart_with(
    setup: impl AsyncFnOnce(&mut Rig) -> Vec<i64>,
    adoptions: impl Fn(&[i64]) -> Vec<(i64, Adopted)>,
) -> (Rig, Vec<i64>) {
    let store = memory_store().await;
    let mut first = Rig::over(store.clone(), "fifo", 8, Arc::default()).await;
    let ids = setup(&mut first).await;
    drop(first);
    let executor = Arc::new(FakeExecutor::default());
    executor.adoptions.lock().unwrap().extend(adoptions(&ids));
    (Rig::over(store, "fifo", 8, executor).await, ids)
}

#[tokio::test]
async fn a_run_alive_after_a_restart_keeps_its_devices_and_is_watched() {
    let (mut rig, ids) = restart_with(
        async |rig| vec![rig.submit("a", 8).await.id, rig.submit("a", 4).await.id],
        |ids| vec![(ids[0], Adopted::Alive)],
    )
    .await;
    let adopted = rig.job(ids[0]).await;
    assert_state(&adopted, JobState::Running);
    assert_eq!(adopted.attempts, 1);
    assert!(rig.executor.starts().is_empty(), "nothing started again");
    assert_eq!(rig.free(), 0);
    assert_state(&rig.job(ids[1]).await, JobState::Queued);

    rig.exit(ids[0], 0, 0).await;
    assert_state(&rig.job(ids[0]).await, JobState::Succeeded);
    assert_state(&rig.job(ids[1]).await, JobState::Running);
}

#[tokio::test]
async fn runs_that_ended_while_the_server_was_down_are_settled() {
    let (rig, ids) = restart_with(
        async |rig| vec![rig.submit("a", 4).await.id, rig.submit("a", 4).await.id],
        |ids| vec![(ids[0], Adopted::Exited(0)), (ids[1], Adopted::Exited(2))],
    )
    .await;
    assert_state(&rig.job(ids[0]).await, JobState::Succeeded);
    let failed = rig.job(ids[1]).await;
    assert_state(&failed, JobState::Failed);
    assert_eq!(failed.reason, "exit code 2; no restarts left (0 of 0 used)");
    assert_eq!(rig.free(), 8);
}

#[tokio::test]
async fn a_run_that_never_started_runs_again_under_the_same_attempt() {
    let (rig, ids) = restart_with(
        async |rig| vec![rig.submit("a", 8).await.id],
        |_| Vec::new(),
    )
    .await;
    let job = rig.job(ids[0]).await;
    assert_state(&job, JobState::Running);
    assert_eq!(job.attempts, 1);
    assert_eq!(rig.executor.starts()[0].attempt, 0);
}

#[tokio::test]
async fn a_gang_cut_short_by_a_crash_runs_again_as_a_new_attempt() {
    let (rig, ids) = restart_with(
        async |rig| vec![rig.submit("a", 8).await.id],
        |ids| {
            let cut = Adopted::Incomplete {
                started: 1,
                declared: 2,
            };
            vec![(ids[0], cut)]
        },
    )
    .await;
    let job = rig.job(ids[0]).await;
    assert_state(&job, JobState::Running);
    assert_eq!(rig.executor.starts()[0].attempt, 1);
    assert_eq!(
        job.restarts, 0,
        "a crash of the server is not the job's failure"
    );
}

#[tokio::test]
async fn a_cancel_asked_for_before_the_crash_is_finished() {
    let (rig, ids) = restart_with(
        async |rig| {
            let id = rig.submit("a", 8).await.id;
            let cancel = audit("POST /api/v1/jobs/cancel");
            rig.engine.cancel(id, &cancel).await.unwrap();
            vec![id]
        },
        |_| Vec::new(),
    )
    .await;
    assert_state(&rig.job(ids[0]).await, JobState::Cancelled);
    assert!(rig.executor.starts().is_empty());
}

#[tokio::test]
async fn queued_jobs_come_back_in_submission_order() {
    let (rig, ids) = restart_with(
        async |rig| {
            let mut ids = vec![rig.submit("a", 8).await.id];
            for _ in 0..3 {
                ids.push(rig.submit("a", 4).await.id);
            }
            ids
        },
        |ids| vec![(ids[0], Adopted::Exited(0))],
    )
    .await;
    assert_state(&rig.job(ids[0]).await, JobState::Succeeded);
    assert_state(&rig.job(ids[1]).await, JobState::Running);
    assert_state(&rig.job(ids[2]).await, JobState::Running);
    assert_state(&rig.job(ids[3]).await, JobState::Queued);
}
