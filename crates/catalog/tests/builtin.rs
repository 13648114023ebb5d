//! Checks on the embedded catalog data: it parses, ids are clean, figures are present and model
//! shapes reproduce the parameter counts their authors report.

use suanli_catalog::{BUILTIN_FILES, Catalog, CatalogError, Precision};

#[test]
fn every_builtin_file_parses_on_its_own() {
    for (name, text) in BUILTIN_FILES {
        let mut catalog = Catalog::default();
        catalog
            .merge_toml(text, name)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let entries = catalog.accelerators.len() + catalog.nodes.len() + catalog.models.len();
        assert!(entries > 0, "{name} holds no entries");
    }
}

fn assert_clean_ids<'a>(kind: &str, ids: impl Iterator<Item = &'a String>) {
    let mut seen = std::collections::BTreeSet::new();
    for id in ids {
        assert_eq!(id, &id.to_lowercase(), "{kind} id `{id}` is not lower-case");
        assert!(
            !id.contains(char::is_whitespace),
            "{kind} id `{id}` has spaces"
        );
        assert!(seen.insert(id.clone()), "{kind} id `{id}` appears twice");
    }
}

#[test]
fn ids_are_unique_and_lower_case() {
    let catalog = Catalog::builtin();
    assert_clean_ids("accelerator", catalog.accelerators.iter().map(|a| &a.id));
    assert_clean_ids("node", catalog.nodes.iter().map(|n| &n.id));
    assert_clean_ids("model", catalog.models.iter().map(|m| &m.id));
}

#[test]
fn no_alias_resolves_to_two_entries() {
    let catalog = Catalog::builtin();
    let mut names = std::collections::BTreeMap::new();
    let accelerator_names = catalog.accelerators.iter().flat_map(|a| {
        std::iter::once(&a.id)
            .chain(&a.aliases)
            .map(move |n| (n, &a.id))
    });
    let model_names = catalog.models.iter().flat_map(|m| {
        std::iter::once(&m.id)
            .chain(&m.aliases)
            .map(move |n| (n, &m.id))
    });
    for (kind, list) in [
        ("accelerator", accelerator_names.collect::<Vec<_>>()),
        ("model", model_names.collect::<Vec<_>>()),
    ] {
        for (name, id) in list {
            let key = (kind, name.to_lowercase());
            if let Some(other) = names.insert(key, id) {
                assert_eq!(
                    other, id,
                    "{kind} name `{name}` names both `{other}` and `{id}`"
                );
            }
        }
    }
}

#[test]
fn the_required_accelerator_ids_exist() {
    let catalog = Catalog::builtin();
    for id in [
        "a100-sxm4-40gb",
        "a100-sxm4-80gb",
        "a100-pcie-80gb",
        "a800-sxm4-80gb",
        "h100-sxm5-80gb",
        "h100-pcie-80gb",
        "h100-nvl-94gb",
        "h800-sxm5-80gb",
        "h200-sxm-141gb",
        "h200-nvl-141gb",
        "h20-96gb",
        "gh200-96gb",
        "b200-sxm-180gb",
        "gb200",
        "gb300",
        "l40s",
        "l20",
        "mi250x",
        "mi300x",
        "mi325x",
        "mi350x",
        "mi355x",
        "ascend-910b",
        "ascend-910c",
        "gaudi2",
        "gaudi3",
        "tpu-v4",
        "tpu-v5e",
        "tpu-v5p",
        "tpu-v6e",
        "trainium1",
        "trainium2",
        "inferentia2",
        "groq-lpu",
    ] {
        let found = catalog.accelerators.iter().any(|a| a.id == id);
        assert!(found, "accelerator `{id}` is missing");
    }
}

