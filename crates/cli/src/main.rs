//! The `suanli` command: thin commands over the catalog, perf, sched and sim crates.

mod commands;
use suanli_catalog::units;

use clap::{CommandFactory, Parser, Subcommand};
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
    /// Plan training (layout, speed, memory, days, energy, cost) or inference (latency, cost).
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
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  suanli completions bash > ~/.local/share/bash-completion/completions/suanli
  suanli completions zsh > ~/.zfunc/_suanli
  suanli completions fish > ~/.config/fish/completions/suanli.fish")]
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print the man page, or write one page per command to a directory.
    #[command(after_help = "\
Examples:
  suanli man | man -l -
  suanli man --dir /usr/local/share/man/man1   suanli.1, suanli-job-submit.1, ...")]
    Man {
        /// Write suanli.1 and a page for every subcommand here instead of printing suanli.1.
        #[arg(long)]
        dir: Option<std::path::PathBuf>,
    },
    /// Models and checkpoints: put, get, list, share (encrypted, per tenant).
    #[command(subcommand)]
    Artifact(commands::artifact::ArtifactCommand),
    /// Save, find and restore a job's checkpoints (for jobs that do not speak S3).
    #[command(subcommand)]
    Ckpt(commands::ckpt::CkptCommand),
    /// Inside a goal job: report the tokens trained, so `job show` predicts the finish from them.
    Progress(commands::job_goal::ProgressArgs),
    // Further commands are added here, one line each, with their module in commands/.
}

fn main() -> ExitCode {
    restore_sigpipe();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let code = error.exit_code();
            if let Some(line) = choice_error(&error) {
                eprintln!("{line}");
                return ExitCode::from(u8::try_from(code).unwrap_or(2));
            }
            let hint = parse_hint(&error, &std::env::args().collect::<Vec<_>>());
            let _ = error.print();
            if let Some(hint) = hint {
                eprintln!("\n{hint}");
            }
            return ExitCode::from(u8::try_from(code).unwrap_or(2));
        }
    };
    let result = match cli.command {
        Command::Catalog(command) => commands::catalog::run(command),
        Command::Plan(command) => commands::plan::run(command),
        Command::Validate(command) => commands::validate::run(command),
        Command::Simulate(args) => commands::simulate::run(*args),
        Command::Serve(args) => commands::serve::run(args),
        Command::Job(command) => commands::job::run(command),
        Command::Progress(args) => commands::job_goal::progress(args),
        Command::Node(command) => commands::node::run(command),
        Command::Tenant(command) => commands::tenant::run(command),
        Command::User(command) => commands::user::run(command),
        Command::Token(command) => commands::token::run(command),
        Command::Quota(command) => commands::quota::run(command),
        Command::Audit(command) => commands::audit::run(command),
        Command::Login(args) => commands::login::run(args),
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "suanli", &mut std::io::stdout());
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { dir } => man(dir.as_deref()),
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

/// The man page to stdout, or every command's page into `dir`.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let command = Cli::command();
    match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            clap_mangen::generate_to(command, dir)?;
            eprintln!("wrote the man pages to {}", dir.display());
        }
        None => clap_mangen::Man::new(command).render(&mut std::io::stdout())?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A value outside a fixed list (a policy, a shell) as one line: the flag, what was given, the
/// closest valid value and every valid one; clap's own message takes five lines.
fn choice_error(error: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    if error.kind() != clap::error::ErrorKind::InvalidValue {
        return None;
    }
    let Some(ContextValue::Strings(valid)) = error.get(ContextKind::ValidValue) else {
        return None;
    };
    let Some(ContextValue::String(given)) = error.get(ContextKind::InvalidValue) else {
        return None;
    };
    let flag = error
        .get(ContextKind::InvalidArg)
        .map(|arg| arg.to_string())
        .unwrap_or_default();
    let flag = flag.split(' ').next().unwrap_or_default();
    let closest = match error.get(ContextKind::SuggestedValue) {
        Some(ContextValue::String(near)) => format!(" (did you mean `{near}`?)"),
        _ => String::new(),
    };
    Some(format!(
        "error: {flag} `{given}` is unknown{closest}; use one of {}",
        valid.join(", ")
    ))
}

