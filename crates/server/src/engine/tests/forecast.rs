//! Forecasts against what the engine then does: a job's predicted start behind a queue, and the
//! start it gets when it is submitted and every run ends when it said it would.

use super::*;
use crate::engine::{Clock, forecast};

/// A job of `gpus` that says it runs `expected_s`.
fn timed(tenant: &str, gpus: u32, expected_s: u64) -> JobSpec {
    let mut spec = spec(tenant, gpus);
    spec.run.expected_s = Some(expected_s);
    spec
}

/// Moves the clock a second at a time, ending each run when its expected time is up and running
/// a pass (as the control loop's tick does), until job `id` runs; returns its start.
async fn run_until_started(rig: &mut Rig, id: i64, horizon_s: i64) -> i64 {
    for _ in 0..horizon_s {
        let job = rig.job(id).await;
        if job.state == JobState::Running {
            return job.run.unwrap().started_at_s;
        }
        rig.clock.advance_s(1);
        let now = rig.clock.now_s();
        let ended: Vec<(i64, u32)> = rig
            .engine
            .active_jobs()
            .filter_map(|j| {
                let run = j.run.as_ref()?;
                let expected = j.spec.run.expected_s? as i64;
                (j.state == JobState::Running && now - run.started_at_s >= expected)
                    .then_some((j.id, run.attempt))
            })
            .collect();
        for (job, attempt) in ended {
            rig.exit(job, attempt, 0).await;
        }
        rig.engine.schedule_pass().await.unwrap();
    }
    panic!("job {id} did not start within {horizon_s} s");
}

#[tokio::test]
async fn the_forecast_start_is_the_start_the_engine_gives() {
    // Non-preemptive policies: the forecast replays the same decisions the engine makes.
    for policy in ["fifo", "backfill", "sjf", "fair"] {
        let mut rig = Rig::new(policy, 8).await;
        for spec in [
            timed("a", 4, 100),
            timed("a", 4, 40),
            timed("b", 8, 50),
            timed("a", 4, 30),
        ] {
            rig.engine
                .submit(spec, &audit("POST /api/v1/jobs"))
                .await
                .unwrap();
        }
        rig.clock.advance_s(7);
        rig.engine.schedule_pass().await.unwrap();
        let candidate = forecast::candidate("b", "h100", 4, 20);
        let predicted = rig.engine.snapshot().start_of(&candidate).unwrap() as i64;
        // The queue holds it back: it cannot start now.
        assert!(predicted > T0_S + 7, "{policy}: {predicted}");
        let job = rig
            .engine
            .submit(timed("b", 4, 20), &audit("POST /api/v1/jobs"))
            .await
            .unwrap();
        let started = run_until_started(&mut rig, job.id, 1000).await;
        assert_eq!(
            started,
            predicted,
            "{policy}: predicted {} s after T0, started {} s after",
            predicted - T0_S,
            started - T0_S
        );
    }
}

#[tokio::test]
async fn a_job_of_unknown_length_ahead_is_named() {
    let mut rig = Rig::new("fifo", 8).await;
    let open_ended = rig.submit("a", 8).await;
    let candidate = forecast::candidate("a", "h100", 8, 20);
    let error = rig.engine.snapshot().start_of(&candidate).unwrap_err();
    assert_eq!(error, forecast::ForecastError::UnknownLength(open_ended.id));
}

#[tokio::test]
async fn a_quota_holds_the_forecast_job_until_the_tenants_own_job_ends() {
    let mut rig = Rig::new("fifo", 16).await;
    let quota = crate::store::Quota {
        tenant: "a".into(),
        accelerator: "h100".into(),
        limit: 8,
    };
    rig.store.set_quota(&quota).await.unwrap();
    rig.engine.reload_quotas().await.unwrap();
    rig.engine
        .submit(timed("a", 8, 60), &audit("POST /api/v1/jobs"))
        .await
        .unwrap();
    // Eight devices are free, but the tenant's quota is used until its job ends at T0 + 60.
    let candidate = forecast::candidate("a", "h100", 4, 20);
    let predicted = rig.engine.snapshot().start_of(&candidate).unwrap() as i64;
    assert_eq!(predicted, T0_S + 60);
    let other = forecast::candidate("b", "h100", 4, 20);
    assert_eq!(rig.engine.snapshot().start_of(&other).unwrap() as i64, T0_S);
}

#[tokio::test]
async fn a_progress_file_is_read_into_the_goal() {
    let mut rig = Rig::new("fifo", 8).await;
    let mut goal_spec = spec("a", 8);
    goal_spec.goal = Some(crate::engine::goal::goal_from(
        &crate::engine::goal::GoalRequest {
            model: "m".into(),
            tokens: 1e6,
            deadline_s: None,
            budget_usd: None,
            seq_len: None,
            framework: None,
        },
        "m",
    ));
    let job = rig
        .engine
        .submit(goal_spec, &audit("POST /api/v1/jobs"))
        .await
        .unwrap();
    assert_state(&job, JobState::Running);
    let launch = &rig.executor.starts()[0];
    let path = PathBuf::from(&launch.env["SUANLI_PROGRESS_FILE"]);
    assert_eq!(rig.engine.progress_files.get(&job.id), Some(&path));
    // The rig's run directories do not exist: point the job at a file that does.
    let file = std::env::temp_dir().join(format!("suanli-progress-{}", std::process::id()));
    std::fs::write(&file, "250000\n").unwrap();
    rig.engine.progress_files.insert(job.id, file.clone());
    rig.engine.read_progress_files().await;
    let stored = rig.job(job.id).await;
    let progress = stored.spec.goal.unwrap().progress.unwrap();
    assert_eq!(progress.tokens, 250_000.0);
    std::fs::remove_file(file).unwrap();
}
