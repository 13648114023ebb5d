//! Exports checked against the flag and key lists taken from each project's parser, and read
//! back with the layout they came from.

use super::*;
use crate::layout::LayoutSpec;
use std::collections::{BTreeMap, BTreeSet};
use suanli_catalog::Catalog;

const MEGATRON_FLAGS: &str = include_str!("../../data/export/megatron-lm-core_v0.14.0-flags.txt");
const NEMO_KEYS: &str = include_str!("../../data/export/nemo-v2.4.0-keys.txt");
const TORCHTITAN_KEYS: &str = include_str!("../../data/export/torchtitan-v0.2.2-keys.txt");
const DEEPSPEED_KEYS: &str = include_str!("../../data/export/deepspeed-v0.16.4-keys.txt");

fn names(list: &str) -> BTreeSet<&str> {
    list.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

struct Case {
    model: Model,
    layout: Layout,
    precision: Precision,
    seq_len: u64,
    global_batch: u64,
}

impl Case {
    fn input(&self) -> ExportInput<'_> {
        ExportInput {
            model: &self.model,
            layout: &self.layout,
            precision: self.precision,
            seq_len: self.seq_len,
            global_batch: self.global_batch,
            count: self.layout.devices(),
            per_node: 8,
        }
    }
}

fn case(model: &str, layout: &str, count: u64, precision: Precision, global_batch: u64) -> Case {
    let catalog = Catalog::builtin();
    let model = catalog.model(model).unwrap().clone();
    let layout = layout
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(count)
        .unwrap();
    layout.check(&model, count, 4096, global_batch).unwrap();
    Case {
        model,
        layout,
        precision,
        seq_len: 4096,
        global_batch,
    }
}

/// Layouts over dense, uneven, MoE, MLA and learned-position models, every ZeRO stage and
/// recompute mode, and three precisions.
fn cases() -> Vec<Case> {
    vec![
        case(
            "llama-3.1-70b",
            "tp=8,pp=4,vpp=5,mb=1",
            512,
            Precision::Bf16,
            1024,
        ),
        case(
            "llama-3.1-405b",
            "tp=8,pp=16,mb=1,recompute=full",
            16384,
            Precision::Bf16,
            2048,
        ),
        case(
            "llama-3.1-8b",
            "tp=1,pp=1,zero=3,mb=2,recompute=none",
            64,
            Precision::Fp8,
            512,
        ),
        case(
            "gpt-3-175b",
            "tp=8,pp=8,vpp=3,zero=0,mb=1",
            1024,
            Precision::Fp16,
            1536,
        ),
        case(
            "mixtral-8x7b",
            "tp=2,pp=4,ep=8,cp=2,zero=2,mb=1",
            256,
            Precision::Bf16,
            1024,
        ),
        case(
            "deepseek-v3",
            "tp=2,pp=16,ep=64,mb=1",
            2048,
            Precision::Fp8,
            4096,
        ),
    ]
}

/// Splits a Megatron argument text into flag -> value (None for switches).
fn parse_megatron(text: &str) -> BTreeMap<String, Option<String>> {
    let words: Vec<String> = text
        .split_whitespace()
        .filter(|w| *w != "\\")
        .map(|w| w.trim_matches('\'').to_string())
        .collect();
    let mut args = BTreeMap::new();
    let mut i = 0;
    while i < words.len() {
        assert!(words[i].starts_with("--"), "stray word `{}`", words[i]);
        let value = words.get(i + 1).filter(|w| !w.starts_with("--")).cloned();
        i += 1 + value.is_some() as usize;
        assert!(
            args.insert(words[i - 1 - value.is_some() as usize].clone(), value)
                .is_none()
        );
    }
    args
}

fn number(args: &BTreeMap<String, Option<String>>, flag: &str) -> u64 {
    args[flag].as_deref().unwrap().parse().unwrap()
}

#[test]
fn every_megatron_flag_is_in_megatron_lm_core_v0_14_arguments() {
    let known = names(MEGATRON_FLAGS);
    assert!(known.len() > 400, "the list holds {} flags", known.len());
    for case in cases() {
        let out = export(Framework::Megatron, &case.input()).unwrap();
        for flag in parse_megatron(&out.config).keys() {
            assert!(
                known.contains(flag.as_str()),
                "{flag} is not a Megatron-LM flag"
            );
        }
    }
}

