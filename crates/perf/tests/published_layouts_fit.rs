//! Every layout in data/validation/training-runs.csv ran on its accelerator, so the memory
//! model must fit it; so must the two flagship layouts of 2024 (Llama 3.1 405B, DeepSeek-V3).

use suanli_catalog::{Catalog, Precision};
use suanli_perf::train::{self, TrainSetup};
use suanli_perf::{LayoutError, LayoutSpec, search, validate};

#[test]
fn every_published_layout_fits_its_accelerator() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/validation/training-runs.csv"
    );
    let text = std::fs::read_to_string(path).expect("validation table is in the repository");
    let rows = validate::read_training_runs(&text).expect("table parses");
    let catalog = Catalog::builtin();
    let mut checked = 0;
    let mut failures = Vec::new();
    for row in &rows {
        let (setup, constraints) =
            validate::row_setup(&catalog, row).unwrap_or_else(|why| panic!("{}: {why}", row.id));
        let layouts = search::candidates(&setup, &constraints);
        let smallest = layouts
            .iter()
            .map(|l| train::memory(&setup, l))
            .min_by(|a, b| a.total_bytes.total_cmp(&b.total_bytes));
        checked += 1;
        match smallest {
            None => failures.push(format!("{}: the published layout does not divide", row.id)),
            Some(m) if !m.fits() => failures.push(format!(
                "{}: {:.1} GB > {:.0} GB",
                row.id,
                m.total_bytes / 1e9,
                m.capacity_bytes / 1e9
            )),
            Some(_) => {}
        }
    }
    assert_eq!(checked, rows.len(), "rows sized");
    assert!(failures.is_empty(), "{failures:#?}");
}

fn setup(model: &str, accelerator: &str, count: u64) -> TrainSetup {
    let catalog = Catalog::builtin();
    TrainSetup::new(
        catalog.model(model).unwrap().clone(),
        catalog.accelerator(accelerator).unwrap().clone(),
        count,
    )
}

#[test]
fn llama3_405b_meta_layout_fits_an_h100() {
    // Dubey et al. 2024, Table 4: tp 8, cp 1, pp 16, dp 128, 8192 tokens, 16M-token batch.
    let mut s = setup("llama-3.1-405b", "h100-sxm5-80gb", 16_384);
    s.seq_len = 8192;
    s.global_batch = 2048;
    // The paper does not name its recompute policy; the planner's default, selective, must fit.
    let layout = "tp=8,pp=16,cp=1,mb=1"
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(16_384)
        .unwrap();
    let m = train::memory(&s, &layout);
    assert!(m.fits(), "{:.1} GB", m.total_bytes / 1e9);
    // Unfused 2022 accounting (5 a s^2 b scores per layer without recompute) would not.
    s.attention = suanli_perf::AttentionImpl::Unfused;
    let none = suanli_perf::Layout {
        recompute: suanli_perf::Recompute::None,
        ..layout
    };
    assert!(!train::memory(&s, &none).fits());
}

#[test]
fn deepseek_v3_layout_fits_an_h800() {
    // DeepSeek-AI 2024, section 3.2: 16-way pipeline, 64-way expert parallel, ZeRO-1, fp8.
    let mut s = setup("deepseek-v3", "h800", 2048);
    s.precision = Precision::Fp8;
    s.global_batch = 15_360;
    let layout = "tp=1,pp=16,ep=64,zero=1,mb=1"
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(2048)
        .unwrap();
    let m = train::memory(&s, &layout);
    assert!(m.fits(), "{:.1} GB", m.total_bytes / 1e9);
}

#[test]
fn whole_run_metrics_are_predicted_with_the_expected_time() {
    let mut s = setup("llama-3.1-405b", "h100-sxm5-80gb", 16_384);
    s.seq_len = 8192;
    s.global_batch = 2048;
    s.tokens_total = Some(15.6e12);
    let layout = "tp=8,pp=16,cp=1,mb=1,vpp=4"
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(16_384)
        .unwrap();
    let e = train::estimate(&s, &layout).unwrap();
    let ideal_days = e.budget.unwrap().days;
    let days = validate::predicted_metric("days", &e, &s).unwrap();
    let hours = validate::predicted_metric("gpu_hours", &e, &s).unwrap();
    // Llama 3 reports more than 90% effective training time (Dubey et al. 2024, section
    // 3.3.4): the expected run is longer than the ideal by under 12% at that scale.
    assert!(
        days > ideal_days * 1.02 && days < ideal_days * 1.12,
        "{days} vs {ideal_days}"
    );
    assert!((hours / (days * 24.0 * 16_384.0) - 1.0).abs() < 1e-9);
}

#[test]
fn an_offloaded_optimizer_frees_its_states_and_costs_host_bandwidth() {
    let mut s = setup("llama-3.1-70b", "h100-sxm5-80gb", 8);
    s.global_batch = 64;
    let on_device: suanli_perf::Layout = "tp=8,zero=1,recompute=full"
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(8)
        .unwrap();
    let spec: LayoutSpec = "tp=8,zero=1,recompute=full,offload=optimizer"
        .parse()
        .unwrap();
    let offloaded = spec.resolve(8).unwrap();
    assert!(offloaded.to_string().ends_with(",offload=optimizer"));
    let (a, b) = (
        train::estimate(&s, &on_device).unwrap(),
        train::estimate(&s, &offloaded).unwrap(),
    );
    // 70.6B parameters / tp 8 = 8.8B per device, 12 bytes each = 106 GB of Adam state.
    assert!((a.memory.optimizer_bytes / 1e9 - 106.0).abs() < 2.0);
    assert_eq!(b.memory.optimizer_bytes, 0.0);
    assert!(!a.memory.fits() && b.memory.fits());
    // 8.8B x (6 B over 50 GB/s PCIe + 28 B at 75 GB/s of host memory) = 4.3 s per step.
    assert!(
        (b.time.optimizer_s - 4.35).abs() < 0.3,
        "{}",
        b.time.optimizer_s
    );
    assert!("offload=disk".parse::<LayoutSpec>().is_err());
}

#[test]
fn offloaded_activations_leave_two_layers_and_cost_host_link_time() {
    let mut s = setup("llama-3.1-8b", "h100-sxm5-80gb", 8);
    s.seq_len = 8192;
    s.global_batch = 64;
    let resolve = |text: &str| text.parse::<LayoutSpec>().unwrap().resolve(8).unwrap();
    let kept = resolve("tp=1,zero=3,mb=2,recompute=none");
    let offloaded = resolve("tp=1,zero=3,mb=2,recompute=none,offload=activations");
    let (a, b) = (
        train::estimate(&s, &kept).unwrap(),
        train::estimate(&s, &offloaded).unwrap(),
    );
    // 32 layers stored, 2 kept: the layer share of activations falls 16-fold (the logits stay).
    assert!(b.memory.activations_bytes < a.memory.activations_bytes / 4.0);
    assert!(!a.memory.fits() && b.memory.fits());
    assert_eq!(a.time.offload_s, 0.0);
    assert!(b.time.offload_s > 0.0 && b.step_time_s > a.step_time_s);
    let pipelined = resolve("tp=1,pp=2,zero=1,offload=activations");
    let err = pipelined.check(&s.model, 8, 8192, 64).unwrap_err();
    assert_eq!(err, LayoutError::OffloadActivationsPipeline);
    assert!(err.to_string().contains("pp=1"), "{err}");
}
