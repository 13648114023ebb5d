//! `suanli node list`: nodes and their free accelerators.

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;

use super::client::{Client, print_json, text};

/// What to do with nodes.
#[derive(Subcommand)]
#[command(after_help = "Examples:\n  suanli node list\n  suanli node list --json")]
pub enum NodeCommand {
    /// Nodes, their accelerator type, and how many are free.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Runs a node command.
pub fn run(command: NodeCommand) -> Result<ExitCode> {
    let NodeCommand::List { json } = command;
    let nodes = Client::from_env()?.get("/api/v1/nodes")?;
    if json {
        print_json(&nodes);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = super::format::table(&[
        "node",
        "pool",
        "accelerator",
        "total",
        "free",
        "state",
        "executor",
    ]);
    for node in nodes.as_array().into_iter().flatten() {
        table.add_row(
            [
                "node",
                "pool",
                "accelerator",
                "total",
                "free",
                "state",
                "executor",
            ]
            .map(|k| text(&node[k]))
            .to_vec(),
        );
    }
    println!("{table}");
    Ok(ExitCode::SUCCESS)
}
