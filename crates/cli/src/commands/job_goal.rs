//! Goal jobs in the CLI: the `--goal model=...,tokens=...[,deadline=...][,budget=...]` spec,
//! `suanli job plan` (a dry run), `suanli progress` and the goal lines of `job show`.

use anyhow::{Context, Result, bail};
use clap::Args;

use suanli_server::api::types::{PlanBody, ProgressBody};
use suanli_server::calendar::{parse_utc, span_text, utc_text};
use suanli_server::engine::goal::{GoalPlan, GoalRequest};
use suanli_server::store::{Goal, GoalOption, JobRecord};

use super::client::{Client, print_json, printable};

/// Parses `model=llama-3.1-8b,tokens=100B,deadline=2026-12-24T00:00Z,budget=20000,seq=4096`.
/// A deadline is a UTC time or a duration from `now_s` (`36h`, `+2d`).
pub fn parse_goal(text: &str, now_s: i64, framework: Option<String>) -> Result<GoalRequest> {
    let mut goal = GoalRequest {
        model: String::new(),
        tokens: 0.0,
        deadline_s: None,
        budget_usd: None,
        seq_len: None,
        framework,
    };
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let Some((key, value)) = part.split_once('=') else {
            bail!("--goal `{part}`: write KEY=VALUE, e.g. model=llama-3.1-8b,tokens=100B");
        };
        let value = value.trim();
        match key.trim() {
            "model" => goal.model = value.to_string(),
            "tokens" => {
                goal.tokens = suanli_catalog::units::parse_count(value)
                    .with_context(|| format!("--goal tokens `{value}`"))?
            }
            "deadline" => goal.deadline_s = Some(parse_deadline(value, now_s)?),
            "budget" => {
                let dollars = value.trim_start_matches('$').replace('_', "");
                goal.budget_usd = Some(
                    dollars
                        .parse::<f64>()
                        .ok()
                        .filter(|b| *b > 0.0)
                        .with_context(|| {
                            format!(
                                "--goal budget `{value}` is not a number of dollars, like 20000"
                            )
                        })?,
                )
            }
            "seq" | "seq_len" => {
                goal.seq_len = Some(value.parse().ok().filter(|s| *s > 0).with_context(|| {
                    format!("--goal seq `{value}` is not a sequence length, like 4096")
                })?)
            }
            other => {
                bail!("--goal: unknown key `{other}`; use model, tokens, deadline, budget or seq")
            }
        }
    }
    if goal.model.is_empty() || goal.tokens <= 0.0 {
        bail!("--goal needs model= and tokens=, e.g. model=llama-3.1-8b,tokens=100B");
    }
    Ok(goal)
}

/// A UTC time (`2026-12-24T00:00Z`) or a duration from now (`36h`, `+2d`).
fn parse_deadline(value: &str, now_s: i64) -> Result<i64> {
    if let Ok(duration) =
        suanli_catalog::units::parse_duration_whole_s(value.trim_start_matches('+'))
    {
        return Ok(now_s + duration);
    }
    parse_utc(value).map_err(|e| anyhow::anyhow!("--goal deadline: {e}, or a duration like 36h"))
}

