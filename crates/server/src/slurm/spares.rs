//! Spares: Slurm jobs submitted ahead of placement, so `sbatch` is off the path from a run's
//! placement to its start. A spare has a run's allocation shape (nodes, tasks per node, GPUs per
//! node) and no nodes; spares are submitted as the tasks of one job array (one `sbatch`, one
//! request to slurmctld for many) with a start time a day ahead (`--begin`), so Slurm keeps them
//! pending (`BeginTime`) without allocating anything. When suanli places a run of that shape,
//! one `scontrol update JobId=<array>_<task> JobName=<run> StartTime=now ExcNodeList=<the pool's
//! other nodes>` renames, pins and releases one task in one request (slurmctld splits it off its
//! array), and its batch script runs the run's own script, which `bound-<array>_<task>` in the
//! spares directory names. A run costs slurmctld that one update, as a plain job costs one
//! `sbatch`.
//!
//! Pinning excludes the pool's other nodes rather than naming the run's (`NodeList=`): with
//! `NodeList` scontrol 22.05 first asks slurmctld for the federation and for the job (three
//! requests per release, measured with `sdiag`), with `ExcNodeList` it sends the update alone.
//! The spare asks for exactly as many nodes (`--nodes`) as the run's nodes, which are the only
//! nodes of its GPU type not excluded, so Slurm can start it on those and no others.
//!
//! The rename and the release are one update, so a spare still named as a spare has not run
//! anything: a server that died between binding and the update removes the binding (the spare
//! then runs nothing even if Slurm ever starts it) and runs the run again. A new server cancels
//! the pending spares of an earlier one (`scancel --name`). A spare that fails to bind (Slurm
//! forgot it, the update was refused) is cancelled and the run goes through `sbatch`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::session::Session;
use super::{SlurmConfig, SlurmError, command, parse};

mod warm;

use warm::Set;

/// How far ahead a spare's start time is: Slurm never starts it unless suanli releases it.
const BEGIN_AHEAD: &str = "now+1day";

/// Spares older than this are cancelled rather than used (they would begin on their own soon).
const MAX_AGE: Duration = Duration::from_secs(20 * 3600);

/// `sbatch` processes submitting spares at once (runs' own submissions have their own slots).
const PARALLEL_SPARE_SUBMITS: usize = 4;

/// Spares of a shape are submitted when fewer than this share of `config.spares` are ready or
/// on their way, all missing ones in one array: one `sbatch` per half of `config.spares` runs.
const REFILL_BELOW: usize = 2;

/// Long-lived `scontrol` sessions releasing spares.
const SESSIONS: usize = 4;

/// The allocation of a run, as `sbatch` arguments (`--nodes`, `--ntasks-per-node`, `--gres`):
/// runs and spares of the same key are interchangeable.
pub(super) type Key = Vec<String>;

/// Spares of one cluster.
pub(super) struct Spares {
    config: SlurmConfig,
    /// Where the spare script, the bindings and the spares' Slurm log are.
    dir: PathBuf,
    /// Name of every spare of this server (`suanli-<tag>-spare`).
    name: String,
    /// Submitted spares by key (`<array>_<task>`), with when.
    ready: Mutex<HashMap<Key, Vec<(String, Instant)>>>,
    /// Spares released warm onto a node set and not yet claimed (see `warm`).
    warm: Mutex<HashMap<Set, Vec<String>>>,
    /// Warm releases under way, by set.
    warming: Mutex<HashMap<Set, usize>>,
    /// How many times warm spares were given back (a release under way then gives its spare
    /// back too).
    cooled: std::sync::atomic::AtomicU64,
    /// Spares being submitted, by key.
    submitting: Mutex<HashMap<Key, usize>>,
    slots: Arc<Semaphore>,
    /// Releases go through a few long-lived `scontrol`s (slurmctld answers several at once).
    sessions: Vec<Session>,
    next_session: std::sync::atomic::AtomicUsize,
}

impl Spares {
    /// Spares for `config`'s cluster in `dir` (created, with the spare script), named `name`.
    pub(super) fn new(config: SlurmConfig, dir: PathBuf, name: String) -> std::io::Result<Spares> {
        std::fs::create_dir_all(&dir)?;
        super::submit::write_atomic(&dir.join("spare.sh"), &warm::script(&dir))?;
        // For people and tests: `scancel --name=$(cat name)` removes them.
        super::submit::write_atomic(&dir.join("name"), &name)?;
        Ok(Spares {
            dir,
            name,
            ready: Mutex::default(),
            warm: Mutex::default(),
            warming: Mutex::default(),
            cooled: Default::default(),
            submitting: Mutex::default(),
            slots: Arc::new(Semaphore::new(PARALLEL_SPARE_SUBMITS)),
            sessions: (0..SESSIONS)
                .map(|_| Session::new(config.clone()))
                .collect(),
            next_session: Default::default(),
            config,
        })
    }

    /// The file binding spare `id` (`<array>_<task>`) to a run's script.
    pub(super) fn binding(&self, id: &str) -> PathBuf {
        self.dir.join(format!("bound-{id}"))
    }

    /// Whether a Slurm job name is one of this server's spares.
    pub(super) fn is_spare(&self, job_name: &str) -> bool {
        job_name == self.name
    }

