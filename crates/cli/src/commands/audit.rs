//! `suanli audit list|verify`: the hash-chained audit log, through the server or straight from
//! the store (`--data-dir`, `--database`) when the server is down or not trusted.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use suanli_server::api::types::AuditVerdict;
use suanli_server::store::AuditEvent;

use super::client::{Client, printable};

/// What to do with the audit log.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli audit verify                              ask the server (admin token)
  suanli audit verify --data-dir suanli-data       read the SQLite store directly
  suanli audit verify --database postgres://...    read PostgreSQL directly
  suanli audit list --json

verify exits 1 and names the first bad entry if any entry was edited, deleted or reordered.")]
pub enum AuditCommand {
    /// Every entry (admin).
    #[command(after_help = "Example:\n  suanli audit list --json | jq '.[-1]'")]
    List {
        /// Print the entries as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check the hash chain.
    #[command(
        after_help = "Example:\n  suanli audit verify\n  suanli audit verify --data-dir suanli-data"
    )]
    Verify(VerifyArgs),
}

/// Where to read the log.
#[derive(Args)]
pub struct VerifyArgs {
    /// Read the SQLite store in this data directory instead of asking the server.
    #[arg(long, conflicts_with = "database")]
    data_dir: Option<PathBuf>,
    /// Read this PostgreSQL database instead of asking the server.
    #[arg(long)]
    database: Option<String>,
}

/// Runs an audit command.
pub fn run(command: AuditCommand) -> Result<ExitCode> {
    match command {
        AuditCommand::List { json } => {
            let events: Option<Vec<AuditEvent>> =
                Client::from_env()?.get_or_print("/api/v1/audit", &[], json)?;
            if let Some(events) = events {
                for e in &events {
                    println!(
                        "{:>6}  {}  {:<12} {:<36} {:<5} {}",
                        e.seq,
                        utc(e.at_ms),
                        printable(&e.actor),
                        printable(&e.action),
                        printable(&e.outcome),
                        printable(&e.target)
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCommand::Verify(args) => {
            let verdict = if args.data_dir.is_some() || args.database.is_some() {
                verify_offline(&args)?
            } else {
                Client::from_env()?.get_as("/api/v1/audit/verify", &[])?
            };
            if verdict.ok {
                println!(
                    "audit log intact: {} entries, head {}",
                    verdict.entries,
                    printable(verdict.head.as_deref().unwrap_or("-"))
                );
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("{}", printable(verdict.message.as_deref().unwrap_or("-")));
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

fn verify_offline(args: &VerifyArgs) -> Result<AuditVerdict> {
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let store = match (&args.data_dir, &args.database) {
            (_, Some(url)) => suanli_server::SqlStore::connect(url).await?,
            (Some(dir), None) => {
                let path = dir.join("suanli.db");
                anyhow::ensure!(
                    path.exists(),
                    "no store at {}; is --data-dir the server's data directory?",
                    path.display()
                );
                suanli_server::SqlStore::open_sqlite(&path).await?
            }
            (None, None) => unreachable!("checked by the caller"),
        };
        use suanli_server::Store;
        let events = store.list_audit().await?;
        Ok(AuditVerdict::of(&events))
    })
}

/// Milliseconds since the Unix epoch as `2026-01-02T03:04:05.678Z` (civil-from-days, H. Hinnant,
/// "chrono-Compatible Low-Level Date Algorithms").
fn utc(at_ms: i64) -> String {
    let (days, ms_of_day) = (at_ms.div_euclid(86_400_000), at_ms.rem_euclid(86_400_000));
    let (year, month, day) = suanli_server::calendar::civil_from_days(days);
    let (h, m, sec, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{sec:02}.{ms:03}Z")
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(super::utc(1_795_321_542_788), "2026-11-22T04:25:42.788Z");
    }
}
