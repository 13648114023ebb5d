//! The percentile queueing model of continuous batching against the discrete-event simulation
//! of the same batching, and the MLPerf scenarios on catalog hardware.

use suanli_catalog::{Catalog, Precision};
use suanli_perf::serve::ServeSetup;
use suanli_perf::serve::queue::{self, IterationCost};
use suanli_perf::serve::scenario::{
    Engine, TENSORRT_LLM, VLLM, iteration_cost, sequences_that_fit,
};
use suanli_perf::serve::sim;

fn llama70b_h200() -> ServeSetup {
    let catalog = Catalog::builtin();
    let model = catalog.model("llama-3.1-70b").unwrap().clone();
    let h200 = catalog.accelerator("h200-sxm-141gb").unwrap().clone();
    let mut setup = ServeSetup::new(model, h200, 512, 290);
    setup.weight_precision = Precision::Fp8;
    setup.kv_precision = Precision::Fp8;
    setup.continuous_batching = true;
    setup
}

fn cost() -> IterationCost {
    let setup = llama70b_h200();
    let fits = sequences_that_fit(&setup, &TENSORRT_LLM, true).unwrap();
    iteration_cost(&setup, &TENSORRT_LLM, fits.min(600)).unwrap()
}

fn within(model: f64, simulated: f64, tolerance: f64) -> bool {
    (model - simulated).abs() <= tolerance * simulated
}

#[test]
fn percentiles_match_the_discrete_event_simulation_at_four_loads() {
    let cost = cost();
    let limit = queue::max_rate(&cost, 512.0, 290.0, 2.0, 0.2).expect("a rate meets the limits");
    // Loads up to 85% of the limit, 60,000 requests each (near the decode step's tile stair
    // the replica is bistable and switches rarely: over 6,000 requests the simulated mean TPOT
    // at 85% spreads from 44 to 48 ms with the seed). The model weighs the two states by the
    // stationary distribution of the batch (`queue::stationary`); while it took the congested
    // state alone the check held only up to 75% (at 85%, then 6.58 req/s, its mean TPOT read
    // 78 ms against the simulation's 55 ms). Until the batch's spread counted each prompt's
    // stall for a whole residence (shot noise) and the p99 TPOT took the step's rise above the
    // mode, amplified by the prompts a longer life lets in, the p99 TPOT held only up to 80%:
    // at 85% it read 57 ms where the simulation measures 71-72 ms (seeds 7 and 11).
    for share in [0.3, 0.6, 0.8, 0.85] {
        let rate = limit.rate_per_s * share;
        let model = queue::latencies(&cost, 512.0, 290.0, rate).unwrap();
        let measured = sim::simulate(&cost, 512, 290, rate, 60_000, 7);
        assert!(
            within(model.tpot_mean_s, measured.tpot_mean_s, 0.05),
            "rate {rate:.2}: TPOT mean model {:.4} vs simulated {:.4}",
            model.tpot_mean_s,
            measured.tpot_mean_s
        );
        assert!(
            within(model.tpot_p99_s, measured.tpot_p99_s, 0.12),
            "rate {rate:.2}: TPOT p99 model {:.4} vs simulated {:.4}",
            model.tpot_p99_s,
            measured.tpot_p99_s
        );
        // p99 TTFT: 0.233 / 0.326 / 0.416 / 0.438 s in the model against 0.233 / 0.326 /
        // 0.423 / 0.448 s simulated (seed 7, measured over 40,000 requests). Until the prefill
        // queue served the prompts that arrive during an iteration together in the next
        // (`queue::prefill`), an M/D/1 queue of one prompt at a time read 8-19% under, and the
        // tolerance was 25%.
        assert!(
            within(model.ttft_p99_s, measured.ttft_p99_s, 0.08),
            "rate {rate:.2}: TTFT p99 model {:.4} vs simulated {:.4}",
            model.ttft_p99_s,
            measured.ttft_p99_s
        );
        let throughput = rate * 290.0;
        assert!(within(throughput, measured.output_tokens_per_s, 0.05));
    }
}

