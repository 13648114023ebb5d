//! SVG plots with plotters: the completion-time CDF of each policy, and utilisation over time.
//! Titles name the workload and cluster; legends sit beside the plot so they hide no line.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::metrics::{RunResult, Summary, utilisation_series};

/// plotters could not draw or write the SVG; the message is plotters' own.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(pub String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        PlotError(error.to_string())
    }
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Canvas size and the width kept on the right for the legend.
const SIZE: (u32, u32) = (1000, 560);
const LEGEND_WIDTH: u32 = 210;

/// `title`, then ` — subject` when there is one (e.g. "ee9e8c.trace on gavel-36-36-36").
fn caption(title: &str, subject: &str) -> String {
    if subject.is_empty() {
        title.to_string()
    } else {
        format!("{title}: {subject}")
    }
}

/// Whole numbers without a trailing ".0"; fractions with up to two decimals.
fn tick(value: &f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else if value.abs() >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// The legend, one line per run, in the right-hand area.
fn legend(area: &DrawingArea<SVGBackend<'_>, Shift>, labels: &[String]) -> Result<(), PlotError> {
    let font = ("sans-serif", 15).into_font();
    for (i, label) in labels.iter().enumerate() {
        let y = 70 + 26 * i as i32;
        let colour = COLOURS[i % COLOURS.len()];
        area.draw(&PathElement::new(
            vec![(8, y), (34, y)],
            colour.stroke_width(3),
        ))?;
        area.draw(&Text::new(label.clone(), (40, y - 8), font.clone()))?;
    }
    Ok(())
}

/// The JCT CDF of each run, hours on a log axis, as an SVG document.
pub fn jct_cdf_svg(runs: &[RunResult], subject: &str) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let hours = |s: u64| (s as f64 / 3600.0).max(1.0 / 60.0);
        let max_h = runs
            .iter()
            .flat_map(|r| r.jobs.iter().map(|j| hours(j.jct_s)))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(
                caption("Job completion time CDF", subject),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((1.0 / 60.0..max_h * 1.1).log_scale(), 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("completion time (hours, log scale)")
            .y_desc("fraction of jobs")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(("sans-serif", 14))
            .draw()?;
        for (i, run) in runs.iter().enumerate() {
            let mut values: Vec<f64> = run.jobs.iter().map(|j| hours(j.jct_s)).collect();
            values.sort_by(f64::total_cmp);
            let n = values.len().max(1) as f64;
            let colour = COLOURS[i % COLOURS.len()];
            let points = values
                .iter()
                .enumerate()
                .map(|(k, &v)| (v, (k + 1) as f64 / n));
            chart.draw_series(LineSeries::new(points, colour.stroke_width(2)))?;
        }
        let labels: Vec<String> = runs.iter().map(|r| r.policy.clone()).collect();
        legend(&legend_area, &labels)?;
        root.present()?;
    }
    Ok(svg)
}

/// Busy fraction of all accelerators over time for each run, as an SVG document. A grey band
/// marks the arrival window (first to last arrival), and each legend line gives the run's busy
/// share over that window: the table's "utilisation, arrivals".
pub fn utilisation_svg(runs: &[RunResult], subject: &str) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        let (plot_area, legend_area) = root.split_horizontally(SIZE.0 - LEGEND_WIDTH);
        let end_s = runs.iter().map(|r| r.end_s).max().unwrap_or(1).max(1);
        let summaries: Vec<Summary> = runs.iter().map(Summary::of).collect();
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(
                caption("Accelerator utilisation", subject),
                ("sans-serif", 20),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..end_s as f64 / 3600.0, 0.0..1.0)?;
        chart
            .configure_mesh()
            .x_desc("time (hours)")
            .y_desc("busy fraction")
            .x_label_formatter(&tick)
            .y_label_formatter(&tick)
            .label_style(("sans-serif", 14))
            .draw()?;
        if let Some(first) = runs.first() {
            let from_h = first.jobs.iter().map(|j| j.arrival_s).min().unwrap_or(0) as f64 / 3600.0;
            let to_h = first.jobs.iter().map(|j| j.arrival_s).max().unwrap_or(0) as f64 / 3600.0;
            chart.draw_series(std::iter::once(Rectangle::new(
                [(from_h, 0.0), (to_h, 1.0)],
                RGBColor(0, 0, 0).mix(0.07).filled(),
            )))?;
        }
        for (i, run) in runs.iter().enumerate() {
            let series =
                utilisation_series(&run.timeline, run.total_accelerators, run.end_s.max(1), 300);
            let colour = COLOURS[i % COLOURS.len()];
            chart.draw_series(LineSeries::new(
                series.into_iter().map(|(t, u)| (t / 3600.0, u)),
                colour.stroke_width(2),
            ))?;
        }
        let labels: Vec<String> = summaries
            .iter()
            .map(|s| format!("{} {:.1}%", s.policy, s.utilisation_arrivals * 100.0))
            .collect();
        legend(&legend_area, &labels)?;
        let note = ("sans-serif", 13).into_font();
        let y = 70 + 26 * (labels.len() as i32 + 1);
        for (k, line) in [
            "busy while jobs arrive",
            "(grey band: first to",
            "last arrival)",
        ]
        .iter()
        .enumerate()
        {
            legend_area.draw(&Text::new(*line, (8, y + 18 * k as i32), note.clone()))?;
        }
        root.present()?;
    }
    Ok(svg)
}
