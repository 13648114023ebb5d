//! Formulas of the training model checked against hand-computed values from their sources.

use suanli_catalog::{Catalog, Precision};
use suanli_perf::search::{self, Constraints};
use suanli_perf::train::{self, TrainSetup};
use suanli_perf::{Layout, LayoutError, LayoutSpec, Recompute, flops, memory};

fn catalog() -> Catalog {
    Catalog::builtin()
}

fn gpt3() -> suanli_catalog::Model {
    catalog().model("gpt-3-175b").unwrap().clone()
}

#[test]
fn model_flops_match_narayanan_eq3_for_gpt() {
    // 72 B s l h^2 (1 + s/(6h) + V/(12 l h)), Narayanan et al. 2021, eq. 3 without recompute.
    let m = gpt3();
    let (b, s, l, h, v) = (1536.0, 2048.0, 96.0, 12288.0, m.vocab as f64);
    let expected = 72.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (12.0 * l * h));
    let got = flops::model_flops_per_step(&m, 2048, 1536);
    assert!(
        (got / expected - 1.0).abs() < 1e-3,
        "{got:e} vs {expected:e}"
    );
    // Full recompute: 96 B s l h^2 (1 + s/(6h) + V/(16 l h)).
    let expected_hw = 96.0 * b * s * l * h * h * (1.0 + s / (6.0 * h) + v / (16.0 * l * h));
    let got_hw = flops::hardware_flops_per_step(&m, 2048, 1536, Recompute::Full);
    assert!((got_hw / expected_hw - 1.0).abs() < 1e-3);
}

#[test]
fn activation_memory_matches_korthikanti_table2() {
    // Per layer, tensor parallel t with sequence parallelism and no recompute:
    // s b h (34 + 5 a s / h) / t bytes (Korthikanti et al. 2022, Table 2).
    let m = gpt3();
    let layout = Layout {
        tp: 8,
        sequence_parallel: true,
        recompute: Recompute::None,
        ..Layout::default()
    };
    let (s, b, h, a, t) = (2048.0, 1.0, 12288.0, 96.0, 8.0);
    let expected = s * b * h * (34.0 + 5.0 * a * s / h) / t;
    let got = memory::layer_activation_bytes(
        &m,
        &layout,
        2048,
        suanli_perf::AttentionImpl::Unfused,
        false,
    );
    assert!((got / expected - 1.0).abs() < 0.01, "{got} vs {expected}");
    // Selective recompute drops the 5 a s / h term; full keeps only the 2 s b h input.
    let selective = Layout {
        recompute: Recompute::Selective,
        ..layout
    };
    let got = memory::layer_activation_bytes(
        &m,
        &selective,
        2048,
        suanli_perf::AttentionImpl::Unfused,
        false,
    );
    assert!((got / (s * b * h * 34.0 / t) - 1.0).abs() < 0.01);
    let full = Layout {
        recompute: Recompute::Full,
        ..layout
    };
    let got =
        memory::layer_activation_bytes(&m, &full, 2048, suanli_perf::AttentionImpl::Unfused, false);
    assert!((got / (2.0 * s * b * h / t) - 1.0).abs() < 1e-9);
}

#[test]
fn zero_stages_shard_what_rajbhandari_says() {
    let c = catalog();
    let mut setup = TrainSetup::new(
        c.model("llama-3.1-8b").unwrap().clone(),
        c.accelerator("h100-sxm5-80gb").unwrap().clone(),
        64,
    );
    setup.global_batch = 64;
    let base = Layout {
        dp: 64,
        micro_batch: 1,
        ..Layout::default()
    };
    let at = |zero| train::memory(&setup, &Layout { zero, ..base });
    let (z0, z1, z2, z3) = (at(0), at(1), at(2), at(3));
    assert!((z1.optimizer_bytes * 64.0 - z0.optimizer_bytes).abs() / z0.optimizer_bytes < 1e-9);
    assert_eq!(z1.gradients_bytes, z0.gradients_bytes);
    assert!((z2.gradients_bytes * 64.0 - z0.gradients_bytes).abs() / z0.gradients_bytes < 1e-9);
    assert_eq!(z2.weights_bytes, z0.weights_bytes);
    assert!((z3.weights_bytes * 64.0 - z0.weights_bytes).abs() / z0.weights_bytes < 1e-9);
    // Adam in mixed precision: 16-bit weights, fp32 gradients (bf16), 12 bytes of state.
    let params = z0.weights_bytes / 2.0;
    assert!((z0.optimizer_bytes / params - 12.0).abs() < 1e-9);
    assert!((z0.gradients_bytes / params - 4.0).abs() < 1e-9);
}

