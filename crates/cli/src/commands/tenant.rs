//! `suanli tenant list|create`.

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;
use suanli_server::api::types::{Deleted, NewTenant};
use suanli_server::store::Tenant;

use super::client::{Client, printable};

/// What to do with tenants.
#[derive(Subcommand)]
#[command(after_help = "Examples:\n  suanli tenant create research\n  suanli tenant list")]
pub enum TenantCommand {
    /// Tenants you can see.
    #[command(after_help = "Example:\n  suanli tenant list")]
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a tenant (admin).
    #[command(after_help = "Example:\n  suanli tenant create research")]
    Create {
        /// Letters, digits, `-` and `_`, e.g. research.
        name: String,
    },
    /// Delete a tenant that has no users and no queued or running jobs (admin).
    #[command(after_help = "Example:\n  suanli tenant delete research")]
    Delete {
        /// The tenant's name.
        name: String,
    },
}

/// Runs a tenant command.
pub fn run(command: TenantCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        TenantCommand::List { json } => {
            let tenants: Option<Vec<Tenant>> = client.get_or_print("/api/v1/tenants", &[], json)?;
            for tenant in tenants.iter().flatten() {
                println!("{}", printable(&tenant.name));
            }
        }
        TenantCommand::Create { name } => {
            let tenant: Tenant = client.post_as("/api/v1/tenants", &NewTenant { name })?;
            println!("created tenant {}", printable(&tenant.name));
        }
        TenantCommand::Delete { name } => {
            let _: Deleted = client.delete_as(&format!("/api/v1/tenants/{name}"))?;
            println!("deleted tenant {name}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
