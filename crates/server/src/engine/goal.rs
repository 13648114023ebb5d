//! Goal jobs: "train this model on these tokens by this date within this budget". For every
//! accelerator type the job may use and every gang size up to its pool, the planner's best
//! layout gives the run time (`suanli_perf::goal_plan`), the indicative price the cost, the live
//! queue run forward the start (`forecast`); the cheapest option that finishes by the deadline
//! within the budget and the tenant's quota wins, and every other option says why it lost.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use suanli_catalog::Catalog;
use suanli_perf::goal_plan::{self, GangPlan};
use suanli_perf::search::SearchError;

use super::forecast::{self, Snapshot};
pub use super::goal_job::{apply_choice, goal_env, goal_for_gang, goal_from};
use super::{Engine, EngineError};
use crate::calendar::span_text;
use crate::store::GoalOption;

/// A goal as a request gives it.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct GoalRequest {
    /// Catalog id of the model.
    pub model: String,
    /// Tokens to train.
    pub tokens: f64,
    /// Finish by this time, Unix seconds.
    #[serde(default)]
    pub deadline_s: Option<i64>,
    /// Spend at most this many US dollars.
    #[serde(default)]
    pub budget_usd: Option<f64>,
    /// Tokens per sequence (default 4096).
    #[serde(default)]
    pub seq_len: Option<u64>,
    /// megatron, nemo, torchtitan or deepspeed: the terms of `SUANLI_LAUNCH_ARGS`.
    #[serde(default)]
    pub framework: Option<String>,
}

/// The options for a goal, the chosen one first among them, and why nothing was chosen.
#[derive(Clone, Debug, Deserialize, Serialize, utoipa::ToSchema)]
pub struct GoalPlan {
    pub now_s: i64,
    pub deadline_s: Option<i64>,
    pub budget_usd: Option<f64>,
    /// The option that wins, if any.
    pub chosen: Option<GoalOption>,
    /// Every other option, with why it lost.
    pub options: Vec<GoalOption>,
    /// One line saying why no option was chosen.
    pub problem: Option<String>,
}

/// What planning needs from the engine, taken under its lock and used off it.
pub struct PlanInputs {
    catalog: Arc<Catalog>,
    tenant: String,
    /// (type, largest pool, accelerators per node) of each type the job may use.
    types: Vec<(String, u32, u32)>,
    /// The tenant's quota per type.
    quota: BTreeMap<String, u32>,
    snapshot: Snapshot,
}

impl Engine {
    /// The inputs to plan a goal of `tenant` on `accelerators` (empty: any type).
    pub fn goal_inputs(&self, tenant: &str, accelerators: &[String]) -> PlanInputs {
        let mut types: BTreeMap<String, (u32, u32)> = BTreeMap::new();
        for pool in self.pools.iter().filter(|p| {
            p.accelerator != "cpu"
                && (accelerators.is_empty() || accelerators.contains(&p.accelerator))
        }) {
            let entry = types.entry(pool.accelerator.clone()).or_insert((0, 1));
            if pool.total > entry.0 {
                *entry = (pool.total, pool.per_node.max(1));
            }
        }
        PlanInputs {
            catalog: self.catalog.clone(),
            tenant: tenant.to_string(),
            types: types.into_iter().map(|(t, (n, p))| (t, n, p)).collect(),
            quota: self
                .quotas
                .iter()
                .filter(|((t, _), _)| t == tenant)
                .map(|((_, a), limit)| (a.clone(), *limit))
                .collect(),
            snapshot: self.snapshot(),
        }
    }
}

