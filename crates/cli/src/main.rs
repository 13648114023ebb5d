//! The `suanli` command: thin commands over the catalog, perf, sched and sim crates.

mod commands;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Plan, simulate and run large-model training and inference on shared accelerator clusters.
#[derive(Parser)]
#[command(name = "suanli", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List the built-in accelerators and models with their sources.
    #[command(subcommand)]
    Catalog(commands::catalog::CatalogCommand),
    /// Plan training: parallel layout, speed, memory, days, energy and cost.
    #[command(subcommand)]
    Plan(commands::plan::PlanCommand),
    /// Compare the performance model with published measurements.
    #[command(subcommand)]
    Validate(commands::validate::ValidateCommand),
    /// Replay a trace or synthetic workload on a cluster under scheduling policies.
    Simulate(Box<commands::simulate::SimulateArgs>),
    /// Run the control plane: jobs, tenants, quotas, auth and audit over HTTP.
    Serve(commands::serve::ServeArgs),
    /// Submit, list, show, follow and cancel jobs on a server.
    #[command(subcommand)]
    Job(commands::job::JobCommand),
    /// List the server's nodes and free accelerators.
    #[command(subcommand)]
    Node(commands::node::NodeCommand),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(commands::tenant::TenantCommand),
    /// Manage users and their roles.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(commands::token::TokenCommand),
    /// Set and list tenant quotas per accelerator type.
    #[command(subcommand)]
    Quota(commands::quota::QuotaCommand),
    /// List and verify the hash-chained audit log.
    #[command(subcommand)]
    Audit(commands::audit::AuditCommand),
    /// Save a server URL and token for the other commands.
    Login(commands::login::LoginArgs),
    /// Models and checkpoints: put, get, list, share (encrypted, per tenant).
    #[command(subcommand)]
    Artifact(commands::artifact::ArtifactCommand),
    /// Save, find and restore a job's checkpoints (for jobs that do not speak S3).
    #[command(subcommand)]
    Ckpt(commands::ckpt::CkptCommand),
    // Further commands are added here, one line each, with their module in commands/.
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Catalog(command) => commands::catalog::run(command),
        Command::Plan(command) => commands::plan::run(command),
        Command::Validate(command) => commands::validate::run(command),
        Command::Simulate(args) => commands::simulate::run(*args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Job(command) => commands::job::run(command),
        Command::Node(command) => commands::node::run(command),
        Command::Tenant(command) => commands::tenant::run(command),
        Command::User(command) => commands::user::run(command),
        Command::Token(command) => commands::token::run(command),
        Command::Quota(command) => commands::quota::run(command),
        Command::Audit(command) => commands::audit::run(command),
        Command::Login(args) => commands::login::run(args),
        Command::Artifact(command) => commands::artifact::run(command),
        Command::Ckpt(command) => commands::ckpt::run(command),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, which turns `suanli ... | head` into a panic on the next print; restore
/// the default so the command ends quietly like any other Unix tool.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
