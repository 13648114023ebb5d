//! The store conformance suite: one case per behaviour, each run against every `Store`
//! implementation (`conformance!` makes a test per case and store). SQLite always; PostgreSQL
//! when `SUANLI_TEST_DATABASE_URL` is set, and then a database that cannot be used fails every
//! case instead of passing.

#[path = "store/migrate.rs"]
mod migrate;

use std::collections::BTreeMap;
use std::sync::Arc;

use suanli_server::audit;
use suanli_server::store::{
    Change, Changed, JobRecord, JobSpec, JobState, NewAuditEvent, Quota, Role, RunRecord, RunSpec,
    Store, StoreError, Tenant, User,
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

async fn tenants_are_unique(store: Arc<dyn Store>) {
    let tenant = Tenant {
        name: unique("t"),
        created_at_s: 10,
    };
    store.create_tenant(&tenant).await.unwrap();
    assert!(matches!(
        store.create_tenant(&tenant).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.list_tenants().await.unwrap().contains(&tenant));
}

async fn users_are_unique_and_listed(store: Arc<dyn Store>) {
    let tag = unique("u");
    let user = tenant_with_user(store.as_ref(), &tag).await;
    assert!(!store.is_empty().await.unwrap());
    assert_eq!(
        store.get_user(&user.name).await.unwrap(),
        Some(user.clone())
    );
    assert_eq!(
        store.get_user(&format!("{tag}-nobody")).await.unwrap(),
        None
    );
    assert!(matches!(
        store.create_user(&user).await,
        Err(StoreError::Conflict(_))
    ));
    let admin = User {
        name: format!("{tag}-root"),
        tenant: None,
        role: Role::Admin,
        created_at_s: 12,
    };
    store.create_user(&admin).await.unwrap();
    let users = store.list_users().await.unwrap();
    assert!(users.contains(&user) && users.contains(&admin));
}

async fn tokens_are_found_by_hash_and_revoked_once(store: Arc<dyn Store>) {
    let user = tenant_with_user(store.as_ref(), &unique("k")).await;
    let (secret, record) = suanli_server::auth::new_token(&user.name, 20, Some(1000));
    store.insert_token(&record).await.unwrap();
    let found = store
        .token_by_hash(&suanli_server::auth::token_hash(&secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found, record);
    assert_ne!(found.hash, secret);
    assert!(store.token_by_hash("nope").await.unwrap().is_none());
    assert!(store.revoke_token(&record.id, 30).await.unwrap());
    assert!(!store.revoke_token(&record.id, 31).await.unwrap());
    assert_eq!(
        store
            .get_token(&record.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_s,
        Some(30)
    );
    assert!(
        store
            .list_tokens()
            .await
            .unwrap()
            .iter()
            .any(|t| t.id == record.id)
    );
}

async fn quotas_are_replaced_not_added(store: Arc<dyn Store>) {
    let tag = unique("q");
    tenant_with_user(store.as_ref(), &tag).await;
    let quota = Quota {
        tenant: tag.clone(),
        accelerator: "h100-sxm5-80gb".into(),
        limit: 8,
    };
    store.set_quota(&quota).await.unwrap();
    store
        .set_quota(&Quota {
            limit: 16,
            ..quota.clone()
        })
        .await
        .unwrap();
    let quotas: Vec<Quota> = store
        .list_quotas()
        .await
        .unwrap()
        .into_iter()
        .filter(|q| q.tenant == tag)
        .collect();
    assert_eq!(quotas, vec![Quota { limit: 16, ..quota }]);
}

/// Two jobs of tenant `tag`: the first ran and succeeded, the second is queued.
async fn two_jobs(store: &dyn Store, tag: &str, user: &User) -> (JobRecord, JobRecord) {
    let spec = JobSpec {
        name: "train".into(),
        tenant: tag.to_string(),
        user: user.name.clone(),
        run: RunSpec {
            command: vec!["sh".into(), "-c".into(), "echo hi".into()],
            env: BTreeMap::from([("A".into(), "1".into())]),
            accelerators: vec!["h100-sxm5-80gb".into()],
            priority: 3,
            checkpoint_dir: Some("/tmp/ckpt".into()),
            max_restarts: 2,
            time_limit_s: None,
            expected_s: None,
        },
        gpus: 2,
        processes: 2,
        goal: None,
    };
    let first = store.insert_job(&spec, 100).await.unwrap();
    let second = store.insert_job(&spec, 101).await.unwrap();
    assert!(second.id > first.id);
    assert_eq!(first.state, JobState::Queued);
    assert_eq!(store.get_job(first.id).await.unwrap(), Some(first.clone()));
    let mut running = first.clone();
    running.state = JobState::Running;
    running.reason = "running".into();
    running.attempts = 1;
    running.started_at_s = Some(105);
    running.run = Some(RunRecord {
        attempt: 0,
        pool: "local-h100-sxm5-80gb".into(),
        accelerator: "h100-sxm5-80gb".into(),
        node: "n0".into(),
        devices: vec![0, 1],
        run_dir: "/tmp/run".into(),
        started_at_s: 105,
        cancel_requested: false,
    });
    store.update_job(&running).await.unwrap();
    assert_eq!(
        store.get_job(first.id).await.unwrap(),
        Some(running.clone())
    );
    let mut done = running.clone();
    done.state = JobState::Succeeded;
    done.exit_code = Some(0);
    done.finished_at_s = Some(110);
    store.update_job(&done).await.unwrap();
    (done, second)
}

async fn jobs_round_trip_and_leave_the_active_list(store: Arc<dyn Store>) {
    let tag = unique("j");
    let user = tenant_with_user(store.as_ref(), &tag).await;
    let (done, second) = two_jobs(store.as_ref(), &tag, &user).await;
    assert_eq!(store.get_job(done.id).await.unwrap(), Some(done.clone()));
    let listed = store.list_jobs(Some(&tag)).await.unwrap();
    assert_eq!(listed, vec![done.clone(), second.clone()]);
    assert_eq!(listed, vec![done.clone(), second.clone()]);
    let active: Vec<i64> = store
        .list_active_jobs()
        .await
        .unwrap()
        .into_iter()
        .filter(|j| j.spec.tenant == tag)
        .map(|j| j.id)
        .collect();
    assert_eq!(active, vec![second.id]);
    let missing = suanli_server::store::JobRecord { id: -5, ..done };
    assert!(matches!(
        store.update_job(&missing).await,
        Err(StoreError::NotFound(_))
    ));
}

async fn a_batch_of_job_updates_is_all_or_none(store: Arc<dyn Store>) {
    let tag = unique("b");
    let user = tenant_with_user(store.as_ref(), &tag).await;
    let (done, second) = two_jobs(store.as_ref(), &tag, &user).await;
    // Two jobs in one batch: both written, in order (the later write of a job wins).
    let mut started = second.clone();
    started.state = JobState::Running;
    started.reason = "running on n1".into();
    started.attempts = 1;
    let mut ended = started.clone();
    ended.state = JobState::Failed;
    ended.exit_code = Some(3);
    let mut noted = done.clone();
    noted.reason = "noted in a batch".into();
    store
        .update_jobs(&[started, noted.clone(), ended.clone()])
        .await
        .unwrap();
    assert_eq!(store.get_job(second.id).await.unwrap(), Some(ended.clone()));
    assert_eq!(store.get_job(done.id).await.unwrap(), Some(noted.clone()));
    // A batch with an unknown job fails and writes none of its jobs.
    let mut requeued = ended.clone();
    requeued.state = JobState::Queued;
    let missing = JobRecord {
        id: -7,
        ..noted.clone()
    };
    assert!(matches!(
        store.update_jobs(&[requeued, missing]).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.get_job(second.id).await.unwrap(), Some(ended));
    store.update_jobs(&[]).await.unwrap();
}

async fn jobs_are_filtered_and_paged_in_sql(store: Arc<dyn Store>) {
    let tag = unique("p");
    let user = tenant_with_user(store.as_ref(), &tag).await;
    let (done, second) = two_jobs(store.as_ref(), &tag, &user).await;
    let listed = vec![done.clone(), second.clone()];
    let store = store.as_ref();
    let page = |state, after_id, limit| suanli_server::store::JobQuery {
        tenant: Some(tag.clone()),
        state,
        after_id,
        limit,
    };
    let query = |q| async move { store.query_jobs(&q).await.unwrap() };
    assert_eq!(query(page(None, None, 10)).await, listed);
    assert_eq!(query(page(None, None, 1)).await, vec![done.clone()]);
    assert_eq!(
        query(page(None, Some(done.id), 1)).await,
        vec![second.clone()]
    );
    assert_eq!(
        query(page(Some(JobState::Queued), None, 10)).await,
        vec![second.clone()]
    );
    assert!(
        query(page(Some(JobState::Failed), None, 10))
            .await
            .is_empty()
    );
}

async fn the_audit_chain_verifies_and_finds_an_edit(store: Arc<dyn Store>) {
    let user = tenant_with_user(store.as_ref(), &unique("a")).await;
    let before = store.list_audit().await.unwrap().len();
    for i in 0..3 {
        store
            .append_audit(&NewAuditEvent {
                at_ms: 1000 + i,
                actor: user.name.clone(),
                action: "POST /api/v1/jobs".into(),
                target: format!("job {i}"),
                outcome: "201".into(),
            })
            .await
            .unwrap();
    }
    let chain = store.list_audit().await.unwrap();
    assert_eq!(chain.len(), before + 3);
    let (entries, head) = audit::verify(&chain).unwrap();
    assert_eq!(entries, chain.len());
    assert_eq!(head, chain.last().unwrap().hash);
    let mut edited = chain.clone();
    edited[before + 1].outcome = "200".into();
    assert_eq!(audit::verify(&edited).unwrap_err().seq, (before + 2) as i64);
}

/// A change and its audit entry commit together, or neither does.
async fn a_change_and_its_audit_entry_commit_together(store: Arc<dyn Store>) {
    let tag = unique("c");
    let user = tenant_with_user(store.as_ref(), &tag).await;
    two_jobs(store.as_ref(), &tag, &user).await;
    // A revoked token, which revoking again leaves unchanged.
    let (_secret, record) = suanli_server::auth::new_token(&user.name, 20, None);
    store.insert_token(&record).await.unwrap();
    store.revoke_token(&record.id, 30).await.unwrap();
    audited_changes(store.as_ref(), &tag, &user.name).await;
}

fn entry(actor: &str, action: &str, target: &str) -> NewAuditEvent {
    NewAuditEvent {
        at_ms: 2000,
        actor: actor.into(),
        action: action.into(),
        target: target.into(),
        outcome: "201".into(),
    }
}

async fn chain_len(store: &dyn Store) -> usize {
    store.list_audit().await.unwrap().len()
}

async fn audited_changes(store: &dyn Store, tag: &str, user: &str) {
    let before = chain_len(store).await;

    // A change and its entry, in one call.
    let tenant = Tenant {
        name: format!("{tag}-audited"),
        created_at_s: 20,
    };
    let (changed, appended) = store
        .change_audited(
            Change::CreateTenant(&tenant),
            &entry(user, "POST /api/v1/tenants", &tenant.name),
        )
        .await
        .unwrap();
    assert_eq!(changed, Changed::Done);
    let appended = appended.unwrap();
    assert_eq!(appended.target, tenant.name);
    assert!(store.list_tenants().await.unwrap().contains(&tenant));
    let chain = store.list_audit().await.unwrap();
    assert_eq!(chain.len(), before + 1);
    assert_eq!(chain.last().unwrap(), &appended);
    audit::verify(&chain).unwrap();

    // A refused change appends nothing: the transaction rolls back as a whole.
    assert!(matches!(
        store
            .change_audited(
                Change::CreateTenant(&tenant),
                &entry(user, "POST /api/v1/tenants", "again")
            )
            .await,
        Err(StoreError::Conflict(_))
    ));
    let jobs = store.list_jobs(Some(tag)).await.unwrap();
    let missing = suanli_server::store::JobRecord {
        id: -7,
        ..jobs[0].clone()
    };
    assert!(matches!(
        store
            .change_audited(
                Change::UpdateJob(&missing),
                &entry(user, "POST /api/v1/jobs/-7/cancel", "")
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(chain_len(store).await, before + 1);

    // A change that changes nothing appends nothing either (the caller audits the request).
    let tokens = store.list_tokens().await.unwrap();
    let revoked = tokens.iter().find(|t| t.revoked_at_s.is_some()).unwrap();
    assert_eq!(
        store
            .change_audited(
                Change::RevokeToken {
                    id: &revoked.id,
                    now_s: 40
                },
                &entry(user, "DELETE /api/v1/tokens", &revoked.id),
            )
            .await
            .unwrap(),
        (Changed::Unchanged, None)
    );
    assert_eq!(chain_len(store).await, before + 1);

    // A new job's id is appended to its entry's target.
    let (job, appended) = store
        .insert_job_audited(
            &jobs[0].spec,
            200,
            &entry(user, "POST /api/v1/jobs", "/api/v1/jobs"),
        )
        .await
        .unwrap();
    assert_eq!(store.get_job(job.id).await.unwrap().as_ref(), Some(&job));
    assert_eq!(appended.target, format!("/api/v1/jobs job {}", job.id));
    audit::verify(&store.list_audit().await.unwrap()).unwrap();
}

/// Concurrent appends, with and without a change, never fork the chain: every one gets its own
/// sequence number and the chain verifies.
async fn concurrent_appends_never_fork_the_chain(store: Arc<dyn Store>) {
    let tag = unique("c");
    let before = store.list_audit().await.unwrap().len();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..24 {
        let store = store.clone();
        let tag = tag.clone();
        tasks.spawn(async move {
            let event = entry("concurrent", "PUT /api/v1/quotas", &format!("{tag} {i}"));
            if i % 2 == 0 {
                let quota = Quota {
                    tenant: tag.clone(),
                    accelerator: format!("type-{i}"),
                    limit: i,
                };
                store
                    .change_audited(Change::SetQuota(&quota), &event)
                    .await
                    .unwrap()
                    .1
                    .unwrap()
            } else {
                store.append_audit(&event).await.unwrap()
            }
        });
    }
    let mut seqs = Vec::new();
    while let Some(appended) = tasks.join_next().await {
        seqs.push(appended.unwrap().seq);
    }
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), 24, "two appends got the same sequence number");
    let chain = store.list_audit().await.unwrap();
    assert!(chain.len() >= before + 24);
    audit::verify(&chain).unwrap();
    let quotas = store.list_quotas().await.unwrap();
    assert_eq!(quotas.iter().filter(|q| q.tenant == tag).count(), 12);
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
