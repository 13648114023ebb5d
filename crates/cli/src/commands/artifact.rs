//! `suanli artifact put|get|ls|rm|share|unshare|retain|rotate-master-key`: the model and
//! checkpoint repository.

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use reqwest::Method;
use std::path::PathBuf;
use std::process::ExitCode;

use suanli_server::artifacts::types::{
    ArtifactSummary, ArtifactView, ManifestView, RetainRequest, Retained, ShareRequest, Sharing,
};

use super::client::{Client, print_json, printable};
use super::format::table;
use super::transfer::Transfer;

/// What to do with artefacts.
#[derive(Subcommand)]
#[command(after_help = "\
Examples:
  suanli artifact put acme/llama-3-8b ./Llama-3-8B          a Hugging Face directory, as is
  suanli artifact put acme/run-7 ckpt.pt --kind checkpoint
  suanli artifact ls
  suanli artifact ls acme/llama-3-8b                         its versions and files
  suanli artifact get acme/llama-3-8b@latest ./out           also @3 or @sha256:1f2e...
  suanli artifact share acme/llama-3-8b --with research      read-only for tenant research
  suanli artifact rm acme/run-7@2

REF is [TENANT/]NAME[@VERSION]; without TENANT your own tenant. Artefacts are private to their
tenant until shared; anyone else sees them as not found. Every read and write is audited.")]
pub enum ArtifactCommand {
    /// Upload a file or a directory as a new version.
    #[command(
        after_help = "Examples:\n  suanli artifact put acme/llama-3-8b ./Llama-3-8B\n  \
        suanli artifact put acme/llama-3-8b ./Llama-3-8B --resume    after an interrupted put"
    )]
    Put {
        /// [TENANT/]NAME of the artefact.
        reference: String,
        /// The file or directory to upload (a Hugging Face directory is kept as is).
        source: PathBuf,
        /// model or checkpoint.
        #[arg(long, default_value = "model")]
        kind: String,
        /// Complete the newest unfinished upload of this artefact instead of starting a new
        /// version: stored files are skipped, a broken-off file continues where it stopped.
        #[arg(long)]
        resume: bool,
        /// Print the new version as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Download a version (default latest) into a directory.
    #[command(after_help = "Example:\n  suanli artifact get acme/llama-3-8b@latest ./out")]
    Get {
        /// [TENANT/]NAME[@VERSION]: VERSION is a number, latest or sha256:...
        reference: String,
        /// The directory to write into.
        dest: PathBuf,
        /// Print what was written as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List artefacts you can read, or one artefact's versions.
    #[command(after_help = "Example:\n  suanli artifact ls\n  suanli artifact ls acme/llama-3-8b")]
    Ls {
        /// [TENANT/]NAME: list this artefact's versions instead.
        reference: Option<String>,
        /// Only this tenant's artefacts.
        #[arg(long)]
        tenant: Option<String>,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Delete an artefact, or one version with REF@VERSION.
    #[command(after_help = "Example:\n  suanli artifact rm acme/run-7@2")]
    Rm {
        /// [TENANT/]NAME[@VERSION] to delete.
        reference: String,
    },
    /// Let another tenant (or, with --public, everyone) read an artefact.
    #[command(after_help = "Example:\n  suanli artifact share acme/llama-3-8b --with research")]
    Share(ShareArgs),
    /// Take back a share.
    #[command(after_help = "Example:\n  suanli artifact unshare acme/llama-3-8b --with research")]
    Unshare(ShareArgs),
    /// Keep the newest N versions; delete older ones and abandoned partial uploads.
    #[command(after_help = "Example:\n  suanli artifact retain acme/run-7 --keep-last 3")]
    Retain {
        /// [TENANT/]NAME of the artefact.
        reference: String,
        /// How many of the newest complete versions to keep.
        #[arg(long)]
        keep_last: usize,
        /// Partial versions older than this many seconds are abandoned uploads.
        #[arg(long, default_value_t = 3600)]
        partial_age_s: i64,
    },
    /// Re-wrap every tenant key with a new master key (server stopped; data is not rewritten).
    #[command(after_help = "Example:\n  openssl rand -hex 32 > new.key\n  \
        suanli artifact rotate-master-key --data-dir suanli-data --new-key-file new.key")]
    RotateMasterKey(RotateArgs),
}

/// Whom to share with.
#[derive(Args)]
pub struct ShareArgs {
    /// [TENANT/]NAME of the artefact.
    reference: String,
    /// The tenant that may read.
    #[arg(
        long = "with",
        conflicts_with = "public",
        required_unless_present = "public"
    )]
    with_tenant: Option<String>,
    /// Everyone in the cluster may read.
    #[arg(long)]
    public: bool,
}

