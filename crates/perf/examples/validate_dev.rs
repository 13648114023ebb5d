//! Development helper: prints the validation table for a CSV file.
fn main() {
    let path = std::env::args().nth(1).expect("path");
    let text = std::fs::read_to_string(path).unwrap();
    let catalog = suanli_catalog::Catalog::builtin();
    let rows = suanli_perf::validate::read_training_runs(&text).unwrap();
    let report = suanli_perf::validate::validate_training(&catalog, &rows);
    for r in &report.rows {
        println!("{:32} {:>9.2} {:>9.2} {:>7.1}% {} {}", r.id, r.measured.unwrap_or(0.0), r.predicted.unwrap_or(f64::NAN), r.error_pct.unwrap_or(f64::NAN), r.layout.clone().unwrap_or_default(), r.reason.clone().unwrap_or_default());
    }
    println!("{:?}", report.summary);
    if let Some(id) = std::env::args().nth(2) {
        let row = rows.iter().find(|r| r.id == id).unwrap();
        let (setup, constraints) = suanli_perf::validate::row_setup(&catalog, row).unwrap();
        let found = suanli_perf::search::search(&setup, &constraints, 1).unwrap();
        println!("{:#?}", found.top[0]);
    }
}

#[allow(dead_code)]
fn unused() {}
