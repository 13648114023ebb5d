//! Fitting the serving model's per-family constants to the inference validation table, and
//! leave-one-source-out cross-validation of the fit (`suanli validate serve --fit`, `--cv`).
//!
//! One constant per accelerator family: the scale on the training model's GEMM efficiency that
//! serving GEMMs reach (`ServeSetup::gemm_scale`). It is chosen on a grid to minimise the mean
//! |log(predicted / measured)| of the family's rows, so over- and under-prediction weigh alike,
//! plus a shrinkage penalty `lambda |log scale|` that pulls the scale toward 1 (the training
//! model's efficiency, which families without rows use): a lasso-style prior (Tibshirani 1996)
//! that only decides where the rows leave the scale loosely determined. The penalty's weight
//! is itself chosen from the data, by leave-one-source-out cross-validation on the same loss
//! (Hastie, Tibshirani and Friedman, The Elements of Statistical Learning, section 7.10), and
//! `--cv` repeats that choice inside each fold, so its figures are held out from both.
//! A family with fewer than two rows keeps the training value (scale 1).

use crate::serve::fitted::{FamilyFit, family};
use crate::validate::{Report, RowResult, summarise};
use crate::validate_serve::{InferenceRun, evaluate_row_with};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use suanli_catalog::Catalog;

/// Scales tried: 0.50 to 2.50 in steps of 0.02.
fn grid() -> impl Iterator<Item = f64> {
    (0..=100).map(|i| 0.5 + 0.02 * i as f64)
}

/// Shrinkage weights tried, in units of the loss (mean |log error|) per unit of |log scale|.
pub const SHRINKAGE_GRID: [f64; 8] = [0.0, 0.01, 0.02, 0.03, 0.05, 0.07, 0.1, 0.2];

/// Fewest rows a family needs for its own constant.
const MIN_ROWS: usize = 2;

fn log_error(result: &RowResult) -> Option<f64> {
    Some((result.predicted? / result.measured?).ln().abs())
}

/// Row evaluations at each scale, computed once: the fits of the shrinkage choice and of the
/// leave-one-source-out folds run on overlapping rows at the same grid of scales, so each
/// (row, scale) is evaluated once in all.
struct Evaluations<'a> {
    catalog: &'a Catalog,
    rows: &'a [InferenceRun],
    /// Each row's source ([`source_of`]).
    sources: Vec<String>,
    done: RefCell<HashMap<(usize, u64), RowResult>>,
}

/// One leave-one-source-out fold: the held-out source's rows, predicted with constants fitted
/// on the other rows with `shrinkage`.
struct Fold {
    source: String,
    shrinkage: f64,
    results: Vec<(usize, RowResult)>,
}

impl<'a> Evaluations<'a> {
    fn new(catalog: &'a Catalog, rows: &'a [InferenceRun]) -> Self {
        Self {
            catalog,
            rows,
            sources: rows.iter().map(source_of).collect(),
            done: RefCell::new(HashMap::new()),
        }
    }

    fn all(&self) -> Vec<usize> {
        (0..self.rows.len()).collect()
    }

    fn get(&self, index: usize, scale: f64) -> RowResult {
        let key = (index, scale.to_bits());
        if let Some(found) = self.done.borrow().get(&key) {
            return found.clone();
        }
        let result = evaluate_row_with(self.catalog, &self.rows[index], Some(scale));
        self.done.borrow_mut().insert(key, result.clone());
        result
    }

