//! Header-driven CSV reading shared by the CSV trace formats: finds columns by name, checks the
//! header, and turns every bad value into a [`TraceError`] naming file, line and column.

use super::error::TraceError;
use std::collections::HashMap;
use std::str::FromStr;

/// What a reader needs from a CSV header.
pub(crate) struct Columns<'a> {
    /// Columns that must be present.
    pub required: &'a [&'a str],
    /// Columns that may be present.
    pub optional: &'a [&'a str],
    /// Reject columns outside `required` and `optional` (catches typos in hand-written files).
    pub reject_unknown: bool,
}

/// One data row with its line number in the file.
pub(crate) struct Row<'r> {
    pub file: &'r str,
    pub line: u64,
    record: &'r csv::StringRecord,
    index: &'r HashMap<String, usize>,
}

impl Row<'_> {
    /// The raw (trimmed) value of a column, `None` when the file has no such column.
    pub fn get(&self, column: &str) -> Option<&str> {
        let position = *self.index.get(column)?;
        Some(self.record.get(position).unwrap_or("").trim())
    }

    /// The value of a column the header check guaranteed.
    pub fn text(&self, column: &str) -> &str {
        self.get(column).unwrap_or("")
    }

    /// Parses a column, or fails naming the line, the column and `expected`.
    pub fn parse<T: FromStr>(&self, column: &str, expected: &str) -> Result<T, TraceError> {
        let value = self.text(column);
        value
            .parse::<T>()
            .map_err(|_| TraceError::field(self.file, self.line, column, value, expected))
    }

    /// Parses a column that may be absent from the header or empty in this row.
    pub fn parse_optional<T: FromStr>(
        &self,
        column: &str,
        expected: &str,
    ) -> Result<Option<T>, TraceError> {
        match self.get(column) {
            None | Some("") => Ok(None),
            Some(_) => self.parse(column, expected).map(Some),
        }
    }

    /// Builds a field error for this row.
    pub fn error(&self, column: &str, expected: &str) -> TraceError {
        TraceError::field(self.file, self.line, column, self.text(column), expected)
    }
}

/// Reads every data row of `text` (a CSV file with a header), calling `on_row` for each.
/// Lines starting with `#` are comments. Returns the number of data rows.
pub(crate) fn for_each_row(
    text: &str,
    file: &str,
    columns: &Columns<'_>,
    mut on_row: impl FnMut(&Row<'_>) -> Result<(), TraceError>,
) -> Result<usize, TraceError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| TraceError::from_csv(file, &e))?
        .clone();
    let index = check_header(file, &header, columns)?;
    let width = header.len();
    let mut record = csv::StringRecord::new();
    let mut rows = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(TraceError::from_csv(file, &e)),
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        if record.len() == 1 && record.get(0).is_some_and(|f| f.trim().is_empty()) {
            continue; // a blank line
        }
        if record.len() != width {
            return Err(TraceError::FieldCount {
                file: file.to_string(),
                line,
                found: record.len(),
                expected: format!("{width} (as in the header)"),
            });
        }
        rows += 1;
        let row = Row {
            file,
            line,
            record: &record,
            index: &index,
        };
        on_row(&row)?;
    }
    Ok(rows)
}

fn check_header(
    file: &str,
    header: &csv::StringRecord,
    columns: &Columns<'_>,
) -> Result<HashMap<String, usize>, TraceError> {
    let expected = || {
        let mut all: Vec<String> = columns.required.iter().map(|c| c.to_string()).collect();
        all.extend(columns.optional.iter().map(|c| format!("[{c}]")));
        all.join(",")
    };
    let mut index = HashMap::new();
    for (position, name) in header.iter().enumerate() {
        let name = name.trim();
        let known = columns.required.contains(&name) || columns.optional.contains(&name);
        if columns.reject_unknown && !known {
            return Err(TraceError::Header {
                file: file.to_string(),
                problem: format!("has unknown column {name:?}"),
                expected: expected(),
            });
        }
        if index.insert(name.to_string(), position).is_some() {
            return Err(TraceError::Header {
                file: file.to_string(),
                problem: format!("repeats column {name:?}"),
                expected: expected(),
            });
        }
    }
    for required in columns.required {
        if !index.contains_key(*required) {
            return Err(TraceError::Header {
                file: file.to_string(),
                problem: format!("lacks column {required:?}"),
                expected: expected(),
            });
        }
    }
    Ok(index)
}
