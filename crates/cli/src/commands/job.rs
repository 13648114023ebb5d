//! `suanli job submit|list|show|logs|cancel`: jobs on the control plane.

use anyhow::{Result, bail};
use clap::{Args, Subcommand};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::ExitCode;

use suanli_server::api::types::{GoalRequest, RunSpec, Submit};
use suanli_server::store::{JobRecord, JobState};

use super::client::{Client, printable};

/// What to do with jobs.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  export SUANLI_URL=http://127.0.0.1:8080 SUANLI_TOKEN=$(cat suanli-data/admin-token)
  suanli job submit --tenant research --gpus 8 --accelerator h100 -- python train.py
  suanli job submit --gpus 2 --processes 2 --checkpoint-dir /ckpt --max-restarts 3 -- torchrun.sh
  suanli job submit --gpus 8 --goal-model llama-2-7b --goal-tokens 1e11 -- python train.py
  suanli job plan --goal model=llama-3.1-8b,tokens=20B,deadline=2026-12-24T00:00Z
  suanli job submit --goal model=llama-3.1-8b,tokens=20B,deadline=36h --framework megatron -- ./train.sh
  suanli job list
  suanli job show 12 --json
  suanli job logs 12 --follow
  suanli job wait 12 && echo the job succeeded
  suanli job cancel 12")]
pub enum JobCommand {
    /// Submit a command; prints the new job's id.
    #[command(
        after_help = "Example:\n  suanli job submit -- python3 -c 'import os; print(os.environ[\"RANK\"])'\n  suanli job submit -t research -g 8 -n pretrain --accelerator h100 -- torchrun train.py"
    )]
    Submit(SubmitArgs),
    /// List jobs (your tenant's; all for an admin).
    #[command(
        after_help = "Example:\n  suanli job list --state running\n  suanli job list --tenant research --json"
    )]
    List {
        /// Only this tenant's jobs.
        #[arg(long, short = 't')]
        tenant: Option<String>,
        /// queued, running, succeeded, failed or cancelled.
        #[arg(long, short = 's')]
        state: Option<String>,
        /// Print the jobs as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one job, with why it waits or how it ended.
    #[command(after_help = "Example:\n  suanli job show 12")]
    Show {
        /// The job's id.
        id: i64,
        /// Print the job as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a job's output (the latest run unless --attempt); with --follow, exits non-zero
    /// when the job failed or was cancelled.
    #[command(after_help = "Example:\n  suanli job logs 12 --follow")]
    Logs {
        /// The job's id.
        id: i64,
        /// Run number: 0 is the first run, then one per restart.
        #[arg(long)]
        attempt: Option<u32>,
        /// Keep printing until the job ends.
        #[arg(long, short)]
        follow: bool,
    },
    /// Cancel a job; a running one has its process group killed.
    #[command(after_help = "Example:\n  suanli job cancel 12")]
    Cancel {
        /// The job's id.
        id: i64,
    },
    /// Dry run of a goal job: every option (type, count, layout, predicted start and finish,
    /// cost, error band) and why the others lose; exits 1 when none meets the goal.
    #[command(
        after_help = "Example:\n  suanli job plan --goal model=llama-3.1-8b,tokens=20B,deadline=2026-12-24T00:00Z,budget=5000\n  suanli job plan --goal model=llama-3.1-8b,tokens=5B,deadline=12h --json"
    )]
    Plan(super::job_goal::PlanArgs),
    /// Wait until a job ends; exits with the job's exit code (1 if it was cancelled).
    #[command(after_help = "Example:\n  suanli job wait 12 && echo done")]
    Wait {
        /// The job's id (as `job submit` printed it).
        id: i64,
    },
}

