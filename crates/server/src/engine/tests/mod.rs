//! Unit tests of the engine on a hand-moved clock with a fake executor: nothing sleeps, and every
//! run's start, stop and end is decided by the test.

mod batch;
mod control;
mod forecast;
mod lifecycle;
mod metrics;
mod recovery;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Engine, ManualClock};
use crate::devices::DeviceGroup;
use crate::executor::{Adopted, ExecError, Executor, ExitEvent, Launch};
use crate::store::{JobRecord, JobSpec, JobState, NewAuditEvent, RunSpec, SqlStore, Store};

/// The time the tests' clock starts at (2026-01-01T00:00:00Z).
const T0_S: i64 = 1_767_225_600;

/// An executor that only records what the engine asked of it.
#[derive(Default)]
struct FakeExecutor {
    started: Mutex<Vec<Launch>>,
    stopped: Mutex<Vec<PathBuf>>,
    /// What `adopt` finds, by job id; `NeverStarted` for any other job.
    adoptions: Mutex<HashMap<i64, Adopted>>,
    /// Makes every `start` fail, as a missing program would.
    refuse_starts: Mutex<bool>,
    /// When set, each `start` looks up its job here and keeps the state it found in
    /// `stored_at_start` (a run must be recorded as running before it starts).
    store: Mutex<Option<Arc<dyn Store>>>,
    stored_at_start: Mutex<Vec<JobState>>,
}

impl FakeExecutor {
    fn starts(&self) -> Vec<Launch> {
        self.started.lock().unwrap().clone()
    }

    fn stops(&self) -> Vec<PathBuf> {
        self.stopped.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl Executor for FakeExecutor {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn start(&self, launch: &Launch) -> Result<(), ExecError> {
        if *self.refuse_starts.lock().unwrap() {
            return Err(ExecError::Spawn {
                program: launch.command[0].clone(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let store = self.store.lock().unwrap().clone();
        if let Some(store) = store {
            let job = store.get_job(launch.job_id).await.unwrap().unwrap();
            self.stored_at_start.lock().unwrap().push(job.state);
        }
        self.started.lock().unwrap().push(launch.clone());
        Ok(())
    }

    async fn adopt(&self, job_id: i64, _attempt: u32, _run_dir: &Path) -> Adopted {
        let adoptions = self.adoptions.lock().unwrap();
        adoptions
            .get(&job_id)
            .copied()
            .unwrap_or(Adopted::NeverStarted)
    }

    async fn stop(&self, run_dir: &Path, _grace: Duration) {
        self.stopped.lock().unwrap().push(run_dir.to_path_buf());
    }
}

/// An engine, its fake executor and clock, over `store`.
struct Rig {
    engine: Engine,
    executor: Arc<FakeExecutor>,
    clock: Arc<ManualClock>,
    store: Arc<dyn Store>,
}

/// A fresh in-memory SQLite store.
async fn memory_store() -> Arc<dyn Store> {
    Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap())
}

impl Rig {
    /// An engine over one pool of `count` `h100` devices with `policy`, on a new store.
    async fn new(policy: &str, count: u32) -> Rig {
        Rig::over(memory_store().await, policy, count, Arc::default()).await
    }

    /// An engine over `store` that has recovered from it with `executor`.
    async fn over(
        store: Arc<dyn Store>,
        policy: &str,
        count: u32,
        executor: Arc<FakeExecutor>,
    ) -> Rig {
        let devices = [DeviceGroup {
            accelerator: "h100".into(),
            count,
        }];
        let mut engine = Engine::new(
            store.clone(),
            executor.clone(),
            &devices,
            "node-a",
            policy,
            Path::new("/nonexistent/suanli-engine-tests"),
        )
        .unwrap();
        let clock = Arc::new(ManualClock::new(T0_S));
        engine.set_clock(clock.clone());
        engine.recover().await.unwrap();
        Rig {
            engine,
            executor,
            clock,
            store,
        }
    }

    async fn submit(&mut self, tenant: &str, gpus: u32) -> JobRecord {
        self.engine
            .submit(spec(tenant, gpus), &audit("POST /api/v1/jobs"))
            .await
            .unwrap()
    }

    /// The job as stored.
    async fn job(&self, id: i64) -> JobRecord {
        self.store.get_job(id).await.unwrap().unwrap()
    }

    /// The executor reports that attempt `attempt` of job `id` exited with `code`.
    async fn exit(&mut self, id: i64, attempt: u32, code: i32) {
        let event = ExitEvent {
            job_id: id,
            attempt,
            exit_code: code,
        };
        self.engine.on_exit(event).await.unwrap();
    }

    /// Free devices of the one pool.
    fn free(&self) -> usize {
        self.engine.pools[0].free.len()
    }
}

/// A one-process job of `tenant` on `gpus` devices.
fn spec(tenant: &str, gpus: u32) -> JobSpec {
    JobSpec {
        name: format!("{tenant}-{gpus}"),
        tenant: tenant.into(),
        user: "alice".into(),
        run: RunSpec {
            command: vec!["train".into()],
            ..RunSpec::default()
        },
        gpus,
        processes: 1,
        goal: None,
    }
}

fn audit(action: &str) -> NewAuditEvent {
    NewAuditEvent {
        at_ms: T0_S * 1000,
        actor: "alice".into(),
        action: action.into(),
        target: "/api/v1/jobs".into(),
        outcome: "200".into(),
    }
}

fn assert_state(job: &JobRecord, state: JobState) {
    assert_eq!(job.state, state, "job {}: {}", job.id, job.reason);
}
