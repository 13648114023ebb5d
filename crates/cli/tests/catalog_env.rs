//! `SUANLI_CATALOG` works the same for every command (issue 12): the user's models appear in
//! `catalog models` as they do in `plan train` and `plan serve`; `validate` and `serve` load it
//! through the same `plan::load_catalog`.

use std::path::Path;
use std::process::{Command, Output, Stdio};

fn suanli(args: &[&str], catalog_env: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_suanli"));
    command
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")))
        .env_remove("SUANLI_CATALOG")
        .stdin(Stdio::null());
    if let Some(value) = catalog_env {
        command.env("SUANLI_CATALOG", value);
    }
    command.output().expect("the binary runs")
}

fn text(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn every_command_sees_the_models_of_suanli_catalog() {
    let mine = Some("tests/data/mine.toml");
    let listed = text(&suanli(&["catalog", "models", "gpt2"], mine));
    assert!(listed.contains("my-gpt2-xl"), "{listed}");
    let without = suanli(&["catalog", "models", "my-gpt2"], None);
    assert!(!String::from_utf8_lossy(&without.stdout).contains("my-gpt2-xl"));

    let plan = text(&suanli(
        &[
            "plan",
            "train",
            "--model",
            "my-gpt2-xl",
            "--accelerator",
            "h100-sxm5-80gb",
            "--count",
            "8",
            "--json",
        ],
        mine,
    ));
    let value: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(value["setup"]["model"]["id"], "my-gpt2-xl", "{plan}");

    // `plan serve` sees it too; without the variable the same command does not know it.
    let serve = [
        "plan",
        "serve",
        "--model",
        "my-gpt2-xl",
        "--accelerator",
        "h100-sxm5-80gb",
        "--input-len",
        "512",
        "--output-len",
        "128",
    ];
    let served = text(&suanli(&serve, mine));
    assert!(served.starts_with("My GPT-2 XL on 1 x"), "{served}");
    let unknown = suanli(&serve, None);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("my-gpt2-xl"));

    // A broken path is one line naming it, for `catalog` as for `plan`.
    let out = suanli(&["catalog", "models"], Some("tests/data/missing.toml"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}
