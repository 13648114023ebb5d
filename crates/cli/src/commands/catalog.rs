//! `suanli catalog accelerators|models`.

use clap::Subcommand;
use std::process::ExitCode;

/// What to list.
#[derive(Subcommand)]
pub enum CatalogCommand {
    /// Accelerators with their dense peaks, memory, links and sources.
    Accelerators {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Model architectures with their shapes and sources.
    Models {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a catalog command.
pub fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    let catalog = suanli_catalog::Catalog::builtin();
    match command {
        CatalogCommand::Accelerators { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&catalog.accelerators)?);
            } else {
                for a in &catalog.accelerators {
                    println!("{}\t{}", a.id, a.name);
                }
            }
        }
        CatalogCommand::Models { json } => {
            if json {
                println!("{}", serde_json::to_string_pretty(&catalog.models)?);
            } else {
                for m in &catalog.models {
                    println!("{}\t{}", m.id, m.name);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
