//! The serving deployment search: what it returns meets both targets and fits; impossible
//! targets and models reject every accelerator with a reason.

use suanli_catalog::{Catalog, Precision};
use suanli_perf::serve::{self, ServeSetup};
use suanli_perf::serve_search::{self, Candidate, SearchSpec};

fn spec(model: &str, accelerators: &[&str], rate: f64, ttft_ms: f64, tpot_ms: f64) -> SearchSpec {
    let catalog = Catalog::builtin();
    SearchSpec {
        model: catalog.model(model).unwrap().clone(),
        candidates: accelerators
            .iter()
            .map(|id| {
                let accelerator = catalog.accelerator(id).unwrap().clone();
                let price_per_hour = serve_search::default_price(&accelerator.id).unwrap();
                Candidate {
                    accelerator,
                    price_per_hour,
                }
            })
            .collect(),
        input_len: 2048,
        output_len: 256,
        weight_precision: Precision::Fp8,
        kv_precision: Precision::Fp8,
        rate_per_s: rate,
        ttft_slo_s: ttft_ms / 1e3,
        tpot_slo_s: tpot_ms / 1e3,
        max_devices_per_replica: 16,
        engine: Default::default(),
        top: 10,
    }
}

#[test]
fn every_deployment_found_meets_both_targets_and_fits() {
    for (model, rate, ttft_ms, tpot_ms) in [
        ("llama-3.1-70b", 20.0, 500.0, 50.0),
        ("llama-3.1-8b", 100.0, 300.0, 30.0),
        ("mixtral-8x7b", 5.0, 1000.0, 40.0),
    ] {
        let spec = spec(
            model,
            &[
                "h100-sxm5-80gb",
                "h200-sxm-141gb",
                "mi300x",
                "l40s",
                "a100-sxm4-80gb",
            ],
            rate,
            ttft_ms,
            tpot_ms,
        );
        let result = serve_search::search(&spec).unwrap();
        assert!(
            !result.deployments.is_empty(),
            "{model}: {:?}",
            result.rejected
        );
        for window in result.deployments.windows(2) {
            assert!(window[0].price_per_hour <= window[1].price_per_hour);
        }
        for d in &result.deployments {
            assert!(
                d.ttft_s <= spec.ttft_slo_s && d.tpot_s <= spec.tpot_slo_s,
                "{d:?}"
            );
            assert!(d.mean_batch <= d.max_batch as f64, "{d:?}");
            let catalog = Catalog::builtin();
            let mut setup = ServeSetup::new(
                spec.model.clone(),
                catalog.accelerator(&d.accelerator).unwrap().clone(),
                spec.input_len,
                spec.output_len,
            );
            setup.tp = d.tp;
            setup.pp = d.pp;
            setup.weight_precision = spec.weight_precision;
            setup.kv_precision = spec.kv_precision;
            // The search serves by continuous batching: sequences hold input + output / 2.
            setup.continuous_batching = true;
            let memory = serve::memory(&setup, d.max_batch).unwrap();
            assert!(d.max_batch <= memory.max_sequences, "{d:?}");
            assert!(memory.total_bytes <= memory.capacity_bytes, "{d:?}");
        }
    }
}

#[test]
fn impossible_targets_reject_every_accelerator_with_a_reason() {
    let result = serve_search::search(&spec(
        "llama-3.1-70b",
        &["h100-sxm5-80gb", "l40s"],
        10.0,
        5.0,
        50.0,
    ))
    .unwrap();
    assert!(result.deployments.is_empty());
    assert_eq!(result.rejected.len(), 2);
    assert!(
        result
            .rejected
            .iter()
            .all(|r| r.reason.contains("TTFT") || r.reason.contains("TPOT"))
    );

    let mut too_small = spec("llama-3.1-405b", &["l40s"], 1.0, 10_000.0, 1000.0);
    too_small.max_devices_per_replica = 4;
    let result = serve_search::search(&too_small).unwrap();
    assert!(
        result.rejected[0].reason.contains("does not fit"),
        "{:?}",
        result.rejected
    );
}

#[test]
fn a_higher_rate_never_costs_less() {
    let at = |rate| {
        serve_search::search(&spec(
            "llama-3.1-8b",
            &["h100-sxm5-80gb"],
            rate,
            500.0,
            40.0,
        ))
        .unwrap()
        .deployments[0]
            .price_per_hour
    };
    assert!(at(10.0) <= at(50.0) && at(50.0) <= at(200.0));
}

