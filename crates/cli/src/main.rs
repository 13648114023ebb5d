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
    // Further commands are added here, one line each, with their module in commands/.
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Catalog(command) => commands::catalog::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