/// The p99 TPOT and TTFT on three other replicas (model, accelerator, lengths, cap and engine unlike the
/// H200 replica above), against the simulation up to 85% of each replica's highest rate.
/// Measured with this check's figures (p99 TPOT, model / simulated over 160,000 requests, ms):
/// Llama 3.1 8B bf16 on one H100, 1024 + 256, 17.8 / 18.4 at 60% and 35.6 / 33.0 at 85%;
/// Llama 3.1 70B fp8 on one MI300X (GEMMs at AMD's measured rate), 222 + 291, 72.3 / 68.8 at 80%
/// and 77.2 / 76.4 at 85%; on one H200, 2048 + 128, 83.9 / 87.6 at 85%.
#[test]
fn p99_tpot_and_ttft_match_the_simulation_on_other_replicas() {
    let catalog = Catalog::builtin();
    let replicas: [(&str, &str, u64, u64, u64, Precision, &Engine); 3] = [
        (
            "llama-3.1-8b",
            "h100-sxm5-80gb",
            1024,
            256,
            256,
            Precision::Bf16,
            &VLLM,
        ),
        (
            "llama-3.1-70b",
            "mi300x",
            222,
            291,
            1024,
            Precision::Fp8,
            &VLLM,
        ),
        (
            "llama-3.1-70b",
            "h200-sxm-141gb",
            2048,
            128,
            512,
            Precision::Fp8,
            &TENSORRT_LLM,
        ),
    ];
    for (model, accelerator, input, output, cap, precision, engine) in replicas {
        let model = catalog.model(model).unwrap().clone();
        let accelerator = catalog.accelerator(accelerator).unwrap().clone();
        let mut setup = ServeSetup::new(model, accelerator, input, output);
        setup.weight_precision = precision;
        setup.kv_precision = precision;
        setup.continuous_batching = true;
        let fits = sequences_that_fit(&setup, engine, true).unwrap();
        let cost = iteration_cost(&setup, engine, fits.min(cap)).unwrap();
        let (i, o) = (input as f64, output as f64);
        let limit = queue::max_rate(&cost, i, o, 2.0, 0.2).unwrap();
        // The replica keeps up at every rate below its highest: on the MI300X replica the
        // model once had no answer at 78-79% (its largest fixed point sat on a stair too steep
        // to hold, and the smaller one that holds was not tried).
        for percent in 1..100 {
            let rate = limit.rate_per_s * f64::from(percent) / 100.0;
            let answer = queue::latencies(&cost, i, o, rate);
            assert!(
                answer.is_some(),
                "{input} + {output}: no answer at {percent}%"
            );
        }
        for share in [0.3, 0.6, 0.8, 0.85] {
            let rate = limit.rate_per_s * share;
            let model = queue::latencies(&cost, i, o, rate).unwrap();
            // 160,000 requests: at 80% the MI300X replica is bistable (a burst tips it into a
            // congested state that holds itself), and over 40,000 requests its p99 TPOT spread
            // from 45 to 73 ms with the seed, by whether the run visited that state; over
            // 160,000 it reads 68.8 ms against the model's 72.3.
            let measured = sim::simulate(&cost, input, output, rate, 160_000, 7);
            let check = |name: &str, model: f64, simulated: f64, tolerance: f64| {
                assert!(
                    within(model, simulated, tolerance),
                    "{input} + {output} at {share}: {name} p99 model {model:.4} vs simulated \
                     {simulated:.4}"
                );
            };
            check("TPOT", model.tpot_p99_s, measured.tpot_p99_s, 0.15);
            // With the bulk-service prefill queue the p99 TTFT is within 5% on the first two
            // replicas and -10% on the 2048-token one at 85% (the M/D/1 queue: -17% to -22%).
            check("TTFT", model.ttft_p99_s, measured.ttft_p99_s, 0.12);
        }
    }
}

#[test]
fn the_search_chooses_a_deployment_that_meets_p99_in_simulation() {
    // The model's highest rate itself meets both limits event by event.
    let limit = queue::max_rate(&cost(), 512.0, 290.0, 2.0, 0.2).unwrap();
    let at_limit = sim::simulate(&cost(), 512, 290, limit.rate_per_s, 6000, 13);
    assert!(
        at_limit.ttft_p99_s <= 2.0 && at_limit.tpot_p99_s <= 0.2,
        "{at_limit:?}"
    );
    let rate = 40.0;
    let (chosen, cost) = chosen_at(rate);
    assert!(chosen.ttft_s <= 2.0 && chosen.tpot_s <= 0.2);
    let measured = sim::simulate(&cost, 512, 290, rate / chosen.replicas as f64, 6000, 3);
    assert!(
        measured.ttft_p99_s <= 2.0 && measured.tpot_p99_s <= 0.2,
        "{chosen:?}\n{measured:?}"
    );
    // One replica fewer misses a target in the model.
    if chosen.replicas > 1 {
        let fewer = rate / (chosen.replicas - 1) as f64;
        let load = queue::latencies(&cost, 512.0, 290.0, fewer);
        assert!(load.is_none_or(|l| l.ttft_p99_s > 2.0 || l.tpot_p99_s > 0.2));
    }
}

