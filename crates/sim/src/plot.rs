//! SVG plots with plotters: the completion-time CDF of each policy, and utilisation over time.

use plotters::prelude::*;

use crate::metrics::{RunResult, utilisation_series};

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// The JCT CDF of each run, hours on a log axis, as an SVG document.
pub fn jct_cdf_svg(runs: &[RunResult]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let hours = |s: u64| (s as f64 / 3600.0).max(1.0 / 60.0);
        let max_h = runs
            .iter()
            .flat_map(|r| r.jobs.iter().map(|j| hours(j.jct_s)))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption("Job completion time CDF", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((1.0 / 60.0..max_h * 1.1).log_scale(), 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("completion time (hours)")
            .y_desc("fraction of jobs")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, run) in runs.iter().enumerate() {
            let mut values: Vec<f64> = run.jobs.iter().map(|j| hours(j.jct_s)).collect();
            values.sort_by(f64::total_cmp);
            let n = values.len().max(1) as f64;
            let colour = COLOURS[i % COLOURS.len()];
            let points = values
                .iter()
                .enumerate()
                .map(|(k, &v)| (v, (k + 1) as f64 / n));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(run.policy.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Busy fraction of all accelerators over time for each run, as an SVG document.
pub fn utilisation_svg(runs: &[RunResult]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let end_s = runs.iter().map(|r| r.end_s).max().unwrap_or(1).max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption("Accelerator utilisation over time", ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0.0..end_s as f64 / 3600.0, 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("time (hours)")
            .y_desc("busy fraction")
            .draw()
            .map_err(|e| e.to_string())?;
        for (i, run) in runs.iter().enumerate() {
            let series =
                utilisation_series(&run.timeline, run.total_accelerators, run.end_s.max(1), 300);
            let colour = COLOURS[i % COLOURS.len()];
            chart
                .draw_series(LineSeries::new(
                    series.into_iter().map(|(t, u)| (t / 3600.0, u)),
                    colour.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(run.policy.clone())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}