/// What clap's message leaves out for the two mistakes a new user makes most: a job's command
/// without `--` before it, and a negative number where a positive one is needed.
fn parse_hint(error: &clap::Error, args: &[String]) -> Option<String> {
    if error.kind() != clap::error::ErrorKind::UnknownArgument {
        return None;
    }
    let unknown = error
        .get(clap::error::ContextKind::InvalidArg)
        .map(|value| value.to_string())
        .unwrap_or_default();
    if unknown.starts_with('-') && unknown[1..].parse::<f64>().is_ok() {
        return Some(format!(
            "hint: `{unknown}` is a negative number; this value must be positive (sizes, counts and durations are)"
        ));
    }
    let words: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if words.starts_with(&["job", "submit"]) && !words.contains(&"--") {
        return Some(
            "hint: put the job's command after `--`, e.g. suanli job submit --tenant research -- python3 train.py".into(),
        );
    }
    None
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

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn completions_and_man_pages_cover_the_subcommands() {
        let mut script = Vec::new();
        clap_complete::generate(
            clap_complete::Shell::Bash,
            &mut Cli::command(),
            "suanli",
            &mut script,
        );
        let script = String::from_utf8(script).unwrap();
        assert!(script.contains("submit") && script.contains("--ttft-slo"));
        let mut page = Vec::new();
        clap_mangen::Man::new(Cli::command())
            .render(&mut page)
            .unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(
            page.contains(".TH suanli") && page.contains("simulate"),
            "{page}"
        );
    }

    /// Every command and subcommand, with its path, e.g. `suanli job submit`.
    fn walk(command: &clap::Command, path: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in command.get_subcommands() {
            let sub_path = format!("{path} {}", sub.get_name());
            out.push((sub_path.clone(), sub.clone()));
            walk(sub, &sub_path, out);
        }
    }

    #[test]
    fn every_subcommand_help_has_an_example() {
        let mut commands = Vec::new();
        walk(&Cli::command(), "suanli", &mut commands);
        assert!(
            commands.len() > 30,
            "only {} commands found",
            commands.len()
        );
        let missing: Vec<String> = commands
            .into_iter()
            .filter_map(|(path, mut command)| {
                let help = command.render_long_help().to_string();
                (!help.contains("Example")).then_some(path)
            })
            .collect();
        assert!(missing.is_empty(), "--help without an example: {missing:?}");
    }

    #[test]
    fn every_repository_file_an_example_names_exists() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let mut commands = Vec::new();
        walk(&Cli::command(), "suanli", &mut commands);
        let mut missing = Vec::new();
        for (path, mut command) in commands {
            let help = command.render_long_help().to_string();
            for word in help.split_whitespace() {
                let named = ["crates/", "data/"].iter().any(|p| word.starts_with(p))
                    && [".csv", ".trace", ".toml", ".json"]
                        .iter()
                        .any(|e| word.ends_with(e));
                if named && !root.join(word).exists() {
                    missing.push(format!("{path}: {word}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "examples name missing files: {missing:?}"
        );
    }

    #[test]
    fn policy_help_lists_every_policy_and_a_typo_is_one_line() {
        let mut command = Cli::command();
        let simulate = command.find_subcommand_mut("simulate").unwrap();
        let help = simulate.render_long_help().to_string();
        for name in suanli_sched::policy::NAMES {
            assert!(help.contains(&format!("- {name}")), "{name} not in {help}");
        }
        assert!(
            help.contains("the same as gavel-max-min-fairness-hetero"),
            "{help}"
        );
        let error = <Cli as clap::Parser>::try_parse_from([
            "suanli",
            "simulate",
            "--compare",
            "fifo,tiresias-lass",
        ])
        .err()
        .unwrap();
        let line = super::choice_error(&error).unwrap();
        assert!(!line.contains('\n'), "{line}");
        assert!(
            line.starts_with(
                "error: --compare `tiresias-lass` is unknown (did you mean `tiresias-las`?)"
            ),
            "{line}"
        );
        // Older names are accepted and kept as given, since they label the results.
        let parsed =
            <Cli as clap::Parser>::try_parse_from(["suanli", "simulate", "--policy", "gavel"]);
        assert!(parsed.is_ok());
    }

    #[test]
    fn every_listing_has_json_for_scripts() {
        let mut commands = Vec::new();
        walk(&Cli::command(), "suanli", &mut commands);
        let without: Vec<&str> = commands
            .iter()
            .filter(|(path, _)| path.ends_with(" list") || path.ends_with(" show"))
            .filter(|(_, command)| !command.get_arguments().any(|a| a.get_id() == "json"))
            .map(|(path, _)| path.as_str())
            .collect();
        assert!(without.is_empty(), "listings without --json: {without:?}");
    }

    #[test]
    fn every_argument_says_what_it_is() {
        let mut commands = Vec::new();
        walk(&Cli::command(), "suanli", &mut commands);
        let mut blank = Vec::new();
        for (path, command) in &commands {
            for arg in command.get_arguments() {
                let id = arg.get_id().as_str();
                if id != "help" && id != "version" && arg.get_help().is_none() {
                    blank.push(format!("{path} {id}"));
                }
            }
        }
        assert!(
            blank.is_empty(),
            "arguments without a description: {blank:?}"
        );
    }
}