#[test]
fn megatron_arguments_read_back_to_the_layout() {
    for case in cases() {
        let l = case.layout;
        let out = export(Framework::Megatron, &case.input()).unwrap();
        let args = parse_megatron(&out.config);
        assert_eq!(number(&args, "--tensor-model-parallel-size"), l.tp as u64);
        assert_eq!(number(&args, "--pipeline-model-parallel-size"), l.pp as u64);
        assert_eq!(number(&args, "--context-parallel-size"), l.cp as u64);
        assert_eq!(number(&args, "--expert-model-parallel-size"), l.ep as u64);
        assert_eq!(number(&args, "--micro-batch-size"), l.micro_batch as u64);
        assert_eq!(number(&args, "--global-batch-size"), case.global_batch);
        assert_eq!(number(&args, "--num-layers"), case.model.layers as u64);
        assert_eq!(number(&args, "--hidden-size"), case.model.hidden);
        assert_eq!(args.contains_key("--sequence-parallel"), l.tp > 1);
        assert_eq!(
            args.contains_key("--use-distributed-optimizer"),
            l.zero == 1
        );
        let sharding = args
            .get("--data-parallel-sharding-strategy")
            .and_then(|v| v.as_deref());
        let expected = match l.zero {
            2 => Some("optim_grads"),
            3 => Some("optim_grads_params"),
            _ => None,
        };
        assert_eq!(sharding, expected);
        // Megatron-LM derives dp from the world size torchrun gives it: world / (tp*pp*cp).
        let launch = out.launch.join(" ");
        let field = |name: &str| -> u64 {
            let start = launch.find(name).unwrap() + name.len();
            launch[start..]
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap()
        };
        let world = field("--nnodes=") * field("--nproc-per-node=");
        assert_eq!(
            world / (l.tp as u64 * l.pp as u64 * l.cp as u64),
            l.dp as u64
        );
        match args.get("--num-layers-per-virtual-pipeline-stage") {
            Some(per_chunk) => {
                let per_chunk: u64 = per_chunk.as_deref().unwrap().parse().unwrap();
                assert_eq!(
                    case.model.layers as u64 / (l.pp as u64 * per_chunk),
                    l.vpp as u64
                );
            }
            None => assert_eq!(l.vpp, 1),
        }
    }
}

#[test]
fn llama_405b_on_16_stages_puts_the_remainder_on_the_last_stage() {
    // Llama 3 405B: 126 layers over 16 stages; Megatron-LM gives 15 stages 8 layers and the
    // last 126 - 120 = 6.
    let case = &cases()[1];
    let args = parse_megatron(&export(Framework::Megatron, &case.input()).unwrap().config);
    assert_eq!(number(&args, "--decoder-last-pipeline-num-layers"), 6);
    assert_eq!(args["--recompute-granularity"].as_deref(), Some("full"));
}

#[test]
fn every_nemo_override_is_a_nemo_2_field() {
    let known = names(NEMO_KEYS);
    for case in cases() {
        let input = case.input();
        for (key, _) in nemo::overrides(&input).unwrap() {
            assert!(
                known.contains(key.as_str()),
                "{key} is not a NeMo 2 recipe field"
            );
        }
        // Read the printed command back: key=value words after `-y`.
        let out = export(Framework::Nemo, &input).unwrap();
        let values: BTreeMap<&str, &str> = out
            .config
            .split_whitespace()
            .filter_map(|w| w.split_once('='))
            .collect();
        let l = case.layout;
        let get = |k: &str| values[k].parse::<u64>().unwrap();
        assert_eq!(
            get("trainer.strategy.tensor_model_parallel_size"),
            l.tp as u64
        );
        assert_eq!(
            get("trainer.strategy.pipeline_model_parallel_size"),
            l.pp as u64
        );
        assert_eq!(get("trainer.strategy.context_parallel_size"), l.cp as u64);
        assert_eq!(
            get("trainer.strategy.expert_model_parallel_size"),
            l.ep as u64
        );
        assert_eq!(get("data.micro_batch_size"), l.micro_batch as u64);
        assert_eq!(get("data.global_batch_size"), case.global_batch);
        // NeMo derives dp from trainer.num_nodes * trainer.devices / (tp*pp*cp).
        let world = get("trainer.num_nodes") * get("trainer.devices");
        assert_eq!(world, l.devices());
        let vpp = values["trainer.strategy.virtual_pipeline_model_parallel_size"];
        assert_eq!(
            vpp,
            if l.vpp > 1 {
                l.vpp.to_string()
            } else {
                "None".into()
            }
        );
    }
}

