//! Reading a Hugging Face `config.json` into a [`Model`].
//!
//! Understands the decoder-only formats whose MLP is gated (three matrices): Llama, Qwen2/Qwen3,
//! Mistral, Mixtral (`num_local_experts`), Qwen MoE (`num_experts`) and DeepSeek-V2/V3 (MLA and
//! `n_routed_experts`). Field names follow `transformers`' configuration classes. Multimodal
//! configs that nest the language model under `text_config` are read from there.

use crate::{Mla, Mlp, Model, ModelError, Moe};
use serde_json::{Map, Value};

type Object = Map<String, Value>;

/// Why a `config.json` cannot be read into a model, in one line naming the field.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HfConfigError {
    #[error("not valid JSON: {0}")]
    Json(String),
    #[error("expected a JSON object at the top level")]
    NotAnObject,
    #[error("missing field `{0}`")]
    Missing(&'static str),
    #[error("field `{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("field `{field}` is too large: {value}")]
    TooLarge { field: &'static str, value: u64 },
    #[error("field `num_key_value_heads` ({kv_heads}) must divide `num_attention_heads` ({heads})")]
    KvHeads { kv_heads: u32, heads: u32 },
    #[error(
        "field `head_dim` is missing and `hidden_size` ({hidden}) is not a multiple of `num_attention_heads` ({heads})"
    )]
    HeadDim { hidden: u64, heads: u32 },
    #[error(
        "field `moe_layer_freq` is {0}; only 1 (every layer after the dense ones) is supported"
    )]
    MoeLayerFrequency(u64),
    #[error(
        "field `shared_expert_intermediate_size` ({shared}) is not a multiple of `moe_intermediate_size` ({expert})"
    )]
    SharedExpertSize { shared: u64, expert: u64 },
    #[error(
        "fields `decoder_sparse_step`/`mlp_only_layers` interleave dense and MoE layers, which is not supported"
    )]
    InterleavedMoe,
    #[error(transparent)]
    Shape(#[from] ModelError),
}

/// Parses a Hugging Face `config.json` (Llama, Qwen2, Mistral/Mixtral, DeepSeek-V3 formats).
///
/// `id` becomes the model's catalog id and name. Errors name the missing or malformed field.
pub fn model_from_hf_config(json: &str, id: &str) -> Result<Model, HfConfigError> {
    let root: Value = serde_json::from_str(json).map_err(|e| HfConfigError::Json(e.to_string()))?;
    let Some(top) = root.as_object() else {
        return Err(HfConfigError::NotAnObject);
    };
    let config = match top.get("text_config").and_then(Value::as_object) {
        Some(text) if !top.contains_key("hidden_size") => text,
        _ => top,
    };

    let model_type = config
        .get("model_type")
        .and_then(Value::as_str)
        .unwrap_or("unknown")
        .to_string();
    let hidden = required(config, "hidden_size")?;
    let layers = to_u32(required(config, "num_hidden_layers")?, "num_hidden_layers")?;
    let heads = to_u32(
        required(config, "num_attention_heads")?,
        "num_attention_heads",
    )?;
    let kv_heads = match optional(config, "num_key_value_heads")? {
        Some(n) => to_u32(n, "num_key_value_heads")?,
        None => heads,
    };
    let ffn = required(config, "intermediate_size")?;
    let vocab = required(config, "vocab_size")?;
    let head_dim = optional(config, "head_dim")?;
    let max_seq_len = optional(config, "max_position_embeddings")?;
    // `transformers` defaults `tie_word_embeddings` to true, but every format read here
    // (LlamaConfig, Qwen2Config, MistralConfig, MixtralConfig, DeepseekV3Config) overrides the
    // default to false, and their released config.json files state it when it is true.
    let tied_embeddings = match config.get("tie_word_embeddings") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(HfConfigError::WrongType {
                field: "tie_word_embeddings",
                expected: "true or false",
                found: other.to_string(),
            });
        }
    };

    if heads == 0 || kv_heads == 0 || heads % kv_heads != 0 {
        return Err(HfConfigError::KvHeads { kv_heads, heads });
    }
    let mla = read_mla(config)?;
    if head_dim.is_none() && mla.is_none() && hidden % heads as u64 != 0 {
        return Err(HfConfigError::HeadDim { hidden, heads });
    }
    // For MLA the per-head query/key width is the sum of the two parts.
    let head_dim = match &mla {
        Some(mla) => Some(mla.qk_nope_head_dim + mla.qk_rope_head_dim),
        None => head_dim,
    };
    let moe = read_moe(config, layers)?;

    let model = Model {
        id: id.to_string(),
        aliases: Vec::new(),
        name: id.to_string(),
        params_b_reported: None,
        layers,
        hidden,
        heads,
        kv_heads,
        head_dim,
        ffn,
        vocab,
        mlp: Mlp::Swiglu,
        tied_embeddings,
        max_seq_len,
        learned_positions: false,
        moe,
        mla,
        source: format!("Hugging Face config.json (model_type `{model_type}`)"),
    };
    model.validate()?;
    Ok(model)
}

