//! Why a layout cannot be parsed, completed or used: one variant per rule, each a one-line
//! message that says what does not divide and what would.

/// What is wrong with a layout as written ([`crate::LayoutSpec`]'s `FromStr`), when completed
/// ([`crate::LayoutSpec::resolve`]) or against a model and cluster ([`crate::Layout::check`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    #[error("every layout size must be at least 1")]
    ZeroSize,
    #[error("zero={zero} is not a ZeRO stage; use 0, 1, 2 or 3")]
    ZeroStage { zero: u8 },
    #[error(
        "tp*pp*dp*cp = {tp}*{pp}*{dp}*{cp} = {product} but there are {devices} accelerators; \
         choose sizes whose product is {devices}"
    )]
    DeviceCount {
        tp: u32,
        pp: u32,
        dp: u32,
        cp: u32,
        product: u64,
        devices: u64,
    },
    #[error(
        "tp={tp} does not divide the {heads} attention heads; use tp in {}",
        divisors_text(*.heads)
    )]
    TpHeads { tp: u32, heads: u32 },
    #[error(
        "tp={tp} cannot split {kv_heads} kv heads evenly; use tp in {} or a multiple of {kv_heads}",
        divisors_text(*.kv_heads)
    )]
    TpKvSplit { tp: u32, kv_heads: u32 },
    #[error(
        "tp={tp} does not divide the {kv_heads} kv heads; use tp in {}",
        divisors_text(*.kv_heads)
    )]
    TpKvHeads { tp: u32, kv_heads: u32 },
    #[error(
        "pp*vpp = {pp}*{vpp} = {chunks} is more than the {layers} layers; use pp*vpp <= {layers}"
    )]
    TooManyChunks {
        pp: u32,
        vpp: u32,
        chunks: u32,
        layers: u32,
    },
    #[error(
        "recompute_layers={layers} needs recompute=full: it says how many layers \
         recompute their whole forward pass"
    )]
    RecomputeLayersNeedFull { layers: u32 },
    #[error("recompute_layers={layers} is not in 1..={here}, the layers on one device")]
    RecomputeLayersRange { layers: u32, here: u32 },
    #[error(
        "offload=activations needs pp=1: Megatron-Core has no CPU activation offloading \
         with pipeline parallelism; use offload=optimizer or pp=1"
    )]
    OffloadActivationsPipeline,
    #[error("vpp>1 needs pp>1: interleaving splits pipeline stages")]
    VppNeedsPipeline,
    #[error("cp={cp} needs the sequence length {seq_len} divisible by 2*cp")]
    ContextSeqLen { cp: u32, seq_len: u64 },
    #[error("ep={ep} does not divide the {experts} experts; use ep in {}", divisors_text(*.experts))]
    EpExperts { ep: u32, experts: u32 },
    #[error(
        "ep={ep} must divide dp*cp = {dp_cp}: expert-parallel ranks come from the \
         data- and context-parallel group"
    )]
    EpGroup { ep: u32, dp_cp: u32 },
    #[error("ep={ep} needs a mixture-of-experts model; use ep=1")]
    EpDense { ep: u32 },
    #[error(
        "global batch {global_batch} is not a multiple of dp*mb = {dp}*{micro_batch} = {per_step}"
    )]
    GlobalBatch {
        global_batch: u64,
        dp: u32,
        micro_batch: u32,
        per_step: u64,
    },
    #[error(
        "interleaving (vpp={vpp}) needs the {micro_batches} micro-batches per step to be a \
         multiple of pp={pp}"
    )]
    InterleavingMicroBatches {
        vpp: u32,
        micro_batches: u64,
        pp: u32,
    },
    #[error("tp*pp*cp = {model_parallel} does not divide the {devices} accelerators")]
    ModelParallelDevices { model_parallel: u64, devices: u64 },
    #[error("layout part `{part}` is not key=value (e.g. tp=8,pp=4,mb=1)")]
    NotKeyValue { part: String },
    #[error("layout `{key}={value}`: `{value}` is not a whole number")]
    NotWholeNumber { key: String, value: String },
    #[error("unknown recompute `{text}`; expected none, selective or full")]
    UnknownRecompute { text: String },
    #[error("layout `sp={value}`: use sp=true or sp=false")]
    SequenceParallel { value: String },
    #[error("layout `offload={value}`: use none, optimizer, activations or both")]
    Offload { value: String },
    #[error("layout `map={value}`: use dp-inner or pp-inner")]
    Map { value: String },
    #[error(
        "unknown layout key `{key}`; expected tp, pp, dp, cp, ep, zero, mb, vpp, \
         recompute, recompute_layers, sp, map or offload"
    )]
    UnknownKey { key: String },
}

/// The divisors of `n` as `{1,2,4,8}`, cut to the first eight and the last when there are many.
pub(crate) fn divisors_text(n: u32) -> String {
    let divisors: Vec<String> = crate::search::divisors(n.into())
        .iter()
        .map(|d| d.to_string())
        .collect();
    if divisors.len() > 12 {
        format!(
            "{{{} ... {}}}",
            divisors[..8].join(","),
            divisors[divisors.len() - 1]
        )
    } else {
        format!("{{{}}}", divisors.join(","))
    }
}
