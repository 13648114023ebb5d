//! The store conformance suite: one case per behaviour, each run against every `Store`
//! implementation (`conformance!` makes a test per case and store). SQLite always; PostgreSQL
//! when `SUANLI_TEST_DATABASE_URL` is set, and then a database that cannot be used fails every
//! case instead of passing.

#[path = "store/accounts.rs"]
mod accounts;
#[path = "store/audit_chain.rs"]
mod audit_chain;
#[path = "store/jobs.rs"]
mod jobs;
#[path = "store/migrate.rs"]
mod migrate;

use std::sync::Arc;

use suanli_server::store::{Role, Store, Tenant, User};

use accounts::{
    quotas_are_replaced_not_added, tenants_are_unique, tokens_are_found_by_hash_and_revoked_once,
    users_are_unique_and_listed,
};
use audit_chain::{
    a_change_and_its_audit_entry_commit_together, concurrent_appends_never_fork_the_chain,
    the_audit_chain_verifies_and_finds_an_edit,
};
use jobs::{
    a_batch_of_job_updates_is_all_or_none, jobs_are_filtered_and_paged_in_sql,
    jobs_round_trip_and_leave_the_active_list, two_jobs,
};

/// A test per case and store: `sqlite::CASE` on a fresh file, `postgres::CASE` on the shared
/// database, one case at a time (cases count audit entries).
macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $case() {
                    super::$case(super::sqlite_store().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $case() {
                    let Some(store) = super::postgres_store().await else {
                        return;
                    };
                    let _one_at_a_time = super::POSTGRES_CASES.lock().await;
                    super::$case(store).await;
                }
            )*
        }
    };
}

conformance!(
    tenants_are_unique,
    users_are_unique_and_listed,
    tokens_are_found_by_hash_and_revoked_once,
    quotas_are_replaced_not_added,
    jobs_round_trip_and_leave_the_active_list,
    jobs_are_filtered_and_paged_in_sql,
    a_batch_of_job_updates_is_all_or_none,
    the_audit_chain_verifies_and_finds_an_edit,
    a_change_and_its_audit_entry_commit_together,
    concurrent_appends_never_fork_the_chain,
);

static POSTGRES_CASES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh SQLite store in a directory of its own.
async fn sqlite_store() -> Arc<dyn Store> {
    let dir = std::env::temp_dir().join(unique("suanli-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let store = suanli_server::SqlStore::open_sqlite(&dir.join("test.db"))
        .await
        .unwrap();
    assert!(store.is_empty().await.unwrap());
    Arc::new(store)
}

/// The PostgreSQL store of `SUANLI_TEST_DATABASE_URL`; `None` (the case is skipped, with the
/// reason on stderr) only when the variable is unset. Set and unusable fails the case.
async fn postgres_store() -> Option<Arc<dyn Store>> {
    let Ok(url) = std::env::var("SUANLI_TEST_DATABASE_URL") else {
        eprintln!(
            "skipped: SUANLI_TEST_DATABASE_URL is not set; set it to postgres://... to run the PostgreSQL store suite"
        );
        return None;
    };
    let store = suanli_server::SqlStore::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("SUANLI_TEST_DATABASE_URL is set but unusable: {error}"));
    assert_eq!(
        store.kind(),
        "postgres",
        "SUANLI_TEST_DATABASE_URL must be a postgres:// URL"
    );
    Some(Arc::new(store))
}

/// A tag that keeps runs against a shared database apart.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// A new tenant named `tag` with a member `TAG-alice`.
async fn tenant_with_user(store: &dyn Store, tag: &str) -> User {
    let tenant = Tenant {
        name: tag.to_string(),
        created_at_s: 10,
    };
    store.create_tenant(&tenant).await.unwrap();
    let user = User {
        name: format!("{tag}-alice"),
        tenant: Some(tag.to_string()),
        role: Role::Member,
        created_at_s: 11,
    };
    store.create_user(&user).await.unwrap();
    user
}

/// A SQLite file keeps everything across a reopen.
#[tokio::test]
async fn a_reopened_sqlite_store_keeps_everything() {
    let dir = std::env::temp_dir().join(unique("suanli-store"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("test.db");
    let store = suanli_server::SqlStore::open_sqlite(&path).await.unwrap();
    let tag = unique("r");
    let user = tenant_with_user(&store, &tag).await;
    let (done, second) = two_jobs(&store, &tag, &user).await;
    drop(store);
    let reopened = suanli_server::SqlStore::open_sqlite(&path).await.unwrap();
    assert_eq!(reopened.get_user(&user.name).await.unwrap(), Some(user));
    assert_eq!(
        reopened.list_jobs(Some(&tag)).await.unwrap(),
        vec![done, second]
    );
    std::fs::remove_dir_all(&dir).ok();
}