/// Wall-clock seconds now.
pub fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `suanli job plan`: what a goal job would get.
#[derive(Args)]
pub struct PlanArgs {
    /// model=ID,tokens=N[,deadline=UTC-TIME|DURATION][,budget=USD][,seq=LEN]
    #[arg(long)]
    goal: String,
    /// Tenant whose quota and queue count (default: yours).
    #[arg(long, short = 't')]
    tenant: Option<String>,
    /// Accelerator type the job may use (repeat for several; default any).
    #[arg(long = "accelerator")]
    accelerators: Vec<String>,
    /// Framework of SUANLI_LAUNCH_ARGS: megatron, nemo, torchtitan or deepspeed.
    #[arg(long)]
    framework: Option<String>,
    /// Print the plan as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `job plan`; fails (exit 1) with the reason when no option meets the goal.
pub fn plan(client: &Client, args: PlanArgs) -> Result<std::process::ExitCode> {
    let goal = parse_goal(&args.goal, now_s(), args.framework)?;
    let body = PlanBody {
        tenant: args.tenant,
        accelerators: args.accelerators,
        goal,
    };
    let plan: GoalPlan = client.post_as("/api/v1/jobs/plan", &body)?;
    if args.json {
        print_json(&serde_json::to_value(&plan)?);
    } else {
        print_plan(&plan);
    }
    if let Some(problem) = &plan.problem {
        eprintln!("{}", printable(problem));
        return Ok(std::process::ExitCode::FAILURE);
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `now`, or `+7h32m` from `now_s` to `at_s`.
fn after(now_s: i64, at_s: i64) -> String {
    match at_s - now_s {
        0 => "now".into(),
        s => format!("+{}", span_text(s)),
    }
}

fn layout(option: &GoalOption) -> String {
    option.plan.as_ref().map_or("-".into(), |g| {
        let l = &g.layout;
        format!(
            "tp={} pp={} dp={} mb={} gb={}",
            l.tp, l.pp, l.dp, l.micro_batch, g.global_batch
        )
    })
}

fn print_plan(plan: &GoalPlan) {
    let now = plan.now_s;
    let mut table = super::format::table(&[
        "", "type", "count", "layout", "start", "finish", "cost", "why not",
    ]);
    let rows = plan
        .chosen
        .iter()
        .map(|o| (true, o))
        .chain(plan.options.iter().map(|o| (false, o)));
    for (chosen, o) in rows {
        let finish = o.predicted_finish_s.map_or("-".into(), |f| {
            format!("{} ±{}", after(now, f), span_text(o.finish_band_s))
        });
        table.add_row(vec![
            if chosen { "*".into() } else { String::new() },
            printable(&o.accelerator),
            o.count.to_string(),
            layout(o),
            o.predicted_start_s.map_or("-".into(), |s| after(now, s)),
            finish,
            o.cost_usd.map_or("-".into(), |c| format!("${c:.0}")),
            o.lost.as_deref().map_or(String::new(), printable),
        ]);
    }
    println!("{}", super::format::keep_words_whole(&mut table));
    if let Some(chosen) = &plan.chosen
        && let Some(finish) = chosen.predicted_finish_s
    {
        let start = chosen.predicted_start_s.unwrap_or(now);
        println!(
            "chosen: {} x {}, starts {}, finishes {} (±{}, the model's error band)",
            chosen.count,
            printable(&chosen.accelerator),
            if start == now {
                "now".into()
            } else {
                format!("in {}", span_text(start - now))
            },
            format_args!("in {}", span_text(finish - now)),
            span_text(chosen.finish_band_s)
        );
    }
}

/// The goal lines of `job show`.
pub fn show_goal(job: &JobRecord, goal: &Goal) {
    let line = |label: &str, value: String| println!("{label:>10}  {value}");
    if let Some(deadline) = goal.deadline_s {
        line("deadline", utc_text(deadline));
    }
    if let Some(budget) = goal.budget_usd {
        line("budget", format!("${budget:.0}"));
    }
    if let Some(choice) = &goal.choice {
        line(
            "chosen",
            format!(
                "{} x {}, {}",
                choice.count,
                printable(&choice.accelerator),
                layout(choice)
            ),
        );
        if let Some(start) = choice.predicted_start_s {
            line(
                "planned",
                format!(
                    "start {}, finish {}",
                    utc_text(start),
                    choice.predicted_finish_s.map_or("-".into(), utc_text)
                ),
            );
        }
        if let Some(cost) = choice.cost_usd {
            line("cost", format!("${cost:.0} at indicative prices"));
        }
    }
    if let Some(progress) = &goal.progress {
        line(
            "progress",
            format!(
                "{:.3e} of {:.3e} tokens at {}, {:.0} tokens/s",
                progress.tokens,
                goal.tokens,
                utc_text(progress.at_s),
                progress.tokens_per_s
            ),
        );
        if job.state == suanli_server::store::JobState::Running {
            line(
                "finish",
                format!("{} (from progress)", utc_text(progress.predicted_finish_s)),
            );
        }
    }
}

/// `suanli progress`: a running goal job says how many tokens it has trained.
#[derive(Args)]
#[command(after_help = "\
Examples (inside a goal job):
  suanli progress --tokens 1.2e9          writes $SUANLI_PROGRESS_FILE, which the server reads
  suanli progress --tokens 1.2e9 --job 12  reports through the API (needs a token)")]
pub struct ProgressArgs {
    /// Tokens trained so far, over every run, e.g. 1.2e9 or 300M.
    #[arg(long, value_parser = suanli_catalog::units::parse_count)]
    tokens: f64,
    /// The job (default: $SUANLI_JOB_ID); given, the report goes through the API.
    #[arg(long)]
    job: Option<i64>,
}

/// Writes the progress file the server gave the job, or posts the report.
pub fn progress(args: ProgressArgs) -> Result<std::process::ExitCode> {
    if args.job.is_none()
        && let Some(path) = std::env::var_os("SUANLI_PROGRESS_FILE")
    {
        let path = std::path::PathBuf::from(path);
        let partial = path.with_extension("partial");
        std::fs::write(&partial, format!("{}\n", args.tokens))
            .and_then(|()| std::fs::rename(&partial, &path))
            .with_context(|| format!("writing the progress file {}", path.display()))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let id = match args.job {
        Some(id) => id,
        None => std::env::var("SUANLI_JOB_ID")
            .ok()
            .and_then(|v| v.parse().ok())
            .context("give --job ID (outside a job SUANLI_JOB_ID is not set)")?,
    };
    let client = Client::from_env()?;
    let job: JobRecord = client.post_as(
        &format!("/api/v1/jobs/{id}/progress"),
        &ProgressBody {
            tokens: args.tokens,
        },
    )?;
    if let Some(p) = job.spec.goal.as_ref().and_then(|g| g.progress.as_ref()) {
        println!(
            "job {id}: predicted finish {}",
            utc_text(p.predicted_finish_s)
        );
    }
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_goal_spec_reads_counts_times_and_durations() {
        let goal = parse_goal(
            "model=llama-3.1-8b,tokens=100B,deadline=2026-12-24T00:00Z,budget=$20000",
            0,
            None,
        )
        .unwrap();
        assert_eq!(goal.model, "llama-3.1-8b");
        assert_eq!(goal.tokens, 1e11);
        // `date -u -d 2026-12-24T00:00Z +%s`
        assert_eq!(goal.deadline_s, Some(1_798_070_400));
        assert_eq!(goal.budget_usd, Some(20_000.0));
        let goal = parse_goal("model=m,tokens=1e9,deadline=36h", 1000, None).unwrap();
        assert_eq!(goal.deadline_s, Some(1000 + 36 * 3600));
        for bad in [
            "model=m",
            "model=m,tokens=1e9,colour=red",
            "model=m,tokens=x",
            "tokens=1e9,model=m,deadline=soon",
        ] {
            let err = parse_goal(bad, 0, None).unwrap_err().to_string();
            assert!(
                !err.contains('\n') && err.starts_with("--goal"),
                "{bad}: {err}"
            );
        }
    }
}
