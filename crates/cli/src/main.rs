//! The `suanli` command: thin commands over the catalog, perf, sched and sim crates.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Plan, simulate and run large-model training and inference on shared accelerator clusters.
#[derive(Parser)]
#[command(name = "suanli", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in accelerators and models with their sources.
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// Plan training: parallel layout, speed, memory, days, energy and cost.
    #[command(subcommand)]
    Plan(commands::plan::PlanCommand),
    /// Compare the performance model with published measurements.
    #[command(subcommand)]
    Validate(commands::validate::ValidateCommand),
    /// Replay a trace or synthetic workload on a cluster under scheduling policies.
    Simulate(Box<commands::simulate::SimulateArgs>),
    // Further commands are added here, one line each, with their module in commands/.
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Catalog(command) => commands::catalog::run(command),
        Command::Plan(command) => commands::plan::run(command),
        Command::Validate(command) => commands::validate::run(command),
        Command::Simulate(args) => commands::simulate::run(*args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, which turns `suanli ... | head` into a panic on the next print; restore
/// the default so the command ends quietly like any other Unix tool.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
