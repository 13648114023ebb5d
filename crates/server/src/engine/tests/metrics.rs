//! `/metrics` as rendered from an engine: values, names and escaped labels.

use super::*;

fn render(engine: &Engine) -> String {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &crate::metrics::registry(engine)).unwrap();
    out
}

#[tokio::test]
async fn metrics_count_jobs_and_devices_and_escape_labels() {
    let mut rig = Rig::new("fifo", 8).await;
    // A host name a hostile admin could set: quote, backslash, newline.
    rig.engine.pools[0].node = "gpu\"1\\\nx".into();
    rig.submit("a", 4).await;
    rig.submit("a", 8).await;
    let text = render(&rig.engine);
    let lines: Vec<&str> = text.lines().collect();
    for expected in [
        "suanli_queue_length 1",
        "suanli_running_jobs 1",
        r#"suanli_accelerators_allocated{accelerator="h100",node="gpu\"1\\\nx"} 4"#,
        r#"suanli_accelerators_total{accelerator="h100",node="gpu\"1\\\nx"} 8"#,
        "suanli_jobs_submitted_total 2",
        "# EOF",
    ] {
        assert!(lines.contains(&expected), "no `{expected}` in\n{text}");
    }
    // Every sample line is `name{labels} value` on one line: the newline stayed escaped.
    for line in lines.iter().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line `{line}`");
    }
    let passes = lines
        .iter()
        .find_map(|l| l.strip_prefix("suanli_scheduling_pass_seconds_count "))
        .unwrap();
    assert!(passes.parse::<u64>().unwrap() >= 2, "{text}");
}
