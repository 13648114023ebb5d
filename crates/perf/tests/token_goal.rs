//! `goal::token_goal_rates`, the adapter that turns a model-plus-token goal into the scheduler's
//! per-type rates, checked against figures from outside this code.

use suanli_catalog::Catalog;
use suanli_perf::goal::token_goal_rates;

/// Llama 3.1 8B: 8.03 B parameters (Meta's model card); training costs ~6 FLOPs per parameter
/// per token (Kaplan et al. 2020, eq. 2.1; attention adds a few % at 4k tokens).
const LLAMA_8B_PARAMS: f64 = 8.03e9;
/// Dense BF16 peaks from the vendors' data sheets: H100 SXM5 989 TFLOP/s, A100 SXM4 312 TFLOP/s.
const H100_BF16_FLOPS: f64 = 989e12;
const A100_BF16_FLOPS: f64 = 312e12;

#[test]
fn rates_imply_the_model_flops_utilisation_published_runs_reach() {
    let catalog = Catalog::builtin();
    let model = catalog.model("llama-3.1-8b").unwrap();
    let ids = ["h100-sxm5-80gb", "a100-sxm4-80gb", "l40s"];
    let accelerators: Vec<_> = ids
        .iter()
        .map(|id| catalog.accelerator(id).unwrap())
        .collect();
    let rates = token_goal_rates(model, &accelerators, 8);
    let mfu = |rate: f64, peak: f64| rate * 6.0 * LLAMA_8B_PARAMS / (8.0 * peak);
    // Llama 3 reports 38-43% BF16 MFU on H100 (Dubey et al. 2024, Table 4); MLPerf and
    // Megatron-LM runs of 7-8B models on one 8-GPU node sit between ~35% and ~60%.
    let h100 = mfu(rates["h100-sxm5-80gb"], H100_BF16_FLOPS);
    let a100 = mfu(rates["a100-sxm4-80gb"], A100_BF16_FLOPS);
    eprintln!("MFU: H100 {h100:.3}, A100 {a100:.3}");
    assert!((0.3..=0.65).contains(&h100), "H100 MFU {h100}");
    assert!((0.3..=0.7).contains(&a100), "A100 MFU {a100}");
    // H100 is faster per device, by less than its 3.2x peak ratio (memory-bound parts gain less).
    let speedup = rates["h100-sxm5-80gb"] / rates["a100-sxm4-80gb"];
    assert!((1.5..=3.2).contains(&speedup), "H100/A100 {speedup}");

    // Llama 3.1 405B needs ~810 GB for its bf16 weights alone: one 48 GB L40S cannot train it,
    // so the type is left out rather than given a rate.
    let huge = catalog.model("llama-3.1-405b").unwrap();
    let one_l40s = [catalog.accelerator("l40s").unwrap()];
    assert!(token_goal_rates(huge, &one_l40s, 1).is_empty());
}
