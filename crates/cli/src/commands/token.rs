//! `suanli token list|create|revoke`.

use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;

use suanli_server::api::types::{CreatedToken, NewToken, Revoked, TokenView};

use super::client::{Client, printable};

/// What to do with API tokens.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli token create --user alice --expires-in 30d   prints the token once
  suanli token list
  suanli token revoke tok-1a2b3c4d5e6f")]
pub enum TokenCommand {
    /// Tokens you can manage (never their secrets); times in UTC.
    #[command(after_help = "Example:\n  suanli token list")]
    List {
        /// Print the tokens as JSON (times as Unix seconds).
        #[arg(long)]
        json: bool,
    },
    /// Create a token; the secret is printed once and stored only as a hash.
    #[command(after_help = "Example:\n  suanli token create --user alice --expires-in 30d")]
    Create {
        /// Whose token (default: yours).
        #[arg(long)]
        user: Option<String>,
        /// Lifetime with its unit, e.g. 12h, 30d or 1y (default: never expires).
        #[arg(long, value_parser = crate::units::parse_duration_whole_s, allow_hyphen_values = true)]
        expires_in: Option<i64>,
    },
    /// Revoke a token by id.
    #[command(after_help = "Example:\n  suanli token revoke tok-1a2b3c4d5e6f")]
    Revoke {
        /// The token's id as `token list` shows it (tok-...).
        id: String,
    },
}

/// Runs a token command.
pub fn run(command: TokenCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        TokenCommand::List { json } => {
            let Some(tokens) =
                client.get_or_print::<Vec<TokenView>>("/api/v1/tokens", &[], json)?
            else {
                return Ok(ExitCode::SUCCESS);
            };
            let mut table = super::format::table(&["id", "user", "created", "expires", "revoked"]);
            let time =
                |at_s: Option<i64>| at_s.map_or_else(|| "-".to_string(), super::format::utc_time);
            for token in &tokens {
                table.add_row(vec![
                    printable(&token.id),
                    printable(&token.user),
                    time(Some(token.created_at_s)),
                    time(token.expires_at_s),
                    time(token.revoked_at_s),
                ]);
            }
            println!("{}", super::format::keep_words_whole(&mut table));
        }
        TokenCommand::Create { user, expires_in } => {
            let body = NewToken {
                user,
                expires_in_s: expires_in,
            };
            let token: CreatedToken = client.post_as("/api/v1/tokens", &body)?;
            eprintln!(
                "token {} for {} (shown once; store it now):",
                printable(&token.id),
                printable(&token.user)
            );
            println!("{}", printable(&token.token));
        }
        TokenCommand::Revoke { id } => {
            let answer: Revoked = client.delete_as(&format!("/api/v1/tokens/{id}"))?;
            if answer.revoked {
                println!("revoked {id}");
            } else {
                println!("{id} was already revoked");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
