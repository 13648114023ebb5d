//! `suanli user list|create`.

use anyhow::{Context, Result};
use clap::Subcommand;
use std::process::ExitCode;
use suanli_server::api::types::{Deleted, NewUser};
use suanli_server::store::{Role, User};

use super::client::{Client, printable};

/// What to do with users.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli user create alice --tenant research --role member
  suanli user create ops --role admin
  suanli user list

Roles: admin (everything, no tenant), tenant-admin (users, tokens and all jobs of its tenant),
member (submits jobs, cancels its own), viewer (reads its tenant).")]
pub enum UserCommand {
    /// Users you can see.
    #[command(after_help = "Example:\n  suanli user list")]
    List {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create a user.
    #[command(after_help = "Example:\n  suanli user create alice --tenant research --role member")]
    Create {
        /// Letters, digits, `-` and `_`, e.g. alice.
        name: String,
        /// The tenant the user belongs to (none for an admin).
        #[arg(long)]
        tenant: Option<String>,
        /// admin, tenant-admin, member or viewer.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Delete a user; their tokens are revoked at once.
    #[command(after_help = "Example:\n  suanli user delete alice")]
    Delete {
        /// The user's name.
        name: String,
    },
}

/// Runs a user command.
pub fn run(command: UserCommand) -> Result<ExitCode> {
    let client = Client::from_env()?;
    match command {
        UserCommand::List { json } => {
            let Some(users) = client.get_or_print::<Vec<User>>("/api/v1/users", &[], json)? else {
                return Ok(ExitCode::SUCCESS);
            };
            let mut table = super::format::table(&["name", "tenant", "role"]);
            for user in &users {
                table.add_row(vec![
                    printable(&user.name),
                    user.tenant.as_deref().map_or("-".into(), printable),
                    user.role.as_str().to_string(),
                ]);
            }
            println!("{}", super::format::keep_words_whole(&mut table));
        }
        UserCommand::Create { name, tenant, role } => {
            let role = Role::parse(&role).with_context(|| {
                format!("--role `{role}`: use admin, tenant-admin, member or viewer")
            })?;
            let body = NewUser {
                name: name.clone(),
                tenant,
                role,
            };
            let _: User = client.post_as("/api/v1/users", &body)?;
            println!(
                "created user {name}; give them a token with `suanli token create --user {name}`"
            );
        }
        UserCommand::Delete { name } => {
            let _: Deleted = client.delete_as(&format!("/api/v1/users/{name}"))?;
            println!("deleted user {name}; their tokens are revoked");
        }
    }
    Ok(ExitCode::SUCCESS)
}
