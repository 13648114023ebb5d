//! Warm spares: spares released onto a node set *before* suanli places a run there, so that
//! Slurm starts one the moment GPUs of that set free up, as plain Slurm starts the next queued
//! job, while suanli is still noticing the end and placing the next run. A warm spare that
//! Slurm has started waits (`WAIT_CHECKS` x 50 ms) for a run to be bound to it; binding is then
//! a file write, with no request to Slurm on the start path. Suanli's own state is unchanged:
//! a run is placed only on GPUs suanli sees free, and recorded as running before it is bound.
//!
//! Who gets a warm spare is decided by renames, each of which only one side can win:
//! - the executor claims it (`warm-<id>` -> `claimed-<id>`) after writing the binding;
//! - the spare gives up when nothing claimed it in time (`rm warm-<id>`) and exits;
//! - the spare takes its binding by creating `taken-<id>` (`set -C`: an exclusive create, a
//!   shell built-in, so no `mv` process per run) and runs the run's script in its own shell
//!   (`.`, no second `sh`);
//! - a restarted server revokes a binding not yet taken by creating `taken-<id>` itself, whole,
//!   with `revoked` in it (a hard link of a file written beforehand): that run never ran and
//!   is run again; any other `taken-<id>` (also an empty one, being written) says it did.
//!
//! Warm releases carry `Nice=100`, so a run released the ordinary way onto the same GPUs goes
//! first. A warm spare that starts on GPUs suanli gives to a run of another shape holds them
//! until it gives up (at most `WAIT_CHECKS` x 50 ms); they are kept only while jobs are queued.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::super::script::shell_quote;
use super::super::submit::write_atomic;
use super::{Key, SlurmError, Spares};

/// Checks, 50 ms apart, a started warm spare makes for a run before it gives its GPUs back (3 s:
/// suanli places the next run 0.1-0.5 s after an end on this host, see docs/slurm.md).
const WAIT_CHECKS: u32 = 60;

/// Checks a claimed spare makes for its binding, which follows the claim at once unless the
/// server died in between (then the restarted server cancels it).
const CLAIMED_CHECKS: u32 = 1200;

/// What a restarted server writes into `taken-<id>` to revoke a binding the spare has not taken.
const REVOKED: &str = "revoked\n";

/// A node set (`n1,n2`) and an allocation shape.
pub(super) type Set = (String, Key);

/// The script of every spare: run the bound run, wait for one while warm, else nothing.
pub(super) fn script(dir: &Path) -> String {
    format!(
        r#"#!/bin/sh
# A suanli spare: runs the run suanli bound to it, else nothing (see slurm/spares/warm.rs).
d={dir}
id=${{SLURM_ARRAY_JOB_ID}}_$SLURM_ARRAY_TASK_ID
b="$d/bound-$id"; t="$d/taken-$id"; w="$d/warm-$id"; c="$d/claimed-$id"
n=0
set -C
until [ -e "$b" ] && {{ echo taken > "$t"; }} 2>/dev/null; do
  [ -e "$t" ] && exit 0
  if [ -e "$c" ]; then
    [ $n -lt {CLAIMED_CHECKS} ] || exit 0
  elif [ $n -ge {WAIT_CHECKS} ] || ! [ -e "$w" ]; then
    rm "$w" 2>/dev/null || ! [ -e "$c" ] && exit 0
  fi
  n=$((n + 1))
  sleep 0.05
done
set +C
IFS= read -r s < "$b"
. "$s"
"#,
        dir = shell_quote(&dir.display().to_string())
    )
}

impl Spares {
    fn file(&self, what: &str, id: &str) -> PathBuf {
        self.dir.join(format!("{what}-{id}"))
    }

