//! `suanli node list`: nodes and their free accelerators.

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;

use super::client::{Client, print_json, text};

/// What to do with nodes.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli node list
  suanli node list --json
  suanli node down local-h100-sxm5-80gb   its jobs are requeued and resume from checkpoints
  suanli node up local-h100-sxm5-80gb")]
pub enum NodeCommand {
    /// Nodes, their accelerator type, and how many are free.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Mark a pool's node failed (admin): its jobs are requeued, nothing new is placed on it.
    Down { pool: String },
    /// Return a failed node to service (admin).
    Up { pool: String },
}

/// Runs a node command.
pub fn run(command: NodeCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let json = match command {
        NodeCommand::List { json } => json,
        NodeCommand::Down { pool } => {
            let answer = client.post(
                &format!("/api/v1/nodes/{pool}/down"),
                &serde_json::json!({}),
            )?;
            println!(
                "{pool} is down; requeued jobs: {}",
                text(&answer["requeued_jobs"])
            );
            return Ok(ExitCode::SUCCESS);
        }
        NodeCommand::Up { pool } => {
            client.post(&format!("/api/v1/nodes/{pool}/up"), &serde_json::json!({}))?;
            println!("{pool} is up");
            return Ok(ExitCode::SUCCESS);
        }
    };
    let nodes = client.get("/api/v1/nodes")?;
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