/// Master-key rotation.
#[derive(Args)]
pub struct RotateArgs {
    /// The server's data directory.
    #[arg(long, default_value = "suanli-data")]
    data_dir: PathBuf,
    /// The artefact store, as given to `suanli serve --store`.
    #[arg(long)]
    store: Option<String>,
    /// The current key (default: SUANLI_MASTER_KEY, else DATA_DIR/master-key).
    #[arg(long)]
    old_key_file: Option<PathBuf>,
    /// The new key: 64 hex digits, e.g. from `openssl rand -hex 32`.
    #[arg(long)]
    new_key_file: PathBuf,
}

/// `[TENANT/]NAME[@VERSION]` with the caller's tenant filled in.
pub struct Reference {
    pub tenant: String,
    pub name: String,
    pub version: Option<String>,
}

/// Parses a reference; asks the server for the caller's tenant when it is omitted.
pub fn parse_reference(text: &str, client: &Client) -> Result<Reference> {
    let (path, version) = match text.split_once('@') {
        Some((p, v)) if !v.is_empty() => (p, Some(v.to_string())),
        Some(_) => bail!("`{text}`: give a version after @ (a number, latest or sha256:...)"),
        None => (text, None),
    };
    let (tenant, name) = match path.split_once('/') {
        Some((t, n)) => (t.to_string(), n.to_string()),
        None => {
            let me: suanli_server::api::types::Whoami = client.get_as("/api/v1/whoami", &[])?;
            let tenant = me
                .tenant
                .context("you belong to no tenant (admin): write the reference as TENANT/NAME")?;
            (tenant, path.to_string())
        }
    };
    if tenant.is_empty() || name.is_empty() || name.contains('/') {
        bail!("`{text}`: write [TENANT/]NAME[@VERSION], e.g. acme/llama-3-8b@latest");
    }
    Ok(Reference {
        tenant,
        name,
        version,
    })
}

