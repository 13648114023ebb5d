//! Property test of the validation-table parser with a fixed budget (runs on every
//! `cargo test`): a real row with its shape and size columns replaced by hostile values is read,
//! turned into a model and evaluated without a panic, a hang or a NaN; the reproducers of
//! issue 9 are kept as regression tests.

use proptest::prelude::*;
use suanli_catalog::Catalog;
use suanli_perf::validate;

const TABLE: &str = include_str!("../../../data/validation/training-runs.csv");

/// Values a hostile table might hold in a numeric column.
fn cell() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("0".to_string()),
        Just("1".to_string()),
        Just(String::new()),
        Just("-1".to_string()),
        Just("4294967295".to_string()),
        Just("1e9".to_string()),
        Just("NaN".to_string()),
        (1u32..300).prop_map(|n| n.to_string()),
    ]
}

/// The first data row with column `column` set to `value`.
fn row_with(column: &str, value: &str) -> String {
    let mut lines = TABLE.lines();
    let header = lines.next().unwrap();
    let row = lines.next().unwrap();
    let index = header.split(',').position(|h| h == column).unwrap();
    let text = format!("{header}\n{row}\n");
    let mut reader = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let mut record: Vec<String> = reader
        .records()
        .next()
        .unwrap()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    record[index] = value.to_string();
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(header.split(',')).unwrap();
    writer.write_record(&record).unwrap();
    String::from_utf8(writer.into_inner().unwrap()).unwrap()
}

fn check(text: &str) {
    let rows = match validate::read_training_runs(text) {
        Ok(rows) => rows,
        Err(message) => return assert!(!message.to_string().contains('\n'), "{message}"),
    };
    for row in &rows {
        match validate::row_model(row) {
            Ok(model) => model.validate().unwrap(),
            Err(message) => assert!(!message.to_string().contains('\n'), "{message}"),
        }
        let result = validate::evaluate_row(&Catalog::builtin(), row);
        if let Some(error) = result.error_pct {
            assert!(error.is_finite(), "{result:?}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn hostile_cells_never_panic_hang_or_give_nan(
        column in prop_oneof![
            Just("layers"), Just("hidden"), Just("heads"), Just("kv_heads"), Just("ffn"),
            Just("vocab"), Just("moe_experts"), Just("moe_top_k"), Just("num_accelerators"),
            Just("global_batch"), Just("micro_batch"), Just("tp"), Just("pp"),
            Just("scaleout_gbps_per_accelerator"), Just("measured"),
        ],
        value in cell(),
    ) {
        check(&row_with(column, &value));
    }
}

#[test]
fn issue_9_reproducers_are_refused_with_one_line() {
    for (column, value, expected) in [
        ("heads", "0", "`heads` is 0"),
        ("hidden", "0", "`hidden` is 0"),
        ("layers", "4294967295", "`layers`"),
        ("kv_heads", "5", "must divide"),
    ] {
        let rows = validate::read_training_runs(&row_with(column, value)).unwrap();
        let message = validate::row_model(&rows[0]).unwrap_err().to_string();
        assert!(message.contains(expected), "{column}={value}: {message}");
    }
}
