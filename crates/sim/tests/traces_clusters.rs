//! Cluster presets (GPU counts from the shipped node lists), cluster files, and fitting a trace
//! to a cluster.

use std::path::PathBuf;
use suanli_sim::presets::{
    self, ClusterError, PRESET_NAMES, load_cluster, parse_cluster_toml, preset, to_cluster_toml,
    total_accelerators,
};
use suanli_sim::trace::{fit_to_cluster, read_trace};

fn data(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(relative)
}

fn accelerators_of(cluster: &suanli_sim::workload::ClusterSpec, accelerator: &str) -> u64 {
    cluster
        .pools
        .iter()
        .filter(|p| p.accelerator == accelerator)
        .map(|p| u64::from(p.nodes * p.accelerators_per_node))
        .sum()
}

#[test]
fn presets_have_the_documented_gpu_counts() {
    let expected = [
        ("gavel-36-36-36", 108),
        ("gavel-300-300-300", 900),
        ("gavel-500-0-0", 500),
        ("alibaba-2023", 6_212),
        ("alibaba-spot-2026", 10_412),
        ("tiresias-n16g4", 64),
        ("tiresias-n32g4", 128),
        ("tiresias-n160g8", 1_280),
        ("tiresias-n256g8", 2_048),
    ];
    assert_eq!(expected.len(), PRESET_NAMES.len());
    for (name, gpus) in expected {
        let cluster = preset(name).unwrap();
        assert_eq!(cluster.name, name);
        assert_eq!(total_accelerators(&cluster), gpus, "{name}");
    }
}

#[test]
fn gavel_preset_is_nine_four_gpu_servers_per_type() {
    let cluster = preset("gavel-36-36-36").unwrap();
    assert_eq!(cluster.pools.len(), 3);
    for pool in &cluster.pools {
        assert_eq!(
            (pool.nodes, pool.accelerators_per_node),
            (9, 4),
            "{}",
            pool.name
        );
    }
    let file = load_cluster(data("clusters/gavel-36-36-36.toml").to_str().unwrap()).unwrap();
    let mut sorted_file = file.pools.clone();
    let mut sorted_preset = cluster.pools.clone();
    sorted_file.sort_by(|a, b| a.name.cmp(&b.name));
    sorted_preset.sort_by(|a, b| a.name.cmp(&b.name));
    assert_eq!(sorted_file, sorted_preset);
    let error = preset("gavel-36-36-35").unwrap_err().to_string();
    assert!(error.contains("not a multiple of 4"), "{error}");
}

#[test]
fn alibaba_presets_group_nodes_by_model_and_size() {
    let pai = preset("alibaba-2023").unwrap();
    for (model, gpus) in [
        ("g2", 4_392),
        ("t4", 842),
        ("g3", 312),
        ("p100", 265),
        ("v100m32", 204),
        ("v100m16", 195),
        ("a10", 2),
    ] {
        assert_eq!(accelerators_of(&pai, model), gpus, "{model}");
    }
    let nodes: u32 = pai.pools.iter().map(|p| p.nodes).sum();
    assert_eq!(nodes, 1_213);
    let spot = preset("alibaba-spot-2026").unwrap();
    let nodes: u32 = spot.pools.iter().map(|p| p.nodes).sum();
    assert_eq!(nodes, 4_278);
    assert_eq!(accelerators_of(&spot, "a100-sxm4-80gb"), 3_456);
    assert_eq!(accelerators_of(&spot, "h800-sxm5-80gb"), 1_752);
    assert_eq!(accelerators_of(&spot, "a10"), 2_494);
    // The all-node list adds 310 CPU-only nodes and no GPU.
    let all = data("alibaba-gpu-2023/openb_node_list_all_node.csv");
    let from_file = load_cluster(all.to_str().unwrap()).unwrap();
    assert_eq!(total_accelerators(&from_file), 6_212);
    let nodes = presets::alibaba_2023_nodes().unwrap();
    assert_eq!(nodes.total_gpus(), 6_212);
}

#[test]
fn unknown_names_list_the_presets() {
    let error = preset("philly").unwrap_err();
    assert!(matches!(error, ClusterError::UnknownPreset { .. }));
    let message = error.to_string();
    for name in PRESET_NAMES {
        assert!(message.contains(name), "{message}");
    }
    let message = load_cluster("no/such/cluster.toml")
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("neither a cluster file nor a preset"),
        "{message}"
    );
    assert!(message.contains("alibaba-2023"), "{message}");
}

#[test]
fn cluster_files_load_validate_and_round_trip() {
    let example = load_cluster(data("clusters/example.toml").to_str().unwrap()).unwrap();
    assert_eq!(example.name, "example-mixed");
    assert_eq!(total_accelerators(&example), (128 + 64 + 32) * 8);
    let mi300x = &example.pools[1];
    assert_eq!((mi300x.nodes_per_leaf, mi300x.leaves_per_pod), (16, 8));
    let written = to_cluster_toml(&example);
    assert_eq!(
        parse_cluster_toml(&written, "w.toml", "x").unwrap(),
        example
    );

    let typo =
        "[[pool]]\nname = \"a\"\naccelerator = \"h100\"\nnodes = 2\nacelerators_per_node = 8\n";
    let message = parse_cluster_toml(typo, "typo.toml", "t")
        .unwrap_err()
        .to_string();
    assert!(message.starts_with("typo.toml: "), "{message}");
    assert!(message.contains("acelerators_per_node"), "{message}");
    let zero =
        "[[pool]]\nname = \"a\"\naccelerator = \"h100\"\nnodes = 0\naccelerators_per_node = 8\n";
    let message = parse_cluster_toml(zero, "zero.toml", "z")
        .unwrap_err()
        .to_string();
    assert!(message.contains("nodes is 0, expected >= 1"), "{message}");
    let message = parse_cluster_toml("name = \"x\"\n", "empty.toml", "e")
        .unwrap_err()
        .to_string();
    assert!(message.contains("no [[pool]]"), "{message}");
}

#[test]
fn fitting_expands_any_type_and_sets_aside_impossible_gangs() {
    let tiresias = read_trace(&data("tiresias/60_job.csv"), None).unwrap();
    let cluster = preset("gavel-36-36-36").unwrap();
    let (jobs, fit) = fit_to_cluster(tiresias.jobs, &cluster);
    assert_eq!(fit.any_type_expanded, 60);
    assert_eq!(jobs.len(), 60);
    assert!(jobs.iter().all(|j| j.spec.work.units_per_s.len() == 3));

    // ee9e8c holds 5 jobs of 32 GPUs and 1 of 20: no 36-GPU pool can hold more than 36.
    let gavel = read_trace(&data("gavel/seed0/ee9e8c.trace"), None).unwrap();
    let (jobs, fit) = fit_to_cluster(gavel.jobs, &cluster);
    assert!(fit.unrunnable.is_empty(), "{fit}");
    assert_eq!(jobs.len(), 2000);
    let tiny = preset("gavel-4-0-0").unwrap();
    let gavel = read_trace(&data("gavel/seed0/ee9e8c.trace"), None).unwrap();
    let (jobs, fit) = fit_to_cluster(gavel.jobs, &tiny);
    assert_eq!(jobs.len(), 975 + 47 + 321, "1, 2 and 4-GPU jobs fit 4 V100");
    assert_eq!(fit.unrunnable.len(), 2000 - jobs.len());
}