#[test]
fn step_time_parts_add_up_and_mfu_is_below_one() {
    let c = catalog();
    let mut setup = TrainSetup::new(
        c.model("llama-3.1-70b").unwrap().clone(),
        c.accelerator("h100-sxm5-80gb").unwrap().clone(),
        512,
    );
    setup.tokens_total = Some(2e12);
    setup.price_per_hour = Some(2.0);
    let layout = "tp=8,pp=4,mb=1,vpp=5"
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(512)
        .unwrap();
    let e = train::estimate(&setup, &layout).unwrap();
    let t = &e.time;
    let sum = t.compute_s
        + t.recompute_s
        + t.tp_comm_s
        + t.cp_comm_s
        + t.ep_comm_s
        + t.pp_p2p_s
        + t.pp_bubble_s
        + t.dp_comm_exposed_s
        + t.optimizer_s;
    assert!((sum - e.step_time_s).abs() < 1e-9);
    assert!(e.mfu > 0.2 && e.mfu < 0.75, "mfu {}", e.mfu);
    assert!(e.hfu >= e.mfu);
    let budget = e.budget.unwrap();
    assert!((budget.accelerator_hours / 512.0 / 24.0 - budget.days).abs() < 1e-6);
    assert!((budget.cost.unwrap() - 2.0 * budget.accelerator_hours).abs() < 1e-3);
    assert!((budget.energy_kwh.unwrap() - 0.7 * budget.accelerator_hours).abs() < 1e-3);
}

#[test]
fn more_pipeline_stages_shrink_weights_and_interleaving_shrinks_the_bubble() {
    let c = catalog();
    let setup = TrainSetup::new(
        c.model("llama-3.1-70b").unwrap().clone(),
        c.accelerator("h100-sxm5-80gb").unwrap().clone(),
        256,
    );
    let layout = |pp, vpp| Layout {
        tp: 8,
        pp,
        dp: 256 / (8 * pp),
        vpp,
        sequence_parallel: true,
        ..Layout::default()
    };
    let pp2 = train::estimate(&setup, &layout(2, 1)).unwrap();
    let pp4 = train::estimate(&setup, &layout(4, 1)).unwrap();
    let pp4_interleaved = train::estimate(&setup, &layout(4, 5)).unwrap();
    assert!(pp4.memory.weights_bytes < pp2.memory.weights_bytes);
    assert!(pp4_interleaved.time.pp_bubble_s < pp4.time.pp_bubble_s);
}

#[test]
fn search_finds_a_fitting_layout_for_405b_on_16k_h100() {
    let c = catalog();
    let mut setup = TrainSetup::new(
        c.model("llama-3.1-405b").unwrap().clone(),
        c.accelerator("h100-sxm5-80gb").unwrap().clone(),
        16384,
    );
    setup.seq_len = 8192;
    setup.global_batch = 2048;
    let found = search::search(&setup, &Constraints::default(), 3).unwrap();
    assert_eq!(found.top.len(), 3);
    for e in &found.top {
        assert!(e.memory.fits());
        assert_eq!(e.layout.devices(), 16384);
    }
    assert!(found.top[0].step_time_s <= found.top[2].step_time_s);
}

#[test]
fn nothing_fits_says_how_much_memory_the_weights_need() {
    let c = catalog();
    let setup = TrainSetup::new(
        c.model("llama-3.1-405b").unwrap().clone(),
        c.accelerator("a100-sxm4-40gb").unwrap().clone(),
        8,
    );
    let error = search::search(&setup, &Constraints::default(), 1)
        .unwrap_err()
        .to_string();
    assert!(error.contains("no layout fits in memory"), "{error}");
    assert!(
        error.contains("GB per device") && error.contains("40 GB"),
        "{error}"
    );
}