/// A job to submit.
#[derive(Args)]
pub struct SubmitArgs {
    /// Accelerators in the gang [default: 1, or chosen by the server for a --goal].
    #[arg(long, short = 'g')]
    gpus: Option<u32>,
    /// Processes the gang runs as; each gets RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
    #[arg(long, default_value_t = 1)]
    processes: u32,
    /// Accelerator type the job may use (repeat for several; default any).
    #[arg(long = "accelerator")]
    accelerators: Vec<String>,
    /// Tenant (default: yours; `default` for an admin).
    #[arg(long, short = 't')]
    tenant: Option<String>,
    /// Name shown in `job list` (default: the program's name).
    #[arg(long, short = 'n', short_alias = 'J')]
    name: Option<String>,
    /// Environment variable NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE")]
    env: Vec<String>,
    /// Higher runs first: 10 goes before 0, -5 after (policies that order by priority).
    #[arg(long, short = 'p', default_value_t = 0, allow_hyphen_values = true)]
    priority: i32,
    /// Directory the job checkpoints to; restarts get SUANLI_RESUME_FROM set to it.
    #[arg(long)]
    checkpoint_dir: Option<String>,
    /// Restarts after failures before the job is marked failed.
    #[arg(long, default_value_t = 0)]
    max_restarts: u32,
    /// Training goal: the model (catalog id) the command trains; with --goal-tokens the planner
    /// estimates the run time per type and the scheduler uses it.
    #[arg(long, requires = "goal_tokens")]
    goal_model: Option<String>,
    /// Wall-clock limit of a run, e.g. 30m or 2h: past it the job is stopped and fails.
    #[arg(long, value_parser = crate::units::parse_duration_whole_s, allow_hyphen_values = true)]
    time_limit: Option<i64>,
    /// Training goal: tokens to train, e.g. 1e12.
    #[arg(long, requires = "goal_model")]
    goal_tokens: Option<f64>,
    /// Training goal model=ID,tokens=N[,deadline=UTC-TIME|DURATION][,budget=USD]: without
    /// --gpus the server chooses type, gang size and layout (see `job plan`).
    #[arg(long, conflicts_with = "goal_model")]
    goal: Option<String>,
    /// Framework of the goal job's SUANLI_LAUNCH_ARGS: megatron, nemo, torchtitan or deepspeed.
    #[arg(long, requires = "goal")]
    framework: Option<String>,
    /// What a run is expected to take, e.g. 20m: the scheduler plans on it (backfill, start
    /// predictions of `job plan`); nothing is stopped at it.
    #[arg(long, value_parser = crate::units::parse_duration_whole_s)]
    expected_time: Option<i64>,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Runs a job command.
pub fn run(command: JobCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        JobCommand::Submit(args) => submit(&client, args)?,
        JobCommand::List {
            tenant,
            state,
            json,
        } => list(&client, tenant, state, json)?,
        JobCommand::Show { id, json } => {
            let path = format!("/api/v1/jobs/{id}");
            if let Some(job) = client.get_or_print::<JobRecord>(&path, &[], json)? {
                show(&job);
            }
        }
        JobCommand::Logs {
            id,
            attempt,
            follow,
        } => return logs(&client, id, attempt, follow),
        JobCommand::Wait { id } => return wait(&client, id),
        JobCommand::Plan(args) => return super::job_goal::plan(&client, args),
        JobCommand::Cancel { id } => {
            let job: JobRecord = client.post_empty(&format!("/api/v1/jobs/{id}/cancel"))?;
            println!("job {id}: {}", printable(&job.reason));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `job submit`: the job's id on stdout.
fn submit(client: &Client, args: SubmitArgs) -> Result<()> {
    let mut env = BTreeMap::new();
    for item in &args.env {
        let Some((name, value)) = item.split_once('=') else {
            bail!("--env `{item}`: write NAME=VALUE");
        };
        env.insert(name.to_string(), value.to_string());
    }
    let goal = match &args.goal {
        Some(text) => Some(super::job_goal::parse_goal(
            text,
            super::job_goal::now_s(),
            args.framework.clone(),
        )?),
        None => args.goal_model.map(|model| GoalRequest {
            model,
            tokens: args.goal_tokens.unwrap_or_default(),
            deadline_s: None,
            budget_usd: None,
            seq_len: None,
            framework: None,
        }),
    };
    let gpus = args.gpus.or(goal.is_none().then_some(1));
    let body = Submit {
        name: args.name,
        tenant: args.tenant,
        run: RunSpec {
            command: args.command,
            env,
            accelerators: args.accelerators,
            priority: args.priority,
            checkpoint_dir: args.checkpoint_dir,
            max_restarts: args.max_restarts,
            // At least one second (`parse_duration_whole_s`).
            time_limit_s: args.time_limit.and_then(|s| u64::try_from(s).ok()),
            expected_s: args.expected_time.and_then(|s| u64::try_from(s).ok()),
        },
        gpus,
        processes: Some(args.processes),
        goal,
    };
    let job: JobRecord = client.post_as("/api/v1/jobs", &body)?;
    println!("{}", job.id);
    Ok(())
}

/// `job list`: a table, or the server's JSON with `--json`.
fn list(client: &Client, tenant: Option<String>, state: Option<String>, json: bool) -> Result<()> {
    let mut query = Vec::new();
    if let Some(tenant) = tenant {
        query.push(("tenant", tenant));
    }
    if let Some(state) = state {
        query.push(("state", state));
    }
    let jobs: Option<Vec<JobRecord>> = client.get_or_print("/api/v1/jobs", &query, json)?;
    if let Some(jobs) = jobs {
        let mut table =
            super::format::table(&["id", "name", "tenant", "user", "gpus", "state", "reason"]);
        for job in &jobs {
            table.add_row(vec![
                job.id.to_string(),
                printable(&job.spec.name),
                printable(&job.spec.tenant),
                printable(&job.spec.user),
                job.spec.gpus.to_string(),
                job.state.as_str().to_string(),
                printable(&job.reason),
            ]);
        }
        println!("{}", super::format::keep_words_whole(&mut table));
    }
    Ok(())
}

/// `job logs`: the run's output from the start, following restarts with `--follow`; fails when
/// a followed job ends other than succeeded.
fn logs(client: &Client, id: i64, attempt: Option<u32>, follow: bool) -> Result<ExitCode> {
    let mut offset = 0;
    let mut current = None;
    let mut stdout = std::io::stdout();
    loop {
        let mut chunk = client.logs(id, attempt, offset)?;
        if current.is_some_and(|run| run != chunk.attempt) {
            // The job was restarted: follow the new run from its start.
            eprintln!("--- run {} ---", chunk.attempt);
            chunk = client.logs(id, Some(chunk.attempt), 0)?;
        }
        current = Some(chunk.attempt);
        stdout.write_all(chunk.text.as_bytes())?;
        stdout.flush()?;
        offset = chunk.next_offset;
        let ended = matches!(
            chunk.job_state.as_str(),
            "succeeded" | "failed" | "cancelled"
        );
        if chunk.text.is_empty() {
            if follow && ended && chunk.job_state != "succeeded" {
                eprintln!("job {id} {}", chunk.job_state);
                return Ok(ExitCode::FAILURE);
            }
            if !follow || ended {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Polls the job until it ends; the exit code is the job's (1 when it ended without one).
fn wait(client: &Client, id: i64) -> Result<ExitCode> {
    loop {
        let job: JobRecord = client.get_as(&format!("/api/v1/jobs/{id}"), &[])?;
        let state = job.state;
        if matches!(
            state,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled
        ) {
            eprintln!("job {id} {}: {}", state.as_str(), printable(&job.reason));
            let code = job.exit_code.unwrap_or(1);
            let code = if state == JobState::Succeeded {
                0
            } else {
                u8::try_from(code).ok().filter(|&c| c != 0).unwrap_or(1)
            };
            return Ok(ExitCode::from(code));
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
}

/// `-` for nothing, else the value.
fn or_dash<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or("-".into(), |v| v.to_string())
}

/// A comma-separated list.
fn joined<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| printable(&i.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

fn show(job: &JobRecord) {
    let spec = &job.spec;
    let command: Vec<String> = spec.run.command.iter().map(|c| printable(c)).collect();
    let types = if spec.run.accelerators.is_empty() {
        "any".into()
    } else {
        joined(&spec.run.accelerators)
    };
    let lines = [
        ("id", job.id.to_string()),
        ("name", printable(&spec.name)),
        ("tenant", printable(&spec.tenant)),
        ("user", printable(&spec.user)),
        ("command", command.join(" ")),
        (
            "gpus",
            format!(
                "{} in {} process(es), types {types}",
                spec.gpus, spec.processes
            ),
        ),
        ("priority", spec.run.priority.to_string()),
        (
            "time limit",
            spec.run
                .time_limit_s
                .map_or("-".into(), |s| format!("{s} s")),
        ),
        ("state", job.state.as_str().to_string()),
        ("reason", printable(&job.reason)),
        (
            "restarts",
            format!("{} of {}", job.restarts, spec.run.max_restarts),
        ),
        ("runs", job.attempts.to_string()),
        ("exit code", or_dash(job.exit_code)),
        (
            "checkpoint",
            or_dash(spec.run.checkpoint_dir.as_deref().map(printable)),
        ),
        (
            "devices",
            job.run.as_ref().map_or("-".into(), |run| {
                format!(
                    "{} {} [{}]",
                    printable(&run.node),
                    printable(&run.accelerator),
                    joined(&run.devices)
                )
            }),
        ),
    ];
    for (label, value) in lines {
        println!("{label:>10}  {value}");
        if label == "time limit"
            && let Some(expected) = spec.run.expected_s
        {
            println!("{:>10}  {expected} s", "expected");
        }
    }
    if let Some(goal) = &spec.goal {
        // Tokens as JSON prints them (`1e12` reads as `1000000000000.0`), as before the typed client.
        println!(
            "{:>10}  {} tokens of {}",
            "goal",
            serde_json::to_string(&goal.tokens).unwrap_or_default(),
            printable(&goal.model)
        );
        for (accelerator, hours) in &goal.estimated_hours {
            println!(
                "{:>10}  {hours:.1} h on {}",
                "estimate",
                printable(accelerator)
            );
        }
        super::job_goal::show_goal(job, goal);
    }
}
