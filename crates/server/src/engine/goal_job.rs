//! What a goal job carries besides its plan: the goal record of a job that gave its own gang,
//! the chosen option applied to a spec, the environment its runs get, and the re-planning of its
//! restart (elastic: another type or gang size when the cluster has changed).

use std::collections::BTreeMap;

use suanli_catalog::Catalog;
use suanli_perf::goal_plan;

use super::goal::{GoalRequest, cached_plan, check_request, plan};
use super::{Engine, EngineError};
use crate::store::{Goal, GoalOption, JobSpec};

/// The goal of a job submitted with its own gang size: the gang's rate on each type it may use.
pub fn goal_for_gang(
    catalog: &Catalog,
    request: &GoalRequest,
    gpus: u32,
    types: &[(String, u32, u32)],
) -> Result<Goal, EngineError> {
    check_request(request)?;
    let model = catalog
        .model(&request.model)
        .map_err(|e| EngineError::Rejected(e.to_string()))?;
    let seq_len = request.seq_len.unwrap_or(goal_plan::DEFAULT_SEQ_LEN);
    let tokens_per_s: BTreeMap<String, f64> = types
        .iter()
        .filter_map(|(t, _, per_node)| {
            cached_plan(catalog, &model.id, t, gpus, *per_node, seq_len)
                .ok()
                .map(|g| (t.clone(), g.tokens_per_s))
        })
        .collect();
    if tokens_per_s.is_empty() {
        let names: Vec<&str> = types.iter().map(|t| t.0.as_str()).collect();
        return Err(EngineError::Rejected(format!(
            "{gpus} accelerators of {} cannot train `{}` (it does not fit); ask for more, or leave out --gpus to let the server choose",
            names.join(" or "),
            model.id
        )));
    }
    let mut goal = goal_from(request, &model.id);
    goal.estimated_hours = tokens_per_s
        .iter()
        .map(|(t, rate)| (t.clone(), request.tokens / rate / 3600.0))
        .collect();
    goal.tokens_per_s = tokens_per_s;
    Ok(goal)
}

/// A goal record for `request`, without rates.
pub fn goal_from(request: &GoalRequest, model_id: &str) -> Goal {
    Goal {
        model: model_id.to_string(),
        tokens: request.tokens,
        tokens_per_s: BTreeMap::new(),
        estimated_hours: BTreeMap::new(),
        deadline_s: request.deadline_s,
        budget_usd: request.budget_usd,
        framework: request.framework.clone(),
        choice: None,
        progress: None,
    }
}

/// Sets `spec` to run the chosen option: its type, gang size and rate.
pub fn apply_choice(spec: &mut JobSpec, request: &GoalRequest, model_id: &str, chosen: GoalOption) {
    let mut goal = goal_from(request, model_id);
    if let Some(gang) = &chosen.plan {
        goal.tokens_per_s
            .insert(chosen.accelerator.clone(), gang.tokens_per_s);
        goal.estimated_hours.insert(
            chosen.accelerator.clone(),
            request.tokens / gang.tokens_per_s / 3600.0,
        );
    }
    spec.gpus = chosen.count;
    spec.run.accelerators = vec![chosen.accelerator.clone()];
    goal.choice = Some(chosen);
    spec.goal = Some(goal);
}

/// What a goal job's runs get besides the usual: the chosen layout (`SUANLI_TP`, ...,
/// `SUANLI_GLOBAL_BATCH`), `SUANLI_LAUNCH_ARGS` and `SUANLI_FRAMEWORK` when a framework was
/// named, and the goal's tokens.
pub fn goal_env(spec: &JobSpec) -> Vec<(String, String)> {
    let Some(goal) = &spec.goal else {
        return Vec::new();
    };
    let mut env = vec![
        ("SUANLI_GOAL_MODEL".to_string(), goal.model.clone()),
        ("SUANLI_GOAL_TOKENS".to_string(), format!("{}", goal.tokens)),
    ];
    if let Some(choice) = &goal.choice {
        if let Some(gang) = &choice.plan {
            env.extend(goal_plan::layout_env(gang));
        }
        if let (Some(args), Some(framework)) = (&choice.launch_args, &goal.framework) {
            env.push(("SUANLI_LAUNCH_ARGS".into(), args.clone()));
            env.push(("SUANLI_FRAMEWORK".into(), framework.clone()));
        }
    }
    env
}

impl Engine {
    /// Before a goal job the server planned runs again after a failure: while its deadline is
    /// still ahead, plans its remaining tokens afresh on the cluster as it is now (the live queue
    /// included) and moves it to the winning type and gang size, resuming from its checkpoint
    /// (`SUANLI_RESUME_FROM`). Keeps the gang it had when nothing wins or planning fails.
    pub(super) fn replan_restart(&mut self, id: i64) {
        let Some(job) = self.active.get(&id) else {
            return;
        };
        let Some(goal) = job.spec.goal.clone() else {
            return;
        };
        let (Some(choice), Some(deadline)) = (goal.choice.clone(), goal.deadline_s) else {
            return;
        };
        if deadline <= self.now_s() {
            return;
        }
        let done = goal.progress.as_ref().map_or(0.0, |p| p.tokens);
        let request = GoalRequest {
            model: goal.model.clone(),
            tokens: (goal.tokens - done).max(1.0),
            deadline_s: Some(deadline),
            budget_usd: goal.budget_usd,
            seq_len: choice.plan.as_ref().map(|p| p.seq_len),
            framework: goal.framework.clone(),
        };
        // Types the job was first allowed: any, as a job the server placed was.
        let inputs = self.goal_inputs(&job.spec.tenant, &[]);
        let planned = match plan(&inputs, &request) {
            Ok(planned) => planned,
            Err(error) => {
                tracing::warn!(job = id, %error, "re-planning the restart failed; same gang");
                return;
            }
        };
        let Some(chosen) = planned.chosen else {
            return;
        };
        if (chosen.accelerator.as_str(), chosen.count)
            == (choice.accelerator.as_str(), choice.count)
        {
            return;
        }
        tracing::info!(
            job = id,
            from = %format!("{} x {}", choice.count, choice.accelerator),
            to = %format!("{} x {}", chosen.count, chosen.accelerator),
            "goal job re-planned for its restart"
        );
        let Some(job) = self.active.get_mut(&id) else {
            return;
        };
        let mut request = request;
        request.tokens = goal.tokens;
        let progress = goal.progress.clone();
        apply_choice(&mut job.spec, &request, &goal.model, chosen);
        if let Some(goal) = job.spec.goal.as_mut() {
            goal.progress = progress;
        }
        if job.spec.processes > job.spec.gpus || !job.spec.gpus.is_multiple_of(job.spec.processes) {
            job.spec.processes = 1;
        }
    }
}