#[test]
fn layouts_that_do_not_divide_the_model_say_what_would() {
    let m = catalog().model("llama-3.1-70b").unwrap().clone();
    let layout = Layout {
        tp: 3,
        dp: 1,
        ..Layout::default()
    };
    let error = layout.check(&m, 3, 4096, 64).unwrap_err();
    assert_eq!(error, LayoutError::TpHeads { tp: 3, heads: 64 });
    assert_eq!(
        error.to_string(),
        "tp=3 does not divide the 64 attention heads; use tp in {1,2,4,8,16,32,64}"
    );
    let error = "tp=8,bogus=1".parse::<LayoutSpec>().unwrap_err();
    assert_eq!(
        error,
        LayoutError::UnknownKey {
            key: "bogus".into()
        }
    );
    assert!(
        error
            .to_string()
            .starts_with("unknown layout key `bogus`; expected tp")
    );
    let error = "tp=x".parse::<LayoutSpec>().unwrap_err();
    assert_eq!(
        error.to_string(),
        "layout `tp=x`: `x` is not a whole number"
    );
    let error = "tp=3"
        .parse::<LayoutSpec>()
        .unwrap()
        .resolve(8)
        .unwrap_err();
    assert_eq!(
        error,
        LayoutError::ModelParallelDevices {
            model_parallel: 3,
            devices: 8
        }
    );
    assert_eq!(
        error.to_string(),
        "tp*pp*cp = 3 does not divide the 8 accelerators"
    );
}

#[test]
fn fp8_needs_an_accelerator_with_an_fp8_peak() {
    let c = catalog();
    let mut setup = TrainSetup::new(
        c.model("llama-2-7b").unwrap().clone(),
        c.accelerator("a100-sxm4-80gb").unwrap().clone(),
        8,
    );
    setup.precision = Precision::Fp8;
    setup.global_batch = 8;
    let layout = Layout {
        dp: 8,
        ..Layout::default()
    };
    let error = train::estimate(&setup, &layout).unwrap_err().to_string();
    assert!(error.contains("no dense fp8 peak"), "{error}");
}

#[test]
fn int8_training_on_tpu_pays_the_aqt_quantisation_pass() {
    use suanli_perf::kernels::{AttentionImpl, LayerShape};
    // GPT-3 175B layer, tp=1, one 2048-token sequence: the weight GEMMs' operands are the four
    // weight matrices (12 h^2 = 1.812e9 elements at h = 12288) and their inputs (h for QKV, h
    // for the output projection, h for the up-projection, 4h for the down-projection: 7 h per
    // token = 1.762e8 elements).
    let model = gpt3();
    let layout: suanli_perf::LayoutSpec = "tp=1,pp=1,dp=1,mb=1".parse().unwrap();
    let layout = layout.resolve(1).unwrap();
    let shape = LayerShape {
        model: &model,
        layout: &layout,
        seq_len: 2048,
        attention: AttentionImpl::Flash,
        moe: false,
    };
    let h = 12288.0_f64;
    let expected = 12.0 * h * h + 2048.0 * 7.0 * h;
    let got = shape.weight_gemm_operand_elements();
    assert!((got / expected - 1.0).abs() < 0.01, "{got} vs {expected}");
    // On a v6e at int8 the pass makes the step slower than the same layout without it would be
    // by at least the weights' bytes (3 per element, forward + recompute + 2x backward) over
    // HBM bandwidth: 96 layers x 1.812e9 x 3 B x 4 / 1.64 TB/s = 1.27 s per micro-batch.
    let catalog = catalog();
    let v6e = catalog.accelerator("tpu-v6e").unwrap().clone();
    let mut setup = train::TrainSetup::new(model, v6e, 256);
    setup.seq_len = 2048;
    setup.global_batch = 256;
    let layout: suanli_perf::LayoutSpec = "tp=1,pp=1,dp=256,zero=3,mb=1,recompute=full"
        .parse()
        .unwrap();
    let layout = layout.resolve(256).unwrap();
    setup.precision = suanli_catalog::Precision::Int8;
    let int8 = train::estimate(&setup, &layout).unwrap();
    // Forward, recomputed forward and backward GEMMs at the family's fitted int8 rate.
    let gemm_s = 8.0 * 175e9 * 2048.0 / (1836e12 * setup.efficiency.matmul_8bit);
    let beyond_gemm_s = int8.time.compute_s + int8.time.recompute_s - gemm_s;
    assert!(
        beyond_gemm_s > 1.27,
        "{beyond_gemm_s} s besides the GEMMs: no room for the quantisation pass"
    );
}
