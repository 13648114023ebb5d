//! The few fitted constants of the performance model, shared per accelerator family.
//!
//! Everything else in `perf` is a formula over catalog figures. These constants say how close
//! real kernels and collectives get to datasheet peaks; each names the measurement it rests on.
//! They are set per accelerator family, never per validation row.

use serde::Serialize;
use suanli_catalog::{Accelerator, Precision};

/// Achievable fractions of datasheet peaks and fixed per-operation costs.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Efficiency {
    /// Fraction of dense peak a large, well-shaped GEMM reaches.
    pub matmul: f64,
    /// Flash attention's rate as a fraction of the GEMM rate.
    pub attention: f64,
    /// GEMM depth at which the main loop and the prologue/epilogue cost the same: efficiency
    /// falls as k / (k + k0) for shallow GEMMs.
    pub k0: f64,
    /// Fraction of memory bandwidth a streaming (element-wise) kernel reaches.
    pub memory: f64,
    /// Fixed cost of one kernel launch and its tail, seconds.
    pub kernel_overhead_s: f64,
    /// Fraction of the unidirectional scale-up bandwidth a large collective reaches (bus bandwidth).
    pub scaleup: f64,
    /// Fraction of the scale-out NIC bandwidth a large collective reaches (bus bandwidth).
    pub scaleout: f64,
    /// Latency of one collective step inside a scale-up domain, seconds.
    pub scaleup_latency_s: f64,
    /// Latency of one collective step across nodes, seconds.
    pub scaleout_latency_s: f64,
    /// Fraction of the dense 8-bit (fp8/int8) peak an 8-bit inference GEMM reaches (serving).
    pub matmul_8bit: f64,
}

impl Efficiency {
    /// The constants for an accelerator, chosen by its family.
    pub fn for_accelerator(accelerator: &Accelerator) -> Efficiency {
        let id = accelerator.id.as_str();
        // Defaults: GEMMs of transformer shapes sustain 60-75% of dense peak in training
        // (NVIDIA "Matrix Multiplication Background User's Guide"; AMD MI300X GEMM tuning notes);
        // fused attention runs at about half the GEMM rate (FlashAttention-2, Dao 2023, Figure 5:
        // 35-50% of peak on H100 against ~70% for GEMMs); shallow GEMMs lose to prologue and
        // epilogue, k0 = 256 (two 128-deep main-loop stages); STREAM-like kernels reach about
        // 85% of HBM bandwidth; nccl-tests all-reduce bus bandwidth reaches about 80% of NVLink
        // and 65% of InfiniBand line rate at scale.
        let mut e = Efficiency {
            matmul: 0.70,
            attention: 0.5,
            k0: 256.0,
            memory: 0.85,
            kernel_overhead_s: 6e-6,
            scaleup: 0.80,
            scaleout: 0.65,
            scaleup_latency_s: 8e-6,
            scaleout_latency_s: 20e-6,
            // Set below from the family's 16-bit fraction unless fitted.
            matmul_8bit: 0.0,
        };
        if id.starts_with("a100") || id.starts_with("a800") {
            // A100: fp16 GEMMs of transformer shapes sustain ~225 of 312 TFLOP/s inside training
            // loops (Megatron-LM's best runs reach 163-171 TFLOP/s per GPU including everything
            // else; fitted on the A100 rows of shared/validation/training-runs.csv).
            e.matmul = 0.72;
        } else if id.starts_with("h100") || id.starts_with("h800") || id.starts_with("h200") {
            // H100/H200: bf16 GEMMs sustain ~570-620 of 989 TFLOP/s under the 700 W power cap in
            // training loops (Megatron-Core r0.8 reaches 410-490 TFLOP/s per GPU overall;
            // fitted on the H100 rows of shared/validation/training-runs.csv).
            e.matmul = 0.58;
            // fp8 inference GEMMs in TensorRT-LLM 0.5/0.6 sustain ~1000 of 1979 TFLOP/s, 1.7x
            // the bf16 training rate above (fitted on the six H100 fp8 rows of
            // shared/validation/inference-runs.csv; 0.45-0.55 all keep every H100 row within 24%).
            e.matmul_8bit = 0.50;
        } else if let Some(measured) = max_achievable(accelerator) {
            // A GEMM's share of peak as its maker measured it (see `MAX_ACHIEVABLE`).
            (e.matmul, e.matmul_8bit) = measured;
        } else if id.starts_with("mi3") {
            // MI350X/MI355X: no measured figure; an estimate from hipBLASLt bf16 GEMMs on the
            // previous generation (45-55% of dense peak; the MI300X measured 54%).
            e.matmul = 0.50;
        }
        if e.matmul_8bit == 0.0 {
            // 8-bit GEMMs gain less than the datasheet's 2x over 16-bit: quantise/scale
            // epilogues and the power cap eat part of it. Default (an assumption, checked only
            // on the two L40S rows of shared/validation/inference-runs.csv, +4% and +34%):
            // 0.75 of the 16-bit fraction, i.e. 1.5x the achieved 16-bit rate.
            e.matmul_8bit = 0.75 * e.matmul;
        }
        e
    }
}

