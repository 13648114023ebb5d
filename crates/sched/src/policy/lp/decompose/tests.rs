//! The decomposition against `microlp` on random heterogeneous instances.

use super::super::Grouped;
use proptest::prelude::*;

/// Stage 2's objective, `sum_g n_g sum_w A[g][w] X[g][w]`.
fn total_value(problem: &Grouped, share: &[Vec<f64>]) -> f64 {
    share
        .iter()
        .enumerate()
        .map(|(g, x)| {
            problem.counts[g]
                * x.iter()
                    .zip(&problem.coefficients[g])
                    .map(|(x, a)| x * a)
                    .sum::<f64>()
        })
        .sum()
}

fn feasible(problem: &Grouped, share: &[Vec<f64>]) -> Result<(), String> {
    for row in share {
        if row.iter().any(|&x| x < -1e-12) || row.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(format!("row {row:?}"));
        }
    }
    for (w, &cap) in problem.workers.iter().enumerate() {
        let used: f64 = share
            .iter()
            .enumerate()
            .map(|(g, x)| x[w] * f64::from(problem.scale_factors[g]) * problem.counts[g])
            .sum();
        if used > cap * (1.0 + 1e-9) + 1e-9 {
            return Err(format!("type {w}: {used} > {cap}"));
        }
    }
    Ok(())
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-6 * a.abs().max(b.abs())
}

/// Checks both stages of `problem` against the LP.
fn check(problem: &Grouped) -> Result<(), TestCaseError> {
    let (lp_first, lp_t) = problem.solve_stage_lp(None).expect("lp stage 1");
    // `microlp` accepts rows violated by up to its tolerance (about 1e-6 here), which on a type
    // of no accelerators yields a small positive optimum where the exact one is 0: such
    // instances say nothing about the decomposition.
    prop_assume!(feasible(problem, &lp_first.share).is_ok());
    let (first, t) = problem
        .solve_stage_decomposed(None, None)
        .expect("stage 1 converges");
    prop_assert!(
        close(t, lp_t) || t.max(lp_t) < 1e-12,
        "stage 1: {t} vs lp {lp_t}"
    );
    feasible(problem, &first.share).map_err(TestCaseError::fail)?;
    let largest = problem
        .coefficients
        .iter()
        .flatten()
        .fold(0.0, |m: f64, &a| m.max(a));
    if lp_t <= 1e-12 * largest {
        return Ok(());
    }
    let floor = lp_t * (1.0 - 1e-6);
    let (lp_second, _) = problem.solve_stage_lp(Some(floor)).expect("lp stage 2");
    let (second, min_value) = problem
        .solve_stage_decomposed(Some(floor), Some(&first.share))
        .expect("stage 2 converges");
    feasible(problem, &second.share).map_err(TestCaseError::fail)?;
    prop_assert!(min_value >= floor * (1.0 - 1e-9), "{min_value} < {floor}");
    let (ours, lp) = (
        total_value(problem, &second.share),
        total_value(problem, &lp_second.share),
    );
    prop_assert!(close(ours, lp), "stage 2: {ours} vs lp {lp}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    /// Both stages' optima equal `microlp`'s to 1e-6 and the allocations respect every row:
    /// groups of random per-type coefficients (some types unusable), gangs and sizes, one to four
    /// types of random capacity, coefficients spread over four orders of magnitude (makespan's
    /// `rate / remaining`).
    #[test]
    fn decomposition_matches_the_lp(
        groups in proptest::collection::vec(
            (
                proptest::collection::vec(prop_oneof![Just(0u32), 1u32..100], 4),
                prop_oneof![Just(1u32), Just(2), Just(4), Just(8)],
                1u32..6,
                0u32..4,
            ),
            1..12,
        ),
        workers in proptest::collection::vec(0u32..24, 1..5),
    ) {
        prop_assume!(workers.iter().sum::<u32>() > 0);
        let types = workers.len();
        let workers: Vec<f64> = workers.into_iter().map(f64::from).collect();
        let coefficients: Vec<Vec<f64>> = groups
            .iter()
            .map(|(row, _, _, magnitude)| {
                let scale = 10f64.powi(-(*magnitude as i32));
                let mut row: Vec<f64> = row[..types].iter().map(|&a| f64::from(a) * scale).collect();
                if row.iter().all(|&a| a == 0.0) {
                    row[0] = scale;
                }
                row
            })
            .collect();
        let scale: Vec<u32> = groups.iter().map(|g| g.1).collect();
        let counts: Vec<f64> = groups.iter().map(|g| f64::from(g.2)).collect();
        let problem = Grouped { coefficients: &coefficients, scale_factors: &scale, counts: &counts, workers: &workers };
        check(&problem)?;
    }
}

#[test]
fn a_job_that_cannot_run_anywhere_holds_everyone_at_zero() {
    let coefficients = vec![vec![2.0, 1.0], vec![0.0, 0.0]];
    let problem = Grouped {
        coefficients: &coefficients,
        scale_factors: &[1, 1],
        counts: &[1.0, 1.0],
        workers: &[1.0, 1.0],
    };
    let (_, t) = problem.solve_stage_decomposed(None, None).unwrap();
    assert_eq!(t, 0.0);
}

#[test]
fn the_hand_solved_two_type_instance() {
    // As `heterogeneity_aware_max_min_matches_the_hand_solution` in lp.rs: optimum 1.1875.
    let coefficients = vec![vec![4.0, 1.0], vec![1.2, 1.0]];
    let problem = Grouped {
        coefficients: &coefficients,
        scale_factors: &[1, 1],
        counts: &[1.0, 1.0],
        workers: &[1.0, 1.0],
    };
    let (_, t) = problem.solve_stage_decomposed(None, None).unwrap();
    assert!((t - 1.1875).abs() < 1e-9, "{t}");
}
