//! On a real replicated store: artefacts written through the repository into Ceph (radosgw
//! over three OSDs, pool size 3) stay readable and intact with one OSD stopped. On demand, not
//! in `.ci/run` (Ceph takes a minute and ~300 MB to install):
//! `. .ci/ceph.sh && cargo test -p suanli-server --test artifacts_ceph -- --nocapture`.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use suanli_server::artifacts::{Repository, SecretKey, VersionRef, backend};

use common::weights;

fn ceph(conf: &str, args: &[&str]) -> String {
    let out = Command::new("ceph")
        .args(["-c", conf])
        .args(args)
        .output()
        .expect("the ceph command runs");
    assert!(
        out.status.success(),
        "ceph {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn up_osds(conf: &str) -> u64 {
    let stat: serde_json::Value =
        serde_json::from_str(&ceph(conf, &["osd", "stat", "-f", "json"])).unwrap();
    stat["num_up_osds"].as_u64().unwrap()
}

async fn read_all(repo: &Repository, tenant: &str, name: &str, path: &str, from: u64) -> Vec<u8> {
    let manifest = repo
        .manifest(tenant, name, &VersionRef::Latest)
        .await
        .unwrap();
    let (_, mut stream) = repo.open_file(&manifest, path, from).await.unwrap();
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_survive_a_stopped_osd() {
    let (Ok(url), Ok(conf), Ok(dir)) = (
        std::env::var("SUANLI_TEST_CEPH_URL"),
        std::env::var("SUANLI_TEST_CEPH_CONF"),
        std::env::var("SUANLI_TEST_CEPH_DIR"),
    ) else {
        eprintln!("SUANLI_TEST_CEPH_URL is not set; `. .ci/ceph.sh` starts Ceph to run this");
        return;
    };
    assert_eq!(up_osds(&conf), 3, "start with three OSDs up");
    let url = format!("{url}&prefix=ceph-test-{}", std::process::id());
    let store = backend::open(Some(&url), Path::new("/nonexistent")).unwrap();
    let repo = Repository::new(store, SecretKey::generate());
    let files = [
        ("acme", "llama-tiny", "config.json", weights(700, 1)),
        (
            "acme",
            "llama-tiny",
            "model.safetensors",
            weights(20 << 20, 2),
        ),
        ("acme", "ckpt-job-7", "step-100.pt", weights(9 << 20, 3)),
        ("beta", "bert", "pytorch_model.bin", weights(3 << 20, 4)),
    ];
    // One version per artefact holding its files, committed.
    let mut expected = Vec::new();
    for (tenant, name) in [
        ("acme", "llama-tiny"),
        ("acme", "ckpt-job-7"),
        ("beta", "bert"),
    ] {
        let version = repo
            .create_version(tenant, name, "model", "ci")
            .await
            .unwrap()
            .version;
        for (_, _, path, bytes) in files.iter().filter(|f| f.0 == tenant && f.1 == name) {
            let body = futures::stream::iter(
                bytes
                    .chunks(1 << 20)
                    .map(|c| Ok::<_, std::io::Error>(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            );
            repo.put_file(tenant, name, version, path, 0, body)
                .await
                .unwrap();
            expected.push((
                tenant,
                name,
                *path,
                hex::encode(Sha256::digest(bytes)),
                bytes,
            ));
        }
        repo.commit(tenant, name, version).await.unwrap();
    }
    // Every RGW data pool keeps three copies.
    let size = ceph(
        &conf,
        &["osd", "pool", "get", "default.rgw.buckets.data", "size"],
    );
    assert_eq!(size.trim(), "size: 3");
    // Stop osd.1 (as a crashed disk would) and wait until the monitor sees it down.
    let pid = std::fs::read_to_string(format!("{dir}/run/osd.1.pid")).unwrap();
    let pid = pid.trim().to_string();
    assert!(Command::new("kill").arg(&pid).status().unwrap().success());
    let deadline = Instant::now() + Duration::from_secs(60);
    while up_osds(&conf) != 2 {
        assert!(Instant::now() < deadline, "osd.1 not marked down");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    eprintln!("{}", ceph(&conf, &["-s"]));
    for (tenant, name, path, sha, bytes) in &expected {
        let read = read_all(&repo, tenant, name, path, 0).await;
        assert_eq!(
            hex::encode(Sha256::digest(&read)),
            *sha,
            "{tenant}/{name}/{path}"
        );
        let from = bytes.len() as u64 / 2 + 3;
        let rest = read_all(&repo, tenant, name, path, from).await;
        assert!(
            rest == bytes[from as usize..],
            "{tenant}/{name}/{path} from {from}"
        );
    }
    // Still writable degraded (min_size 2): a new checkpoint version lands and reads back.
    let version = repo
        .create_version("acme", "ckpt-job-7", "model", "ci")
        .await
        .unwrap()
        .version;
    let step = weights(2 << 20, 5);
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(step.clone()))]);
    repo.put_file("acme", "ckpt-job-7", version, "step-200.pt", 0, body)
        .await
        .unwrap();
    repo.commit("acme", "ckpt-job-7", version).await.unwrap();
    assert!(read_all(&repo, "acme", "ckpt-job-7", "step-200.pt", 0).await == step);
    // Bring osd.1 back for the next run.
    let started = Command::new("ceph-osd")
        .args(["-c", &conf, "-i", "1"])
        .status()
        .unwrap();
    assert!(started.success());
}