    /// Binds a warm spare of `set` to the run whose script is `script`: its id goes to
    /// `id_file` first, then the binding, then the claim. Returns the spare's id; `None` when
    /// no warm spare of `set` is left (the run then takes the ordinary path).
    pub(in crate::slurm) fn claim_warm(
        &self,
        set: &Set,
        script: &Path,
        id_file: &Path,
    ) -> Option<String> {
        loop {
            let id = self.warm.lock().expect("spares lock").get_mut(set)?.pop()?;
            let binding = self.binding(&id);
            let bound = write_atomic(id_file, &id)
                .and_then(|()| write_atomic(&binding, &script.display().to_string()));
            if bound.is_ok()
                && std::fs::rename(self.file("warm", &id), self.file("claimed", &id)).is_ok()
            {
                return Some(id);
            }
            // It gave up (and exits without looking again), or a file could not be written.
            let _ = std::fs::remove_file(&binding);
            let _ = std::fs::remove_file(id_file);
        }
    }

    /// Keeps `config.warm_spares` warm spares of `set` released onto its nodes (`exclude`: the pool's
    /// other nodes), taken from the ready spares of its shape.
    pub(in crate::slurm) fn warm_up(self: &Arc<Self>, set: &Set, exclude: &str) {
        if self.config.spares == 0 || self.config.warm_spares == 0 {
            return;
        }
        let have = self
            .warm
            .lock()
            .expect("spares lock")
            .get(set)
            .map_or(0, Vec::len);
        let wanted = {
            let mut warming = self.warming.lock().expect("spares lock");
            let on_way = warming.entry(set.clone()).or_default();
            let wanted = self.config.warm_spares.saturating_sub(have + *on_way);
            *on_way += wanted;
            wanted
        };
        let generation = self.cooled.load(Ordering::SeqCst);
        for _ in 0..wanted {
            let taken = self.take(&set.1);
            let (spares, set, exclude) = (self.clone(), set.clone(), exclude.to_string());
            tokio::spawn(async move {
                if let Some(id) = taken
                    && spares.release_warm(&id, &exclude).await.is_ok()
                {
                    spares
                        .warm
                        .lock()
                        .expect("spares lock")
                        .entry(set.clone())
                        .or_default()
                        .push(id);
                    // Cooled down while it was being released: given back too.
                    if spares.cooled.load(Ordering::SeqCst) != generation {
                        spares.cool_down();
                    }
                }
                if let Some(count) = spares.warming.lock().expect("spares lock").get_mut(&set) {
                    *count = count.saturating_sub(1);
                }
            });
        }
    }

    /// Releases spare `id` warm: marked warm first (Slurm may start it at once), then one
    /// update. On failure it is cancelled.
    async fn release_warm(&self, id: &str, exclude: &str) -> Result<(), SlurmError> {
        let warm = self.file("warm", id);
        write_atomic(&warm, "").map_err(|e| SlurmError::Failed {
            program: "warm spare".into(),
            stderr: e.to_string(),
        })?;
        let mut args = vec![
            "update".to_string(),
            format!("JobId={id}"),
            "StartTime=now".into(),
            "Nice=100".into(),
        ];
        if !exclude.is_empty() {
            args.push(format!("ExcNodeList={exclude}"));
        }
        let released = self.session().run(&args).await;
        if let Err(error) = &released {
            tracing::warn!(spare = %id, %error, "warm release refused");
            let _ = std::fs::remove_file(&warm);
            self.cancel(id);
        }
        released
    }

    /// Gives back every unclaimed warm spare (no job is queued any more, or the server stops):
    /// one a run claims meanwhile keeps its claim.
    pub(in crate::slurm) fn cool_down(&self) {
        self.cooled.fetch_add(1, Ordering::SeqCst);
        let ids: Vec<String> = {
            let mut warm = self.warm.lock().expect("spares lock");
            warm.drain().flat_map(|(_, ids)| ids).collect()
        };
        let unclaimed: Vec<String> = ids
            .into_iter()
            .filter(|id| std::fs::remove_file(self.file("warm", id)).is_ok())
            .collect();
        if !unclaimed.is_empty() {
            self.cancel_many(unclaimed);
        }
    }

