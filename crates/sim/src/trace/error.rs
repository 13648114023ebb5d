//! Errors of the trace readers: each names the file, and where it can the line and the field,
//! and says what was expected.

use std::path::PathBuf;

/// What went wrong reading a trace or a throughput table.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// The file could not be read at all.
    #[error("cannot read trace file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A field holds a value the format does not allow.
    #[error("{file}:{line}: field `{field}` is {value:?}, expected {expected}")]
    Field {
        file: String,
        line: u64,
        field: String,
        value: String,
        expected: String,
    },
    /// A line has the wrong number of fields.
    #[error("{file}:{line}: found {found} fields, expected {expected}")]
    FieldCount {
        file: String,
        line: u64,
        found: usize,
        expected: String,
    },
    /// A CSV header lacks a column the format needs, or has one it does not know.
    #[error("{file}:1: header {problem}; expected columns: {expected}")]
    Header {
        file: String,
        problem: String,
        expected: String,
    },
    /// The CSV layer itself failed (bad quoting, invalid UTF-8).
    #[error("{file}:{line}: {message}")]
    Csv {
        file: String,
        line: u64,
        message: String,
    },
    /// The throughput table is not the JSON layout Gavel writes.
    #[error("{file}: {message}")]
    Throughputs { file: String, message: String },
    /// `--trace-format` names no known format.
    #[error("unknown trace format {name:?}; known formats: {known}")]
    UnknownFormat { name: String, known: String },
    /// The format was not given and the file does not look like any known format.
    #[error("{file}: cannot tell the trace format ({reason}); pass one of: {known}")]
    Undetected {
        file: String,
        reason: String,
        known: String,
    },
}

impl TraceError {
    /// Shorthand for a [`TraceError::Field`].
    pub(crate) fn field(
        file: &str,
        line: u64,
        field: &str,
        value: &str,
        expected: impl Into<String>,
    ) -> Self {
        TraceError::Field {
            file: file.to_string(),
            line,
            field: field.to_string(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }

    /// Converts an error of the `csv` crate, keeping its line number.
    pub(crate) fn from_csv(file: &str, error: &csv::Error) -> Self {
        let line = error.position().map(|p| p.line()).unwrap_or(0);
        TraceError::Csv {
            file: file.to_string(),
            line,
            message: error.to_string(),
        }
    }
}
