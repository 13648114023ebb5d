//! The host-scheduling overhead of vLLM before v0.6: version parsing, which engine a row gets,
//! and the per-sequence host time derived from the vLLM blog's Llama 3 8B profile checked
//! against the blog's independent Llama 3 70B figure.

use suanli_catalog::Catalog;
use suanli_perf::serve::host::{HostProfile, VLLM_BEFORE_0_6, version_before};
use suanli_perf::serve::scenario::{VLLM, VLLM_BEFORE_0_6_ENGINE, engine_of};
use suanli_perf::serve::{ServeSetup, decode_step};

#[test]
fn versions_compare_on_major_and_minor() {
    assert_eq!(version_before("0.4.3+rocm614", 0, 6), Some(true));
    assert_eq!(version_before("0.5", 0, 6), Some(true));
    assert_eq!(version_before("0.10.2", 0, 6), Some(false));
    assert_eq!(version_before("0.9.0.2.dev108", 0, 6), Some(false));
    assert_eq!(version_before("v0.6.0", 0, 6), Some(false));
    assert_eq!(version_before("11b6af52", 0, 6), None);
    assert_eq!(version_before("", 0, 6), None);
}

#[test]
fn only_vllm_before_0_6_schedules_serially() {
    assert_eq!(
        engine_of("vLLM", Some("0.4.3+rocm614")),
        VLLM_BEFORE_0_6_ENGINE
    );
    assert_eq!(engine_of("vLLM", Some("0.10.2")), VLLM);
    assert_eq!(engine_of("vLLM", None), VLLM);
    assert!(engine_of("TensorRT-LLM", Some("0.5")).host.is_none());
    assert!(
        engine_of("Intel Gaudi software", Some("1.18.0"))
            .host
            .is_none()
    );
}

#[test]
fn host_time_per_sequence_is_tens_of_microseconds() {
    let catalog = Catalog::builtin();
    let per_sequence_s = VLLM_BEFORE_0_6.host_s_per_sequence(&catalog).unwrap();
    // Python scheduling of one sequence group per step: of order 10-100 us.
    assert!((5e-6..100e-6).contains(&per_sequence_s), "{per_sequence_s}");
}

/// The blog's second figure, independent of the profile: with the API server in the same
/// process, v0.6.0 served Llama 3 70B on 4 H100 1.8x faster than v0.5.3. A host time per
/// sequence derived from the 8B profile (API server included, (33 + 29) / 38 of the GPU step)
/// predicts the 70B step's host share; v0.6.0 is taken to remove it.
#[test]
fn the_8b_profile_predicts_the_70b_speedup() {
    let catalog = Catalog::builtin();
    let with_api_server = HostProfile {
        host_share: 0.33 + 0.29,
        ..VLLM_BEFORE_0_6
    };
    let per_sequence_s = with_api_server.host_s_per_sequence(&catalog).unwrap();
    let mut setup: ServeSetup = VLLM_BEFORE_0_6.setup(&catalog).unwrap();
    setup.model = catalog.model("llama-3.1-70b").unwrap().clone();
    setup.tp = 4;
    let batch = VLLM_BEFORE_0_6.batch;
    let context = 384.5;
    let gpu_s = decode_step(&setup, batch, context).unwrap().total_s;
    setup.host_s_per_sequence = per_sequence_s;
    let with_host_s = decode_step(&setup, batch, context).unwrap().total_s;
    let speedup = with_host_s / gpu_s;
    println!("host {per_sequence_s:e} s per sequence; predicted 70B speedup {speedup:.2}");
    assert!(
        (speedup - 1.8).abs() / 1.8 < 0.2,
        "predicted v0.6 speedup on 70B {speedup:.2}, blog 1.8"
    );
}