#[test]
fn long_prompts_under_a_tight_tpot_choose_disaggregated_pools_and_short_ones_do_not() {
    use suanli_perf::serve::queue;
    use suanli_perf::serve::scenario::{TENSORRT_LLM, iteration_cost};
    use suanli_perf::serve::sim;
    let mut long = spec("llama-3.1-70b", &["b200-sxm-180gb"], 20.0, 2000.0, 30.0);
    long.input_len = 8192;
    let chosen = serve_search::search(&long).unwrap().deployments[0].clone();
    let pools = chosen
        .pools
        .clone()
        .expect("disaggregated wins for 8k prompts at 30 ms TPOT");
    assert!(pools.kv_bytes_per_request > 1e9, "{pools:?}");
    assert!(chosen.ttft_s <= 2.0 && chosen.tpot_s <= 0.03, "{chosen:?}");
    // The decode pool alone, event by event: its p99 TPOT meets the target.
    let catalog = Catalog::builtin();
    let mut decode = ServeSetup::new(
        long.model.clone(),
        catalog.accelerator("b200-sxm-180gb").unwrap().clone(),
        8192,
        256,
    );
    decode.tp = pools.decode_tp;
    decode.weight_precision = Precision::Fp8;
    decode.kv_precision = Precision::Fp8;
    decode.continuous_batching = true;
    let mut cost = iteration_cost(&decode, &TENSORRT_LLM, pools.decode_max_batch).unwrap();
    cost.prefill_token_s = 0.0;
    let rate = 20.0 / pools.decode_replicas as f64;
    let measured = sim::simulate(&cost, 1, 256, rate, 4000, 5);
    assert!(measured.tpot_p99_s <= 0.03, "{measured:?}");
    let model = queue::latencies(&cost, 8192.0, 256.0, rate).unwrap();
    assert!((model.tpot_p99_s - measured.tpot_p99_s).abs() < 0.1 * measured.tpot_p99_s);
    // Short prompts under a loose TPOT stay colocated.
    let mut short = spec("llama-3.1-70b", &["b200-sxm-180gb"], 20.0, 2000.0, 200.0);
    short.input_len = 512;
    let chosen = serve_search::search(&short).unwrap().deployments[0].clone();
    assert!(chosen.pools.is_none(), "{chosen:?}");
}

#[test]
fn rejection_reasons_are_typed_and_keep_their_text() {
    use suanli_perf::serve_search::RejectReason;
    let tpot = RejectReason::Tpot {
        best_ms: 12.34,
        target_ms: 10.0,
    };
    assert_eq!(
        tpot.to_string(),
        "TPOT at batch 1 is 12.3 ms at best, above the 10.0 ms target"
    );
    let holds = RejectReason::NoReplicaHolds {
        max_devices: 8,
        why: None,
    };
    assert_eq!(
        holds.to_string(),
        "no replica of up to 8 devices holds it: no room for the KV cache of one sequence"
    );
    assert_ne!(holds, RejectReason::NoReplicaCount);
}

/// An engine that schedules while the GPU waits (vLLM 0.10, V1 before asynchronous
/// scheduling) never makes a deployment cheaper or faster than one whose host work overlaps,
/// and what the search returns still meets both targets.
#[test]
fn serial_host_time_costs_the_search_latency() {
    use suanli_perf::serve::scenario::{ChosenEngine, engine_of};
    let catalog = Catalog::builtin();
    let overlapped = spec("llama-3.1-70b", &["h100-sxm5-80gb"], 20.0, 500.0, 50.0);
    let mut serial = overlapped.clone();
    serial.engine = ChosenEngine::resolve(engine_of("vLLM", Some("0.10.2")), &catalog).unwrap();
    assert!(serial.engine.host_s_per_sequence > 10e-6);
    let best = |spec: &SearchSpec| serve_search::search(spec).unwrap().deployments[0].clone();
    let (fast, slow) = (best(&overlapped), best(&serial));
    assert!(slow.price_per_hour >= fast.price_per_hour);
    if (slow.tp, slow.pp, slow.replicas) == (fast.tp, fast.pp, fast.replicas) {
        assert!(slow.max_batch <= fast.max_batch, "{slow:?} vs {fast:?}");
    }
    assert!(slow.ttft_s <= serial.ttft_slo_s && slow.tpot_s <= serial.tpot_slo_s);
}
