//! One transaction per pass: an end and the starts it makes room for, or one Slurm report's
//! ends, are stored with one commit, and still before any of the runs is launched.

use super::*;
use crate::slurm::SlurmEvent;

/// A rig whose executor checks the store at every start.
async fn checked_rig() -> Rig {
    let rig = Rig::new("fifo", 8).await;
    *rig.executor.store.lock().unwrap() = Some(rig.store.clone());
    rig.clock.advance_s(1);
    rig
}

#[tokio::test]
async fn an_end_and_the_starts_it_allows_are_one_commit_stored_before_launch() {
    let mut rig = checked_rig().await;
    let big = rig.submit("a", 8).await;
    let mut small = Vec::new();
    for _ in 0..8 {
        small.push(rig.submit("a", 1).await);
    }
    assert!(small.iter().all(|j| j.state == JobState::Queued));
    let before = rig.engine.job_commits;
    rig.exit(big.id, 0, 0).await;
    // One end and eight starts (and the reasons they write): one transaction, not nine.
    assert_eq!(rig.engine.job_commits - before, 1);
    assert_state(&rig.job(big.id).await, JobState::Succeeded);
    for job in &small {
        assert_state(&rig.job(job.id).await, JobState::Running);
    }
    assert_eq!(rig.executor.starts().len(), 9);
    // Every launch found its run already stored as running (crash recovery relies on it).
    let seen = rig.executor.stored_at_start.lock().unwrap().clone();
    assert_eq!(seen, vec![JobState::Running; 9]);
    assert_eq!(rig.free(), 0);
}

#[tokio::test]
async fn one_slurm_report_of_several_ends_is_one_commit() {
    let mut rig = checked_rig().await;
    let mut jobs = Vec::new();
    for _ in 0..11 {
        jobs.push(rig.submit("a", 1).await);
    }
    let ended = |job: &JobRecord, code| SlurmEvent::Ended {
        job_id: job.id,
        attempt: 0,
        exit_code: code,
        note: format!("Slurm: exit code {code}"),
    };
    let report = vec![ended(&jobs[0], 0), ended(&jobs[1], 0), ended(&jobs[2], 3)];
    let before = rig.engine.job_commits;
    rig.engine.on_slurm_events(report).await.unwrap();
    assert_eq!(rig.engine.job_commits - before, 1);
    assert_state(&rig.job(jobs[0].id).await, JobState::Succeeded);
    assert_state(&rig.job(jobs[2].id).await, JobState::Failed);
    assert_eq!(rig.job(jobs[2].id).await.exit_code, Some(3));
    for job in &jobs[8..] {
        assert_state(&rig.job(job.id).await, JobState::Running);
    }
    let seen = rig.executor.stored_at_start.lock().unwrap().clone();
    assert_eq!(seen, vec![JobState::Running; 11]);
    // A stale end (an attempt that is over) changes nothing and commits nothing.
    let before = rig.engine.job_commits;
    rig.engine
        .on_slurm_events(vec![ended(&jobs[0], 1)])
        .await
        .unwrap();
    assert_eq!(rig.engine.job_commits, before);
    assert_state(&rig.job(jobs[0].id).await, JobState::Succeeded);
}
