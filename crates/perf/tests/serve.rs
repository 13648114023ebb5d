//! The serving model: KV-cache sizes per attention kind against hand-computed values, the decode
//! roofline, expert touching and the prefill's quadratic term.

use suanli_catalog::{Catalog, Model, Precision};
use suanli_perf::serve::{self, ServeSetup};

fn model(id: &str) -> Model {
    Catalog::builtin().model(id).unwrap().clone()
}

fn setup(model_id: &str, accelerator: &str, tp: u32) -> ServeSetup {
    let catalog = Catalog::builtin();
    let mut setup = ServeSetup::new(
        model(model_id),
        catalog.accelerator(accelerator).unwrap().clone(),
        1024,
        256,
    );
    setup.tp = tp;
    setup
}

#[test]
fn kv_bytes_per_token_for_mha_gqa_mqa_and_mla() {
    // MHA, Llama 2 7B: 2 (K and V) x 32 layers x 32 heads x 128 x 2 bytes.
    let llama2 = model("llama-2-7b");
    assert_eq!(llama2.attention_kind(), "mha");
    assert_eq!(
        serve::kv_bytes_per_token(&llama2, Precision::Fp16),
        524_288.0
    );
    assert_eq!(
        serve::kv_bytes_per_token(&llama2, Precision::Fp8),
        262_144.0
    );
    // GQA, Llama 3.1 70B: 2 x 80 layers x 8 KV heads x 128 x 2 bytes.
    let llama70 = model("llama-3.1-70b");
    assert_eq!(llama70.attention_kind(), "gqa");
    assert_eq!(
        serve::kv_bytes_per_token(&llama70, Precision::Bf16),
        327_680.0
    );
    // MQA: one KV head, 2 x 32 x 1 x 128 x 2 bytes.
    let mut mqa = llama2.clone();
    mqa.kv_heads = 1;
    assert_eq!(mqa.attention_kind(), "mqa");
    assert_eq!(serve::kv_bytes_per_token(&mqa, Precision::Bf16), 16_384.0);
    // MLA, DeepSeek-V3: 61 layers x (512 latent + 64 rotary) x 2 bytes (DeepSeek-V2, Table 1).
    let deepseek = model("deepseek-v3");
    assert_eq!(deepseek.attention_kind(), "mla");
    assert_eq!(
        serve::kv_bytes_per_token(&deepseek, Precision::Bf16),
        70_272.0
    );
    // int4 KV halves fp8.
    assert_eq!(
        serve::kv_bytes_per_token(&llama2, Precision::Int4),
        131_072.0
    );
}

#[test]
fn kv_heads_split_over_tp_and_replicate_beyond_them() {
    let per_device = |tp| serve::kv_bytes_per_token_per_device(&setup("llama-3.1-70b", "h100", tp));
    assert_eq!(per_device(1), 327_680.0);
    assert_eq!(per_device(8), 40_960.0);
    // 8 KV heads over 16 ranks: one head per rank, as with tp=8.
    assert_eq!(per_device(16), 40_960.0);
    // The MLA latent is held whole by every rank.
    let deepseek = |tp| serve::kv_bytes_per_token_per_device(&setup("deepseek-v3", "h200", tp));
    assert_eq!(deepseek(1), deepseek(8));
}

#[test]
fn batch_one_decode_never_beats_reading_the_weights() {
    for (model_id, accelerator, tp, precision) in [
        ("llama-2-7b", "h100", 1, Precision::Fp16),
        ("llama-3.1-8b", "l40s", 1, Precision::Fp8),
        ("llama-3.1-70b", "h100", 4, Precision::Fp8),
        ("llama-3.1-70b", "a100-sxm4-80gb", 8, Precision::Int4),
        ("qwen2.5-72b", "mi300x", 1, Precision::Bf16),
        ("mixtral-8x7b", "h200", 2, Precision::Bf16),
    ] {
        let mut s = setup(model_id, accelerator, tp);
        s.weight_precision = precision;
        let step = serve::decode_step(&s, 1, 1024.0).unwrap();
        let floor =
            serve::weight_bytes_per_device(&s) / s.accelerator.memory_bandwidth_bytes_per_s();
        // Mixtral at batch 1 reads 2 of 8 experts: its floor is the touched share.
        let floor = if s.model.moe.is_some() {
            floor * 0.25
        } else {
            floor
        };
        assert!(
            step.total_s >= floor,
            "{model_id} on {accelerator}: {} s < {floor} s",
            step.total_s
        );
        // And a larger batch never makes a step faster.
        let big = serve::decode_step(&s, 64, 1024.0).unwrap();
        assert!(big.total_s >= step.total_s);
    }
}