    /// Whether spare `id`, bound to a run, took its binding (so it runs or ran the run). If not,
    /// the binding is revoked first, so it never will: `taken-<id>` is created here, whole, with
    /// [`REVOKED`] in it, unless the spare created it first.
    pub(in crate::slurm) fn took_binding(&self, id: &str) -> bool {
        let taken = self.file("taken", id);
        let revoking = self.file("revoking", id);
        let revoked =
            std::fs::write(&revoking, REVOKED).and_then(|()| std::fs::hard_link(&revoking, &taken));
        let _ = std::fs::remove_file(&revoking);
        if revoked.is_ok() {
            let _ = std::fs::remove_file(self.binding(id));
            return false;
        }
        // The spare's word (possibly still empty: it is being written), or an earlier revocation.
        std::fs::read_to_string(&taken).is_ok_and(|text| text != REVOKED)
    }

    /// Forgets spare `id` once the run it took has ended: its binding, its claim and its taking
    /// (the spare leaves them, which saves processes on every start).
    pub(in crate::slurm) fn forget(&self, id: &str) {
        for what in ["taken", "claimed", "bound"] {
            let _ = std::fs::remove_file(self.file(what, id));
        }
    }

    /// Warm spares of `set` released and not claimed.
    #[cfg(test)]
    pub(in crate::slurm) fn warm_count(&self, set: &Set) -> usize {
        self.warm
            .lock()
            .expect("spares lock")
            .get(set)
            .map_or(0, Vec::len)
    }
}

#[cfg(test)]
mod tests {
    //! The spare script run by `sh` as Slurm would run it (its array ids in the environment),
    //! and warm releases against a stand-in `scontrol`.

    use std::process::{Child, Command};
    use std::time::{Duration, Instant};

    use super::super::super::{SlurmConfig, submit::tests::bin_dir_with};
    use super::*;

    fn spares(bin: &Path) -> Arc<Spares> {
        let mut config = SlurmConfig::new("test");
        config.bin_dir = Some(bin.to_path_buf());
        let spares = Spares::new(config, bin.join("spares"), "spare".into()).unwrap();
        Arc::new(spares)
    }

    /// The spare script of task `task` of array 5, started as Slurm would start it.
    fn start(dir: &Path, task: u32) -> Child {
        Command::new("sh")
            .arg(dir.join("spare.sh"))
            .env("SLURM_ARRAY_JOB_ID", "5")
            .env("SLURM_ARRAY_TASK_ID", task.to_string())
            .spawn()
            .unwrap()
    }

    /// A run's script that notes each time it runs.
    fn run_script(dir: &Path, task: u32) -> PathBuf {
        let path = dir.join(format!("run-{task}.sh"));
        let note = dir.join(format!("ran-{task}"));
        std::fs::write(&path, format!("echo ran >> '{}'\n", note.display())).unwrap();
        path
    }

    fn wait(child: &mut Child, within: Duration) -> Duration {
        let started = Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                return started.elapsed();
            }
            assert!(started.elapsed() < within, "spare script still waiting");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn ran(dir: &Path, task: u32) -> String {
        std::fs::read_to_string(dir.join(format!("ran-{task}"))).unwrap_or_default()
    }

