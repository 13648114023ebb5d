//! Conformance cases for tenants, users, tokens and quotas.

use std::sync::Arc;

use suanli_server::store::{Quota, Role, Store, StoreError, Tenant, User};

use super::{tenant_with_user, unique};

pub async fn tenants_are_unique(store: Arc<dyn Store>) {
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

pub async fn users_are_unique_and_listed(store: Arc<dyn Store>) {
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

pub async fn tokens_are_found_by_hash_and_revoked_once(store: Arc<dyn Store>) {
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

pub async fn quotas_are_replaced_not_added(store: Arc<dyn Store>) {
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