    /// Cancels every pending spare of this data directory's servers: at start the ones an
    /// earlier server left, at shutdown this one's.
    pub(super) async fn cancel_all(&self) {
        self.ready.lock().expect("spares lock").clear();
        self.cool_down();
        let args = [format!("--name={}", self.name), "--state=PENDING".into()];
        if let Err(error) = command(&self.config, "scancel", &args).await {
            tracing::warn!(cluster = %self.config.label, %error, "cannot cancel spares");
        }
    }

    /// Takes a spare of `key`, if one is ready, and submits more so that `config.spares` are
    /// ready or on their way.
    pub(super) fn take(self: &Arc<Self>, key: &Key) -> Option<String> {
        if self.config.spares == 0 {
            return None;
        }
        let mut stale = Vec::new();
        let taken = {
            let mut ready = self.ready.lock().expect("spares lock");
            let list = ready.entry(key.clone()).or_default();
            stale.extend(
                list.iter()
                    .filter(|(_, at)| at.elapsed() > MAX_AGE)
                    .map(|(id, _)| id.clone()),
            );
            list.retain(|(_, at)| at.elapsed() <= MAX_AGE);
            list.pop().map(|(id, _)| id)
        };
        for id in stale {
            self.cancel(&id);
        }
        self.refill(key);
        taken
    }

    /// Once fewer than half of `config.spares` of `key` are ready or being submitted, submits
    /// the missing ones as one job array.
    fn refill(self: &Arc<Self>, key: &Key) {
        let have = self
            .ready
            .lock()
            .expect("spares lock")
            .get(key)
            .map_or(0, Vec::len);
        let missing = {
            let mut submitting = self.submitting.lock().expect("spares lock");
            let on_way = submitting.entry(key.clone()).or_default();
            if (have + *on_way) * REFILL_BELOW >= self.config.spares {
                return;
            }
            let missing = self.config.spares - (have + *on_way);
            *on_way += missing;
            missing
        };
        let spares = self.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let submitted = match spares.slots.clone().acquire_owned().await {
                Ok(_permit) => spares.submit(&key, missing).await,
                Err(_) => return,
            };
            if let Some(count) = spares.submitting.lock().expect("spares lock").get_mut(&key) {
                *count = count.saturating_sub(missing);
            }
            match submitted {
                Ok(array) => {
                    let now = Instant::now();
                    let tasks = (0..missing).map(|task| (format!("{array}_{task}"), now));
                    let mut ready = spares.ready.lock().expect("spares lock");
                    ready.entry(key).or_default().extend(tasks);
                }
                // The run that needs it goes through `sbatch`; the next take tries again.
                Err(error) => {
                    tracing::warn!(cluster = %spares.config.label, %error, "cannot submit spares")
                }
            }
        });
    }

    /// Submits `count` spares of `key` as one job array; returns the array's id.
    async fn submit(&self, key: &Key, count: usize) -> Result<u64, SlurmError> {
        let mut args = vec![
            "--parsable".to_string(),
            format!("--array=0-{}", count.max(1) - 1),
            format!("--job-name={}", self.name),
            format!("--chdir={}", self.dir.display()),
            format!("--output={}", self.dir.join("log").display()),
            "--open-mode=append".into(),
            "--no-requeue".into(),
            "--export=ALL".into(),
            format!("--begin={BEGIN_AHEAD}"),
            format!("--time={}", self.config.time_limit_min.max(1)),
        ];
        args.extend(key.iter().cloned());
        if let Some(partition) = &self.config.partition {
            args.push(format!("--partition={partition}"));
        }
        if let Some(account) = &self.config.account {
            args.push(format!("--account={account}"));
        }
        args.push(self.dir.join("spare.sh").display().to_string());
        let out = command(&self.config, "sbatch", &args).await?;
        Ok(parse::parse_sbatch(&out)?)
    }

    /// Binds spare `id` to the run whose script is `script` and releases it under `job_name`,
    /// kept off the nodes `exclude` (the pool's nodes other than the run's; empty: none). On
    /// failure the binding is removed and the spare cancelled.
    pub(super) async fn bind(
        &self,
        id: &str,
        script: &Path,
        job_name: &str,
        exclude: &str,
    ) -> Result<(), SlurmError> {
        let binding = self.binding(id);
        super::submit::write_atomic(&binding, &script.display().to_string()).map_err(|e| {
            SlurmError::Failed {
                program: "spare binding".into(),
                stderr: e.to_string(),
            }
        })?;
        let mut args = vec![
            "update".to_string(),
            format!("JobId={id}"),
            format!("JobName={job_name}"),
            "StartTime=now".into(),
        ];
        if !exclude.is_empty() {
            args.push(format!("ExcNodeList={exclude}"));
        }
        let updated = self.session().run(&args).await;
        if updated.is_err() {
            let _ = std::fs::remove_file(&binding);
            self.cancel(id);
        }
        updated
    }

    /// An idle session if there is one, else the next in turn.
    fn session(&self) -> &Session {
        let turn = self
            .next_session
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let n = self.sessions.len();
        (0..n)
            .map(|i| &self.sessions[(turn + i) % n])
            .find(|s| s.is_idle())
            .unwrap_or(&self.sessions[turn % n])
    }

    /// Cancels a spare in the background.
    pub(super) fn cancel(&self, id: &str) {
        self.cancel_many(vec![id.to_string()]);
    }

    /// Cancels spares in the background, with one `scancel`.
    fn cancel_many(&self, ids: Vec<String>) {
        let config = self.config.clone();
        tokio::spawn(async move {
            if let Err(error) = command(&config, "scancel", &ids).await {
                tracing::warn!(spares = %ids.join(","), %error, "cannot cancel spares");
            }
        });
    }
}
