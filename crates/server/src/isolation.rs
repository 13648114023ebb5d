//! Which unprivileged OS user runs a tenant's jobs, and where their working directories live.
//!
//! Jobs never run with the server's privileges. As root the server runs each tenant's jobs as
//! its own user (`suanli-t-<tenant>`, created with `useradd` on first use, or mapped by
//! configuration), or every job as one fixed user (`--run-as`); the uid/gid switch happens in the
//! child (`CommandExt::uid/gid`, which also drops supplementary groups). The data directory
//! (mode 0700: database, admin token, logs) is out of reach of every job user. A server that is
//! not root cannot switch users: it runs jobs as itself and refuses jobs of a second tenant.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};

/// How jobs are mapped to OS users (`ServerConfig::job_users`).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum JobUsers {
    /// One user per tenant: mapped in the table, else `suanli-t-<tenant>`, created if missing.
    #[default]
    PerTenant,
    /// Every job runs as this existing user.
    Fixed(String),
}

/// An OS user a job runs as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Why jobs cannot run as the configured users; each message says what would fix it.
#[derive(Debug, thiserror::Error)]
pub enum IsolationError {
    /// `--run-as` or a tenant mapping on a server that is not root.
    #[error("--run-as and tenant user mappings need the server to run as root")]
    NeedsRoot,
    /// `--run-as` names a user the system does not have.
    #[error("--run-as: no user `{0}`")]
    NoRunAsUser(String),
    /// A tenant's mapped (or the fixed) user does not exist.
    #[error("no user `{user}` for tenant `{tenant}`")]
    NoTenantUser { user: String, tenant: String },
    /// The user would be root.
    #[error("user `{0}` is root; jobs must run as an unprivileged user")]
    Root(String),
    /// The work root cannot be created or opened up.
    #[error("work directory {path}: {error}")]
    WorkRoot { path: String, error: std::io::Error },
    /// One run's working directory cannot be created.
    #[error("working directory: {0}")]
    RunDir(std::io::Error),
    /// `useradd` cannot be started.
    #[error("cannot run useradd to create job user `{user}`: {error}")]
    UserAddMissing { user: String, error: std::io::Error },
    /// `useradd` kept failing.
    #[error("cannot create job user `{user}`: {stderr}; create it, or map the tenant to a user")]
    UserAdd { user: String, stderr: String },
}

/// Resolves the identity of each tenant's jobs and prepares their working directories.
#[derive(Debug)]
pub struct Isolation {
    users: JobUsers,
    /// Tenant -> existing user name, overriding the generated name.
    mapped: BTreeMap<String, String>,
    /// False when the server is not root: jobs run as the server's own user.
    can_switch: bool,
    work_root: PathBuf,
    cache: Mutex<HashMap<String, Identity>>,
}

/// Serialises `useradd` calls of this process (it locks /etc/passwd and fails when contended).
static USERADD: Mutex<()> = Mutex::new(());

impl Isolation {
    /// Checks the configuration against the server's own privileges. `work_root` holds one
    /// directory per job user, each readable by that user only.
    pub fn new(
        users: JobUsers,
        mapped: BTreeMap<String, String>,
        work_root: PathBuf,
    ) -> Result<Isolation, IsolationError> {
        // SAFETY: geteuid has no preconditions.
        let can_switch = unsafe { libc::geteuid() } == 0;
        if !can_switch && (matches!(users, JobUsers::Fixed(_)) || !mapped.is_empty()) {
            return Err(IsolationError::NeedsRoot);
        }
        if let JobUsers::Fixed(name) = &users {
            let identity = lookup(name).ok_or_else(|| IsolationError::NoRunAsUser(name.clone()))?;
            refuse_root(&identity)?;
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&work_root)
            .map_err(|error| IsolationError::WorkRoot {
                path: work_root.display().to_string(),
                error,
            })?;
        // Others may pass through (to their own directory) but not list it.
        std::fs::set_permissions(&work_root, std::fs::Permissions::from_mode(0o711)).map_err(
            |error| IsolationError::WorkRoot {
                path: work_root.display().to_string(),
                error,
            },
        )?;
        Ok(Isolation {
            users,
            mapped,
            can_switch,
            work_root,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Whether jobs of different tenants run as different users (or at least not as the server).
    pub fn isolates(&self) -> bool {
        self.can_switch
    }

    /// One line for the start-up log.
    pub fn describe(&self) -> String {
        match (&self.users, self.can_switch) {
            (_, false) => "the server is not root, so jobs run as its own user with access to \
                the data directory; it accepts jobs of one tenant only (start it as root, or \
                as root with --run-as USER, to serve several)"
                .into(),
            (JobUsers::Fixed(name), true) => format!("every job runs as user `{name}`"),
            (JobUsers::PerTenant, true) => {
                "each tenant's jobs run as its own user (suanli-t-TENANT unless mapped)".into()
            }
        }
    }

    /// The user `tenant`'s jobs run as; `None` means the server's own user (not root).
    pub fn identity(&self, tenant: &str) -> Result<Option<Identity>, IsolationError> {
        if !self.can_switch {
            return Ok(None);
        }
        if let Some(found) = self.cache.lock().expect("cache lock").get(tenant) {
            return Ok(Some(found.clone()));
        }
        let identity = match (&self.users, self.mapped.get(tenant)) {
            (_, Some(name)) | (JobUsers::Fixed(name), None) => {
                lookup(name).ok_or_else(|| IsolationError::NoTenantUser {
                    user: name.clone(),
                    tenant: tenant.to_string(),
                })?
            }
            (JobUsers::PerTenant, None) => ensure_user(&tenant_user_name(tenant))?,
        };
        refuse_root(&identity)?;
        self.cache
            .lock()
            .expect("cache lock")
            .insert(tenant.to_string(), identity.clone());
        Ok(Some(identity))
    }

    /// Creates the working directory of one run, owned by (and only open to) `identity`.
    pub fn work_dir(
        &self,
        identity: Option<&Identity>,
        job_id: i64,
        attempt: u32,
    ) -> std::io::Result<PathBuf> {
        let owner = identity.map_or("server", |i| i.name.as_str());
        let user_dir = self.work_root.join(owner);
        let run_dir = user_dir.join(format!("job-{job_id}-{attempt}"));
        for dir in [&user_dir, &run_dir] {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)?;
            if let Some(identity) = identity {
                std::os::unix::fs::chown(dir, Some(identity.uid), Some(identity.gid))?;
            }
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        }
        Ok(run_dir)
    }
}

fn refuse_root(identity: &Identity) -> Result<(), IsolationError> {
    if identity.uid == 0 {
        return Err(IsolationError::Root(identity.name.clone()));
    }
    Ok(())
}

/// `suanli-t-<tenant>`, made a valid user name of at most 32 bytes: lower-case letters, digits,
/// `-` and `_`; a tenant name that had to be changed or shortened gets a hash suffix, so two
/// tenants never share a user.
pub fn tenant_user_name(tenant: &str) -> String {
    let cleaned: String = tenant
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '-',
        })
        .collect();
    if cleaned == tenant && cleaned.len() <= 23 {
        return format!("suanli-t-{cleaned}");
    }
    let hash = hex::encode(&Sha256::digest(tenant.as_bytes())[..4]);
    let prefix: String = cleaned.chars().take(14).collect();
    format!("suanli-t-{prefix}-{hash}")
}

