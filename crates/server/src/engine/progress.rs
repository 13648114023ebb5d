//! Progress of goal jobs: a running job reports the tokens it has trained (`suanli progress
//! --tokens N`, through the API or the file named by `SUANLI_PROGRESS_FILE`), and its predicted
//! finish becomes the report's time plus the remaining tokens at the rate measured since the
//! run's first report (the plan's rate until there are two reports).

use super::{Engine, EngineError};
use crate::store::{Goal, JobRecord, JobState, NewAuditEvent, Progress};

/// Largest progress file read (a number and a newline need far less).
const PROGRESS_FILE_BYTES: u64 = 256;

/// The progress after a report of `tokens` at `at_s` in run `attempt`, with `planned_rate` the
/// plan's tokens/s for the run's type.
pub fn next_progress(
    goal: &Goal,
    tokens: f64,
    at_s: i64,
    attempt: u32,
    planned_rate: f64,
) -> Progress {
    let (first_tokens, first_at_s) = match &goal.progress {
        Some(p) if p.attempt == attempt => (p.first_tokens, p.first_at_s),
        _ => (tokens, at_s),
    };
    let measured = (at_s > first_at_s && tokens > first_tokens)
        .then(|| (tokens - first_tokens) / (at_s - first_at_s) as f64);
    let rate = measured.unwrap_or(planned_rate);
    let remaining = (goal.tokens - tokens).max(0.0);
    let left_s = if rate > 0.0 {
        (remaining / rate).ceil()
    } else {
        0.0
    };
    Progress {
        tokens,
        at_s,
        first_tokens,
        first_at_s,
        attempt,
        tokens_per_s: rate,
        predicted_finish_s: at_s + left_s.min(1e15) as i64,
    }
}

impl Engine {
    /// Records that running goal job `id` has trained `tokens` tokens (with the request's audit
    /// entry when given) and updates its predicted finish.
    pub async fn report_progress(
        &mut self,
        id: i64,
        tokens: f64,
        audit: Option<&NewAuditEvent>,
    ) -> Result<JobRecord, EngineError> {
        if !(tokens.is_finite() && tokens >= 0.0) {
            return Err(EngineError::Rejected(format!(
                "tokens must be a number of at least 0, not {tokens}"
            )));
        }
        let Some(mut job) = self.active.get(&id).cloned() else {
            return Err(EngineError::WrongState(format!(
                "job {id} is not running; progress is reported by running goal jobs"
            )));
        };
        let (Some(run), JobState::Running) = (job.run.clone(), job.state) else {
            return Err(EngineError::WrongState(format!(
                "job {id} is {}; progress is reported by running goal jobs",
                job.state.as_str()
            )));
        };
        let now = self.now_s();
        let Some(goal) = job.spec.goal.as_mut() else {
            return Err(EngineError::Rejected(format!(
                "job {id} has no goal; submit it with --goal model=...,tokens=... to report progress"
            )));
        };
        let planned = goal
            .tokens_per_s
            .get(&run.accelerator)
            .copied()
            .unwrap_or(0.0);
        goal.progress = Some(next_progress(goal, tokens, now, run.attempt, planned));
        self.save_audited(job.clone(), audit).await?;
        Ok(job)
    }

    /// Reads the progress file of every running goal job (on the control loop's tick) and
    /// records a changed value.
    pub async fn read_progress_files(&mut self) {
        let files: Vec<(i64, std::path::PathBuf)> = self
            .progress_files
            .iter()
            .map(|(id, path)| (*id, path.clone()))
            .collect();
        for (id, path) in files {
            let Some(job) = self.active.get(&id) else {
                self.progress_files.remove(&id);
                continue;
            };
            if job.state != JobState::Running {
                continue;
            }
            let Some(tokens) = read_tokens(&path).await else {
                continue;
            };
            let known = job
                .spec
                .goal
                .as_ref()
                .and_then(|g| g.progress.as_ref())
                .filter(|p| job.run.as_ref().is_some_and(|r| r.attempt == p.attempt))
                .map(|p| p.tokens);
            if known != Some(tokens)
                && let Err(error) = self.report_progress(id, tokens, None).await
            {
                tracing::warn!(job = id, %error, "progress file not recorded");
            }
        }
    }

    /// Where a run of job `id` writes its progress, under its working directory.
    pub(super) fn progress_file(
        &mut self,
        id: i64,
        work_dir: &std::path::Path,
    ) -> Option<std::path::PathBuf> {
        let job = self.active.get(&id)?;
        job.spec.goal.as_ref()?;
        // Absolute: the job runs in its working directory, which a relative data directory
        // would otherwise be resolved against twice.
        let path = std::path::absolute(work_dir.join("suanli-progress")).ok()?;
        self.progress_files.insert(id, path.clone());
        Some(path)
    }
}

/// The token count in a progress file: one number, e.g. `123456789` or `1.2e9`.
async fn read_tokens(path: &std::path::Path) -> Option<f64> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await.ok()?;
    let mut text = String::new();
    file.take(PROGRESS_FILE_BYTES)
        .read_to_string(&mut text)
        .await
        .ok()?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|t| t.is_finite() && *t >= 0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn goal(tokens: f64) -> Goal {
        crate::engine::goal::goal_from(
            &crate::engine::goal::GoalRequest {
                model: "m".into(),
                tokens,
                deadline_s: None,
                budget_usd: None,
                seq_len: None,
                framework: None,
            },
            "m",
        )
    }

    #[test]
    fn the_finish_follows_the_measured_rate_once_there_are_two_reports() {
        let mut g = goal(1000.0);
        // First report: the plan's 10 tokens/s, 900 tokens left -> 90 s.
        let first = next_progress(&g, 100.0, 1_000, 0, 10.0);
        assert_eq!(first.predicted_finish_s, 1_090);
        g.progress = Some(first);
        // 300 tokens in 10 s: 30 tokens/s measured, 600 left -> 20 s.
        let second = next_progress(&g, 400.0, 1_010, 0, 10.0);
        assert_eq!(second.tokens_per_s, 30.0);
        assert_eq!(second.predicted_finish_s, 1_030);
        g.progress = Some(second);
        // A new run starts measuring again from its own first report.
        let restarted = next_progress(&g, 400.0, 2_000, 1, 10.0);
        assert_eq!(
            (restarted.first_at_s, restarted.tokens_per_s),
            (2_000, 10.0)
        );
        assert_eq!(restarted.predicted_finish_s, 2_060);
    }
}
