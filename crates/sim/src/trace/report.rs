//! What a trace reader did besides producing jobs: rows skipped or adjusted by a documented
//! rule, and jobs whose throughput was derived rather than measured.

use std::fmt;

/// Rows that one rule skipped or adjusted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowNote {
    /// The rule, in words (`"cpu-only pod (num_gpu = 0)"`).
    pub rule: String,
    pub rows: usize,
    /// Line of the first such row, to look at an example.
    pub first_line: u64,
}

/// The bookkeeping of one read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadReport {
    /// The file as named to the reader.
    pub file: String,
    /// Data rows in the file (header and comments excluded).
    pub data_rows: usize,
    /// Rows that produced no job, by rule.
    pub skipped: Vec<RowNote>,
    /// Rows whose job was changed by a rule (e.g. a fractional GPU rounded up), by rule.
    pub adjusted: Vec<RowNote>,
    /// Ids of jobs whose per-type rate was derived by the documented rule, not measured.
    pub derived_throughput_job_ids: Vec<String>,
}

impl ReadReport {
    /// An empty report for `file`.
    pub fn new(file: &str) -> Self {
        ReadReport {
            file: file.to_string(),
            ..ReadReport::default()
        }
    }

    /// Rows skipped by all rules.
    pub fn skipped_rows(&self) -> usize {
        self.skipped.iter().map(|note| note.rows).sum()
    }

    /// Rows skipped by the rule named `rule`, 0 when none was.
    pub fn skipped_by(&self, rule: &str) -> usize {
        count(&self.skipped, rule)
    }

    /// Rows adjusted by the rule named `rule`, 0 when none was.
    pub fn adjusted_by(&self, rule: &str) -> usize {
        count(&self.adjusted, rule)
    }

    pub(crate) fn skip(&mut self, rule: &str, line: u64) {
        note(&mut self.skipped, rule, line);
    }

    pub(crate) fn adjust(&mut self, rule: &str, line: u64) {
        note(&mut self.adjusted, rule, line);
    }
}

fn count(notes: &[RowNote], rule: &str) -> usize {
    notes
        .iter()
        .filter(|note| note.rule == rule)
        .map(|note| note.rows)
        .sum()
}

fn note(notes: &mut Vec<RowNote>, rule: &str, line: u64) {
    match notes.iter_mut().find(|note| note.rule == rule) {
        Some(note) => note.rows += 1,
        None => notes.push(RowNote {
            rule: rule.to_string(),
            rows: 1,
            first_line: line,
        }),
    }
}

impl fmt::Display for ReadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let jobs = self.data_rows - self.skipped_rows();
        write!(f, "{}: {} rows, {} jobs", self.file, self.data_rows, jobs)?;
        for note in &self.skipped {
            let (rows, rule, line) = (note.rows, &note.rule, note.first_line);
            write!(f, "\n  skipped {rows} rows: {rule} (first at line {line})")?;
        }
        for note in &self.adjusted {
            let (rows, rule, line) = (note.rows, &note.rule, note.first_line);
            write!(f, "\n  adjusted {rows} rows: {rule} (first at line {line})")?;
        }
        if !self.derived_throughput_job_ids.is_empty() {
            let derived = self.derived_throughput_job_ids.len();
            write!(
                f,
                "\n  {derived} jobs have a derived (unmeasured) throughput, see docs/traces.md"
            )?;
        }
        Ok(())
    }
}
