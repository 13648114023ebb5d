//! Conformance cases for the audit chain: it verifies, finds an edited row, commits with the
//! change it records, and never forks under concurrent appends.

use std::sync::Arc;

use suanli_server::audit;
use suanli_server::store::{Change, Changed, NewAuditEvent, Quota, Store, StoreError, Tenant};

use super::{tenant_with_user, two_jobs, unique};

pub async fn the_audit_chain_verifies_and_finds_an_edit(store: Arc<dyn Store>) {
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
pub async fn a_change_and_its_audit_entry_commit_together(store: Arc<dyn Store>) {
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
pub async fn concurrent_appends_never_fork_the_chain(store: Arc<dyn Store>) {
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