/// Dotted paths of every leaf of a TOML table.
fn toml_paths(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (key, value) in table {
        let path = format!("{prefix}{key}");
        match value {
            toml::Value::Table(inner) => toml_paths(inner, &format!("{path}."), out),
            _ => out.push(path),
        }
    }
}

#[test]
fn torchtitan_config_is_toml_with_torchtitan_keys_and_the_world_size() {
    let known = names(TORCHTITAN_KEYS);
    for case in cases() {
        if case.precision == Precision::Fp16 {
            // torchtitan's mixed_precision_param takes bfloat16 or float32 only.
            assert!(export(Framework::Torchtitan, &case.input()).is_err());
            continue;
        }
        let out = export(Framework::Torchtitan, &case.input()).unwrap();
        let table: toml::Table = out.config.parse().expect("valid TOML");
        let mut paths = Vec::new();
        toml_paths(&table, "", &mut paths);
        for path in &paths {
            assert!(
                known.contains(path.as_str()),
                "{path} is not a torchtitan key"
            );
        }
        let p = &table["parallelism"];
        let degree = |key: &str| p[key].as_integer().unwrap() as u64;
        // torchtitan's ParallelDims requires dp_replicate * dp_shard * cp * tp * pp == world.
        let product: u64 = [
            "data_parallel_replicate_degree",
            "data_parallel_shard_degree",
            "context_parallel_degree",
            "tensor_parallel_degree",
            "pipeline_parallel_degree",
        ]
        .iter()
        .map(|k| degree(k))
        .product();
        assert_eq!(product, case.layout.devices());
    }
}

/// Dotted paths of a JSON object: top-level keys and section.key one level down.
fn json_paths(value: &serde_json::Value) -> Vec<String> {
    let mut paths = Vec::new();
    for (key, inner) in value.as_object().unwrap() {
        paths.push(key.clone());
        if let Some(section) = inner.as_object() {
            paths.extend(section.keys().map(|k| format!("{key}.{k}")));
        }
    }
    paths
}

#[test]
fn deepspeed_config_is_json_with_deepspeed_keys_and_consistent_batches() {
    let known = names(DEEPSPEED_KEYS);
    for case in cases() {
        let out = export(Framework::Deepspeed, &case.input()).unwrap();
        let value: serde_json::Value = serde_json::from_str(&out.config).expect("valid JSON");
        for path in json_paths(&value) {
            assert!(
                known.contains(path.as_str()),
                "{path} is not a DeepSpeed key"
            );
        }
        // DeepSpeed's own check: train_batch_size = micro * accumulation * dp.
        let get = |k: &str| value[k].as_u64().unwrap();
        assert_eq!(
            get("train_batch_size"),
            get("train_micro_batch_size_per_gpu")
                * get("gradient_accumulation_steps")
                * case.layout.dp as u64
        );
        assert_eq!(value["zero_optimization"]["stage"], case.layout.zero);
    }
}

#[test]
fn formats_parse_and_bad_names_say_what_is_right() {
    for f in Framework::ALL {
        assert_eq!(f.name().parse::<Framework>(), Ok(f));
    }
    let err = "slurm".parse::<Framework>().unwrap_err();
    assert!(
        err.contains("megatron, nemo, torchtitan or deepspeed"),
        "{err}"
    );
}

#[test]
fn int4_training_is_refused_not_mistranslated() {
    let mut case = cases().remove(0);
    case.precision = Precision::Int4;
    for f in Framework::ALL {
        assert!(matches!(
            export(f, &case.input()),
            Err(ExportError::Precision { .. })
        ));
    }
}
