//! `suanli catalog accelerators|models|nodes`: the catalog as tables or JSON, with sources.

use clap::{Args, Subcommand};
use comfy_table::{Cell, CellAlignment, Table};
use std::path::PathBuf;
use std::process::ExitCode;
use suanli_catalog::{Accelerator, Model, NodeShape};

/// Longest source text shown in a table cell; `--json` prints it whole.
const SOURCE_WIDTH_CHARS: usize = 48;

const CATALOG_EXAMPLES: &str = "\
Examples:
  suanli catalog accelerators                 every accelerator with its dense peaks and links
  suanli catalog accelerators nvidia          only entries whose id, alias, name or vendor match
  suanli catalog models llama                 the Llama models
  suanli catalog models --json > models.json  the full entries, sources untruncated
  suanli catalog nodes --catalog ours.toml    with your own entries added or replacing built-ins

A catalog file holds [[accelerator]], [[node]] and [[model]] tables in the format of the
built-in files (crates/catalog/data/*.toml); an entry whose id matches a built-in replaces it.";

/// What to list.
#[derive(Subcommand)]
#[command(after_help = CATALOG_EXAMPLES)]
pub enum CatalogCommand {
    /// Accelerators with their dense peaks, memory, links and sources.
    #[command(after_help = "\
Examples:
  suanli catalog accelerators
  suanli catalog accelerators h100
  suanli catalog accelerators --json | jq '.[] | {id, dense_tflops}'

Peaks are dense (not sparse) TFLOP/s. Scale-up GB/s is per device with both directions added,
as datasheets quote it; scale-out GB/s is per device in one direction. `domain` is how many
devices share the scale-up link in the usual server.")]
    Accelerators(ListArgs),
    /// Model architectures with their shapes, parameter counts and sources.
    #[command(after_help = "\
Examples:
  suanli catalog models
  suanli catalog models deepseek
  suanli catalog models --json

Parameter counts (billions) are computed from the shape; for mixtures of experts the second
figure is the parameters one token touches. Wherever a model is named, a Hugging Face
config.json path is accepted too.")]
    Models(ListArgs),
    /// Server shapes: accelerators per node and scale-out bandwidth per accelerator.
    #[command(after_help = "\
Examples:
  suanli catalog nodes
  suanli catalog nodes aws")]
    Nodes(ListArgs),
}

/// Options shared by every listing.
#[derive(Args)]
pub struct ListArgs {
    /// Show only entries whose id, alias, name or vendor contains this text (any case).
    #[arg(value_name = "FILTER")]
    filter: Option<String>,
    /// Print the full entries as JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Add a catalog TOML file, or every .toml file in a directory; repeatable.
    #[arg(long = "catalog", value_name = "PATH")]
    catalog_paths: Vec<PathBuf>,
}

/// Runs a catalog command.
pub fn run(command: CatalogCommand) -> anyhow::Result<ExitCode> {
    let (kind, args) = match &command {
        CatalogCommand::Accelerators(args) => ("accelerators", args),
        CatalogCommand::Models(args) => ("models", args),
        CatalogCommand::Nodes(args) => ("node shapes", args),
    };
    let catalog = super::plan::load_catalog(&args.catalog_paths)?;
    let wanted = args.filter.as_deref().map(str::to_lowercase);
    let matches = |names: &[&str]| match &wanted {
        None => true,
        Some(w) => names.iter().any(|n| n.to_lowercase().contains(w.as_str())),
    };

    let (output, shown) = match &command {
        CatalogCommand::Accelerators(_) => {
            let items: Vec<&Accelerator> = catalog
                .accelerators
                .iter()
                .filter(|a| matches(&names(&a.id, &a.aliases, &[&a.name, &a.vendor])))
                .collect();
            let text = render(args.json, &items, accelerator_table)?;
            (text, items.len())
        }
        CatalogCommand::Models(_) => {
            let items: Vec<&Model> = catalog
                .models
                .iter()
                .filter(|m| matches(&names(&m.id, &m.aliases, &[&m.name])))
                .collect();
            let text = render(args.json, &items, model_table)?;
            (text, items.len())
        }
        CatalogCommand::Nodes(_) => {
            let items: Vec<&NodeShape> = catalog
                .nodes
                .iter()
                .filter(|n| matches(&names(&n.id, &n.aliases, &[&n.name, &n.accelerator])))
                .collect();
            let text = render(args.json, &items, node_table)?;
            (text, items.len())
        }
    };
    if shown == 0 && !args.json {
        let filter = args.filter.as_deref().unwrap_or_default();
        eprintln!("no {kind} match `{filter}`; run without a filter to see them all");
        return Ok(ExitCode::FAILURE);
    }
    println!("{output}");
    Ok(ExitCode::SUCCESS)
}

fn names<'a>(id: &'a str, aliases: &'a [String], more: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec![id];
    all.extend(aliases.iter().map(String::as_str));
    all.extend_from_slice(more);
    all
}

fn render<T: serde::Serialize>(
    json: bool,
    items: &[&T],
    table: fn(&[&T]) -> Table,
) -> anyhow::Result<String> {
    if json {
        Ok(serde_json::to_string_pretty(items)?)
    } else {
        Ok(table(items).to_string())
    }
}

fn new_table(header: &[&str]) -> Table {
    super::format::table(header)
}

fn accelerator_table(items: &[&Accelerator]) -> Table {
    let mut table = new_table(&[
        "id",
        "vendor",
        "mem GB",
        "TB/s",
        "bf16 TF",
        "fp8 TF",
        "scale-up link",
        "GB/s bidir",
        "domain",
        "scale-out GB/s",
        "TDP W",
        "USD/h",
        "conf.",
        "source",
    ]);
    for a in items {
        let bf16 = a.dense_tflops.bf16.or(a.dense_tflops.fp16);
        table.add_row(vec![
            Cell::new(&a.id),
            Cell::new(&a.vendor),
            number(Some(a.memory_gb)),
            number(Some(a.memory_bandwidth_tb_per_s)),
            number(bf16),
            number(a.dense_tflops.fp8),
            Cell::new(&a.scaleup.link),
            number(Some(a.scaleup.bandwidth_gb_per_s_bidir)),
            number(Some(a.scaleup.domain_size as f64)),
            number(Some(a.scaleout_gb_per_s)),
            number(a.tdp_w),
            // Indicative US dollars per accelerator-hour (sources: suanli_perf::serve_search).
            number(suanli_perf::serve_search::default_price(&a.id)),
            Cell::new(format!("{:?}", a.confidence).to_lowercase()),
            Cell::new(shorten(&a.source)),
        ]);
    }
    table
}

fn model_table(items: &[&Model]) -> Table {
    let mut table = new_table(&[
        "id",
        "name",
        "params B",
        "layers",
        "hidden",
        "heads/kv",
        "attn",
        "mixture of experts",
        "source",
    ]);
    for m in items {
        let total_b = m.total_params() as f64 / 1e9;
        let params = match &m.moe {
            Some(_) => format!(
                "{} / {}",
                billions(total_b),
                billions(m.active_params() as f64 / 1e9)
            ),
            None => billions(total_b),
        };
        table.add_row(vec![
            Cell::new(&m.id),
            Cell::new(&m.name),
            Cell::new(params).set_alignment(CellAlignment::Right),
            number(Some(m.layers as f64)),
            number(Some(m.hidden as f64)),
            Cell::new(format!("{}/{}", m.heads, m.kv_heads)).set_alignment(CellAlignment::Right),
            Cell::new(m.attention_kind()),
            Cell::new(moe_shape(m)),
            Cell::new(shorten(&m.source)),
        ]);
    }
    table
}

fn node_table(items: &[&NodeShape]) -> Table {
    let mut table = new_table(&[
        "id",
        "name",
        "accelerator",
        "per node",
        "NIC GB/s each",
        "source",
    ]);
    for n in items {
        table.add_row(vec![
            Cell::new(&n.id),
            Cell::new(&n.name),
            Cell::new(&n.accelerator),
            number(Some(n.accelerators_per_node as f64)),
            number(Some(n.nic_gb_per_s_per_accelerator)),
            Cell::new(shorten(&n.source)),
        ]);
    }
    table
}

/// "256 x 2048, top-8, +1 shared, 3 dense layers"; "-" for a dense model.
fn moe_shape(model: &Model) -> String {
    let Some(moe) = &model.moe else {
        return "-".to_string();
    };
    let mut text = format!("{} x {}, top-{}", moe.experts, moe.expert_ffn, moe.top_k);
    if moe.shared_experts > 0 {
        text.push_str(&format!(", +{} shared", moe.shared_experts));
    }
    if moe.dense_layers > 0 {
        text.push_str(&format!(", {} dense layers", moe.dense_layers));
    }
    text
}

/// A right-aligned number without trailing zeros, or "-" when absent.
fn number(value: Option<f64>) -> Cell {
    let text = match value {
        Some(v) => {
            let fixed = format!("{v:.3}");
            fixed
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_string()
        }
        None => "-".to_string(),
    };
    Cell::new(text).set_alignment(CellAlignment::Right)
}

/// Billions with precision that suits the size: 0.125, 6.74, 70.6, 671.
fn billions(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 10.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= SOURCE_WIDTH_CHARS {
        return text.to_string();
    }
    let kept: String = text.chars().take(SOURCE_WIDTH_CHARS - 3).collect();
    format!("{}...", kept.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        let command = CatalogCommand::augment_subcommands(clap::Command::new("catalog"));
        command.debug_assert();
    }

    #[test]
    fn numbers_drop_trailing_zeros_and_show_absence() {
        assert_eq!(number(Some(989.4)).content(), "989.4");
        assert_eq!(number(Some(80.0)).content(), "80");
        assert_eq!(number(Some(3.125)).content(), "3.125");
        assert_eq!(number(None).content(), "-");
        assert_eq!(billions(671.03), "671");
        assert_eq!(billions(12.88), "12.9");
        assert_eq!(billions(6.738), "6.74");
    }

    #[test]
    fn long_sources_are_shortened_on_a_char_boundary() {
        let long = "é".repeat(100);
        let short = shorten(&long);
        assert_eq!(short.chars().count(), SOURCE_WIDTH_CHARS);
        assert!(short.ends_with("..."));
        assert_eq!(shorten("NVIDIA H100 datasheet"), "NVIDIA H100 datasheet");
    }

    #[test]
    fn tables_list_every_entry_and_the_moe_shape() {
        let catalog = suanli_catalog::Catalog::builtin();
        let accelerators: Vec<&Accelerator> = catalog.accelerators.iter().collect();
        let text = accelerator_table(&accelerators).to_string();
        for a in &accelerators {
            assert!(text.contains(&a.id), "{} missing from the table", a.id);
        }
        let deepseek = catalog.model("deepseek-v3").unwrap();
        assert_eq!(
            moe_shape(deepseek),
            "256 x 2048, top-8, +1 shared, 3 dense layers"
        );
        let text = model_table(&[deepseek]).to_string();
        assert!(text.contains("671 / 37.6"), "{text}");
    }
}