#[test]
fn the_model_highest_rate_meets_both_limits_in_simulation() {
    // At the model's own highest rate for the server limits the simulation's p99 TTFT and
    // TPOT stay within them on several seeds. (Before the full-batch state entered the TPOT
    // mixture the limit was 7.74 req/s, where seed 7 measured a p99 TPOT of 207 ms.) The
    // interactive limit binds on a unimodal batch, where the model's p99 TPOT is a normal
    // approximation (1-2% under the simulation's, inside the 12% of the test above): there the
    // simulation stays within that tolerance of the limit.
    let cost = cost();
    for (ttft_s, tpot_s, slack) in [(2.0, 0.2, 1.0), (0.45, 0.04, 1.12)] {
        let limit = queue::max_rate(&cost, 512.0, 290.0, ttft_s, tpot_s).unwrap();
        for seed in [7, 13, 29] {
            let measured = sim::simulate(&cost, 512, 290, limit.rate_per_s, 6000, seed);
            assert!(
                measured.ttft_p99_s <= ttft_s * slack && measured.tpot_p99_s <= tpot_s * slack,
                "limits {ttft_s} s / {tpot_s} s, rate {:.3}, seed {seed}: {measured:?}",
                limit.rate_per_s
            );
        }
    }
}

#[test]
fn tighter_limits_give_a_lower_rate() {
    let cost = cost();
    let server = queue::max_rate(&cost, 512.0, 290.0, 2.0, 0.2).unwrap();
    let interactive = queue::max_rate(&cost, 512.0, 290.0, 0.45, 0.04).unwrap();
    assert!(interactive.rate_per_s < server.rate_per_s);
    assert!(interactive.tpot_p99_s <= 0.04 && interactive.ttft_p99_s <= 0.45);
    // The interactive limit binds on TPOT: a looser TTFT alone does not raise the rate much.
    let loose = queue::max_rate(&cost, 512.0, 290.0, 2.0, 0.04).unwrap();
    assert!(loose.rate_per_s < server.rate_per_s);
}

#[test]
#[ignore = "diagnostic print"]
fn print_model_and_simulation() {
    let cost = cost();
    println!(
        "decode(1) {:.4} decode(100) {:.4} decode(300) {:.4} decode(600) {:.4} p {:.3e}",
        cost.decode(1.0),
        cost.decode(100.0),
        cost.decode(300.0),
        cost.decode(600.0),
        cost.prefill_token_s
    );
    let limit = queue::max_rate(&cost, 512.0, 290.0, 2.0, 0.2).unwrap();
    println!("limit {limit:?}");
    for share in [0.3, 0.6, 0.85, 0.95, 1.0] {
        let rate = limit.rate_per_s * share;
        let model = queue::latencies(&cost, 512.0, 290.0, rate);
        let measured = sim::simulate(&cost, 512, 290, rate, 6000, 7);
        println!("{share}: {model:?}\n   {measured:?}");
    }
}

#[test]
fn expert_imbalance_matches_random_routing() {
    use suanli_perf::serve::expert_imbalance;
    // Monte Carlo: 64 token-expert pairs over 8 ranks, the busiest rank against the mean.
    let mut state = 0x9e3779b97f4a7c15u64;
    let mut total = 0.0;
    let trials = 4000;
    for _ in 0..trials {
        let mut counts = [0u32; 8];
        for _ in 0..64 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            counts[(state % 8) as usize] += 1;
        }
        total += *counts.iter().max().unwrap() as f64 / 8.0;
    }
    let simulated = total / trials as f64;
    let model = expert_imbalance(64.0, 8.0);
    assert!(
        (model - simulated).abs() < 0.12 * simulated,
        "{model} vs {simulated}"
    );
    assert_eq!(expert_imbalance(64.0, 1.0), 1.0);
    assert!(expert_imbalance(1e6, 8.0) < 1.01);
}

