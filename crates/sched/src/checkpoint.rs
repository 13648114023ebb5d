//! Checkpoint interval helpers.

/// Young's optimal checkpoint interval, seconds of compute between checkpoints:
/// `sqrt(2 * checkpoint_cost_s * mtbf_s)` (J. W. Young, "A first order approximation to the
/// optimum checkpoint interval", CACM 1974; Daly, FGCS 2006, eq. 37 gives the same first-order
/// term). `mtbf_s` is the mean time between failures of the whole job (all its accelerators).
pub fn young_daly_interval_s(checkpoint_cost_s: f64, mtbf_s: f64) -> f64 {
    // One formula for planner and simulator.
    suanli_perf::reliability::young_daly_interval_s(checkpoint_cost_s, mtbf_s)
}

/// The job-level MTBF of a gang of `gang_size` accelerators that each fail independently with
/// MTBF `per_accelerator_mtbf_s`.
pub fn gang_mtbf_s(per_accelerator_mtbf_s: f64, gang_size: u32) -> f64 {
    per_accelerator_mtbf_s / f64::from(gang_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn young_daly_matches_the_closed_form() {
        // 60 s checkpoints, one failure a day: sqrt(2 * 60 * 86400) = 3220 s.
        let interval_s = young_daly_interval_s(60.0, 86_400.0);
        assert!((interval_s - 3219.94).abs() < 0.01, "{interval_s}");
        // A 1024-accelerator gang at 50,700 h per accelerator fails every ~49.5 h.
        let mtbf_s = gang_mtbf_s(50_700.0 * 3600.0, 1024);
        assert!((mtbf_s / 3600.0 - 49.51).abs() < 0.01, "{mtbf_s}");
    }
}
