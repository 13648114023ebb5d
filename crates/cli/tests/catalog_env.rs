//! `SUANLI_CATALOG` works the same for every command (issue 12): the user's models appear in
//! `catalog models` as they do in `plan train` and `plan serve`; `validate` and `serve` load it
//! through the same `plan::load_catalog`.

mod common;

use std::process::Output;

use common::{run, suanli_command, success};

/// Runs `suanli` with `SUANLI_CATALOG` set to `catalog` (a path from the repository root).
fn with_catalog(command_line: &str, catalog: &str) -> Output {
    suanli_command()
        .args(command_line.split_whitespace())
        .env("SUANLI_CATALOG", catalog)
        .output()
        .expect("the binary runs")
}

const MINE: &str = "crates/cli/tests/data/mine.toml";

#[test]
fn every_command_sees_the_models_of_suanli_catalog() {
    let listed = success(&with_catalog("catalog models gpt2", MINE));
    assert!(listed.contains("my-gpt2-xl"), "{listed}");
    let without = run("catalog models my-gpt2");
    assert!(!String::from_utf8_lossy(&without.stdout).contains("my-gpt2-xl"));

    let plan = success(&with_catalog(
        "plan train --model my-gpt2-xl --accelerator h100-sxm5-80gb --count 8 --json",
        MINE,
    ));
    let value: serde_json::Value = serde_json::from_str(&plan).unwrap();
    assert_eq!(value["setup"]["model"]["id"], "my-gpt2-xl", "{plan}");

    // `plan serve` sees it too; without the variable the same command does not know it.
    let serve = "plan serve --model my-gpt2-xl --accelerator h100-sxm5-80gb \
         --input-len 512 --output-len 128";
    let served = success(&with_catalog(serve, MINE));
    assert!(served.starts_with("My GPT-2 XL on 1 x"), "{served}");
    let unknown = run(serve);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("my-gpt2-xl"));

    // A broken path is one line naming it, for `catalog` as for `plan`.
    let out = with_catalog("catalog models", "crates/cli/tests/data/missing.toml");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.toml"));
}
