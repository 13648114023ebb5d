//! `suanli node list|down|up`: nodes and their free accelerators.

use anyhow::{Result, bail};
use clap::Subcommand;
use std::process::ExitCode;
use suanli_server::api::types::{NodeChange, NodeRow};

use super::client::{Client, print_json, printable};

/// What to do with nodes.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli node list
  suanli node list --json
  suanli node down local-h100-sxm5-80gb   its jobs are requeued and resume from checkpoints
  suanli node up local-h100-sxm5-80gb")]
pub enum NodeCommand {
    /// Nodes, their accelerator type, and how many are free (0 on a node that is down).
    #[command(after_help = "Example:\n  suanli node list --json | jq '.[] | {pool, free}'")]
    List {
        /// Print the nodes as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Mark a node failed (admin): its jobs are requeued, nothing new is placed on it.
    #[command(
        after_help = "Example:\n  suanli node down vm                    by node name (as `node list` shows it)\n  suanli node down local-h100-sxm5-80gb  by pool"
    )]
    Down {
        /// The node or pool name from `node list`.
        #[arg(value_name = "NODE|POOL")]
        pool: String,
    },
    /// Return a failed node to service (admin).
    #[command(after_help = "Example:\n  suanli node up vm")]
    Up {
        /// The node or pool name from `node list`.
        #[arg(value_name = "NODE|POOL")]
        pool: String,
    },
}

/// The pool a name means: a pool name as is, or the only pool of a node with that name.
fn pool_of(nodes: &[NodeRow], name: &str) -> Result<String> {
    if nodes.iter().any(|n| n.pool == name) {
        return Ok(name.to_string());
    }
    let pools: Vec<String> = nodes
        .iter()
        .filter(|n| n.node == name)
        .map(|n| printable(&n.pool))
        .collect();
    match pools.as_slice() {
        [pool] => Ok(pool.clone()),
        [] => {
            let known: Vec<String> = nodes
                .iter()
                .map(|n| format!("{} (pool {})", printable(&n.node), printable(&n.pool)))
                .collect();
            bail!(
                "no node or pool `{name}`; `suanli node list` has {}",
                known.join(", ")
            )
        }
        many => bail!("node `{name}` has pools {}; name one", many.join(", ")),
    }
}

/// Runs a node command.
pub fn run(command: NodeCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    let nodes: Vec<NodeRow> = client.get_as("/api/v1/nodes", &[])?;
    let json = match command {
        NodeCommand::List { json } => json,
        NodeCommand::Down { pool } => {
            let pool = pool_of(&nodes, &pool)?;
            let answer: NodeChange = client.post_empty(&format!("/api/v1/nodes/{pool}/down"))?;
            let requeued = answer.requeued_jobs.unwrap_or_default();
            println!(
                "{pool} is down; requeued jobs: {}",
                requeued
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            );
            return Ok(ExitCode::SUCCESS);
        }
        NodeCommand::Up { pool } => {
            let pool = pool_of(&nodes, &pool)?;
            let _: NodeChange = client.post_empty(&format!("/api/v1/nodes/{pool}/up"))?;
            println!("{pool} is up");
            return Ok(ExitCode::SUCCESS);
        }
    };
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
    for node in &nodes {
        // Nothing is placed on a node that is down, whatever it holds.
        let free = if node.state == "up" { node.free } else { 0 };
        table.add_row(vec![
            printable(&node.node),
            printable(&node.pool),
            printable(&node.accelerator),
            node.total.to_string(),
            free.to_string(),
            printable(&node.state),
            printable(&node.executor),
        ]);
    }
    println!("{}", super::format::keep_words_whole(&mut table));
    Ok(ExitCode::SUCCESS)
}