    /// The constants fitted on the rows numbered `members` with shrinkage `lambda`.
    fn fit(&self, members: &[usize], lambda: f64) -> Vec<FamilyFit> {
        let mut by_family: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        for &index in members {
            by_family
                .entry(family(&self.rows[index].accelerator))
                .or_default()
                .push(index);
        }
        let mut fits = Vec::new();
        for (name, indices) in by_family {
            let results = |scale: f64| -> Vec<RowResult> {
                indices.iter().map(|&i| self.get(i, scale)).collect()
            };
            let loss = |scale: f64| -> f64 {
                let errors: Vec<f64> = results(scale).iter().filter_map(log_error).collect();
                if errors.is_empty() {
                    return f64::INFINITY;
                }
                errors.iter().sum::<f64>() / errors.len() as f64 + lambda * scale.ln().abs()
            };
            let evaluable = results(1.0)
                .iter()
                .filter(|r| r.error_pct.is_some())
                .count();
            if evaluable < MIN_ROWS {
                continue;
            }
            let best = grid()
                .map(|scale| (scale, loss(scale)))
                .min_by(|a, b| a.1.total_cmp(&b.1))
                .map_or(1.0, |(scale, _)| scale);
            let report = summarise(results(best));
            fits.push(FamilyFit {
                family: name.to_string(),
                gemm_scale: best,
                rows: report.summary.evaluated,
                median_abs_error_pct: report.summary.median_abs_error_pct.unwrap_or(0.0),
                held_out_median_abs_error_pct: None,
                shrinkage: Some(lambda),
            });
        }
        fits
    }

    /// The leave-one-source-out folds of the rows numbered `members`: each source's rows
    /// predicted with constants fitted on the other sources of `members`, with the shrinkage
    /// `shrinkage` gives for those training rows.
    fn folds(&self, members: &[usize], shrinkage: &dyn Fn(&[usize]) -> f64) -> Vec<Fold> {
        let mut distinct: Vec<&String> = members.iter().map(|&i| &self.sources[i]).collect();
        distinct.sort();
        distinct.dedup();
        distinct
            .into_iter()
            .map(|held_out| {
                let (kept, training): (Vec<usize>, Vec<usize>) =
                    members.iter().partition(|&&i| &self.sources[i] == held_out);
                let lambda = shrinkage(&training);
                let fits = self.fit(&training, lambda);
                let results = kept
                    .into_iter()
                    .map(|i| (i, self.get(i, scale_for(&fits, &self.rows[i].accelerator))))
                    .collect();
                Fold {
                    source: held_out.clone(),
                    shrinkage: lambda,
                    results,
                }
            })
            .collect()
    }

    /// The shrinkage whose leave-one-source-out predictions of `members` have the smallest
    /// mean |log error|; the smaller weight on a tie.
    fn choose_shrinkage(&self, members: &[usize]) -> f64 {
        let mut best = (SHRINKAGE_GRID[0], f64::INFINITY);
        for lambda in SHRINKAGE_GRID {
            let errors: Vec<f64> = self
                .folds(members, &|_| lambda)
                .iter()
                .flat_map(|fold| fold.results.iter().filter_map(|(_, r)| log_error(r)))
                .collect();
            let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
            if mean < best.1 - 1e-12 {
                best = (lambda, mean);
            }
        }
        best.0
    }

    /// The constants fitted on every row, with the shrinkage cross-validation picks.
    fn fitted(&self) -> Vec<FamilyFit> {
        let all = self.all();
        self.fit(&all, self.choose_shrinkage(&all))
    }

    /// Leave-one-source-out over every row, the shrinkage also chosen inside each fold.
    fn cross_validate(&self) -> CrossValidation {
        let mut results: Vec<Option<RowResult>> = vec![None; self.rows.len()];
        let mut sources = Vec::new();
        for fold in self.folds(&self.all(), &|training| self.choose_shrinkage(training)) {
            let summary = summarise(fold.results.iter().map(|(_, r)| r.clone()).collect()).summary;
            sources.push(SourceFold {
                source: fold.source,
                rows: summary.evaluated,
                median_abs_error_pct: summary.median_abs_error_pct,
                max_abs_error_pct: summary.max_abs_error_pct,
                shrinkage: fold.shrinkage,
            });
            for (index, result) in fold.results {
                results[index] = Some(result);
            }
        }
        let report = summarise(results.into_iter().flatten().collect());
        let families = family_errors(self.rows, &report);
        CrossValidation {
            report,
            sources,
            families,
        }
    }
}

/// The fitted scale of `accelerator`'s family among `fits`; 1 (the training efficiency) for a
/// family without one.
pub fn scale_for(fits: &[FamilyFit], accelerator: &str) -> f64 {
    fits.iter()
        .find(|f| f.family == family(accelerator))
        .map_or(1.0, |f| f.gemm_scale)
}

