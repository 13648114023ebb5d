//! `suanli token list|create|revoke`.

use anyhow::Result;
use clap::Subcommand;
use serde_json::json;
use std::process::ExitCode;

use super::client::{Client, text};

/// What to do with API tokens.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli token create --user alice --expires-in 2592000   prints the token once
  suanli token list
  suanli token revoke tok-1a2b3c4d5e6f")]
pub enum TokenCommand {
    /// Tokens you can manage (never their secrets).
    List,
    /// Create a token; the secret is printed once and stored only as a hash.
    Create {
        /// Whose token (default: yours).
        #[arg(long)]
        user: Option<String>,
        /// Seconds until it expires (default: never).
        #[arg(long)]
        expires_in: Option<i64>,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

/// Runs a token command.
pub fn run(command: TokenCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        TokenCommand::List => {
            let mut table = super::format::table(&["id", "user", "created", "expires", "revoked"]);
            for token in client
                .get("/api/v1/tokens")?
                .as_array()
                .into_iter()
                .flatten()
            {
                table.add_row(
                    ["id", "user", "created_at_s", "expires_at_s", "revoked_at_s"]
                        .map(|k| text(&token[k]))
                        .to_vec(),
                );
            }
            println!("{table}");
        }
        TokenCommand::Create { user, expires_in } => {
            let token = client.post(
                "/api/v1/tokens",
                &json!({ "user": user, "expires_in_s": expires_in }),
            )?;
            eprintln!(
                "token {} for {} (shown once; store it now):",
                text(&token["id"]),
                text(&token["user"])
            );
            println!("{}", text(&token["token"]));
        }
        TokenCommand::Revoke { id } => {
            let answer = client.json(
                reqwest::Method::DELETE,
                &format!("/api/v1/tokens/{id}"),
                None,
            )?;
            if answer["revoked"] == true {
                println!("revoked {id}");
            } else {
                println!("{id} was already revoked");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
