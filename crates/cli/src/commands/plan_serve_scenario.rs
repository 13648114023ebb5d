//! `suanli plan serve --scenario ...`: one deployment under an MLPerf Inference scenario, and
//! the validated error band of the accelerator's family printed under every serving plan.

use super::plan_serve::{ServeArgs, chosen_engine, engine_line, kv_precision, ms};
use anyhow::bail;
use std::process::ExitCode;
use suanli_catalog::{Catalog, Model};
use suanli_perf::serve::fitted::{family, family_fit};
use suanli_perf::serve::scenario::{ChosenEngine, Scenario, sequences_that_fit, server_rate};
use suanli_perf::serve::{self, ServeSetup};

/// The family's fitted error band, or the unvalidated line.
pub fn error_band(accelerator_id: &str) -> String {
    match family_fit(accelerator_id) {
        Some(fit) => format!(
            "validated: {} family, {} published serving rows; median |error| {:.1}% with the \
             fitted constant, {} held out by source (suanli validate serve --cv)",
            fit.family,
            fit.rows,
            fit.median_abs_error_pct,
            fit.held_out_median_abs_error_pct
                .map_or("not measured".to_string(), |x| format!("{x:.1}%"))
        ),
        None => format!(
            "unvalidated: no published serving row for the {} family; treat these figures as \
             roofline estimates",
            family(accelerator_id)
        ),
    }
}

/// Runs one scenario on the deployment the arguments describe.
pub fn run(
    args: &ServeArgs,
    catalog: &Catalog,
    model: Model,
    scenario: Scenario,
) -> anyhow::Result<ExitCode> {
    let Some(name) = &args.accelerator else {
        bail!("--scenario needs --accelerator (or use --rate to search deployments)");
    };
    let needs_limits = matches!(scenario, Scenario::Server | Scenario::Interactive);
    if needs_limits && (args.ttft_slo.is_none() || args.tpot_slo.is_none()) {
        bail!(
            "--scenario server and interactive need --ttft-p99 and --tpot-p99, e.g. \
             --ttft-p99 2s --tpot-p99 200ms"
        );
    }
    let accelerator = catalog.accelerator(name)?.clone();
    let engine = chosen_engine(args, catalog)?;
    let mut setup = ServeSetup::new(model, accelerator, args.input_len, args.output_len);
    engine.apply(&mut setup);
    setup.tp = args.tp.unwrap_or(1);
    setup.pp = args.pp;
    setup.ep = args.ep;
    setup.weight_precision = args.precision;
    setup.kv_precision = kv_precision(args);
    setup.continuous_batching = !matches!(scenario, Scenario::Batch);
    let per_replica = setup.devices_per_replica().max(1);
    let count = args.count.unwrap_or(per_replica);
    if count == 0 || !count.is_multiple_of(per_replica) {
        bail!("--count {count} must be a positive multiple of tp x pp = {per_replica}");
    }
    setup.replicas = u32::try_from(count / per_replica)?;
    serve::check(&setup)?;
    let fits = sequences_that_fit(&setup, &engine.engine, setup.continuous_batching)?;
    let cap = args.batch.unwrap_or(fits).min(fits).max(1);
    let header = format!(
        "{} on {} x {} (tp={}, pp={}, {} replica(s)), weights {}, KV cache {}; {} input + {} output tokens",
        setup.model.name,
        count,
        setup.accelerator.name,
        setup.tp,
        setup.pp,
        setup.replicas,
        setup.weight_precision,
        setup.kv_precision,
        setup.input_len,
        setup.output_len
    );
    let printed = match scenario {
        Scenario::Server | Scenario::Interactive => {
            server(args, &setup, &engine, cap, count, &header)?
        }
        _ => batch(args, &mut setup, &engine, scenario, cap, &header)?,
    };
    if !printed {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(line) = engine_line(&engine) {
        println!("{line}");
    }
    println!("{}", error_band(&setup.accelerator.id));
    Ok(ExitCode::SUCCESS)
}

/// The server and interactive scenarios; false when JSON was printed.
fn server(
    args: &ServeArgs,
    setup: &ServeSetup,
    engine: &ChosenEngine,
    cap: u64,
    count: u64,
    header: &str,
) -> anyhow::Result<bool> {
    let (Some(ttft), Some(tpot)) = (args.ttft_slo, args.tpot_slo) else {
        bail!("--scenario server and interactive need --ttft-p99 and --tpot-p99");
    };
    let Some(load) = server_rate(setup, &engine.engine, cap, ttft, tpot)? else {
        bail!(
            "no request rate meets p99 TTFT {} and TPOT {} on this deployment; \
             use more tp, fp8 weights or looser limits",
            ms(ttft),
            ms(tpot)
        );
    };
    let replicas = setup.replicas as f64;
    let tokens = load.rate_per_s * setup.output_len as f64 * replicas;
    if args.json {
        let value = serde_json::json!({"setup": setup, "engine": engine.engine, "batch_cap": cap,
            "per_replica": load, "requests_per_s": load.rate_per_s * replicas,
            "output_tokens_per_s": tokens});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(false);
    }
    println!("{header}");
    println!(
        "highest Poisson rate within p99 TTFT {} and p99 TPOT {}: {:.2} requests/s \
         ({:.0} output tokens/s, {:.0} per device)",
        ms(ttft),
        ms(tpot),
        load.rate_per_s * replicas,
        tokens,
        tokens / count as f64
    );
    println!(
        "per replica: mean batch {:.0} of cap {cap}; TTFT mean {} p99 {}; TPOT mean {} \
         p99 {}; prefill share {:.0}%",
        load.mean_batch,
        ms(load.ttft_mean_s),
        ms(load.ttft_p99_s),
        ms(load.tpot_mean_s),
        ms(load.tpot_p99_s),
        load.prefill_share * 100.0
    );
    Ok(true)
}

/// The offline, single-stream and fixed-batch scenarios; false when JSON was printed.
fn batch(
    args: &ServeArgs,
    setup: &mut ServeSetup,
    engine: &ChosenEngine,
    scenario: Scenario,
    cap: u64,
    header: &str,
) -> anyhow::Result<bool> {
    setup.batch = Some(match scenario {
        Scenario::SingleStream => 1,
        _ => cap,
    });
    let estimate = serve::estimate(setup)?;
    if args.json {
        let value =
            serde_json::json!({"setup": setup, "engine": engine.engine, "estimate": estimate});
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(false);
    }
    println!("{header}");
    println!(
        "batch {}: {:.0} output tokens/s ({:.0} per device); TTFT {} TPOT {}",
        estimate.batch,
        estimate.output_tokens_per_s_total,
        estimate.output_tokens_per_s_per_device,
        ms(estimate.ttft_s),
        ms(estimate.tpot_s)
    );
    Ok(true)
}
