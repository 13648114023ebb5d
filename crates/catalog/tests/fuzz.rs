//! Property tests of the model parsers (catalog TOML, Hugging Face config.json) with a fixed
//! budget, so they run on every `cargo test`: whatever the input, a parser returns a model that
//! passes `Model::validate` or a one-line error, never a panic; and the reproducers of issue 9
//! are kept as regression tests.

use proptest::prelude::*;
use suanli_catalog::{Catalog, model_from_hf_config};

/// Sizes a hostile file might hold: zero, one, ordinary, the edges of u32 and beyond.
fn size() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1u64),
        1u64..100_000,
        Just(u32::MAX as u64),
        Just(1_000_000_000u64),
        Just(u64::MAX / 2),
    ]
}

fn toml_model(
    (layers, hidden, heads, kv_heads, ffn, vocab): (u64, u64, u64, u64, u64, u64),
    moe: Option<(u64, u64, u64)>,
) -> String {
    let mut text = format!(
        "[[model]]\nid = \"fuzz\"\nname = \"fuzz\"\nlayers = {layers}\nhidden = {hidden}\n\
         heads = {heads}\nkv_heads = {kv_heads}\nffn = {ffn}\nvocab = {vocab}\nmlp = \"swiglu\"\n"
    );
    if let Some((experts, top_k, expert_ffn)) = moe {
        text += &format!(
            "[model.moe]\nexperts = {experts}\ntop_k = {top_k}\nexpert_ffn = {expert_ffn}\n"
        );
    }
    text
}

/// Every derived figure of an accepted model is computable.
fn exercise(model: &suanli_catalog::Model) {
    model.validate().expect("an accepted model validates");
    let _ = (model.head_dim(), model.attention_kind(), model.moe_layers());
    assert!(model.active_params() <= model.total_params());
}

fn one_line(message: &str) {
    assert!(
        !message.is_empty() && !message.contains('\n'),
        "{message:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn toml_models_parse_or_fail_cleanly(
        shape in (size(), size(), size(), size(), size(), size()),
        moe in proptest::option::of((size(), size(), size())),
    ) {
        let mut catalog = Catalog::default();
        match catalog.merge_toml(&toml_model(shape, moe), "fuzz.toml") {
            Ok(()) => exercise(&catalog.models[0]),
            Err(error) => one_line(&error.to_string()),
        }
    }

    #[test]
    fn hf_configs_parse_or_fail_cleanly(
        fields in proptest::collection::btree_map(
            prop_oneof![
                Just("hidden_size"), Just("num_hidden_layers"), Just("num_attention_heads"),
                Just("num_key_value_heads"), Just("intermediate_size"), Just("vocab_size"),
                Just("head_dim"), Just("num_local_experts"), Just("num_experts_per_tok"),
                Just("n_routed_experts"), Just("moe_intermediate_size"), Just("kv_lora_rank"),
                Just("max_position_embeddings"), Just("tie_word_embeddings"),
            ],
            prop_oneof![
                size().prop_map(serde_json::Value::from),
                Just(serde_json::json!(-1)),
                Just(serde_json::json!(1.5)),
                Just(serde_json::json!("8")),
                Just(serde_json::Value::Null),
            ],
            0..14,
        )
    ) {
        let json = serde_json::to_string(&fields).unwrap();
        match model_from_hf_config(&json, "fuzz") {
            Ok(model) => exercise(&model),
            Err(error) => one_line(&error.to_string()),
        }
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        let _ = Catalog::default().merge_toml(&text, "fuzz.toml");
        let _ = model_from_hf_config(&text, "fuzz");
    }
}

fn toml_error(shape: (u64, u64, u64, u64, u64, u64), moe: Option<(u64, u64, u64)>) -> String {
    let message = Catalog::default()
        .merge_toml(&toml_model(shape, moe), "m.toml")
        .expect_err("refused")
        .to_string();
    one_line(&message);
    message
}

#[test]
fn issue_9_reproducers_are_refused_with_one_line() {
    // heads = 0 divided by zero (exit 101).
    let message = toml_error((32, 4096, 0, 0, 11008, 32000), None);
    assert!(message.contains("`heads` is 0"), "{message}");
    // kv_heads must divide heads.
    let message = toml_error((32, 4096, 32, 5, 11008, 32000), None);
    assert!(message.contains("must divide"), "{message}");
    // layers = 4294967295 hung the layout search.
    let message = toml_error((4_294_967_295, 4096, 32, 8, 11008, 32000), None);
    assert!(message.contains("`layers`"), "{message}");
    // 1e9 experts hung it too; top_k above experts is nonsense.
    let message = toml_error(
        (32, 4096, 32, 8, 11008, 32000),
        Some((1_000_000_000, 2, 1024)),
    );
    assert!(message.contains("`moe.experts`"), "{message}");
    let message = toml_error((32, 4096, 32, 8, 11008, 32000), Some((8, 9, 1024)));
    assert!(message.contains("`moe.top_k`"), "{message}");
    // hidden = 0 gave "MFU 0.0%" with exit 0.
    let message = toml_error((32, 0, 32, 8, 11008, 32000), None);
    assert!(message.contains("`hidden` is 0"), "{message}");
    let hf = r#"{"hidden_size": 0, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 8, "vocab_size": 8}"#;
    assert!(model_from_hf_config(hf, "x").is_err());
}

#[test]
fn every_builtin_model_validates() {
    for model in Catalog::builtin().models {
        model
            .validate()
            .unwrap_or_else(|e| panic!("{}: {e}", model.id));
    }
}
