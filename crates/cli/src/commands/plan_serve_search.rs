//! `suanli plan serve --rate R --ttft-slo T --tpot-slo T`: the cheapest deployments that meet
//! both latency targets at a request rate, and why each rejected accelerator type failed.

use super::format;
use super::plan_serve::{ServeArgs, kv_precision, ms};
use anyhow::bail;
use std::process::ExitCode;
use suanli_catalog::{Catalog, Model};
use suanli_perf::serve_search::{self, Candidate, SearchResult, SearchSpec};

/// Runs the deployment search.
pub fn run(args: &ServeArgs, catalog: &Catalog, model: Model) -> anyhow::Result<ExitCode> {
    let (Some(rate), Some(ttft_slo_s), Some(tpot_slo_s)) =
        (args.rate, args.ttft_slo, args.tpot_slo)
    else {
        bail!("--rate needs --ttft-slo and --tpot-slo");
    };
    if !(rate > 0.0 && rate.is_finite()) {
        bail!("--rate must be a positive number of requests per second");
    }
    let mut prices = Vec::new();
    for (name, price) in &args.price {
        prices.push((catalog.accelerator(name)?.id.clone(), *price));
    }
    let names: Vec<String> = if !args.accelerators.is_empty() {
        args.accelerators.clone()
    } else if let Some(name) = &args.accelerator {
        vec![name.clone()]
    } else {
        serve_search::DEFAULT_PRICES
            .iter()
            .map(|(id, _)| id.to_string())
            .collect()
    };
    let mut candidates = Vec::new();
    for name in &names {
        let accelerator = catalog.accelerator(name)?.clone();
        let price = prices
            .iter()
            .find(|(id, _)| *id == accelerator.id)
            .map(|(_, price)| *price)
            .or_else(|| serve_search::default_price(&accelerator.id));
        let Some(price_per_hour) = price else {
            bail!(
                "{} has no default price; give one with --price {}=DOLLARS_PER_HOUR",
                accelerator.id,
                accelerator.id
            );
        };
        candidates.push(Candidate {
            accelerator,
            price_per_hour,
        });
    }
    let spec = SearchSpec {
        model,
        candidates,
        input_len: args.input_len,
        output_len: args.output_len,
        weight_precision: args.precision,
        kv_precision: kv_precision(args),
        rate_per_s: rate,
        ttft_slo_s,
        tpot_slo_s,
        max_devices_per_replica: args.max_devices_per_replica.max(1),
        top: args.top,
        engine: super::plan_serve::chosen_engine(args, catalog)?,
    };
    let result = serve_search::search(&spec)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        print_result(&spec, &result);
        if let Some(line) = super::plan_serve::engine_line(&spec.engine) {
            println!("{line}");
        }
    }
    if result.deployments.is_empty() {
        let reasons: Vec<String> = result
            .rejected
            .iter()
            .map(|r| format!("{}: {}", r.accelerator, r.reason))
            .collect();
        bail!(
            "no deployment of {} meets TTFT {} and TPOT {} at {rate} requests/s ({}); relax the \
             targets, shorten the prompts or try other accelerators",
            spec.model.name,
            ms(ttft_slo_s),
            ms(tpot_slo_s),
            reasons.join("; ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn print_result(spec: &SearchSpec, result: &SearchResult) {
    println!(
        "{} at {} requests/s, {} input + {} output tokens, weights {}, KV cache {}; targets: \
         p99 TTFT {}, p99 TPOT {} under Poisson arrivals",
        spec.model.name,
        spec.rate_per_s,
        spec.input_len,
        spec.output_len,
        spec.weight_precision,
        spec.kv_precision,
        ms(spec.ttft_slo_s),
        ms(spec.tpot_slo_s)
    );
    if !result.deployments.is_empty() {
        let mut table = format::table(&[
            "#",
            "accelerator",
            "tp",
            "pp",
            "ep",
            "replicas",
            "devices",
            "max batch",
            "mean batch",
            "TTFT p99",
            "TPOT p99",
            "USD/hour",
            "USD/M output tokens",
        ]);
        for (rank, d) in result.deployments.iter().enumerate() {
            table.add_row(vec![
                (rank + 1).to_string(),
                d.accelerator.clone(),
                d.tp.to_string(),
                d.pp.to_string(),
                d.ep.to_string(),
                d.replicas.to_string(),
                d.devices.to_string(),
                d.max_batch.to_string(),
                format!("{:.1}", d.mean_batch),
                ms(d.ttft_s),
                ms(d.tpot_s),
                format!("{:.2}", d.price_per_hour),
                format!("{:.3}", d.cost_per_million_output_tokens),
            ]);
        }
        println!("{table}");
        for (rank, d) in result.deployments.iter().enumerate() {
            if let Some(pools) = &d.pools {
                println!(
                    "#{} is disaggregated: prefill pool {} x tp={}, decode pool {} x tp={}; KV \
                     {:.1} MB per request over {} ({} each, {:.2} GB/s between the pools)",
                    rank + 1,
                    pools.prefill_replicas,
                    pools.prefill_tp,
                    pools.decode_replicas,
                    pools.decode_tp,
                    pools.kv_bytes_per_request / 1e6,
                    pools.kv_link,
                    ms(pools.kv_transfer_s),
                    pools.kv_bytes_per_s / 1e9
                );
            }
        }
    }
    for rejection in &result.rejected {
        println!("rejected {}: {}", rejection.accelerator, rejection.reason);
    }
}
