//! `suanli validate train FILE --fit`: each family's two constants fitted on its rows, each row
//! predicted in sample and with its source held out, and the error bands that go with them.

use super::{FamilyFit, Fitted, family_of};
use crate::train::TrainSetup;
use crate::validate::{self, RowResult, TrainingRun};
use std::collections::BTreeMap;
use suanli_catalog::{Catalog, Precision};

/// A row ready to be predicted many times with different constants.
struct Prepared<'a> {
    row: &'a TrainingRun,
    family: &'static str,
    eight_bit: bool,
    setup: TrainSetup,
    constraints: crate::search::Constraints,
}

impl Prepared<'_> {
    /// The row's metric predicted with GEMM fractions (`matmul`, `matmul_8bit`).
    fn predict(&self, constants: (f64, f64)) -> Result<(String, f64), validate::RowError> {
        let mut setup = self.setup.clone();
        setup.efficiency.matmul = constants.0;
        setup.efficiency.matmul_8bit = constants.1;
        validate::predict_row(self.row, &setup, &self.constraints)
    }

    /// |ln(predicted / measured)|, the fit's loss: symmetric in over- and under-prediction.
    fn loss(&self, constants: (f64, f64)) -> f64 {
        match (self.predict(constants), self.row.measured) {
            (Ok((_, p)), Some(m)) if p > 0.0 && m > 0.0 => (p / m).ln().abs(),
            _ => 1.0,
        }
    }
}

/// The highest GEMM fraction a fit may return: cuBLAS/hipBLASLt/XLA reach 80-90% of dense peak
/// on large square GEMMs at best, so a fit wanting more is absorbing an error elsewhere.
const MAX_FRACTION: f64 = 0.9;

/// Golden-section search for the fraction in [0.1, MAX_FRACTION] minimising `loss`.
pub(super) fn golden(loss: impl Fn(f64) -> f64) -> f64 {
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut a, mut b) = (0.1, MAX_FRACTION);
    let mut c = b - ratio * (b - a);
    let mut d = a + ratio * (b - a);
    let (mut fc, mut fd) = (loss(c), loss(d));
    for _ in 0..18 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - ratio * (b - a);
            fc = loss(c);
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + ratio * (b - a);
            fd = loss(d);
        }
    }
    ((a + b) / 2.0 * 1000.0).round() / 1000.0
}

/// Ratio of 8-bit to 16-bit GEMM fractions used only when no family at all has rows at one of
/// the two precisions: equal fractions, the datasheet's 2x rate.
const EIGHT_BIT_RATIO: f64 = 1.0;

/// A family's fitted 16-bit and 8-bit fractions; None for a precision without rows.
type Partial = (Option<f64>, Option<f64>);

/// Fits one family's two constants on `rows` (all of that family). A 16-bit row never depends
/// on the 8-bit fraction, so the two are one-dimensional fits on disjoint rows.
fn fit_family(rows: &[&Prepared]) -> Partial {
    let sixteen: Vec<_> = rows.iter().filter(|p| !p.eight_bit).collect();
    let eight: Vec<_> = rows.iter().filter(|p| p.eight_bit).collect();
    let total = |set: &[&&Prepared], constants: (f64, f64)| -> f64 {
        set.iter().map(|p| p.loss(constants)).sum()
    };
    let m16 = (!sixteen.is_empty()).then(|| golden(|m| total(&sixteen, (m, m))));
    let m8 = (!eight.is_empty()).then(|| {
        let base = m16.unwrap_or(0.5);
        golden(|m| total(&eight, (base, m)))
    });
    (m16, m8)
}

/// Completes a family's constants: a precision without rows in the family takes the lowest
/// fraction any other family fitted at that precision (the unvalidated rule, applied per
/// precision), so B200 bf16 plans are not sold at B200's fp8 efficiency.
fn complete(all: &BTreeMap<&str, Partial>, family: &str, own: Partial) -> Option<(f64, f64)> {
    let lowest = |pick: fn(&Partial) -> Option<f64>| {
        all.iter()
            .filter(|(f, _)| **f != family)
            .filter_map(|(_, c)| pick(c))
            .reduce(f64::min)
    };
    let m16 = own.0.or_else(|| lowest(|c| c.0));
    let m8 = own.1.or_else(|| lowest(|c| c.1));
    match (m16, m8) {
        (Some(a), Some(b)) => Some((a, b)),
        (Some(a), None) => Some((a, a * EIGHT_BIT_RATIO)),
        (None, Some(b)) => Some((b / EIGHT_BIT_RATIO, b)),
        (None, None) => None,
    }
}

