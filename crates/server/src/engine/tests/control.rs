//! The control loop stops when told to and first applies the run ends already reported.

use super::*;
use crate::engine::control::{Reports, control_loop};

#[tokio::test]
async fn stopping_the_loop_drains_the_ends_already_reported() {
    let mut rig = Rig::new("fifo", 8).await;
    let first = rig.submit("a", 8).await;
    let second = rig.submit("a", 8).await;
    let store = rig.store.clone();
    let engine = Arc::new(tokio::sync::Mutex::new(rig.engine));
    let (exits_tx, exits) = tokio::sync::mpsc::unbounded_channel();
    let (_slurm_tx, slurm) = tokio::sync::mpsc::unbounded_channel();
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    // Both the end and the stop are waiting before the loop first runs.
    exits_tx
        .send(ExitEvent {
            job_id: first.id,
            attempt: 0,
            exit_code: 0,
        })
        .unwrap();
    stop_tx.send(true).unwrap();
    control_loop(engine.clone(), Reports { exits, slurm }, stop).await;
    let ended = store.get_job(first.id).await.unwrap().unwrap();
    assert_state(&ended, JobState::Succeeded);
    // A stopping server starts nothing: the next job waits for the next server.
    let next = store.get_job(second.id).await.unwrap().unwrap();
    assert_state(&next, JobState::Queued);
}
