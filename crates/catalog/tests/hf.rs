//! Reading Hugging Face config.json files: each supported format against the catalog entry for the
//! same model, and the error messages for files that cannot be used.

use suanli_catalog::{Catalog, CatalogError, HfConfigError, Model, model_from_hf_config};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fields that define the architecture (ids, names, sources and context length may differ).
fn assert_same_shape(from_hf: &Model, catalog_id: &str) {
    let catalog = Catalog::builtin();
    let expected = catalog.model(catalog_id).unwrap();
    assert_eq!(from_hf.layers, expected.layers, "layers");
    assert_eq!(from_hf.hidden, expected.hidden, "hidden");
    assert_eq!(from_hf.heads, expected.heads, "heads");
    assert_eq!(from_hf.kv_heads, expected.kv_heads, "kv_heads");
    assert_eq!(from_hf.head_dim(), expected.head_dim(), "head_dim");
    assert_eq!(from_hf.ffn, expected.ffn, "ffn");
    assert_eq!(from_hf.vocab, expected.vocab, "vocab");
    assert_eq!(from_hf.mlp, expected.mlp, "mlp");
    assert_eq!(from_hf.tied_embeddings, expected.tied_embeddings, "tied");
    assert_eq!(from_hf.moe, expected.moe, "moe");
    assert_eq!(from_hf.mla, expected.mla, "mla");
    assert_eq!(from_hf.total_params(), expected.total_params());
    assert_eq!(from_hf.active_params(), expected.active_params());
}

#[test]
fn llama_format() {
    let model = model_from_hf_config(&fixture("llama-3.1-8b.json"), "llama-3.1-8b").unwrap();
    assert_eq!(model.id, "llama-3.1-8b");
    assert_eq!(model.attention_kind(), "gqa");
    assert_eq!(model.max_seq_len, Some(131072));
    assert!(model.source.contains("llama"), "{}", model.source);
    assert_same_shape(&model, "llama-3.1-8b");
}

#[test]
fn qwen2_format() {
    let model = model_from_hf_config(&fixture("qwen2.5-7b.json"), "qwen").unwrap();
    assert_eq!(model.head_dim(), 128);
    assert_same_shape(&model, "qwen2.5-7b");
}

#[test]
fn mistral_format() {
    let model = model_from_hf_config(&fixture("mistral-7b-v0.1.json"), "mistral").unwrap();
    // config.json carries the RoPE table size, larger than the 8192 the paper trained on.
    assert_eq!(model.max_seq_len, Some(32768));
    assert_same_shape(&model, "mistral-7b");
}

#[test]
fn mixtral_format() {
    let model = model_from_hf_config(&fixture("mixtral-8x7b-v0.1.json"), "mixtral").unwrap();
    let moe = model.moe.as_ref().unwrap();
    assert_eq!((moe.experts, moe.top_k, moe.expert_ffn), (8, 2, 14336));
    assert_eq!(model.moe_layers(), 32);
    assert_same_shape(&model, "mixtral-8x7b");
}

#[test]
fn deepseek_v3_format() {
    let model = model_from_hf_config(&fixture("deepseek-v3.json"), "deepseek-v3").unwrap();
    assert_eq!(model.attention_kind(), "mla");
    let moe = model.moe.as_ref().unwrap();
    assert_eq!(moe.shared_experts, 1);
    assert_eq!(moe.dense_layers, 3);
    assert_eq!(model.moe_layers(), 58);
    let mla = model.mla.as_ref().unwrap();
    assert_eq!(mla.q_lora_rank, Some(1536));
    assert_same_shape(&model, "deepseek-v3");
}

#[test]
fn head_dim_and_tied_embeddings_are_read_when_present() {
    // Shaped like Qwen3-4B: head_dim 128 while hidden / heads = 80, and tied embeddings.
    let json = r#"{
        "model_type": "qwen3", "hidden_size": 2560, "num_hidden_layers": 36,
        "num_attention_heads": 32, "num_key_value_heads": 8, "head_dim": 128,
        "intermediate_size": 9728, "vocab_size": 151936, "tie_word_embeddings": true,
        "max_position_embeddings": 40960
    }"#;
    let model = model_from_hf_config(json, "qwen3-4b").unwrap();
    assert_eq!(model.head_dim(), 128);
    assert_ne!(model.head_dim(), model.hidden / model.heads as u64);
    assert!(model.tied_embeddings);
    assert_eq!(model.embedding_params(), 151936 * 2560);
}

