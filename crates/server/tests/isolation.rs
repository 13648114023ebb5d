//! Jobs never run with the server's privileges: a member's job cannot read the admin token, the
//! database or another tenant's logs and working directory.

mod common;

use common::TestServer;
use serde_json::json;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_members_job_cannot_read_the_servers_secrets_or_other_tenants() {
    let (server, alice) = TestServer::with_alice("h100:2").await;
    let mallory = server.user("intruders", "mallory", "member").await;
    if !is_root() {
        // Without root the server cannot switch users, so it must refuse a second tenant.
        server.submit(&alice, json!({ "command": ["true"] })).await;
        let (status, body) = server
            .submit_refused(&mallory, json!({ "command": ["true"] }))
            .await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["error"].as_str().unwrap().contains("not root"),
            "{body}"
        );
        return;
    }
    // Alice's job leaves a log and a file in its working directory.
    let secret = server
        .submit(
            &alice,
            json!({ "command": ["sh", "-c", "echo alice-secret; echo x > $SUANLI_WORK_DIR/notes; id -un"] }),
        )
        .await;
    server.wait_state(&alice, secret, "succeeded").await;
    let alice_log = server.logs(&alice, secret, 0).await;
    assert!(alice_log.contains("suanli-t-research"), "{alice_log}");
    let data = server.data_dir.display().to_string();
    let work = format!("{data}-work");
    let script = format!(
        "id -un; id -u; \
         cat {data}/admin-token; \
         cat {data}/suanli.db; \
         cat {data}/jobs/{secret}/attempt-0/log; \
         ls {work}/suanli-t-research; \
         cat {work}/suanli-t-research/job-{secret}-0/notes; \
         ls {work}; \
         kill -9 1; \
         true"
    );
    let attack = server
        .submit(&mallory, json!({ "command": ["sh", "-c", script] }))
        .await;
    server.wait_state(&mallory, attack, "succeeded").await;
    let log = server.logs(&mallory, attack, 0).await;
    assert!(log.contains("suanli-t-intruders"), "{log}");
    assert!(
        !log.lines().any(|l| l.trim() == "0"),
        "job ran as root: {log}"
    );
    assert!(!log.contains(&server.admin), "admin token leaked: {log}");
    assert!(
        !log.contains("alice-secret"),
        "other tenant's log leaked: {log}"
    );
    assert!(!log.contains("SQLite"), "database leaked: {log}");
    let denied =
        log.matches("Permission denied").count() + log.matches("Operation not permitted").count();
    // admin-token, suanli.db, the log, the other tenant's work dir (ls and cat), the work root
    // listing and the kill.
    assert!(denied >= 7, "{denied} refusals only:\n{log}");

    // The admin token is stored hashed, its file readable by the server's user alone.
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(server.data_dir.join("admin-token")).unwrap();
    assert_eq!(meta.mode() & 0o777, 0o600);
    assert_eq!(
        std::fs::metadata(&server.data_dir).unwrap().mode() & 0o777,
        0o700
    );
}
