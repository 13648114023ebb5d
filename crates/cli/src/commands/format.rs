//! Shared formatting and parsing helpers for the commands.

use comfy_table::presets::{ASCII_MARKDOWN, UTF8_FULL_CONDENSED};
use comfy_table::{ColumnConstraint, ContentArrangement, Table, Width};
use std::io::IsTerminal;

/// A table with the house style and the given header.
pub fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.set_header(header.to_vec());
    style(&mut table);
    table
}

/// The one table style of the CLI: Unicode borders fitted to the terminal's width, and plain
/// ASCII (Markdown) when stdout is not a terminal, so piped output pastes and diffs cleanly.
pub fn style(table: &mut Table) -> &mut Table {
    if std::io::stdout().is_terminal() {
        table.load_preset(UTF8_FULL_CONDENSED);
    } else {
        table.load_preset(ASCII_MARKDOWN);
    }
    table.set_content_arrangement(ContentArrangement::Dynamic)
}

/// Lets a too-wide table wrap only between words: every column is at least as wide as its
/// longest word, so ids, layouts and numbers are never cut in half.
pub fn keep_words_whole(table: &mut Table) -> &mut Table {
    let mut widths: Vec<usize> = Vec::new();
    let rows = table.header().into_iter().chain(table.row_iter());
    for row in rows {
        for (index, cell) in row.cell_iter().enumerate() {
            let longest = cell
                .content()
                .split_whitespace()
                .map(|word| word.chars().count())
                .max()
                .unwrap_or(0);
            if widths.len() <= index {
                widths.resize(index + 1, 0);
            }
            widths[index] = widths[index].max(longest);
        }
    }
    for (column, width) in table.column_iter_mut().zip(widths) {
        // The constraint counts the cell's padding, one space on each side.
        let width = u16::try_from(width + 2).unwrap_or(u16::MAX);
        column.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(width)));
    }
    table
}

/// The "memory per device" table: one row per named byte count, in GB with one decimal.
pub fn memory_table(rows: &[(&str, f64)]) -> Table {
    let mut memory = table(&["memory per device", "GB"]);
    for (name, bytes) in rows {
        memory.add_row(vec![name.to_string(), format!("{:.1}", bytes / 1e9)]);
    }
    memory
}

/// Bytes as GB with one decimal.
pub fn gb(bytes: f64) -> String {
    format!("{:.1} GB", bytes / 1e9)
}

/// Seconds with a sensible number of digits.
pub fn seconds(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0} s")
    } else if value >= 1.0 {
        format!("{value:.2} s")
    } else {
        format!("{:.1} ms", value * 1e3)
    }
}

/// A number with an SI suffix (k, M, G, T).
pub fn si(value: f64) -> String {
    let abs = value.abs();
    let (scaled, suffix) = if abs >= 1e12 {
        (value / 1e12, "T")
    } else if abs >= 1e9 {
        (value / 1e9, "G")
    } else if abs >= 1e6 {
        (value / 1e6, "M")
    } else if abs >= 1e3 {
        (value / 1e3, "k")
    } else {
        (value, "")
    };
    let digits = if scaled.abs() >= 100.0 {
        0
    } else if scaled.abs() >= 10.0 {
        1
    } else {
        2
    };
    let mut number = format!("{scaled:.digits$}");
    if number.contains('.') {
        number = number
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    number + suffix
}

/// Unix seconds as `2026-12-02 04:19 UTC`.
pub fn utc_time(epoch_s: i64) -> String {
    let days = epoch_s.div_euclid(86_400);
    let second_of_day = epoch_s.rem_euclid(86_400);
    let (year, month, day) = suanli_server::calendar::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        second_of_day / 3600,
        second_of_day % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_narrow_table_wraps_between_words_only() {
        let mut table = super::table(&["id", "reason"]);
        table.add_row(vec![
            "local-h100-sxm5-80gb",
            "running on vm h100-sxm5-80gb [0,1] since a while ago",
        ]);
        table.set_width(40);
        super::keep_words_whole(&mut table);
        let text = table.to_string();
        assert!(text.contains("local-h100-sxm5-80gb"), "{text}");
        assert!(text.contains("h100-sxm5-80gb"), "{text}");
        assert!(text.lines().count() > 5, "it still wraps: {text}");
    }

    #[test]
    fn unix_times_read_as_calendar_dates() {
        // Reference values from `date -u -d @N`.
        assert_eq!(super::utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(super::utc_time(951_782_400), "2000-02-29 00:00 UTC");
        assert_eq!(super::utc_time(1_796_185_140), "2026-12-02 04:19 UTC");
    }
}
