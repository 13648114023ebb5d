//! The host-scheduling overhead of vLLM: version parsing, which engine a row gets, the
//! per-sequence host time of vLLM before v0.6 derived from the vLLM blog's Llama 3 8B profile
//! checked against the blog's independent Llama 3 70B figure, and that of the synchronous V1
//! engine (v0.8-v0.13) from a published A/B with and without asynchronous scheduling.

use suanli_catalog::Catalog;
use suanli_perf::serve::host::{
    HostProfile, VLLM_BEFORE_0_6, VLLM_V1_SYNC_SCHEDULER, version_before,
};
use suanli_perf::serve::scenario::{VLLM, VLLM_BEFORE_0_6_ENGINE, VLLM_V1_SYNC_ENGINE, engine_of};
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
fn vllm_schedules_serially_before_0_6_and_from_0_8_to_0_13() {
    assert_eq!(
        engine_of("vLLM", Some("0.4.3+rocm614")),
        VLLM_BEFORE_0_6_ENGINE
    );
    // V0 from 0.6: multi-step scheduling and asynchronous output processing.
    assert_eq!(engine_of("vLLM", Some("0.7.3")), VLLM);
    // V1, the default from 0.8, schedules synchronously until 0.14 made it asynchronous.
    for version in ["0.8.0", "0.9.0.2.dev108", "0.10.2", "0.13.1"] {
        assert_eq!(
            engine_of("vLLM", Some(version)),
            VLLM_V1_SYNC_ENGINE,
            "{version}"
        );
    }
    assert_eq!(engine_of("vLLM", Some("0.14.0")), VLLM);
    assert_eq!(engine_of("vLLM", None), VLLM);
    assert_eq!(engine_of("vLLM", Some("main")), VLLM);
    assert!(engine_of("TensorRT-LLM", Some("0.10")).host.is_none());
    assert!(
        engine_of("Intel Gaudi software", Some("1.18.0"))
            .host
            .is_none()
    );
}

/// The A/B's four batches each give the host time per step; the model charges it per sequence,
/// so each batch's figure per sequence should lie near the fitted slope (10.6-13.3 us against
/// 12.8 us), and the slope should be of the order of V0's Python loop (39 us for v0.5.3 from
/// the blog's profile) but below it: V1 was rewritten to cut that loop's cost.
#[test]
fn v1_host_time_grows_with_the_batch_at_about_13_us_per_sequence() {
    let catalog = Catalog::builtin();
    let per_sequence_s = VLLM_V1_SYNC_SCHEDULER.host_s_per_sequence();
    assert!(
        (12.0e-6..13.5e-6).contains(&per_sequence_s),
        "{per_sequence_s}"
    );
    for point in VLLM_V1_SYNC_SCHEDULER.points {
        let batch = point.batch as f64;
        let hidden_s = batch / point.sync_tokens_per_s - batch / point.async_tokens_per_s;
        let ratio = hidden_s / batch / per_sequence_s;
        assert!(
            (0.8..1.2).contains(&ratio),
            "batch {}: {ratio}",
            point.batch
        );
    }
    let v0_s = VLLM_BEFORE_0_6.host_s_per_sequence(&catalog).unwrap();
    assert!(per_sequence_s < v0_s / 2.0, "{per_sequence_s} vs {v0_s}");
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