/// Everything `--fit` and `--cv` produce.
pub struct FitOutcome {
    pub fitted: Fitted,
    /// Each row predicted with the constants fitted on all rows.
    pub in_sample: Vec<RowResult>,
    /// Each row predicted with constants fitted without the row's source.
    pub cross_validated: Vec<RowResult>,
    /// The family of each row (same order), "" when the accelerator is unknown.
    pub families: Vec<&'static str>,
}

/// Families with fewer rows than this quote at least the pooled band of all rows: two lucky
/// rows are no evidence of a tight fit.
const MIN_ROWS_FOR_OWN_BAND: usize = 5;

/// A family's band: its cross-validated p90, floored at the pooled p90 when it has few rows.
fn band(errors: &mut [f64], pooled_p90: f64) -> f64 {
    let own = percentile_nearest(errors, 0.9);
    if errors.len() < MIN_ROWS_FOR_OWN_BAND {
        own.max(pooled_p90)
    } else {
        own
    }
}

fn percentile_nearest(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

/// Whether a row may set constants: rows of confidence `low` rest on a setup the source does
/// not state (an assumed architecture, accelerator count or batch), so they are predicted and
/// reported, in sample and cross-validated, but fit nothing; a family whose rows are all `low`
/// stays unvalidated.
fn fits_constants(row: &TrainingRun) -> bool {
    row.confidence.trim() != "low"
}

/// Fits every family on `rows`, predicts each row in sample and leave-one-source-out, and
/// measures how far an unvalidated family's conservative constants miss.
pub fn fit(catalog: &Catalog, rows: &[TrainingRun]) -> FitOutcome {
    let (results, prepared, families) = prepare(catalog, rows);
    let fit_where = |family: &str, keep: &dyn Fn(&TrainingRun) -> bool| {
        let set: Vec<&Prepared> = prepared
            .iter()
            .map(|(_, p)| p)
            .filter(|p| p.family == family && fits_constants(p.row) && keep(p.row))
            .collect();
        fit_family(&set)
    };
    let mut names: Vec<&'static str> = prepared.iter().map(|(_, p)| p.family).collect();
    names.sort_unstable();
    names.dedup();
    let partial: BTreeMap<&str, Partial> = names
        .iter()
        .map(|f| (*f, fit_where(f, &|_| true)))
        .collect();
    let all: BTreeMap<&str, (f64, f64)> = names
        .iter()
        .filter_map(|f| Some((*f, complete(&partial, f, partial[f])?)))
        .collect();

    let mut in_sample = results.clone();
    let mut cross = results;
    for (index, p) in &prepared {
        let constants = all[p.family];
        in_sample[*index].record(p.predict(constants));
        let source = &p.row.source;
        let held_out = fit_where(p.family, &|r: &TrainingRun| &r.source != source);
        // A family whose every row comes from one source cannot be cross-validated on its own:
        // it is predicted as an unvalidated family would be.
        let constants = complete(&partial, p.family, held_out)
            .unwrap_or_else(|| conservative_without(&partial, p.family));
        cross[*index].record(p.predict(constants));
    }
    let mut fitted = fitted_table(&all, &prepared, &cross);
    fitted.unvalidated_max_abs_error_pct = unvalidated_worst_pct(&prepared, &partial).round();
    FitOutcome {
        fitted,
        in_sample,
        cross_validated: cross,
        families,
    }
}

/// Each row's blank result, the rows the model can set up (with their index and family), and
/// each row's family (empty where it cannot be set up, its result then saying why).
#[allow(clippy::type_complexity)]
fn prepare<'a>(
    catalog: &Catalog,
    rows: &'a [TrainingRun],
) -> (
    Vec<RowResult>,
    Vec<(usize, Prepared<'a>)>,
    Vec<&'static str>,
) {
    let mut results: Vec<RowResult> = rows.iter().map(validate::blank_result).collect();
    let mut prepared = Vec::new();
    let mut families = vec![""; rows.len()];
    for (index, row) in rows.iter().enumerate() {
        match validate::row_setup(catalog, row) {
            Ok((setup, constraints)) => {
                let family = family_of(&setup.accelerator);
                families[index] = family;
                let eight_bit = matches!(
                    setup.precision,
                    Precision::Fp8 | Precision::Int8 | Precision::Fp4 | Precision::Int4
                );
                prepared.push((
                    index,
                    Prepared {
                        row,
                        family,
                        eight_bit,
                        setup,
                        constraints,
                    },
                ));
            }
            Err(reason) => results[index].record(Err(reason)),
        }
    }
    (results, prepared, families)
}

/// The fitted table: each family's constants with its held-out median and error band (`cross`:
/// every row's leave-one-source-out result). A family whose only rows rest on assumptions keeps
/// the unvalidated constants.
fn fitted_table(
    all: &BTreeMap<&str, (f64, f64)>,
    prepared: &[(usize, Prepared<'_>)],
    cross: &[RowResult],
) -> Fitted {
    let mut pooled: Vec<f64> = cross
        .iter()
        .filter_map(|r| r.error_pct.map(f64::abs))
        .collect();
    let pooled_p90 = if pooled.is_empty() {
        0.0
    } else {
        percentile_nearest(&mut pooled, 0.9)
    };
    let mut fitted = Fitted::default();
    for (family, (matmul, matmul_8bit)) in all {
        let mut errors: Vec<f64> = prepared
            .iter()
            .filter(|(_, p)| p.family == *family)
            .filter_map(|(i, _)| cross[*i].error_pct.map(f64::abs))
            .collect();
        let fitted_rows = prepared
            .iter()
            .filter(|(_, p)| p.family == *family && fits_constants(p.row))
            .count();
        if errors.is_empty() || fitted_rows == 0 {
            continue;
        }
        let median = crate::validate::median(&mut errors.clone()).unwrap_or(0.0);
        fitted.family.insert(
            family.to_string(),
            FamilyFit {
                matmul: *matmul,
                matmul_8bit: *matmul_8bit,
                rows: fitted_rows,
                cv_median_abs_error_pct: (median * 10.0).round() / 10.0,
                uncertainty_pct: (band(&mut errors, pooled_p90) * 10.0).round() / 10.0,
            },
        );
    }
    fitted
}

/// Leave one family out: the worst |error| of any row predicted with the conservative
/// constants of the other families, percent.
fn unvalidated_worst_pct(
    prepared: &[(usize, Prepared<'_>)],
    partial: &BTreeMap<&str, Partial>,
) -> f64 {
    let mut worst: f64 = 0.0;
    for (_, p) in prepared {
        let constants = conservative_without(partial, p.family);
        if let (Ok((_, predicted)), Some(measured)) = (p.predict(constants), p.row.measured) {
            worst = worst.max(((predicted - measured) / measured * 100.0).abs());
        }
    }
    worst
}

/// The conservative constants of every fitted family except `family`: the lowest fraction the
/// others fitted on their own rows at each precision. Taken from their own fits, not their
/// completed constants, which may have inherited `family`'s own value (a family without 8-bit
/// rows takes the lowest 8-bit fraction of all) and would leak it back into its held-out test.
fn conservative_without(partial: &BTreeMap<&str, Partial>, family: &str) -> (f64, f64) {
    let others = || {
        partial
            .iter()
            .filter(move |(f, _)| **f != family)
            .map(|(_, c)| *c)
    };
    let m16 = others().filter_map(|c| c.0).reduce(f64::min);
    let m8 = others().filter_map(|c| c.1).reduce(f64::min);
    match (m16, m8) {
        (Some(a), Some(b)) => (a, b),
        (Some(a), None) => (a, a * EIGHT_BIT_RATIO),
        (None, Some(b)) => (b / EIGHT_BIT_RATIO, b),
        (None, None) => (0.5, 0.5 * EIGHT_BIT_RATIO),
    }
}