#[test]
fn every_accelerator_has_a_source_memory_and_a_16_bit_peak() {
    for a in &Catalog::builtin().accelerators {
        assert!(!a.source.trim().is_empty(), "{}: no source", a.id);
        assert!(
            !a.network_source.trim().is_empty(),
            "{}: no network_source",
            a.id
        );
        assert!(a.memory_gb > 0.0, "{}: memory_gb", a.id);
        assert!(
            a.memory_bandwidth_tb_per_s > 0.0,
            "{}: memory bandwidth",
            a.id
        );
        let peak = a.peak_flops_per_s(Precision::Bf16);
        assert!(peak.is_some_and(|p| p > 0.0), "{}: no bf16/fp16 peak", a.id);
        assert!(a.scaleup.domain_size >= 1, "{}: domain_size", a.id);
        assert!(a.default_per_node >= 1, "{}: default_per_node", a.id);
        assert!(a.scaleout_gb_per_s > 0.0, "{}: scale-out", a.id);
        if a.scaleup.link == "none" {
            assert_eq!(a.scaleup.domain_size, 1, "{}: no link but a domain", a.id);
            assert_eq!(a.scaleup.bandwidth_gb_per_s_bidir, 0.0, "{}", a.id);
        } else {
            assert!(
                a.scaleup.bandwidth_gb_per_s_bidir > 0.0,
                "{}: link speed",
                a.id
            );
        }
        if let Some(tdp) = a.tdp_w {
            assert!(tdp > 0.0, "{}: tdp_w must be omitted, not zero", a.id);
        }
    }
}

#[test]
fn every_node_names_a_known_accelerator_and_a_source() {
    let catalog = Catalog::builtin();
    for node in &catalog.nodes {
        assert!(
            catalog.accelerator(&node.accelerator).is_ok(),
            "{}",
            node.id
        );
        assert!(!node.source.trim().is_empty(), "{}: no source", node.id);
        assert!(node.accelerators_per_node >= 1, "{}", node.id);
        assert!(node.nic_gb_per_s_per_accelerator > 0.0, "{}", node.id);
    }
    let p4d = catalog.node("p4d.24xlarge").unwrap();
    assert_eq!(p4d.nic_gb_per_s_per_accelerator, 6.25);
}

