//! `suanli plan train --export FORMAT`: the chosen layout as a launch-ready framework config.

use std::process::ExitCode;
use suanli_perf::export::{self, ExportInput, Framework};
use suanli_perf::train::{TrainEstimate, TrainSetup};

/// Prints the framework's config on stdout (so `> file` keeps only it) and the launch line and
/// notes on stderr.
pub fn print(
    framework: Framework,
    setup: &TrainSetup,
    estimate: &TrainEstimate,
) -> anyhow::Result<ExitCode> {
    let input = ExportInput {
        model: &setup.model,
        layout: &estimate.layout,
        precision: setup.precision,
        seq_len: setup.seq_len,
        global_batch: setup.global_batch,
        count: setup.count,
        per_node: setup.per_node,
    };
    let out = export::export(framework, &input)?;
    println!("{}", printable(out.config.trim_end()));
    eprintln!(
        "\n# {} layout {} on {} nodes; launch with:",
        framework,
        estimate.layout,
        input.nodes()
    );
    for line in &out.launch {
        eprintln!("{}", printable(line));
    }
    for note in &out.notes {
        eprintln!("# note: {}", printable(note));
    }
    Ok(ExitCode::SUCCESS)
}

/// The text without control characters other than newlines: model ids can come from a user's
/// config file.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| *c == '\n' || !c.is_control())
        .collect()
}