/// Mixture-of-experts shape: Mixtral, Qwen MoE or DeepSeek field names.
fn read_moe(config: &Object, layers: u32) -> Result<Option<Moe>, HfConfigError> {
    if let Some(experts) = optional(config, "num_local_experts")? {
        // Mixtral: every layer is MoE and experts have the dense intermediate size.
        return Ok(Some(Moe {
            experts: to_u32(experts, "num_local_experts")?,
            top_k: to_u32(
                required(config, "num_experts_per_tok")?,
                "num_experts_per_tok",
            )?,
            expert_ffn: required(config, "intermediate_size")?,
            shared_experts: 0,
            dense_layers: 0,
        }));
    }
    if let Some(experts) = optional(config, "n_routed_experts")? {
        // DeepSeek-V2/V3: the first `first_k_dense_replace` layers keep a dense MLP.
        let freq = optional(config, "moe_layer_freq")?.unwrap_or(1);
        if freq != 1 {
            return Err(HfConfigError::MoeLayerFrequency(freq));
        }
        let dense_layers = optional(config, "first_k_dense_replace")?.unwrap_or(0);
        return Ok(Some(Moe {
            experts: to_u32(experts, "n_routed_experts")?,
            top_k: to_u32(
                required(config, "num_experts_per_tok")?,
                "num_experts_per_tok",
            )?,
            expert_ffn: required(config, "moe_intermediate_size")?,
            shared_experts: to_u32(
                optional(config, "n_shared_experts")?.unwrap_or(0),
                "n_shared_experts",
            )?,
            dense_layers: to_u32(dense_layers, "first_k_dense_replace")?.min(layers),
        }));
    }
    if let Some(experts) = optional(config, "num_experts")? {
        // Qwen2-MoE / Qwen3-MoE. A shared expert is counted in routed-expert units, so its size
        // must be a whole multiple of one routed expert.
        let expert_ffn = required(config, "moe_intermediate_size")?;
        let shared_ffn = optional(config, "shared_expert_intermediate_size")?.unwrap_or(0);
        if expert_ffn == 0 || shared_ffn % expert_ffn != 0 {
            return Err(HfConfigError::SharedExpertSize {
                shared: shared_ffn,
                expert: expert_ffn,
            });
        }
        let sparse_step = optional(config, "decoder_sparse_step")?.unwrap_or(1);
        let dense_only_layers = config
            .get("mlp_only_layers")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if sparse_step != 1 || dense_only_layers {
            return Err(HfConfigError::InterleavedMoe);
        }
        return Ok(Some(Moe {
            experts: to_u32(experts, "num_experts")?,
            top_k: to_u32(
                required(config, "num_experts_per_tok")?,
                "num_experts_per_tok",
            )?,
            expert_ffn,
            shared_experts: to_u32(shared_ffn / expert_ffn, "shared_expert_intermediate_size")?,
            dense_layers: 0,
        }));
    }
    Ok(None)
}

/// Multi-head latent attention (DeepSeek-V2/V3), recognised by `kv_lora_rank`.
fn read_mla(config: &Object) -> Result<Option<Mla>, HfConfigError> {
    let Some(kv_lora_rank) = optional(config, "kv_lora_rank")? else {
        return Ok(None);
    };
    Ok(Some(Mla {
        // `q_lora_rank: null` (DeepSeek-V2-Lite) means full-rank queries.
        q_lora_rank: optional(config, "q_lora_rank")?,
        kv_lora_rank,
        qk_nope_head_dim: required(config, "qk_nope_head_dim")?,
        qk_rope_head_dim: required(config, "qk_rope_head_dim")?,
        v_head_dim: required(config, "v_head_dim")?,
    }))
}

/// A non-negative integer field that must be present.
fn required(config: &Object, field: &'static str) -> Result<u64, HfConfigError> {
    optional(config, field)?.ok_or(HfConfigError::Missing(field))
}

/// A non-negative integer field; absent or `null` gives `None`.
fn optional(config: &Object, field: &'static str) -> Result<Option<u64>, HfConfigError> {
    match config.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| HfConfigError::WrongType {
                field,
                expected: "a non-negative integer",
                found: value.to_string(),
            }),
    }
}

fn to_u32(value: u64, field: &'static str) -> Result<u32, HfConfigError> {
    u32::try_from(value).map_err(|_| HfConfigError::TooLarge { field, value })
}