#[test]
fn experts_touched_grow_from_top_k_to_all() {
    assert!((serve::expected_experts_touched(8, 2, 1.0) - 2.0).abs() < 1e-9);
    let many = serve::expected_experts_touched(256, 8, 1000.0);
    assert!(many > 255.0 && many <= 256.0);
    let few = serve::expected_experts_touched(256, 8, 4.0);
    assert!(few > 28.0 && few < 32.0, "{few}");
}

#[test]
fn prefill_grows_faster_than_linearly_with_the_prompt() {
    let s = setup("llama-3.1-8b", "h100", 1);
    let short = serve::prefill(&s, 1, 8192).unwrap().attention_s;
    let long = serve::prefill(&s, 1, 32768).unwrap().attention_s;
    assert!(long / short > 15.0, "quadratic attention: {}", long / short);
}

#[test]
fn int4_and_fp8_weights_shrink_memory_and_decode_time() {
    let mut s = setup("llama-3.1-70b", "h100", 4);
    let bf16 = serve::estimate(&s).unwrap();
    s.weight_precision = Precision::Int4;
    let int4 = serve::estimate(&s).unwrap();
    assert!(int4.memory.weights_bytes < 0.3 * bf16.memory.weights_bytes);
    assert!(int4.memory.kv_capacity_tokens > bf16.memory.kv_capacity_tokens);
    let at = |s: &ServeSetup| serve::decode_step(s, 1, 1024.0).unwrap().total_s;
    let int4_step = at(&s);
    s.weight_precision = Precision::Bf16;
    assert!(int4_step < at(&s));
}

#[test]
fn pipeline_stages_split_memory_and_keep_throughput() {
    let mut s = setup("llama-3.1-70b", "h100", 2);
    s.weight_precision = Precision::Fp8;
    s.kv_precision = Precision::Fp8;
    s.batch = Some(64);
    let one_stage = serve::estimate(&s).unwrap();
    s.pp = 2;
    let two_stages = serve::estimate(&s).unwrap();
    assert!(two_stages.memory.weights_bytes < 0.55 * one_stage.memory.weights_bytes);
    assert!(two_stages.memory.kv_capacity_tokens > 2 * one_stage.memory.kv_capacity_tokens);
    // A token crosses both stages, each with half the batch: TPOT stays within a few percent
    // plus the send between stages.
    assert!(two_stages.tpot_s > 0.9 * one_stage.tpot_s);
    assert!(two_stages.tpot_s < 1.3 * one_stage.tpot_s);
    assert_eq!(two_stages.devices, 4);
}

#[test]
fn weights_too_large_and_batches_too_large_are_errors() {
    let s = setup("llama-3.1-405b", "l40s", 1);
    assert!(matches!(
        serve::estimate(&s),
        Err(serve::ServeError::WeightsTooLarge { .. })
    ));
    let odd_tp = setup("llama-3.1-70b", "h100", 3);
    assert!(matches!(
        serve::estimate(&odd_tp),
        Err(serve::ServeError::Invalid(reason)) if reason.contains("attention heads")
    ));
    let mut s = setup("llama-3.1-8b", "h100", 1);
    s.batch = Some(1_000_000);
    assert!(matches!(
        serve::estimate(&s),
        Err(serve::ServeError::BatchTooLarge { .. })
    ));
}

#[test]
fn expert_parallelism_keeps_memory_and_checks_its_size() {
    let mut s = setup("mixtral-8x7b", "h100", 4);
    s.batch = Some(8);
    let tensor = serve::estimate(&s).unwrap();
    s.ep = 4;
    let expert = serve::estimate(&s).unwrap();
    assert_eq!(tensor.memory.weights_bytes, expert.memory.weights_bytes);
    // The same weight bytes in wider GEMMs, but the busiest rank holds whole experts and
    // random routing loads the ranks unevenly (serve::expert_imbalance): at batch 8 it reads
    // its 2 experts while tensor parallelism reads a quarter of the ~7.2 touched.
    assert!(expert.decode.matmul_s <= tensor.decode.matmul_s * 1.15);
    assert!(expert.decode.matmul_s >= tensor.decode.matmul_s);
    s.ep = 3;
    assert!(serve::estimate(&s).is_err());
    let mut dense = setup("llama-3.1-8b", "h100", 2);
    dense.ep = 2;
    assert!(serve::estimate(&dense).is_err());
}