    #[tokio::test]
    async fn a_warm_spare_runs_the_run_claimed_after_it_started_once_and_only_that() {
        let bin = bin_dir_with("echo 900", "true");
        let spares = spares(&bin);
        let dir = bin.join("spares");
        let set: Set = ("n1".into(), vec!["--nodes=1".into()]);
        // 0: warm, claimed once it waits; 1: warm, never claimed; 2: cold without a binding;
        // 3: cold, its binding revoked by a restarted server before it started.
        for task in [0, 1] {
            std::fs::write(spares.file("warm", &format!("5_{task}")), "").unwrap();
        }
        let script3 = run_script(&dir, 3);
        std::fs::write(spares.binding("5_3"), script3.display().to_string()).unwrap();
        assert!(!spares.took_binding("5_3"), "revoked before it started");
        assert!(
            !spares.took_binding("5_3"),
            "and still revoked when asked again"
        );
        assert!(!spares.binding("5_3").exists());
        let mut children: Vec<Child> = (0..4).map(|task| start(&dir, task)).collect();
        std::thread::sleep(Duration::from_millis(300));
        spares
            .warm
            .lock()
            .unwrap()
            .insert(set.clone(), vec!["5_0".into()]);
        let id_file = bin.join("slurm-job-id");
        let claimed = spares.claim_warm(&set, &run_script(&dir, 0), &id_file);
        assert_eq!(claimed.as_deref(), Some("5_0"));
        assert_eq!(std::fs::read_to_string(&id_file).unwrap(), "5_0");
        wait(&mut children[0], Duration::from_secs(5));
        assert_eq!(ran(&dir, 0), "ran\n");
        assert!(spares.took_binding("5_0"), "a restarted server sees it ran");
        spares.forget("5_0");
        assert!(!spares.file("claimed", "5_0").exists());
        assert!(!spares.file("taken", "5_0").exists());
        assert!(!spares.binding("5_0").exists());
        // Cold spares without a binding end at once, and run nothing.
        for task in [2, 3] {
            assert!(wait(&mut children[task], Duration::from_secs(2)) < Duration::from_secs(2));
            assert_eq!(ran(&dir, task as u32), "");
        }
        // Unclaimed, it gives its GPUs back after its wait; a claim then fails cleanly.
        let waited = wait(&mut children[1], Duration::from_secs(10));
        assert!(waited > Duration::from_secs(2), "{waited:?}");
        spares
            .warm
            .lock()
            .unwrap()
            .insert(set.clone(), vec!["5_1".into()]);
        let late = bin.join("late-id");
        assert_eq!(spares.claim_warm(&set, &run_script(&dir, 1), &late), None);
        assert!(!late.exists() && !spares.binding("5_1").exists());
        assert_eq!(ran(&dir, 1), "");
    }

    #[tokio::test]
    async fn warm_spares_are_released_niced_onto_the_set_and_given_back_when_the_queue_empties() {
        let bin = bin_dir_with("echo 900", "true");
        let spares = spares(&bin);
        let key = vec!["--nodes=1".to_string()];
        let set: Set = ("n1".into(), key.clone());
        // None ready yet: the first call only has an array submitted.
        spares.warm_up(&set, "n2,n3");
        let deadline = Instant::now() + Duration::from_secs(10);
        while spares
            .ready
            .lock()
            .unwrap()
            .get(&key)
            .is_none_or(Vec::is_empty)
        {
            assert!(Instant::now() < deadline, "spares never submitted");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        spares.warm_up(&set, "n2,n3");
        while spares.warm_count(&set) < 2 {
            assert!(Instant::now() < deadline, "never warm");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let log = std::fs::read_to_string(bin.join("scontrol.log")).unwrap();
        let updates: Vec<&str> = log.lines().collect();
        assert_eq!(updates.len(), 2, "{log}");
        for update in updates {
            assert!(
                update.starts_with("scontrol update JobId=900_")
                    && update.ends_with(" StartTime=now Nice=100 ExcNodeList=n2,n3"),
                "{update}"
            );
        }
        let warm: Vec<String> = spares.warm.lock().unwrap()[&set].clone();
        assert!(warm.iter().all(|id| spares.file("warm", id).exists()));
        spares.cool_down();
        assert_eq!(spares.warm_count(&set), 0);
        assert!(warm.iter().all(|id| !spares.file("warm", id).exists()));
        while !std::fs::read_to_string(bin.join("scancel.log"))
            .unwrap_or_default()
            .contains(&warm[1])
        {
            assert!(Instant::now() < deadline, "never cancelled");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let cancelled = std::fs::read_to_string(bin.join("scancel.log")).unwrap();
        assert_eq!(cancelled.trim(), format!("scancel {}", warm.join(" ")));
    }
}
