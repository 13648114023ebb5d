//! The performance side of a goal job: for one accelerator type and gang size, the best layout
//! the planner finds, its training rate, the validation error band of the type's family and the
//! launch arguments in a framework's terms. The server combines these with prices, quotas and a
//! forecast of its queue to choose where a goal job runs.

use serde::{Deserialize, Serialize};
use suanli_catalog::{Accelerator, Model, Precision};

use crate::export::{self, ExportInput, Framework};
use crate::layout::Layout;
use crate::search::{self, Constraints};
use crate::train::TrainSetup;

/// Sequence length of a goal job unless the goal names one.
pub const DEFAULT_SEQ_LEN: u64 = 4096;

/// One gang's plan for a goal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GangPlan {
    pub accelerator: String,
    pub count: u32,
    pub layout: Layout,
    pub seq_len: u64,
    /// Sequences per optimizer step.
    pub global_batch: u64,
    /// Training tokens per second of the whole gang.
    pub tokens_per_s: f64,
    /// The family's cross-validated error band, percent (see [`crate::fit::validation_of`]).
    pub band_pct: f64,
    /// Accelerators per node the layout assumes.
    pub per_node: u32,
}

/// Gang sizes worth trying in a pool of `total` accelerators: the powers of two up to it, and
/// the whole pool.
pub fn gang_sizes(total: u32) -> Vec<u32> {
    let mut sizes: Vec<u32> = (0..32)
        .map(|k| 1u32 << k)
        .take_while(|&n| n <= total)
        .collect();
    if total > 0 && sizes.last() != Some(&total) {
        sizes.push(total);
    }
    sizes
}

/// The default global batch of `model` on `count` accelerators
/// ([`crate::goal::default_global_batch`]), rounded up to a multiple of `count` so every
/// data-parallel size divides it.
pub fn goal_global_batch(model: &Model, count: u32, seq_len: u64) -> u64 {
    let count = u64::from(count.max(1));
    crate::goal::default_global_batch(model, count, seq_len)
        .sequences
        .div_ceil(count)
        * count
}

/// The fastest layout of `model` on `count` accelerators of `accelerator` (bf16, `seq_len`-token
/// sequences, [`goal_global_batch`]), with `per_node` of them per node; the error says why none
/// fits or divides.
pub fn plan_gang(
    model: &Model,
    accelerator: &Accelerator,
    count: u32,
    per_node: u32,
    seq_len: u64,
) -> Result<GangPlan, search::SearchError> {
    let mut setup = TrainSetup::new(model.clone(), accelerator.clone(), u64::from(count));
    setup.per_node = per_node.max(1).min(count.max(1));
    setup.seq_len = seq_len;
    setup.global_batch = goal_global_batch(model, count, seq_len);
    let found = search::search(&setup, &Constraints::default(), 1)?;
    let best = found.top.into_iter().next().ok_or_else(|| {
        search::SearchError::NothingFits(format!("no layout of {count} {}", accelerator.id))
    })?;
    let band = crate::fit::validation_of(accelerator, crate::fit::Fitted::builtin());
    Ok(GangPlan {
        accelerator: accelerator.id.clone(),
        count,
        layout: best.layout,
        seq_len,
        global_batch: setup.global_batch,
        tokens_per_s: best.tokens_per_s,
        band_pct: band.uncertainty_pct,
        per_node: setup.per_node,
    })
}

/// The gang's layout as environment variables (`SUANLI_TP`, `SUANLI_PP`, ...).
pub fn layout_env(plan: &GangPlan) -> Vec<(String, String)> {
    let l = &plan.layout;
    [
        ("SUANLI_TP", l.tp.to_string()),
        ("SUANLI_PP", l.pp.to_string()),
        ("SUANLI_DP", l.dp.to_string()),
        ("SUANLI_CP", l.cp.to_string()),
        ("SUANLI_EP", l.ep.to_string()),
        ("SUANLI_VPP", l.vpp.to_string()),
        ("SUANLI_ZERO", l.zero.to_string()),
        ("SUANLI_MICRO_BATCH", l.micro_batch.to_string()),
        ("SUANLI_GLOBAL_BATCH", plan.global_batch.to_string()),
        ("SUANLI_SEQ_LEN", plan.seq_len.to_string()),
        ("SUANLI_RECOMPUTE", l.recompute.name().to_string()),
        (
            "SUANLI_SEQUENCE_PARALLEL",
            u8::from(l.sequence_parallel).to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The plan in `framework`'s terms, as one value for `SUANLI_LAUNCH_ARGS`: Megatron-LM and NeMo
/// arguments on one line, torchtitan's TOML and DeepSpeed's JSON as written.
pub fn launch_args(
    model: &Model,
    plan: &GangPlan,
    framework: Framework,
) -> Result<String, export::ExportError> {
    let input = ExportInput {
        model,
        layout: &plan.layout,
        precision: Precision::Bf16,
        seq_len: plan.seq_len,
        global_batch: plan.global_batch,
        count: u64::from(plan.count),
        per_node: plan.per_node,
    };
    let exported = export::export(framework, &input)?;
    Ok(match framework {
        Framework::Megatron | Framework::Nemo => exported
            .config
            .lines()
            .map(|line| line.trim().trim_end_matches('\\').trim())
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .collect::<Vec<_>>()
            .join(" "),
        Framework::Torchtitan | Framework::Deepspeed => exported.config,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use suanli_catalog::Catalog;

    #[test]
    fn gang_sizes_are_powers_of_two_and_the_pool() {
        assert_eq!(gang_sizes(8), vec![1, 2, 4, 8]);
        assert_eq!(gang_sizes(6), vec![1, 2, 4, 6]);
        assert_eq!(gang_sizes(0), Vec::<u32>::new());
    }

    #[test]
    fn a_gang_plan_multiplies_out_and_its_batch_divides() {
        let catalog = Catalog::builtin();
        let model = catalog.model("llama-3.1-8b").unwrap();
        let h100 = catalog.accelerator("h100-sxm5-80gb").unwrap();
        let plan = plan_gang(model, h100, 8, 8, DEFAULT_SEQ_LEN).unwrap();
        let l = plan.layout;
        assert_eq!(l.tp * l.pp * l.dp * l.cp, 8);
        assert_eq!(plan.global_batch % u64::from(l.dp * l.micro_batch), 0);
        // 8B parameters at 6 FLOP per parameter and token: tokens/s x 6 x 8e9 is a share of the
        // gang's dense bf16 peak (989 TFLOP/s per H100 SXM, NVIDIA's datasheet) below 1.
        let mfu = plan.tokens_per_s * 6.0 * 8.03e9 / (8.0 * 989e12);
        assert!((0.2..0.8).contains(&mfu), "MFU {mfu}");
        let env = layout_env(&plan);
        assert!(
            env.iter()
                .any(|(k, v)| k == "SUANLI_GLOBAL_BATCH" && *v == plan.global_batch.to_string())
        );
        let args = launch_args(model, &plan, Framework::Megatron).unwrap();
        assert!(
            args.contains(&format!("--tensor-model-parallel-size {}", l.tp)),
            "{args}"
        );
        assert!(!args.contains('\n'), "{args}");
    }

    #[test]
    fn a_model_too_big_for_one_device_says_why() {
        let catalog = Catalog::builtin();
        let model = catalog.model("llama-3.1-70b").unwrap();
        let a100 = catalog.accelerator("a100-sxm4-80gb").unwrap();
        let err = plan_gang(model, a100, 1, 8, DEFAULT_SEQ_LEN).unwrap_err();
        assert!(err.to_string().contains("fits"), "{err}");
    }
}
