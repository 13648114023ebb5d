//! An existing database upgrades in place: `fixtures/schema-v0.sqlite` was written by the server
//! before versioned migrations (see `fixtures/make-schema-v0.sh`); opening it applies the
//! migrations and keeps every row. Part of the `store` test binary (no extra link step).

use std::path::PathBuf;

use sqlx::Row;
use suanli_server::store::{JobState, Role, migrate::LATEST_VERSION};
use suanli_server::{SqlStore, Store, audit};

/// A copy of the fixture in a directory of its own (the store writes next to it).
fn fixture_copy() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!("suanli-migrate-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("suanli.db");
    let fixture = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/schema-v0.sqlite"
    );
    std::fs::copy(fixture, &copy).unwrap();
    copy
}

/// Versions recorded in `_sqlx_migrations`, and whether the version-2 index exists.
async fn schema_of(path: &std::path::Path) -> (Vec<i64>, bool) {
    let url = format!("sqlite://{}", path.display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let versions =
        sqlx::query("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await
            .map(|rows| rows.iter().map(|r| r.get::<i64, _>(0)).collect())
            .unwrap_or_default();
    let index =
        sqlx::query("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'tokens_user'")
            .fetch_optional(&pool)
            .await
            .unwrap()
            .is_some();
    pool.close().await;
    (versions, index)
}

#[tokio::test]
async fn a_database_from_before_migrations_upgrades_in_place() {
    let path = fixture_copy();
    // The fixture is what the old server wrote: no version table, no version-2 index.
    assert_eq!(schema_of(&path).await, (Vec::new(), false));

    let store = SqlStore::open_sqlite(&path).await.unwrap();
    let jobs = store.list_jobs(None).await.unwrap();
    let states: Vec<(&str, JobState)> = jobs
        .iter()
        .map(|j| (j.spec.name.as_str(), j.state))
        .collect();
    assert_eq!(
        states,
        [
            ("done", JobState::Succeeded),
            ("broken", JobState::Failed),
            ("long", JobState::Running),
        ]
    );
    assert_eq!(
        jobs[1].reason,
        "exit code 1; no restarts left (1 of 1 used)"
    );
    assert_eq!(jobs[2].run.as_ref().unwrap().devices, [0, 1]);
    let alice = store.get_user("alice").await.unwrap().unwrap();
    assert_eq!(
        (alice.tenant.as_deref(), alice.role),
        (Some("research"), Role::Member)
    );
    let quotas = store.list_quotas().await.unwrap();
    assert_eq!(quotas.len(), 1);
    assert_eq!(
        (quotas[0].tenant.as_str(), quotas[0].limit),
        ("research", 2)
    );
    assert_eq!(
        store.list_tokens().await.unwrap().len(),
        2,
        "admin's and alice's"
    );
    // The old chain still verifies: 9 entries (bootstrap x2, tenant, user, quota, token, 3 jobs).
    let (entries, _) = audit::verify(&store.list_audit().await.unwrap()).unwrap();
    assert_eq!(entries, 9);
    // New rows continue the old ones.
    let next = store
        .insert_job(&jobs[0].spec, 1_800_000_000)
        .await
        .unwrap();
    assert_eq!(next.id, 4);
    drop(store);

    assert_eq!(
        schema_of(&path).await,
        ((1..=LATEST_VERSION).collect(), true)
    );
    // Opening again applies nothing twice.
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    assert_eq!(store.list_jobs(None).await.unwrap().len(), 4);
    drop(store);
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}

#[tokio::test]
async fn a_new_database_gets_every_version() {
    let path = fixture_copy();
    std::fs::remove_file(&path).unwrap();
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    assert!(store.is_empty().await.unwrap());
    drop(store);
    assert_eq!(
        schema_of(&path).await,
        ((1..=LATEST_VERSION).collect(), true)
    );
    std::fs::remove_dir_all(path.parent().unwrap()).unwrap();
}
