//! `suanli quota list|set`.

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;
use suanli_server::api::types::QuotaUsage;
use suanli_server::store::Quota;

use super::client::{Client, printable};

/// What to do with quotas.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli quota set --tenant research --accelerator h100-sxm5-80gb --limit 16
  suanli quota list

A quota is the most accelerators of one type a tenant's admitted (queued in the scheduler or
running) jobs may ask for; jobs beyond it wait with a `quota:` reason.")]
pub enum QuotaCommand {
    /// Quotas of the tenants you can see.
    #[command(after_help = "Example:\n  suanli quota list")]
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set a tenant's quota for one accelerator type (admin).
    #[command(
        after_help = "Example:\n  suanli quota set --tenant research --accelerator h100-sxm5-80gb --limit 16"
    )]
    Set {
        /// The tenant, e.g. research.
        #[arg(long)]
        tenant: String,
        /// A type the cluster has or a catalog id/alias, e.g. h100-sxm5-80gb.
        #[arg(long)]
        accelerator: String,
        /// Most accelerators of this type the tenant's jobs may hold at once.
        #[arg(long)]
        limit: u32,
    },
}

/// Runs a quota command.
pub fn run(command: QuotaCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        QuotaCommand::List { json } => {
            let Some(quotas) =
                client.get_or_print::<Vec<QuotaUsage>>("/api/v1/quotas", &[], json)?
            else {
                return Ok(ExitCode::SUCCESS);
            };
            let mut table = super::format::table(&["tenant", "accelerator", "limit", "used"]);
            for quota in &quotas {
                table.add_row(vec![
                    printable(&quota.tenant),
                    printable(&quota.accelerator),
                    quota.limit.to_string(),
                    quota.used.to_string(),
                ]);
            }
            println!("{}", super::format::keep_words_whole(&mut table));
        }
        QuotaCommand::Set {
            tenant,
            accelerator,
            limit,
        } => {
            let asked = Quota {
                tenant,
                accelerator,
                limit,
            };
            let quota: Quota = client.send_as(reqwest::Method::PUT, "/api/v1/quotas", &asked)?;
            println!(
                "{} may hold {} {}",
                printable(&quota.tenant),
                quota.limit,
                printable(&quota.accelerator)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
