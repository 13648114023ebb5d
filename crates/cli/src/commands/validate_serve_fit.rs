//! `suanli validate serve FILE --fit | --cv`: per-family serving constants and their
//! leave-one-source-out error.

use super::format;
use super::validate::print_report;
use anyhow::Context;
use std::path::Path;
use std::process::ExitCode;
use suanli_catalog::Catalog;
use suanli_perf::validate_serve::{InferenceRun, evaluate_row_with};
use suanli_perf::validate_serve_fit as fitting;

fn pct(value: Option<f64>) -> String {
    value.map_or("-".into(), |x| format!("{x:.1}%"))
}

/// Fits the constants, writes them to `path` and prints the in-sample errors.
pub fn fit(
    catalog: &Catalog,
    rows: &[InferenceRun],
    path: &Path,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let fits = fitting::fit_with_held_out(catalog, rows);
    std::fs::write(path, fitting::fits_csv(&fits))
        .with_context(|| format!("cannot write {}", path.display()))?;
    if json {
        let families: Vec<_> = fits
            .iter()
            .map(|f| {
                serde_json::json!({"family": f.family, "gemm_scale": f.gemm_scale,
                "rows": f.rows, "median_abs_error_pct": f.median_abs_error_pct})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&families)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = format::table(&["family", "gemm scale", "rows", "median |error|", "held out"]);
    for f in &fits {
        table.add_row(vec![
            f.family.clone(),
            format!("{:.2}", f.gemm_scale),
            f.rows.to_string(),
            format!("{:.1}%", f.median_abs_error_pct),
            pct(f.held_out_median_abs_error_pct),
        ]);
    }
    println!("{table}");
    println!(
        "wrote {} (rebuild suanli to use the new constants)",
        path.display()
    );
    // The in-sample figures with the new constants, before the rebuild loads them.
    let results = rows
        .iter()
        .map(|row| {
            let scale = fitting::scale_for(&fits, &row.accelerator);
            evaluate_row_with(catalog, row, Some(scale))
        })
        .collect::<Vec<_>>();
    let report = suanli_perf::validate::summarise_rows(results);
    let s = &report.summary;
    println!(
        "in sample: {} rows, {} evaluated; median |error| {}, max |error| {}",
        s.rows,
        s.evaluated,
        pct(s.median_abs_error_pct),
        pct(s.max_abs_error_pct)
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints the leave-one-source-out figures.
pub fn cross_validate(
    catalog: &Catalog,
    rows: &[InferenceRun],
    json: bool,
) -> anyhow::Result<ExitCode> {
    let cv = fitting::cross_validate(catalog, rows);
    if json {
        println!("{}", serde_json::to_string_pretty(&cv)?);
        return Ok(ExitCode::SUCCESS);
    }
    print_report(&cv.report);
    let mut sources = format::table(&["held-out source", "rows", "median |error|", "max |error|"]);
    for fold in &cv.sources {
        sources.add_row(vec![
            fold.source.clone(),
            fold.rows.to_string(),
            pct(fold.median_abs_error_pct),
            pct(fold.max_abs_error_pct),
        ]);
    }
    println!("{sources}");
    let mut families = format::table(&["family", "rows", "median |error|", "max |error|"]);
    for family in &cv.families {
        families.add_row(vec![
            family.family.clone(),
            family.rows.to_string(),
            pct(family.median_abs_error_pct),
            pct(family.max_abs_error_pct),
        ]);
    }
    println!("{families}");
    Ok(ExitCode::SUCCESS)
}
