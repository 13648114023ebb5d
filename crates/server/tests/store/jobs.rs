//! Conformance cases for jobs: round trips, all-or-none batches of updates, and filters and
//! pages done in SQL.

use std::collections::BTreeMap;
use std::sync::Arc;

use suanli_server::store::{
    JobRecord, JobSpec, JobState, RunRecord, RunSpec, Store, StoreError, User,
};

use super::{tenant_with_user, unique};

/// Two jobs of tenant `tag`: the first ran and succeeded, the second is queued.
pub async fn two_jobs(store: &dyn Store, tag: &str, user: &User) -> (JobRecord, JobRecord) {
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

pub async fn jobs_round_trip_and_leave_the_active_list(store: Arc<dyn Store>) {
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

pub async fn a_batch_of_job_updates_is_all_or_none(store: Arc<dyn Store>) {
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

pub async fn jobs_are_filtered_and_paged_in_sql(store: Arc<dyn Store>) {
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
