//! `suanli plan train --export`: the config on stdout, the launch line on stderr, bad formats
//! refused with the right names.

mod common;

use common::suanli;

const PLAN: [&str; 12] = [
    "plan",
    "train",
    "--model",
    "llama-3.1-70b",
    "--accelerator",
    "h100-sxm5-80gb",
    "--count",
    "64",
    "--layout",
    "tp=8,pp=4,vpp=5,mb=1",
    "--global-batch-seqs",
    "1024",
];

#[test]
fn megatron_export_prints_flags_and_a_64_accelerator_launch() {
    let out = suanli(&[&PLAN[..], &["--export", "megatron"]].concat());
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stdout.contains("--tensor-model-parallel-size 8 \\"),
        "{stdout}"
    );
    assert!(
        stdout.contains("--num-layers-per-virtual-pipeline-stage 4 \\"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("srun"),
        "the launch line goes to stderr: {stdout}"
    );
    assert!(
        stderr.contains("torchrun --nnodes=8 --nproc-per-node=8"),
        "{stderr}"
    );
}

#[test]
fn deepspeed_export_on_stdout_is_json_alone() {
    let out = suanli(&[&PLAN[..], &["--export", "deepspeed"]].concat());
    assert!(out.status.success());
    let value: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    // dp = 64 / (8*4) = 2, 1024 sequences at mb=1: 512 micro-batches per step.
    assert_eq!(value["gradient_accumulation_steps"], 512);
}

#[test]
fn unknown_format_says_which_exist() {
    let out = suanli(&[&PLAN[..], &["--export", "jax"]].concat());
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("megatron, nemo, torchtitan or deepspeed"),
        "{stderr}"
    );
}