/// Fits every family that has rows among `rows`, with the shrinkage cross-validation picks;
/// families are sorted by name.
pub fn fit(catalog: &Catalog, rows: &[InferenceRun]) -> Vec<FamilyFit> {
    Evaluations::new(catalog, rows).fitted()
}

/// Fits every family and adds each family's leave-one-source-out median |error| (one set of
/// row evaluations for both).
pub fn fit_with_held_out(catalog: &Catalog, rows: &[InferenceRun]) -> Vec<FamilyFit> {
    let evaluations = Evaluations::new(catalog, rows);
    let mut fits = evaluations.fitted();
    let held_out = evaluations.cross_validate().families;
    for f in &mut fits {
        f.held_out_median_abs_error_pct = held_out
            .iter()
            .find(|h| h.family == f.family)
            .and_then(|h| h.median_abs_error_pct);
    }
    fits
}

/// The fitted table in the format `crate::serve::fitted` loads.
pub fn fits_csv(fits: &[FamilyFit]) -> String {
    let mut text = String::from(
        "family,gemm_scale,rows,median_abs_error_pct,held_out_median_abs_error_pct,shrinkage\n",
    );
    for f in fits {
        let held_out = f
            .held_out_median_abs_error_pct
            .map_or(String::new(), |x| format!("{x:.1}"));
        let shrinkage = f.shrinkage.map_or(String::new(), |x| format!("{x}"));
        text.push_str(&format!(
            "{},{:.2},{},{:.1},{held_out},{shrinkage}\n",
            f.family, f.gemm_scale, f.rows, f.median_abs_error_pct
        ));
    }
    text
}

/// The publication a row comes from: the MLPerf round, or the source text up to its first
/// comma or parenthesis (one vendor page, one software release).
pub fn source_of(row: &InferenceRun) -> String {
    let source = row.source.trim();
    if let Some(rest) = source.strip_prefix("MLPerf Inference ") {
        let round = rest.split_whitespace().next().unwrap_or("");
        return format!("MLPerf Inference {round}");
    }
    source
        .split([',', '('])
        .next()
        .unwrap_or(source)
        .trim()
        .to_string()
}

/// Leave-one-source-out figures: each source's rows predicted with constants fitted on the
/// other sources only.
#[derive(Clone, Debug, Serialize)]
pub struct CrossValidation {
    pub report: Report,
    /// Per source: rows, median and max |error| when held out.
    pub sources: Vec<SourceFold>,
    /// Per family: rows and median |error| when held out.
    pub families: Vec<FamilyError>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceFold {
    pub source: String,
    pub rows: usize,
    pub median_abs_error_pct: Option<f64>,
    pub max_abs_error_pct: Option<f64>,
    /// The shrinkage chosen on the other sources.
    pub shrinkage: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct FamilyError {
    pub family: String,
    pub rows: usize,
    pub median_abs_error_pct: Option<f64>,
    pub max_abs_error_pct: Option<f64>,
}

/// Per-family error figures of a report's rows.
pub fn family_errors(rows: &[InferenceRun], report: &Report) -> Vec<FamilyError> {
    let mut by_family: BTreeMap<String, Vec<RowResult>> = BTreeMap::new();
    for (row, result) in rows.iter().zip(&report.rows) {
        by_family
            .entry(family(&row.accelerator).to_string())
            .or_default()
            .push(result.clone());
    }
    by_family
        .into_iter()
        .map(|(family, results)| {
            let summary = summarise(results).summary;
            FamilyError {
                family,
                rows: summary.evaluated,
                median_abs_error_pct: summary.median_abs_error_pct,
                max_abs_error_pct: summary.max_abs_error_pct,
            }
        })
        .collect()
}

/// Runs the leave-one-source-out cross-validation: each source's rows predicted with
/// constants fitted on the other sources, the shrinkage also chosen on those sources only.
pub fn cross_validate(catalog: &Catalog, rows: &[InferenceRun]) -> CrossValidation {
    Evaluations::new(catalog, rows).cross_validate()
}