/// A GEMM rate its maker measured under sustained load.
struct MaxAchievable {
    accelerator_id: &'static str,
    bf16_tflops: f64,
    fp8_tflops: f64,
}

/// Max-Achievable FLOPs (MAF): hipBLASLt on a large GEMM of normally distributed data, the
/// device warmed up, caches cold. ROCm blog "Measuring Max-Achievable FLOPs - Part 2" (Sander,
/// Masters, Poursartip, Ho; 2025-02-28; rocm.blogs.amd.com/software-tools-optimization/
/// measuring-max-achievable-flops-part2), Table 1: MI300X (750 W) 708 TFLOP/s bf16 at a median
/// 1,207 MHz and 1,273 fp8 at 1,230 MHz; MI325X (1,000 W) 843 at 1,447 MHz and 1,519 at 1,464
/// MHz (its footnote 4 gives 1,223.6 / 840.8 / 1,527.7 for three of them; the table is used).
/// One die with the same datasheet peaks (2,100 MHz boost): the MI325X's power limit holds a
/// higher clock under dense GEMMs. fp16 measured 654 and 794; the model's 16-bit share is bf16's.
const MAX_ACHIEVABLE: &[MaxAchievable] = &[
    MaxAchievable {
        accelerator_id: "mi300x",
        bf16_tflops: 708.0,
        fp8_tflops: 1273.0,
    },
    MaxAchievable {
        accelerator_id: "mi325x",
        bf16_tflops: 843.0,
        fp8_tflops: 1519.0,
    },
];

/// The measured (16-bit, 8-bit) shares of dense peak, where `MAX_ACHIEVABLE` has the device.
fn max_achievable(accelerator: &Accelerator) -> Option<(f64, f64)> {
    let measured = MAX_ACHIEVABLE
        .iter()
        .find(|m| m.accelerator_id == accelerator.id)?;
    let share =
        |tflops: f64, precision| Some(tflops * 1e12 / accelerator.peak_flops_per_s(precision)?);
    Some((
        share(measured.bf16_tflops, Precision::Bf16)?,
        share(measured.fp8_tflops, Precision::Fp8)?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use suanli_catalog::Catalog;

    fn efficiency(id: &str) -> Efficiency {
        Efficiency::for_accelerator(Catalog::builtin().accelerator(id).unwrap())
    }

    #[test]
    fn mi325x_gemms_outrun_mi300x_by_their_measured_clocks() {
        let (mi300x, mi325x) = (efficiency("mi300x"), efficiency("mi325x"));
        // The same die, so the rates should differ by the median clocks AMD measured beside
        // them (bf16 1,447 / 1,207 MHz, fp8 1,464 / 1,230 MHz), not only by the TFLOP/s.
        let bf16 = mi325x.matmul / mi300x.matmul;
        let fp8 = mi325x.matmul_8bit / mi300x.matmul_8bit;
        assert!((bf16 / (1447.0 / 1207.0) - 1.0).abs() < 0.01, "{bf16}");
        assert!((fp8 / (1464.0 / 1230.0) - 1.0).abs() < 0.01, "{fp8}");
        // AMD's footnote 2: 708 TFLOP/s is 94% of 304 CUs x 2,048 bf16 FLOP per CU per clock at
        // 1,207 MHz; the catalog's peak is the same count at 2,100 MHz.
        let at_boost = 0.94 * 1207.0 / 2100.0;
        assert!(
            (mi300x.matmul / at_boost - 1.0).abs() < 0.01,
            "{}",
            mi300x.matmul
        );
    }

    #[test]
    fn cdna4_keeps_its_estimate() {
        for id in ["mi350x", "mi355x"] {
            let e = efficiency(id);
            assert_eq!((e.matmul, e.matmul_8bit), (0.50, 0.375), "{id}");
        }
    }
}