/// Runs an artefact command.
pub fn run(command: ArtifactCommand) -> Result<ExitCode> {
    if let ArtifactCommand::RotateMasterKey(args) = command {
        return rotate(args);
    }
    let client = Client::from_env()?;
    let mut transfer = Transfer::from_env()?;
    match command {
        ArtifactCommand::Put {
            reference,
            source,
            kind,
            resume,
            json,
        } => {
            let r = parse_reference(&reference, &client)?;
            if r.version.is_some() {
                bail!("`{reference}`: a new upload gets the next version; drop the @VERSION");
            }
            transfer.progress &= !json;
            let manifest = transfer.upload(&r.tenant, &r.name, &kind, &source, resume)?;
            report(&manifest, json, "stored");
        }
        ArtifactCommand::Get {
            reference,
            dest,
            json,
        } => {
            let r = parse_reference(&reference, &client)?;
            transfer.progress &= !json;
            let version = r.version.as_deref().unwrap_or("latest");
            let manifest = transfer.download(&r.tenant, &r.name, version, &dest)?;
            report(
                &manifest,
                json,
                &format!("verified and written to {}:", dest.display()),
            );
        }
        ArtifactCommand::Ls {
            reference,
            tenant,
            json,
        } => list(&client, &transfer, reference, tenant, json)?,
        ArtifactCommand::Rm { reference } => {
            let r = parse_reference(&reference, &client)?;
            let path = match &r.version {
                Some(v) => format!("/{}/{}/versions/{v}", r.tenant, r.name),
                None => format!("/{}/{}", r.tenant, r.name),
            };
            transfer.delete(&path)?;
            println!("deleted {reference}");
        }
        ArtifactCommand::Share(args) => share(&client, &transfer, args, "share")?,
        ArtifactCommand::Unshare(args) => share(&client, &transfer, args, "unshare")?,
        ArtifactCommand::Retain {
            reference,
            keep_last,
            partial_age_s,
        } => {
            let r = parse_reference(&reference, &client)?;
            let body = RetainRequest {
                keep_last: Some(keep_last),
                partial_age_s: Some(partial_age_s),
            };
            let path = format!("/{}/{}/retain", r.tenant, r.name);
            let answer: Retained = transfer.call(Method::POST, &path, &[], Some(&body))?;
            println!("deleted versions: {}", joined(&answer.deleted_versions));
        }
        ArtifactCommand::RotateMasterKey(_) => unreachable!("handled above"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Numbers or names joined by `,` (empty when there are none).
pub fn joined<T: ToString>(items: &[T]) -> String {
    items
        .iter()
        .map(|i| printable(&i.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// A digest as shown, `-` when there is none yet.
fn digest_text(digest: Option<&str>) -> String {
    digest.map_or_else(|| "-".to_string(), printable)
}

fn report(manifest: &ManifestView, json: bool, verb: &str) {
    if json {
        print_json(manifest);
        return;
    }
    println!(
        "{verb} {}/{}@{} ({} files, {} bytes, {})",
        printable(&manifest.tenant),
        printable(&manifest.name),
        manifest.version,
        manifest.files.len(),
        manifest.size_bytes,
        digest_text(manifest.digest.as_deref())
    );
}

fn list(
    client: &Client,
    transfer: &Transfer,
    reference: Option<String>,
    tenant: Option<String>,
    json: bool,
) -> Result<()> {
    if let Some(reference) = reference {
        let r = parse_reference(&reference, client)?;
        let shown: ArtifactView = transfer.get(&format!("/{}/{}", r.tenant, r.name))?;
        if json {
            print_json(&shown);
            return Ok(());
        }
        let mut t = table(&["version", "complete", "files", "bytes", "digest", "by"]);
        for v in &shown.versions {
            let digest = digest_text(v.digest.as_deref());
            t.add_row(vec![
                v.version.to_string(),
                v.complete.to_string(),
                v.files.len().to_string(),
                v.size_bytes.to_string(),
                digest.chars().take(23).collect(),
                printable(&v.created_by),
            ]);
        }
        println!("{t}");
        return Ok(());
    }
    let query: Vec<(&str, &str)> = tenant.iter().map(|t| ("tenant", t.as_str())).collect();
    let listed: Vec<ArtifactSummary> = transfer.call::<_, ()>(Method::GET, "", &query, None)?;
    if json {
        print_json(&listed);
        return Ok(());
    }
    let mut t = table(&["artifact", "kind", "versions", "latest", "bytes", "shared"]);
    let or_dash = |n: Option<u64>| n.map_or_else(|| "-".to_string(), |n| n.to_string());
    for a in &listed {
        let shared = if a.public {
            "public".to_string()
        } else {
            a.shared_with
                .as_deref()
                .map_or_else(|| "-".to_string(), joined)
        };
        t.add_row(vec![
            format!("{}/{}", printable(&a.tenant), printable(&a.name)),
            printable(&a.kind),
            a.versions.to_string(),
            or_dash(a.latest),
            or_dash(a.size_bytes),
            shared,
        ]);
    }
    println!("{t}");
    Ok(())
}

fn share(client: &Client, transfer: &Transfer, args: ShareArgs, verb: &str) -> Result<()> {
    let r = parse_reference(&args.reference, client)?;
    let body = ShareRequest {
        public: args.with_tenant.is_none(),
        tenant: args.with_tenant,
    };
    let path = format!("/{}/{}/{verb}", r.tenant, r.name);
    let answer: Sharing = transfer.call(Method::POST, &path, &[], Some(&body))?;
    println!(
        "{}/{}: public {}, shared with {}",
        r.tenant,
        r.name,
        answer.public,
        if answer.shared_with.is_empty() {
            "-".to_string()
        } else {
            joined(&answer.shared_with)
        }
    );
    Ok(())
}

fn rotate(args: RotateArgs) -> Result<ExitCode> {
    use suanli_server::artifacts::{Repository, backend, keys};
    let old = keys::load_master_key(args.old_key_file.as_deref(), &args.data_dir)?;
    let new = keys::read_key_file(&args.new_key_file)?;
    let store = args.store.or_else(|| std::env::var("SUANLI_STORE").ok());
    let objects = backend::open(store.as_deref(), &args.data_dir)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    let count = runtime.block_on(async {
        let repo = Repository::new(objects, old.clone());
        repo.rotate_master_key(&new).await
    })?;
    println!(
        "re-wrapped {count} tenant keys from master key {} to {}; start the server with the new key",
        old.id(),
        new.id()
    );
    Ok(ExitCode::SUCCESS)
}
