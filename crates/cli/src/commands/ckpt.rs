//! `suanli ckpt save|latest|restore`: checkpoints for jobs that do not speak S3. A job started
//! by the server gets `SUANLI_CHECKPOINT_URL` (the same on every attempt, on any node); these
//! commands save a directory there as a new version, name the latest complete one, and restore
//! it, so a restarted job resumes wherever it lands.

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::Serialize;
use std::path::PathBuf;
use std::process::ExitCode;

use suanli_server::artifacts::types::{ManifestView, RetainRequest, Retained};

use super::client::{Client, print_json};
use super::transfer::Transfer;

/// Exit code of `latest` and `restore` when there is no checkpoint yet.
const NO_CHECKPOINT: u8 = 3;

/// What to do with checkpoints.
#[derive(Subcommand)]
#[command(after_help = "\
Examples (inside a job; SUANLI_CHECKPOINT_URL and SUANLI_TOKEN in its environment):
  suanli ckpt restore ./ckpt || echo 'no checkpoint yet: starting fresh'
  suanli ckpt save ./ckpt --keep-last 3
  suanli ckpt latest
  suanli ckpt save ./ckpt --to http://127.0.0.1:8080/api/v1/artifacts/acme/my-run

`latest` and `restore` exit with code 3 when there is no complete checkpoint. A save that dies
half-way leaves a partial version that is never restored and is collected by --keep-last.")]
pub enum CkptCommand {
    /// Upload a directory (or file) as the newest checkpoint.
    #[command(after_help = "Example:\n  suanli ckpt save ./ckpt --keep-last 3")]
    Save {
        /// The checkpoint directory (or file) to upload.
        source: PathBuf,
        /// Where: default $SUANLI_CHECKPOINT_URL.
        #[arg(long)]
        to: Option<String>,
        /// Then keep only the newest N checkpoints (and drop abandoned partial ones).
        #[arg(long)]
        keep_last: Option<usize>,
        /// Print the new checkpoint as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the number of the newest complete checkpoint.
    #[command(after_help = "Example:\n  suanli ckpt latest")]
    Latest {
        /// Where: default $SUANLI_CHECKPOINT_URL.
        #[arg(long)]
        to: Option<String>,
        /// Print it as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download the newest complete checkpoint (or --at N) into a directory.
    #[command(after_help = "Example:\n  suanli ckpt restore ./ckpt || echo 'no checkpoint yet'")]
    Restore {
        /// The directory to restore into.
        dest: PathBuf,
        /// Where: default $SUANLI_CHECKPOINT_URL.
        #[arg(long)]
        to: Option<String>,
        /// Which checkpoint: a version number, latest or sha256:...
        #[arg(long, default_value = "latest")]
        at: String,
        /// Print what was restored as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `http://HOST:PORT/api/v1/artifacts/TENANT/NAME` -> (server, tenant, name).
fn split_url(url: &str) -> Result<(String, String, String)> {
    let Some((server, rest)) = url.split_once("/api/v1/artifacts/") else {
        bail!("checkpoint URL `{url}`: expected http://HOST:PORT/api/v1/artifacts/TENANT/NAME");
    };
    match rest.trim_end_matches('/').split_once('/') {
        Some((tenant, name)) if !tenant.is_empty() && !name.is_empty() && !name.contains('/') => {
            Ok((server.to_string(), tenant.to_string(), name.to_string()))
        }
        _ => bail!("checkpoint URL `{url}`: expected .../api/v1/artifacts/TENANT/NAME"),
    }
}

fn target(to: Option<String>) -> Result<(Transfer, String, String)> {
    let url = to
        .or_else(|| std::env::var("SUANLI_CHECKPOINT_URL").ok())
        .context("no checkpoint URL: give --to or run inside a job (SUANLI_CHECKPOINT_URL)")?;
    let (server, tenant, name) = split_url(&url)?;
    let client = Client::from_env()?;
    Ok((Transfer::new(&server, client.token())?, tenant, name))
}

fn is_missing(error: &anyhow::Error) -> bool {
    error.to_string().contains(": 404 (")
}

/// What `save --json` prints.
#[derive(Serialize)]
struct Saved {
    manifest: ManifestView,
    deleted_versions: Vec<u64>,
}

/// Runs a checkpoint command.
pub fn run(command: CkptCommand) -> Result<ExitCode> {
    match command {
        CkptCommand::Save {
            source,
            to,
            keep_last,
            json,
        } => {
            let (mut transfer, tenant, name) = target(to)?;
            transfer.progress &= !json;
            let manifest = transfer.upload(&tenant, &name, "checkpoint", &source, false)?;
            let mut deleted_versions = Vec::new();
            if let Some(keep_last) = keep_last {
                let body = RetainRequest {
                    keep_last: Some(keep_last),
                    partial_age_s: None,
                };
                let path = format!("/{tenant}/{name}/retain");
                let answer: Retained =
                    transfer.call(reqwest::Method::POST, &path, &[], Some(&body))?;
                deleted_versions = answer.deleted_versions;
            }
            if json {
                print_json(&Saved {
                    manifest,
                    deleted_versions,
                });
            } else {
                println!(
                    "saved checkpoint {tenant}/{name}@{} ({} bytes)",
                    manifest.version, manifest.size_bytes
                );
            }
        }
        CkptCommand::Latest { to, json } => {
            let (transfer, tenant, name) = target(to)?;
            match transfer.get::<ManifestView>(&format!("/{tenant}/{name}/versions/latest")) {
                Ok(manifest) if json => print_json(&manifest),
                Ok(manifest) => println!("{}", manifest.version),
                Err(error) if is_missing(&error) => {
                    eprintln!("no complete checkpoint in {tenant}/{name} yet");
                    return Ok(ExitCode::from(NO_CHECKPOINT));
                }
                Err(error) => return Err(error),
            }
        }
        CkptCommand::Restore { dest, to, at, json } => {
            let (mut transfer, tenant, name) = target(to)?;
            transfer.progress &= !json;
            match transfer.download(&tenant, &name, &at, &dest) {
                Ok(manifest) if json => print_json(&manifest),
                Ok(manifest) => println!(
                    "restored checkpoint {tenant}/{name}@{} into {}",
                    manifest.version,
                    dest.display()
                ),
                Err(error) if is_missing(&error) => {
                    eprintln!("no complete checkpoint in {tenant}/{name} yet");
                    return Ok(ExitCode::from(NO_CHECKPOINT));
                }
                Err(error) => return Err(error),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_urls_split_or_say_what_is_expected() {
        let (server, tenant, name) =
            split_url("http://h:8080/api/v1/artifacts/acme/ckpt-job-7").unwrap();
        assert_eq!(
            (server.as_str(), tenant.as_str(), name.as_str()),
            ("http://h:8080", "acme", "ckpt-job-7")
        );
        for bad in [
            "http://h:8080/jobs/7",
            "http://h/api/v1/artifacts/acme",
            "http://h/api/v1/artifacts/a/b/c",
        ] {
            assert!(
                split_url(bad).unwrap_err().to_string().contains("expected"),
                "{bad}"
            );
        }
    }
}
