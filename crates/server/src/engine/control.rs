//! The control loop: applies run ends and Slurm reports as they arrive and runs a scheduling pass
//! and the time-limit check every second, until told to stop; then it applies the reports already
//! received (drains) without starting anything new, and returns, so no end a run reported is
//! lost to shutdown.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, mpsc, watch};

use super::Engine;
use crate::executor::ExitEvent;
use crate::slurm::SlurmEvent;

/// The report channels the loop reads.
pub struct Reports {
    pub exits: mpsc::UnboundedReceiver<ExitEvent>,
    pub slurm: mpsc::UnboundedReceiver<SlurmEvent>,
}

/// Drives `engine` until `stop` turns true (or its sender is dropped), then drains.
pub async fn control_loop(
    engine: Arc<Mutex<Engine>>,
    mut reports: Reports,
    mut stop: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut slurm_open = true;
    loop {
        tokio::select! {
            // Stopping comes first: a loop told to stop starts nothing more.
            biased;
            changed = stop.changed() => {
                if changed.is_err() || *stop.borrow() {
                    break;
                }
            }
            event = reports.exits.recv() => {
                let Some(event) = event else { break };
                apply_exit(&engine, event).await;
            }
            event = reports.slurm.recv(), if slurm_open => {
                let Some(event) = event else {
                    slurm_open = false;
                    continue;
                };
                let mut events = vec![event];
                while let Ok(more) = reports.slurm.try_recv() {
                    events.push(more);
                }
                apply_slurm(&engine, events).await;
            }
            _ = tick.tick() => {
                let mut engine = engine.lock().await;
                engine.enforce_time_limits().await;
                engine.read_progress_files().await;
                if let Err(error) = engine.schedule_pass().await {
                    tracing::error!(%error, "scheduling pass failed");
                }
            }
        }
    }
    engine.lock().await.stop_starting();
    drain(&engine, &mut reports).await;
}

/// Applies every report already received, without waiting for more.
async fn drain(engine: &Arc<Mutex<Engine>>, reports: &mut Reports) {
    let mut drained = 0;
    while let Ok(event) = reports.exits.try_recv() {
        apply_exit(engine, event).await;
        drained += 1;
    }
    let mut events = Vec::new();
    while let Ok(event) = reports.slurm.try_recv() {
        events.push(event);
    }
    drained += events.len();
    if !events.is_empty() {
        apply_slurm(engine, events).await;
    }
    tracing::info!(drained, "control loop stopped");
}

async fn apply_exit(engine: &Arc<Mutex<Engine>>, event: ExitEvent) {
    if let Err(error) = engine.lock().await.on_exit(event).await {
        tracing::error!(%error, job = event.job_id, "failed to record a run's end");
    }
}

async fn apply_slurm(engine: &Arc<Mutex<Engine>>, events: Vec<SlurmEvent>) {
    if let Err(error) = engine.lock().await.on_slurm_events(events).await {
        tracing::error!(%error, "failed to apply a Slurm report");
    }
}
