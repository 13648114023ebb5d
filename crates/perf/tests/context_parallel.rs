//! Context parallelism only where the sequence needs it, its exchange costed, and a ranking
//! without copies of one plan.

use suanli_catalog::Catalog;
use suanli_perf::layout::Layout;
use suanli_perf::search::{self, Constraints};
use suanli_perf::train::TrainSetup;

fn llama405b(seq_len: u64, global_batch: u64) -> TrainSetup {
    let catalog = Catalog::builtin();
    let mut setup = TrainSetup::new(
        catalog.model("llama-3.1-405b").unwrap().clone(),
        catalog.accelerator("h100-sxm5-80gb").unwrap().clone(),
        16_384,
    );
    setup.seq_len = seq_len;
    setup.global_batch = global_batch;
    setup
}

#[test]
fn at_8k_tokens_the_search_keeps_cp_1_as_llama3_did() {
    // Dubey et al. 2024, Table 4: 8192 tokens, tp 8, cp 1, pp 16, dp 128.
    let found = search::search(&llama405b(8192, 2048), &Constraints::default(), 5).unwrap();
    assert!(found.top.iter().all(|e| e.layout.cp == 1));
}

#[test]
fn at_128k_tokens_context_parallelism_is_chosen_and_its_exchange_costs_time() {
    // Llama 3's long-context stage: 131072 tokens, cp 16, 16M tokens per step.
    let found = search::search(&llama405b(131_072, 128), &Constraints::default(), 3).unwrap();
    let best = &found.top[0];
    assert!(best.layout.cp >= 8, "{}", best.layout);
    assert!(best.time.cp_comm_s > 0.0, "the ring exchange was free");
    // Forced to cp=16 at 8k, a block is too short to hide its transfer: the exposed exchange
    // per token is larger than at 128k.
    let short = search::search(
        &llama405b(8192, 2048),
        &Constraints {
            cp: Some(16),
            ..Constraints::default()
        },
        1,
    )
    .unwrap();
    let per_token = |e: &suanli_perf::train::TrainEstimate, tokens: f64| e.time.cp_comm_s / tokens;
    let long_cp = search::search(
        &llama405b(131_072, 128),
        &Constraints {
            cp: Some(16),
            ..Constraints::default()
        },
        1,
    )
    .unwrap();
    assert!(
        per_token(&short.top[0], 8192.0 * 2048.0) > per_token(&long_cp.top[0], 131_072.0 * 128.0)
    );
}

/// The plan a row stands for: the layout without the settings in which rows of one plan may
/// differ (ZeRO stage, rank order, sequence parallelism, offloads, how many layers recompute);
/// the search keeps one row of such variants within 0.5% of each other. Written as what is
/// left out, so a field added to `Layout` counts as part of the plan here.
fn plan_of(layout: &Layout) -> Layout {
    Layout {
        zero: 0,
        pp_inner: false,
        sequence_parallel: false,
        offload_optimizer: false,
        offload_activations: false,
        recompute_layers: None,
        ..*layout
    }
}

#[test]
fn the_ranking_has_no_two_rows_with_the_same_split() {
    let found = search::search(&llama405b(8192, 2048), &Constraints::default(), 5).unwrap();
    let plans: Vec<Layout> = found.top.iter().map(|e| plan_of(&e.layout)).collect();
    for (i, a) in plans.iter().enumerate() {
        assert!(!plans[i + 1..].contains(a), "{a} twice");
    }
}