#[test]
fn a_missing_field_is_named() {
    let without_ffn = fixture("llama-3.1-8b.json").replace("\"intermediate_size\": 14336,", "");
    let error = model_from_hf_config(&without_ffn, "x").unwrap_err();
    assert_eq!(error, HfConfigError::Missing("intermediate_size"));
    let error = error.to_string();
    assert!(error.contains("`intermediate_size`"), "{error}");

    let without_experts =
        fixture("deepseek-v3.json").replace("\"moe_intermediate_size\": 2048,", "");
    let error = model_from_hf_config(&without_experts, "x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("`moe_intermediate_size`"), "{error}");
}

#[test]
fn a_malformed_field_is_named() {
    let text = fixture("mistral-7b-v0.1.json")
        .replace("\"hidden_size\": 4096", "\"hidden_size\": \"4096\"");
    let error = model_from_hf_config(&text, "x").unwrap_err().to_string();
    assert!(
        error.contains("`hidden_size`") && error.contains("integer"),
        "{error}"
    );

    let error = model_from_hf_config("[1, 2]", "x").unwrap_err().to_string();
    assert!(error.contains("object"), "{error}");
    let error = model_from_hf_config("{ not json", "x")
        .unwrap_err()
        .to_string();
    assert!(error.contains("JSON"), "{error}");
}

#[test]
fn kv_heads_must_divide_heads() {
    let text = fixture("mistral-7b-v0.1.json")
        .replace("\"num_key_value_heads\": 8", "\"num_key_value_heads\": 5");
    let error = model_from_hf_config(&text, "x").unwrap_err().to_string();
    assert!(error.contains("`num_key_value_heads`"), "{error}");
}

#[test]
fn a_nested_text_config_is_read() {
    let inner = fixture("llama-3.1-8b.json");
    let json = format!(r#"{{"model_type": "llava", "text_config": {inner}}}"#);
    let model = model_from_hf_config(&json, "llava").unwrap();
    assert_same_shape(&model, "llama-3.1-8b");
}

#[test]
fn qwen_moe_format_counts_the_shared_expert_in_routed_units() {
    // Shaped like Qwen1.5-MoE-A2.7B: a shared expert four routed experts wide.
    let json = r#"{
        "model_type": "qwen2_moe", "hidden_size": 2048, "num_hidden_layers": 24,
        "num_attention_heads": 16, "num_key_value_heads": 16, "intermediate_size": 5632,
        "vocab_size": 151936, "num_experts": 60, "num_experts_per_tok": 4,
        "moe_intermediate_size": 1408, "shared_expert_intermediate_size": 5632,
        "decoder_sparse_step": 1, "mlp_only_layers": []
    }"#;
    let model = model_from_hf_config(json, "qwen1.5-moe").unwrap();
    let moe = model.moe.unwrap();
    assert_eq!((moe.experts, moe.top_k, moe.shared_experts), (60, 4, 4));
}

#[test]
fn resolve_model_reads_a_config_json_path() {
    let dir = std::env::temp_dir().join(format!("suanli-hf-{}", std::process::id()));
    let model_dir = dir.join("Mixtral-8x7B-v0.1");
    std::fs::create_dir_all(&model_dir).unwrap();
    let path = model_dir.join("config.json");
    std::fs::write(&path, fixture("mixtral-8x7b-v0.1.json")).unwrap();
    let model = Catalog::builtin()
        .resolve_model(path.to_str().unwrap())
        .unwrap();
    assert_eq!(model.id, "Mixtral-8x7B-v0.1");
    assert_same_shape(&model, "mixtral-8x7b");

    std::fs::write(&path, "{}").unwrap();
    let error = Catalog::builtin()
        .resolve_model(path.to_str().unwrap())
        .unwrap_err();
    assert!(matches!(error, CatalogError::BadHfConfig { .. }), "{error}");
    assert!(error.to_string().contains("hidden_size"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}
