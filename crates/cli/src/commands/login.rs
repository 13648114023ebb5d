//! `suanli login`: saves the server URL and a token for the other commands.

use anyhow::{Context, Result};
use clap::Args;
use std::io::BufRead;
use std::process::ExitCode;

use super::client::{Client, Credentials, credentials_path, printable};
use suanli_server::api::types::Whoami;

/// Where to log in.
#[derive(Args)]
#[command(after_help = "\
Examples:
  suanli login --url http://127.0.0.1:8080 --token \"$(cat suanli-data/admin-token)\"
  suanli login --url http://gpu-head:8080 < my-token

The token is checked against the server, then saved (mode 0600) where SUANLI_URL and
SUANLI_TOKEN are looked up when they are not set.")]
pub struct LoginArgs {
    /// The server's URL, e.g. http://gpu-head:8080.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// The token (default: read one line from standard input).
    #[arg(long)]
    token: Option<String>,
}

/// Checks and saves the credentials.
pub fn run(args: LoginArgs) -> Result<ExitCode> {
    let token = match args.token {
        Some(token) => token,
        None => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the token from stdin")?;
            line
        }
    };
    let token = token.trim().to_string();
    let me: Whoami = Client::new(&args.url, Some(token.clone())).get_as("/api/v1/whoami", &[])?;
    let path = credentials_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let text_out = serde_json::to_string_pretty(&Credentials {
        url: Some(args.url),
        token: Some(token),
    })?;
    suanli_server::write_secret(&path, &text_out)
        .with_context(|| format!("writing {}", path.display()))?;
    println!(
        "logged in as {} ({}); saved to {}",
        printable(&me.user),
        me.role.as_str(),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}
