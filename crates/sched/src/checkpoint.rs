//! Checkpoint helpers. Young/Daly's interval itself is `suanli_perf::reliability::
//! young_daly_interval_s`, one formula for planner and simulator.

/// The job-level MTBF of a gang of `gang_size` accelerators that each fail independently with
/// MTBF `per_accelerator_mtbf_s`.
pub fn gang_mtbf_s(per_accelerator_mtbf_s: f64, gang_size: u32) -> f64 {
    per_accelerator_mtbf_s / f64::from(gang_size.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gang_fails_as_often_as_its_accelerators_together() {
        // A 1024-accelerator gang at 50,700 h per accelerator fails every ~49.5 h.
        let mtbf_s = gang_mtbf_s(50_700.0 * 3600.0, 1024);
        assert!((mtbf_s / 3600.0 - 49.51).abs() < 0.01, "{mtbf_s}");
    }
}
