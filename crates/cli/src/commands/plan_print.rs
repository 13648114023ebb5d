//! `plan train`'s tables for people: the ranking of the fastest layouts, and one estimate's
//! step time, memory, overflow advice and budget.

use super::format::{self, gb, seconds};
use comfy_table::Table;
use suanli_perf::train::{TrainEstimate, TrainSetup};

/// The line printed under a layout that does not fit: how far over it is, where the bytes go
/// and what would bring it under. The plan is still printed: published layouts that ran must
/// never be refused, and a user wants to see how far off theirs is.
fn overflow_line(setup: &TrainSetup, e: &TrainEstimate) -> Option<String> {
    let memory = &e.memory;
    let layout = &e.layout;
    if memory.fits() {
        return None;
    }
    let mut hint = Vec::new();
    if memory.weights_bytes + memory.gradients_bytes + memory.optimizer_bytes
        > memory.capacity_bytes * 0.6
    {
        hint.push(format!("pp>={}", (layout.pp * 2).min(setup.model.layers)));
        if layout.zero < 3 {
            hint.push(format!("zero={}", layout.zero + 1));
        }
    }
    if memory.optimizer_bytes > memory.capacity_bytes * 0.3 && !layout.offload_optimizer {
        hint.push("offload=optimizer".into());
    }
    if memory.activations_bytes > memory.capacity_bytes * 0.3 {
        if layout.recompute != suanli_perf::Recompute::Full {
            hint.push("recompute=full".into());
        }
        if layout.pp == 1 && !layout.offload_activations {
            hint.push("offload=activations".into());
        }
        if layout.micro_batch > 1 {
            hint.push("a smaller mb".into());
        }
    }
    hint.push("or leave out --layout to search".into());
    Some(format!(
        "does not fit: needs {} per device, {} over the {} of a {} (weights {}, gradients {}, \
         optimizer {}, activations {}, buffers {}); try {}",
        gb(memory.total_bytes),
        gb(memory.total_bytes - memory.capacity_bytes),
        gb(memory.capacity_bytes),
        setup.accelerator.id,
        gb(memory.weights_bytes),
        gb(memory.gradients_bytes),
        gb(memory.optimizer_bytes),
        gb(memory.activations_bytes),
        gb(memory.buffers_bytes),
        hint.join(", ")
    ))
}

pub(super) fn ranking_table(estimates: &[TrainEstimate]) -> Table {
    let mut table = format::table(&[
        "#",
        "layout",
        "step",
        "MFU",
        "tokens/s",
        "memory/device",
        "bubble",
        "exposed comm",
    ]);
    for (rank, e) in estimates.iter().enumerate() {
        let t = &e.time;
        let comm = t.tp_comm_s + t.cp_comm_s + t.ep_comm_s + t.pp_p2p_s + t.dp_comm_exposed_s;
        table.add_row(vec![
            (rank + 1).to_string(),
            e.layout.to_string(),
            seconds(e.step_time_s),
            format!("{:.1}%", e.mfu * 100.0),
            format::si(e.tokens_per_s),
            gb(e.memory.total_bytes),
            format!("{:.1}%", t.pp_bubble_s / e.step_time_s * 100.0),
            format!("{:.1}%", comm / e.step_time_s * 100.0),
        ]);
    }
    table
}

pub(super) fn print_estimate(setup: &TrainSetup, e: &TrainEstimate) {
    println!(
        "\n{} on {} x {} ({} per node), {}, seq {}, global batch {}",
        setup.model.name,
        setup.count,
        setup.accelerator.name,
        setup.per_node,
        setup.precision,
        setup.seq_len,
        setup.global_batch
    );
    println!(
        "layout {}  ({} micro-batches per step)",
        e.layout, e.micro_batches
    );
    println!(
        "step {}   MFU {:.1}%   HFU {:.1}%   {:.0} model TFLOP/s per device   {} tokens/s ({} per device)",
        seconds(e.step_time_s),
        e.mfu * 100.0,
        e.hfu * 100.0,
        e.tflops_per_device_model,
        format::si(e.tokens_per_s),
        format::si(e.tokens_per_s_per_device)
    );
    let t = &e.time;
    let mut time = format::table(&["time per step", "seconds", "share"]);
    for (name, value) in [
        ("compute (fwd+bwd)", t.compute_s),
        ("recompute", t.recompute_s),
        ("tensor-parallel comm", t.tp_comm_s),
        ("context-parallel comm", t.cp_comm_s),
        ("expert-parallel all-to-all", t.ep_comm_s),
        ("pipeline send/receive", t.pp_p2p_s),
        ("pipeline bubble", t.pp_bubble_s),
        ("data-parallel comm (exposed)", t.dp_comm_exposed_s),
        ("optimizer", t.optimizer_s),
    ] {
        time.add_row(vec![
            name.to_string(),
            format!("{value:.3}"),
            format!("{:.1}%", value / e.step_time_s * 100.0),
        ]);
    }
    if t.offload_s > 0.0 {
        time.add_row(vec![
            "activation offload to host (exposed)".to_string(),
            format!("{:.3}", t.offload_s),
            format!("{:.1}%", t.offload_s / e.step_time_s * 100.0),
        ]);
    }
    time.add_row(vec![
        "data-parallel comm (total, mostly overlapped)".to_string(),
        format!("{:.3}", t.dp_comm_total_s),
        String::new(),
    ]);
    let m = &e.memory;
    let memory = format::memory_table(&[
        ("weights", m.weights_bytes),
        ("gradients", m.gradients_bytes),
        ("optimizer states", m.optimizer_bytes),
        ("activations", m.activations_bytes),
        ("buffers and runtime", m.buffers_bytes),
        ("total", m.total_bytes),
        ("capacity", m.capacity_bytes),
    ]);
    println!("{time}\n{memory}");
    if let Some(line) = overflow_line(setup, e) {
        println!("{line}");
    }
    if let Some(budget) = &e.budget {
        let mut line = format!(
            "{} tokens: {:.1} days, {} accelerator-hours",
            format::si(budget.tokens),
            budget.days,
            format::si(budget.accelerator_hours)
        );
        if let Some(kwh) = budget.energy_kwh {
            line.push_str(&format!(", {} kWh at TDP", format::si(kwh)));
        }
        if let Some(cost) = budget.cost {
            line.push_str(&format!(", cost {} USD", format::si(cost)));
        }
        println!("{line}");
    }
}
