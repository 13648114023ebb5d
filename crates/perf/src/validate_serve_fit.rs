//! Fitting the serving model's per-family constants to the inference validation table, and
//! leave-one-source-out cross-validation of the fit (`suanli validate serve --fit`, `--cv`).
//!
//! One constant per accelerator family: the scale on the training model's GEMM efficiency that
//! serving GEMMs reach (`ServeSetup::gemm_scale`). It is chosen on a grid to minimise the mean
//! |log(predicted / measured)| of the family's rows, so over- and under-prediction weigh alike.
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

/// Fewest rows a family needs for its own constant.
const MIN_ROWS: usize = 2;

fn log_error(result: &RowResult) -> Option<f64> {
    Some((result.predicted? / result.measured?).ln().abs())
}

/// Fits every family that has rows among `rows`; families are sorted by name.
pub fn fit(catalog: &Catalog, rows: &[InferenceRun]) -> Vec<FamilyFit> {
    let indexed: Vec<(usize, &InferenceRun)> = rows.iter().enumerate().collect();
    fit_with(&indexed, &|_, row, scale| {
        evaluate_row_with(catalog, row, Some(scale))
    })
}

/// Row evaluations at each scale, computed once: the leave-one-source-out folds fit on
/// overlapping rows at the same grid of scales, so each (row, scale) is evaluated once in all.
struct Evaluations<'a> {
    catalog: &'a Catalog,
    done: RefCell<HashMap<(usize, u64), RowResult>>,
}

impl Evaluations<'_> {
    fn get(&self, index: usize, row: &InferenceRun, scale: f64) -> RowResult {
        let key = (index, scale.to_bits());
        if let Some(found) = self.done.borrow().get(&key) {
            return found.clone();
        }
        let result = evaluate_row_with(self.catalog, row, Some(scale));
        self.done.borrow_mut().insert(key, result.clone());
        result
    }
}

/// `fit` on rows numbered for `evaluate` (row number, row, scale).
fn fit_with(
    rows: &[(usize, &InferenceRun)],
    evaluate: &dyn Fn(usize, &InferenceRun, f64) -> RowResult,
) -> Vec<FamilyFit> {
    let mut by_family: BTreeMap<String, Vec<(usize, &InferenceRun)>> = BTreeMap::new();
    for &(index, row) in rows {
        by_family
            .entry(family(&row.accelerator).to_string())
            .or_default()
            .push((index, row));
    }
    let mut fits = Vec::new();
    for (name, members) in by_family {
        let score = |scale: f64| -> (f64, Vec<RowResult>) {
            let results: Vec<RowResult> = members
                .iter()
                .map(|&(index, row)| evaluate(index, row, scale))
                .collect();
            let errors: Vec<f64> = results.iter().filter_map(log_error).collect();
            let mean = errors.iter().sum::<f64>() / errors.len().max(1) as f64;
            (
                if errors.is_empty() {
                    f64::INFINITY
                } else {
                    mean
                },
                results,
            )
        };
        let evaluable = score(1.0)
            .1
            .iter()
            .filter(|r| r.error_pct.is_some())
            .count();
        if evaluable < MIN_ROWS {
            continue;
        }
        let best = grid()
            .map(|scale| (scale, score(scale).0))
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(1.0, |(scale, _)| scale);
        let report = summarise(score(best).1);
        fits.push(FamilyFit {
            family: name,
            gemm_scale: best,
            rows: report.summary.evaluated,
            median_abs_error_pct: report.summary.median_abs_error_pct.unwrap_or(0.0),
            held_out_median_abs_error_pct: None,
        });
    }
    fits
}

/// Fits every family and adds each family's leave-one-source-out median |error|.
pub fn fit_with_held_out(catalog: &Catalog, rows: &[InferenceRun]) -> Vec<FamilyFit> {
    let mut fits = fit(catalog, rows);
    let held_out = cross_validate(catalog, rows).families;
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
    let mut text =
        String::from("family,gemm_scale,rows,median_abs_error_pct,held_out_median_abs_error_pct\n");
    for f in fits {
        let held_out = f
            .held_out_median_abs_error_pct
            .map_or(String::new(), |x| format!("{x:.1}"));
        text.push_str(&format!(
            "{},{:.2},{},{:.1},{held_out}\n",
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

/// Runs the leave-one-source-out cross-validation.
pub fn cross_validate(catalog: &Catalog, rows: &[InferenceRun]) -> CrossValidation {
    let sources: Vec<String> = rows.iter().map(source_of).collect();
    let mut distinct = sources.clone();
    distinct.sort();
    distinct.dedup();
    let mut results: Vec<Option<RowResult>> = vec![None; rows.len()];
    let mut folds = Vec::new();
    let evaluations = Evaluations {
        catalog,
        done: RefCell::new(HashMap::new()),
    };
    let evaluate =
        |index: usize, row: &InferenceRun, scale: f64| evaluations.get(index, row, scale);
    for held_out in &distinct {
        let training: Vec<(usize, &InferenceRun)> = rows
            .iter()
            .enumerate()
            .zip(&sources)
            .filter(|(_, s)| *s != held_out)
            .map(|(r, _)| r)
            .collect();
        let fits = fit_with(&training, &evaluate);
        let mut fold = Vec::new();
        for (index, row) in rows.iter().enumerate() {
            if &sources[index] != held_out {
                continue;
            }
            let scale = fits
                .iter()
                .find(|f| f.family == family(&row.accelerator))
                .map_or(1.0, |f| f.gemm_scale);
            let result = evaluate(index, row, scale);
            fold.push(result.clone());
            results[index] = Some(result);
        }
        let summary = summarise(fold).summary;
        folds.push(SourceFold {
            source: held_out.clone(),
            rows: summary.evaluated,
            median_abs_error_pct: summary.median_abs_error_pct,
            max_abs_error_pct: summary.max_abs_error_pct,
        });
    }
    let report = summarise(results.into_iter().flatten().collect());
    let families = family_errors(rows, &report);
    CrossValidation {
        report,
        sources: folds,
        families,
    }
}