/// The search's cheapest deployment for 512+290-token requests at `rate` on H200s at the server
/// limits (2 s p99 TTFT, 200 ms p99 TPOT), and one replica's iteration cost.
fn chosen_at(rate: f64) -> (suanli_perf::serve_search::Deployment, IterationCost) {
    use suanli_perf::serve_search::{self, Candidate, SearchSpec};
    let setup = llama70b_h200();
    let spec = SearchSpec {
        model: setup.model.clone(),
        candidates: vec![Candidate {
            accelerator: setup.accelerator.clone(),
            price_per_hour: 3.5,
        }],
        input_len: 512,
        output_len: 290,
        weight_precision: Precision::Fp8,
        kv_precision: Precision::Fp8,
        rate_per_s: rate,
        ttft_slo_s: 2.0,
        tpot_slo_s: 0.2,
        max_devices_per_replica: 8,
        top: 1,
        engine: Default::default(),
    };
    let chosen = serve_search::search(&spec).unwrap().deployments[0].clone();
    let mut replica = setup;
    replica.tp = chosen.tp;
    replica.pp = chosen.pp;
    replica.ep = chosen.ep;
    let cost = iteration_cost(&replica, &TENSORRT_LLM, chosen.max_batch).unwrap();
    (chosen, cost)
}

/// The search's chosen deployment at `rate`, simulated event by event at its per-replica rate.
fn chosen_in_simulation(rate: f64) -> (suanli_perf::serve_search::Deployment, sim::Measured) {
    let (chosen, cost) = chosen_at(rate);
    assert!(
        chosen.pools.is_none(),
        "short prompts stay colocated: {chosen:?}"
    );
    let measured = sim::simulate(&cost, 512, 290, rate / chosen.replicas as f64, 6000, 17);
    (chosen, measured)
}

#[test]
fn the_search_meets_p99_in_simulation_even_at_its_own_limit() {
    // `plan serve --scenario server --ttft-p99 2s --tpot-p99 200ms`, searched: the fewest
    // replicas put each one anywhere up to the model's highest rate, so the worst case is a
    // total rate that lands every replica right at it. Find that rate for the chosen shape and
    // check the deployment chosen there event by event, with some everyday rates.
    let (first, _) = chosen_in_simulation(20.0);
    let mut replica = llama70b_h200();
    replica.tp = first.tp;
    replica.pp = first.pp;
    let cost = iteration_cost(&replica, &TENSORRT_LLM, first.max_batch).unwrap();
    let limit = queue::max_rate(&cost, 512.0, 290.0, 2.0, 0.2)
        .unwrap()
        .rate_per_s;
    for rate in [5.0, 20.0, 45.0, 2.0 * limit * 0.999, 3.0 * limit * 0.999] {
        let (chosen, measured) = chosen_in_simulation(rate);
        assert!(chosen.ttft_s <= 2.0 && chosen.tpot_s <= 0.2, "{chosen:?}");
        assert!(
            measured.ttft_p99_s <= 2.0 && measured.tpot_p99_s <= 0.2,
            "rate {rate:.2}: {chosen:?}\n{measured:?}"
        );
    }
}

#[test]
fn near_capacity_the_model_p99_ttft_does_not_fall_below_the_simulation() {
    // Above about 95% of the replica's capacity a Poisson burst can tip the batch into a
    // congested state that holds itself (`queue::fixed_point`); the model counts the windows
    // whose arrivals outrun the capacity, so its p99 TTFT stays at or above the simulation's.
    let cost = cost();
    let capacity = queue::capacity_rate(&cost, 512.0, 290.0);
    for share in [0.95, 0.98, 0.99] {
        let rate = capacity * share;
        let Some(model) = queue::latencies(&cost, 512.0, 290.0, rate) else {
            continue;
        };
        let measured = sim::simulate(&cost, 512, 290, rate, 6000, 7);
        assert!(
            model.ttft_p99_s >= 0.9 * measured.ttft_p99_s,
            "{share}: model {:.3} s vs simulated {:.3} s",
            model.ttft_p99_s,
            measured.ttft_p99_s
        );
    }
}