/// Why a gang has no plan: a name the catalog does not know, or no layout that fits.
#[derive(Debug, thiserror::Error)]
pub enum GangPlanError {
    #[error(transparent)]
    Catalog(#[from] suanli_catalog::CatalogError),
    /// Shared with the cache, which keeps the answer for the next ask.
    #[error(transparent)]
    Search(Arc<SearchError>),
}

/// Gang plans already searched, by (model, type, count, per node, sequence length): a plan and
/// the submit after it ask for the same ones.
pub(super) fn cached_plan(
    catalog: &Catalog,
    model: &str,
    accelerator: &str,
    count: u32,
    per_node: u32,
    seq_len: u64,
) -> Result<GangPlan, GangPlanError> {
    type Key = (String, String, u32, u32, u64);
    type Found = Result<GangPlan, Arc<SearchError>>;
    static CACHE: OnceLock<Mutex<HashMap<Key, Found>>> = OnceLock::new();
    let model = catalog.model(model)?;
    let device = catalog.accelerator(accelerator)?;
    let key = (
        model.id.clone(),
        device.id.clone(),
        count,
        per_node,
        seq_len,
    );
    // A poisoned lock still holds whole entries: each is inserted in one call.
    let cache = || {
        CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    };
    let known = cache().get(&key).cloned();
    let found = known.unwrap_or_else(|| {
        let found = goal_plan::plan_gang(model, device, count, per_node, seq_len).map_err(Arc::new);
        cache().insert(key, found.clone());
        found
    });
    found.map_err(GangPlanError::Search)
}

fn dollars(usd: f64) -> String {
    if usd >= 100.0 {
        format!("${usd:.0}")
    } else {
        format!("${usd:.2}")
    }
}

/// Checks a goal request's numbers; the message says what would be right.
pub fn check_request(request: &GoalRequest) -> Result<(), EngineError> {
    let bad = |m: String| Err(EngineError::Rejected(m));
    if !(request.tokens.is_finite() && request.tokens > 0.0) {
        return bad(format!(
            "goal tokens must be a positive number like 1e11, not {}",
            request.tokens
        ));
    }
    if let Some(budget) = request.budget_usd
        && !(budget.is_finite() && budget > 0.0)
    {
        return bad(format!(
            "goal budget must be a positive number of dollars, not {budget}"
        ));
    }
    if let Some(seq) = request.seq_len
        && !(128..=1 << 20).contains(&seq)
    {
        return bad(format!(
            "goal seq_len must be between 128 and 1048576, not {seq}"
        ));
    }
    if let Some(framework) = &request.framework {
        framework
            .parse::<suanli_perf::export::Framework>()
            .map_err(EngineError::Rejected)?;
    }
    Ok(())
}

/// Every option for `request` and the winner (CPU-heavy: the layout searches and one forecast per
/// option; call it off the async threads).
pub fn plan(inputs: &PlanInputs, request: &GoalRequest) -> Result<GoalPlan, EngineError> {
    check_request(request)?;
    let model = inputs
        .catalog
        .model(&request.model)
        .map_err(|e| EngineError::Rejected(e.to_string()))?
        .clone();
    if inputs.types.is_empty() {
        return Err(EngineError::Rejected(
            "no accelerator pool here can train a model (only cpu, or none of the types asked for)"
                .into(),
        ));
    }
    let seq_len = request.seq_len.unwrap_or(goal_plan::DEFAULT_SEQ_LEN);
    let now_s = inputs.snapshot.now_s as i64;
    let mut options = Vec::new();
    for (accelerator, total, per_node) in &inputs.types {
        for count in goal_plan::gang_sizes(*total) {
            let mut option = GoalOption {
                accelerator: accelerator.clone(),
                count,
                plan: None,
                predicted_start_s: None,
                predicted_finish_s: None,
                finish_band_s: 0,
                cost_usd: None,
                launch_args: None,
                lost: None,
            };
            if let Some(&limit) = inputs.quota.get(accelerator)
                && limit < count
            {
                option.lost = Some(format!(
                    "quota: tenant `{}` may hold at most {limit} {accelerator}",
                    inputs.tenant
                ));
                options.push(option);
                continue;
            }
            let gang = match cached_plan(
                &inputs.catalog,
                &model.id,
                accelerator,
                count,
                *per_node,
                seq_len,
            ) {
                Ok(gang) => gang,
                Err(why) => {
                    option.lost = Some(short_reason(&why.to_string()));
                    options.push(option);
                    continue;
                }
            };
            let run_s = (request.tokens / gang.tokens_per_s).ceil() as u64;
            option.finish_band_s = (run_s as f64 * gang.band_pct / 100.0).round() as i64;
            option.cost_usd = suanli_perf::serve_search::default_price(accelerator)
                .map(|price| price * f64::from(count) * run_s as f64 / 3600.0);
            option.plan = Some(gang);
            let job = forecast::candidate(&inputs.tenant, accelerator, count, run_s);
            match inputs.snapshot.start_of(&job) {
                Ok(start) => {
                    option.predicted_start_s = Some(start as i64);
                    option.predicted_finish_s = Some(start as i64 + run_s as i64);
                }
                Err(why) => option.lost = Some(format!("start: {why}")),
            }
            options.push(option);
        }
    }
    for option in options.iter_mut().filter(|o| o.lost.is_none()) {
        option.lost = lost_to_limits(option, request);
    }
    choose(now_s, options, request, &model)
}

/// The planner's reason a gang cannot train the model, in a few words: `memory: the smallest
/// layout needs 151.3 GB per device`, else the first clause of its message.
fn short_reason(why: &str) -> String {
    if let Some(at) = why.find("needs ")
        && let Some(end) = why[at..].find(" per device")
    {
        return format!(
            "memory: the smallest layout {} per device",
            &why[at..at + end]
        );
    }
    let first = why.split("; ").next().unwrap_or(why);
    format!("layout: {first}")
}

/// Why an option misses the deadline, the budget or has no price.
fn lost_to_limits(option: &GoalOption, request: &GoalRequest) -> Option<String> {
    let finish = option.predicted_finish_s?;
    let Some(cost) = option.cost_usd else {
        return Some(format!(
            "price: no indicative price for {}",
            option.accelerator
        ));
    };
    if let Some(deadline) = request.deadline_s
        && finish > deadline
    {
        return Some(format!(
            "deadline: would finish {} after it",
            span_text(finish - deadline)
        ));
    }
    if let Some(budget) = request.budget_usd
        && cost > budget
    {
        return Some(format!(
            "budget: would cost {}, over the {} budget",
            dollars(cost),
            dollars(budget)
        ));
    }
    None
}

/// Picks the cheapest option left (the earliest finish when there is no deadline), marks the
/// others, and says why nothing won when nothing did.
fn choose(
    now_s: i64,
    mut options: Vec<GoalOption>,
    request: &GoalRequest,
    model: &suanli_catalog::Model,
) -> Result<GoalPlan, EngineError> {
    let key = |o: &GoalOption| {
        let cost = o.cost_usd.unwrap_or(f64::INFINITY);
        let finish = o.predicted_finish_s.unwrap_or(i64::MAX) as f64;
        if request.deadline_s.is_some() {
            (cost, finish)
        } else {
            (finish, cost)
        }
    };
    let best = options
        .iter()
        .enumerate()
        .filter(|(_, o)| o.lost.is_none())
        .min_by(|(_, a), (_, b)| key(a).partial_cmp(&key(b)).expect("finite keys"))
        .map(|(i, _)| i);
    let mut plan = GoalPlan {
        now_s,
        deadline_s: request.deadline_s,
        budget_usd: request.budget_usd,
        chosen: None,
        options: Vec::new(),
        problem: None,
    };
    let Some(best) = best else {
        plan.problem = Some(no_option(now_s, &options, request));
        plan.options = options;
        return Ok(plan);
    };
    let mut chosen = options.remove(best);
    for option in options.iter_mut().filter(|o| o.lost.is_none()) {
        option.lost = Some(match request.deadline_s {
            Some(_) => format!(
                "cost: {}, more than {}",
                dollars(option.cost_usd.unwrap_or(0.0)),
                dollars(chosen.cost_usd.unwrap_or(0.0))
            ),
            None => format!(
                "later: would finish {} after it",
                span_text(
                    option.predicted_finish_s.unwrap_or(0) - chosen.predicted_finish_s.unwrap_or(0)
                )
            ),
        });
    }
    if let (Some(framework), Some(gang)) = (&request.framework, &chosen.plan) {
        let framework = framework
            .parse::<suanli_perf::export::Framework>()
            .map_err(EngineError::Rejected)?;
        chosen.launch_args = Some(
            goal_plan::launch_args(model, gang, framework)
                .map_err(|e| EngineError::Rejected(e.to_string()))?,
        );
    }
    plan.chosen = Some(chosen);
    plan.options = options;
    Ok(plan)
}

/// One line for a goal no option meets: the fastest option's finish, or the cheapest's cost.
fn no_option(now_s: i64, options: &[GoalOption], request: &GoalRequest) -> String {
    let name = |o: &GoalOption| format!("{} x {}", o.count, o.accelerator);
    let priced = || options.iter().filter(|o| o.cost_usd.is_some());
    let fastest = priced()
        .filter(|o| o.predicted_finish_s.is_some())
        .min_by_key(|o| o.predicted_finish_s);
    if let (Some(deadline), Some(fastest)) = (request.deadline_s, fastest)
        && fastest.predicted_finish_s.is_some_and(|f| f > deadline)
    {
        return format!(
            "no option finishes by the deadline, {} from now: the fastest, {}, would finish {} from now",
            span_text(deadline - now_s),
            name(fastest),
            span_text(fastest.predicted_finish_s.unwrap_or(0) - now_s)
        );
    }
    let cheapest = priced()
        .filter(|o| o.predicted_finish_s.is_some())
        .min_by(|a, b| a.cost_usd.partial_cmp(&b.cost_usd).expect("finite costs"));
    if let (Some(budget), Some(cheapest)) = (request.budget_usd, cheapest) {
        return format!(
            "no option meets the goal within {}: the cheapest, {}, would cost {}",
            dollars(budget),
            name(cheapest),
            dollars(cheapest.cost_usd.unwrap_or(0.0))
        );
    }
    let reasons: Vec<String> = options
        .iter()
        .take(3)
        .map(|o| format!("{}: {}", name(o), o.lost.as_deref().unwrap_or("-")))
        .collect();
    format!(
        "no option can train `{}` here ({})",
        request.model,
        reasons.join("; ")
    )
}

impl PlanInputs {
    /// (type, largest pool, per node) of the types planning looks at.
    pub fn types(&self) -> &[(String, u32, u32)] {
        &self.types
    }

    /// The catalog planning uses.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }
}
