//! `suanli validate train FILE --fit | --cv`: refit the per-family constants and report
//! leave-one-source-out cross-validated error.

use super::format;
use super::validate::ValidateArgs;
use anyhow::Context;
use serde::Serialize;
use std::collections::BTreeMap;
use std::process::ExitCode;
use suanli_catalog::Catalog;
use suanli_perf::fit::{self, FitOutcome};
use suanli_perf::validate::{self, RowResult, TrainingRun};

/// Errors of one family, in sample and cross-validated.
#[derive(Serialize)]
struct FamilySummary {
    family: String,
    rows: usize,
    in_sample_median_abs_error_pct: Option<f64>,
    cv_median_abs_error_pct: Option<f64>,
    cv_max_abs_error_pct: Option<f64>,
}

/// Everything --fit/--cv prints with --json.
#[derive(Serialize)]
struct FitReport<'a> {
    in_sample: &'a validate::Summary,
    cross_validated: &'a validate::Summary,
    families: Vec<FamilySummary>,
    rows: Vec<RowPair<'a>>,
    fitted: &'a fit::Fitted,
}

#[derive(Serialize)]
struct RowPair<'a> {
    id: &'a str,
    family: &'a str,
    in_sample: &'a RowResult,
    cross_validated: &'a RowResult,
}

fn families(outcome: &FitOutcome) -> Vec<FamilySummary> {
    let mut by_family: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (index, family) in outcome.families.iter().enumerate() {
        if !family.is_empty() {
            by_family.entry(family).or_default().push(index);
        }
    }
    by_family
        .into_iter()
        .map(|(family, indices)| {
            let pick = |set: &[RowResult]| -> Vec<f64> {
                indices
                    .iter()
                    .filter_map(|i| set[*i].error_pct.map(f64::abs))
                    .collect()
            };
            let mut in_sample = pick(&outcome.in_sample);
            let mut cv = pick(&outcome.cross_validated);
            FamilySummary {
                family: family.to_string(),
                rows: cv.len(),
                in_sample_median_abs_error_pct: validate::median(&mut in_sample),
                cv_median_abs_error_pct: validate::median(&mut cv),
                cv_max_abs_error_pct: cv.iter().copied().reduce(f64::max),
            }
        })
        .collect()
}

/// Runs --fit (writing `fit_out`) and/or --cv on `rows`.
pub fn run(
    catalog: &Catalog,
    rows: &[TrainingRun],
    args: &ValidateArgs,
    fit_out: &std::path::Path,
) -> anyhow::Result<ExitCode> {
    let file = &args.file;
    let outcome = fit::fit(catalog, rows);
    if args.fit {
        let command = format!(
            "suanli validate train {} --fit ({} rows)",
            file.display(),
            rows.len()
        );
        std::fs::write(fit_out, outcome.fitted.to_toml(&command))
            .with_context(|| format!("cannot write {}", fit_out.display()))?;
        eprintln!(
            "wrote {} (rebuild suanli to use the new constants)",
            fit_out.display()
        );
    }
    let in_sample = validate::summarise_rows(outcome.in_sample.clone());
    let cross = validate::summarise_rows(outcome.cross_validated.clone());
    let families = families(&outcome);
    if args.json {
        let report = FitReport {
            in_sample: &in_sample.summary,
            cross_validated: &cross.summary,
            families,
            rows: rows
                .iter()
                .enumerate()
                .map(|(i, row)| RowPair {
                    id: &row.id,
                    family: outcome.families[i],
                    in_sample: &outcome.in_sample[i],
                    cross_validated: &outcome.cross_validated[i],
                })
                .collect(),
            fitted: &outcome.fitted,
        };
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_text(&outcome, &families, &in_sample.summary, &cross.summary);
    }
    Ok(ExitCode::SUCCESS)
}

fn pct(v: Option<f64>) -> String {
    v.map_or("-".into(), |x| format!("{x:.1}%"))
}

fn print_text(
    outcome: &FitOutcome,
    families: &[FamilySummary],
    in_sample: &validate::Summary,
    cross: &validate::Summary,
) {
    let mut table = format::table(&["id", "family", "measured", "in-sample", "cv", "reason"]);
    for (i, (a, b)) in outcome
        .in_sample
        .iter()
        .zip(&outcome.cross_validated)
        .enumerate()
    {
        let signed = |r: &RowResult| r.error_pct.map_or("-".into(), |e| format!("{e:+.1}%"));
        table.add_row(vec![
            a.id.clone(),
            outcome.families[i].to_string(),
            a.measured.map_or("-".into(), |m| format!("{m}")),
            signed(a),
            signed(b),
            a.reason.clone().unwrap_or_default(),
        ]);
    }
    println!("{table}");
    let mut table = format::table(&[
        "family",
        "rows",
        "matmul",
        "matmul 8-bit",
        "in-sample median",
        "cv median",
        "cv max",
        "band (cv p90)",
    ]);
    for f in families {
        let fitted = outcome.fitted.family.get(&f.family);
        table.add_row(vec![
            f.family.clone(),
            f.rows.to_string(),
            fitted.map_or("-".into(), |x| format!("{:.3}", x.matmul)),
            fitted.map_or("-".into(), |x| format!("{:.3}", x.matmul_8bit)),
            pct(f.in_sample_median_abs_error_pct),
            pct(f.cv_median_abs_error_pct),
            pct(f.cv_max_abs_error_pct),
            fitted.map_or("-".into(), |x| format!("±{:.1}%", x.uncertainty_pct)),
        ]);
    }
    println!("{table}");
    println!(
        "in sample: {} of {} rows, median |error| {}, max {}",
        in_sample.evaluated,
        in_sample.rows,
        pct(in_sample.median_abs_error_pct),
        pct(in_sample.max_abs_error_pct)
    );
    println!(
        "leave-one-source-out: median |error| {}, max {}",
        pct(cross.median_abs_error_pct),
        pct(cross.max_abs_error_pct)
    );
    println!(
        "unvalidated families (conservative constants) miss by up to {:.0}% in leave-one-family-out",
        outcome.fitted.unvalidated_max_abs_error_pct
    );
}
