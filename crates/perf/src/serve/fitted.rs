//! Serving constants fitted per accelerator family by `suanli validate serve --fit`, loaded from
//! `crates/perf/data/serving-fit.csv` (written by that command, never by hand).

use std::sync::OnceLock;

/// The fitted table as the repository holds it.
pub const FITTED_CSV: &str = include_str!("../../data/serving-fit.csv");

/// The family an accelerator id belongs to: chips of one architecture and software stack share
/// their fitted constants.
pub fn family(accelerator_id: &str) -> &str {
    const FAMILIES: &[(&[&str], &str)] = &[
        (&["a100", "a800"], "nvidia-ampere"),
        (&["h100", "h800", "h200", "h20", "gh200"], "nvidia-hopper"),
        (&["b200", "b300", "gb200", "gb300"], "nvidia-blackwell"),
        (&["l40", "l20", "l4"], "nvidia-ada"),
        (&["mi300", "mi325"], "amd-cdna3"),
        (&["mi350", "mi355"], "amd-cdna4"),
        (&["gaudi"], "intel-gaudi"),
        (&["tpu"], "google-tpu"),
        (&["ascend"], "huawei-ascend"),
    ];
    FAMILIES
        .iter()
        .find(|(prefixes, _)| prefixes.iter().any(|p| accelerator_id.starts_with(p)))
        .map_or(accelerator_id, |(_, family)| family)
}

/// One fitted family.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyFit {
    pub family: String,
    pub gemm_scale: f64,
    /// Rows the constant was fitted on.
    pub rows: usize,
    /// Median |error| of those rows after the fit, percent.
    pub median_abs_error_pct: f64,
    /// Median |error| of those rows predicted with constants fitted without their source
    /// (leave-one-source-out), percent; `None` in tables written before the column existed.
    pub held_out_median_abs_error_pct: Option<f64>,
    /// The weight of the fit's pull toward scale 1 (chosen by cross-validation); `None` in
    /// tables written before the column existed.
    pub shrinkage: Option<f64>,
}

/// Parses the fitted table; malformed lines are skipped (the file is generated).
pub fn parse(text: &str) -> Vec<FamilyFit> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let mut cells = line.split(',').map(str::trim);
            let family = cells.next()?.to_string();
            let gemm_scale: f64 = cells.next()?.parse().ok()?;
            let rows = cells.next()?.parse().ok()?;
            let median_abs_error_pct = cells.next()?.parse().ok()?;
            let held_out_median_abs_error_pct = cells.next().and_then(|c| c.parse().ok());
            let shrinkage = cells.next().and_then(|c| c.parse().ok());
            (gemm_scale.is_finite() && gemm_scale > 0.0).then_some(FamilyFit {
                family,
                gemm_scale,
                rows,
                median_abs_error_pct,
                held_out_median_abs_error_pct,
                shrinkage,
            })
        })
        .collect()
}

/// The fitted families of the repository's table.
pub fn fits() -> &'static [FamilyFit] {
    static FITS: OnceLock<Vec<FamilyFit>> = OnceLock::new();
    FITS.get_or_init(|| parse(FITTED_CSV))
}

/// The fit of an accelerator's family, if it has validation rows.
pub fn family_fit(accelerator_id: &str) -> Option<&'static FamilyFit> {
    let family = family(accelerator_id);
    fits().iter().find(|f| f.family == family)
}

/// The fitted serving GEMM scale of an accelerator's family; 1 (the training model's
/// efficiency) for families without rows.
pub fn gemm_scale(accelerator_id: &str) -> f64 {
    family_fit(accelerator_id).map_or(1.0, |f| f.gemm_scale)
}