#[test]
fn model_shapes_reproduce_reported_parameter_counts_within_3_percent() {
    let mut failures = Vec::new();
    for model in &Catalog::builtin().models {
        let reported = model
            .params_b_reported
            .expect("every built-in model reports params");
        let counted = model.total_params() as f64 / 1e9;
        let error = counted / reported - 1.0;
        if error.abs() > 0.03 {
            failures.push(format!(
                "{}: counted {counted:.2}B, reported {reported}B ({:+.1}%)",
                model.id,
                error * 100.0
            ));
        }
        assert!(!model.source.trim().is_empty(), "{}: no source", model.id);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn moe_active_parameters_match_the_papers() {
    let catalog = Catalog::builtin();
    // Jiang et al. 2024: 12.9B active; DeepSeek-V3 report: 37B active.
    for (id, active_b) in [("mixtral-8x7b", 12.9), ("deepseek-v3", 37.0)] {
        let counted = catalog.model(id).unwrap().active_params() as f64 / 1e9;
        assert!(
            (counted / active_b - 1.0).abs() < 0.03,
            "{id}: {counted:.2}B active, paper says {active_b}B"
        );
    }
}

#[test]
fn every_validation_csv_model_name_resolves() {
    let catalog = Catalog::builtin();
    // "GPT 1.7B" names two shapes in the CSV and is deliberately not an alias.
    for name in [
        "GPT 3.6B",
        "GPT 7.5B",
        "GPT 18B",
        "GPT 39B",
        "GPT 76B",
        "GPT 145B",
        "GPT 310B",
        "GPT 530B",
        "GPT 1T",
        "GPT 174.6B",
        "GPT 529.6B",
        "GPT 22B",
        "GPT 175B",
        "GPT 7.1B",
        "GPT 16B",
        "GPT 32B",
        "GPT 70B",
        "GPT 119B",
        "GPT 177B",
        "GPT 314B",
        "GPT 462B",
        "MT-NLG 530B",
        "Llama 2 7B",
        "Llama 2 70B",
    ] {
        assert!(catalog.model(name).is_ok(), "`{name}` does not resolve");
    }
    assert!(catalog.model("GPT 1.7B").is_err());
    let narayanan = catalog.model("megatron-gpt-1.7b").unwrap();
    let mcore = catalog.model("mcore-gpt-1.7b").unwrap();
    assert_ne!(narayanan.hidden, mcore.hidden);
}

#[test]
fn lookups_ignore_case_and_accept_aliases() {
    let catalog = Catalog::builtin();
    assert_eq!(catalog.accelerator("H100").unwrap().id, "h100-sxm5-80gb");
    assert_eq!(
        catalog.accelerator("h100-SXM5-80gb").unwrap().id,
        "h100-sxm5-80gb"
    );
    assert_eq!(catalog.accelerator("910B").unwrap().id, "ascend-910b");
    assert_eq!(catalog.accelerator(" MI300X ").unwrap().id, "mi300x");
    let llama = catalog.model("META-LLAMA/llama-2-7b-HF").unwrap();
    assert_eq!(llama.id, "llama-2-7b");
    assert_eq!(catalog.model("Qwen/Qwen2.5-72B").unwrap().id, "qwen2.5-72b");
}

#[test]
fn unknown_names_come_with_suggestions() {
    let catalog = Catalog::builtin();
    let error = catalog.accelerator("h1000-sxm5").unwrap_err();
    let CatalogError::Unknown { suggestions, .. } = &error else {
        panic!("expected an unknown-name error, got {error}");
    };
    assert_eq!(suggestions[0], "h100-sxm5-80gb");
    let message = error.to_string();
    assert!(message.contains("did you mean"), "{message}");
    assert!(message.contains("h100-sxm5-80gb"), "{message}");
    let message = catalog.model("lama-3.1-70b").unwrap_err().to_string();
    assert!(message.contains("llama-3.1-70b"), "{message}");
}

#[test]
fn a_user_file_overrides_a_builtin_by_id_and_adds_new_entries() {
    let mut catalog = Catalog::builtin();
    let before = catalog.accelerators.len();
    let user = r#"
        [[accelerator]]
        id = "h100-sxm5-80gb"
        name = "H100 on our cluster, power-capped"
        vendor = "NVIDIA"
        form_factor = "SXM5"
        memory_type = "HBM3"
        memory_gb = 80.0
        memory_bandwidth_tb_per_s = 3.35
        dense_tflops = { bf16 = 800.0 }
        scaleup = { link = "NVLink4", domain_size = 8, bandwidth_gb_per_s_bidir = 900.0 }
        scaleout_gb_per_s = 25.0
        default_per_node = 8
        confidence = "medium"
        source = "our own measurements"

        [[model]]
        id = "tiny"
        name = "Tiny"
        params_b_reported = 0.1
        layers = 2
        hidden = 64
        heads = 4
        kv_heads = 4
        ffn = 256
        vocab = 1000
        mlp = "swiglu"
    "#;
    catalog.merge_toml(user, "user.toml").unwrap();
    assert_eq!(
        catalog.accelerators.len(),
        before,
        "override must replace, not add"
    );
    let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap();
    assert_eq!(h100.dense_tflops.bf16, Some(800.0));
    assert_eq!(h100.scaleout_gb_per_s, 25.0);
    assert!(catalog.model("TINY").is_ok());
}

#[test]
fn a_bad_user_file_names_the_file_and_the_problem() {
    let mut catalog = Catalog::default();
    let error = catalog
        .merge_toml("[[accelerator]]\nid = \"x\"\n", "mine.toml")
        .unwrap_err()
        .to_string();
    assert!(error.contains("mine.toml"), "{error}");
    assert!(error.contains("missing field"), "{error}");
}

#[test]
fn blackwell_nvl72_and_mi350_figures_match_the_reference_additions() {
    // Figures from shared/catalog/accelerators-reference-additions.csv (per GPU, dense).
    let catalog = Catalog::builtin();
    let gb200 = catalog.accelerator("gb200").unwrap();
    assert_eq!(gb200.scaleup.domain_size, 72, "NVL72 is one NVLink domain");
    assert_eq!(gb200.default_per_node, 4, "4 GPUs per compute tray");
    assert_eq!(gb200.dense_tflops.bf16, Some(2500.0));
    assert_eq!(gb200.dense_tflops.fp8, Some(5000.0));
    let gb300 = catalog.accelerator("GB300").unwrap();
    assert_eq!(gb300.dense_tflops.fp4, Some(15000.0));
    assert_eq!(gb300.memory_gb, 288.0);
    let mi355x = catalog.accelerator("mi355x").unwrap();
    // 256 CU x 8192 FP8 FLOP/clk x 2.4 GHz = 5.03 PFLOP/s.
    let fp8 = 256.0 * 8192.0 * 2.4e9 / 1e12;
    assert!((mi355x.dense_tflops.fp8.unwrap() - fp8).abs() < 0.1);
    let mi350x = catalog.accelerator("mi350x").unwrap();
    assert!((mi350x.scaleup.bandwidth_gb_per_s_bidir - 7.0 * 153.6).abs() < 1e-9);
    let tray = catalog.node("gb200-nvl72").unwrap();
    assert_eq!(
        (tray.accelerator.as_str(), tray.accelerators_per_node),
        ("gb200", 4)
    );
}

#[test]
fn load_adds_the_env_paths_then_the_flag_paths() {
    let dir = std::env::temp_dir().join(format!("suanli-catalog-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // GPT-2 XL's shape (Radford et al. 2019, Table 2) under the id `mine`, named by its file.
    let write = |file: &str, name: &str| {
        let text = format!(
            "[[model]]\nid = \"mine\"\nname = \"{name}\"\nparams_b_reported = 1.5\nlayers = 48\n\
             hidden = 1600\nheads = 25\nkv_heads = 25\nffn = 6400\nvocab = 50257\nmlp = \"gelu\"\n\
             tied_embeddings = true\nlearned_positions = true\nmax_seq_len = 1024\n\
             source = \"Radford et al. 2019, Table 2\"\n"
        );
        let path = dir.join(file);
        std::fs::write(&path, text).unwrap();
        path
    };
    let from_env = write("env.toml", "from env");
    let from_flag = write("flag.toml", "from flag");
    let no_flags: &[&str] = &[];
    assert!(
        Catalog::load(no_flags, None)
            .unwrap()
            .model("mine")
            .is_err()
    );
    let catalog = Catalog::load(no_flags, Some(from_env.as_os_str())).unwrap();
    assert_eq!(catalog.model("mine").unwrap().name, "from env");
    let catalog = Catalog::load(&[&from_flag], Some(from_env.as_os_str())).unwrap();
    assert_eq!(catalog.model("mine").unwrap().name, "from flag");
    let error = Catalog::load(&[dir.join("nope.toml")], None).unwrap_err();
    assert!(error.to_string().contains("nope.toml"), "{error}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_full_mesh_is_one_its_network_source_describes() {
    let catalog = Catalog::builtin();
    let meshes: Vec<_> = catalog
        .accelerators
        .iter()
        .filter(|a| a.scaleup.full_mesh)
        .collect();
    for id in ["mi300x", "mi355x", "gaudi3", "ascend-910b"] {
        assert!(meshes.iter().any(|a| a.id == id), "{id} is a full mesh");
    }
    for a in meshes {
        let source = a.network_source.to_lowercase();
        assert!(
            ["fully connected", "all-to-all", "full mesh"]
                .iter()
                .any(|w| source.contains(w)),
            "{}: {source}",
            a.id
        );
        assert!(
            a.scaleup.torus_dims.is_none() && a.scaleup.domain_size > 2,
            "{}",
            a.id
        );
    }
    // NVSwitch is a switch, not a mesh.
    assert!(!catalog.accelerator("h100").unwrap().scaleup.full_mesh);
}