/// The uid and gid of user `name`, from the password database.
pub fn lookup(name: &str) -> Option<Identity> {
    let c_name = CString::new(name).ok()?;
    // SAFETY: `passwd` is plain old data; getpwnam_r fills it from `buffer`, which outlives it.
    let mut entry: libc::passwd = unsafe { std::mem::zeroed() };
    let mut buffer = vec![0 as libc::c_char; 16 * 1024];
    let mut result: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is valid for the call and the buffer length is its real length.
    let code = unsafe {
        libc::getpwnam_r(
            c_name.as_ptr(),
            &mut entry,
            buffer.as_mut_ptr(),
            buffer.len(),
            &mut result,
        )
    };
    if code != 0 || result.is_null() {
        return None;
    }
    Some(Identity {
        name: name.to_string(),
        uid: entry.pw_uid,
        gid: entry.pw_gid,
    })
}

/// Looks `name` up, creating it as a system user with its own group and no login shell if
/// missing. Retries while another process holds the password file's lock.
fn ensure_user(name: &str) -> Result<Identity, IsolationError> {
    let _serial = USERADD.lock().unwrap_or_else(|e| e.into_inner());
    let mut last_error = String::new();
    for _ in 0..50 {
        if let Some(identity) = lookup(name) {
            return Ok(identity);
        }
        let output = std::process::Command::new("useradd")
            .args(["--system", "--user-group", "--no-create-home"])
            .args(["--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin"])
            .arg(name)
            .output()
            .map_err(|error| IsolationError::UserAddMissing {
                user: name.to_string(),
                error,
            })?;
        if output.status.success() {
            continue;
        }
        last_error = String::from_utf8_lossy(&output.stderr).trim().to_string();
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    Err(IsolationError::UserAdd {
        user: name.to_string(),
        stderr: last_error,
    })
}

/// The default work root: a sibling of the data directory (`DATA-work`), outside its 0700 tree.
pub fn default_work_root(data_dir: &Path) -> PathBuf {
    let name = data_dir
        .file_name()
        .map_or_else(|| "suanli".into(), |n| n.to_string_lossy().into_owned());
    data_dir.with_file_name(format!("{name}-work"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_user_names_are_valid_and_distinct() {
        assert_eq!(tenant_user_name("research"), "suanli-t-research");
        let odd = tenant_user_name("Research.Team");
        assert!(odd.starts_with("suanli-t-research-team-"), "{odd}");
        let long = tenant_user_name(&"a".repeat(64));
        assert!(long.len() <= 32, "{long}");
        assert_ne!(tenant_user_name("a.b"), tenant_user_name("a-b"));
        assert_ne!(long, tenant_user_name(&"a".repeat(63)));
    }

    #[test]
    fn root_is_found_and_unknown_users_are_not() {
        assert_eq!(lookup("root").map(|i| i.uid), Some(0));
        assert_eq!(lookup("no-such-user-suanli"), None);
        assert_eq!(lookup("nul\0byte"), None);
    }
}
