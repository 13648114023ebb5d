//! Simulator inputs beyond the stated bounds (`suanli_sim::limits`) are refused with one line
//! before anything is allocated, and the spec and cluster parsers never panic (a property test
//! with a fixed budget that runs on every `cargo test`).

use proptest::prelude::*;
use suanli_sim::presets::parse_cluster_toml;
use suanli_sim::synthetic::SyntheticSpec;

#[test]
fn issue_9_reproducers_are_refused_before_allocating() {
    let started = std::time::Instant::now();
    for spec in [
        "jobs=1000000000,accelerators=512",
        "jobs=100,accelerators=1000000000,per_node=8",
    ] {
        let error = spec.parse::<SyntheticSpec>().expect_err(spec).to_string();
        assert!(
            !error.contains('\n') && error.contains("at most 10000000"),
            "{error}"
        );
    }
    let cluster = "[[pool]]\nname = \"big\"\naccelerator = \"h100\"\nnodes = 1000000000\naccelerators_per_node = 8\n";
    let error = parse_cluster_toml(cluster, "big.toml", "big")
        .expect_err("refused")
        .to_string();
    assert!(error.contains("at most 10000000"), "{error}");
    assert!(started.elapsed() < std::time::Duration::from_secs(1));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn synthetic_specs_parse_or_fail_cleanly(
        jobs in prop_oneof![Just(0u64), 1u64..2000, Just(u64::MAX)],
        accelerators in prop_oneof![Just(0u64), 1u64..4096, Just(4_294_967_296u64)],
        per_node in prop_oneof![Just(0u64), 1u64..16],
        load in prop_oneof![Just("0".to_string()), Just("NaN".to_string()), Just("0.8".to_string()), Just("-1".to_string())],
    ) {
        let text = format!("jobs={jobs},accelerators={accelerators},per_node={per_node},load={load}");
        if let Err(error) = text.parse::<SyntheticSpec>() {
            prop_assert!(!error.to_string().contains('\n'));
        }
    }

    #[test]
    fn cluster_files_never_panic(
        nodes in prop_oneof![Just(0u64), 1u64..100, Just(4_294_967_295u64), Just(u64::MAX)],
        per_node in prop_oneof![Just(0u64), 1u64..16, Just(4_294_967_295u64)],
        text in "\\PC{0,80}",
    ) {
        let file = format!("[[pool]]\nname = \"p\"\naccelerator = \"h100\"\nnodes = {nodes}\naccelerators_per_node = {per_node}\n");
        let _ = parse_cluster_toml(&file, "c.toml", "c");
        let _ = parse_cluster_toml(&text, "c.toml", "c");
    }
}
