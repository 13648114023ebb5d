//! The decomposition against `microlp` on random heterogeneous instances.

use super::super::Grouped;
use proptest::prelude::*;

fn feasible(problem: &Grouped, share: &[Vec<f64>]) -> Result<(), String> {
    for row in share {
        if row.iter().any(|&x| x < -1e-12) || row.iter().sum::<f64>() > 1.0 + 1e-9 {
            return Err(format!("row {row:?}"));
        }
    }
    for (w, &cap) in problem.workers.iter().enumerate() {
        let used = problem.used(share, w);
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
    // As in stage 1: `microlp` may leave a job under the floor by its tolerance, which on small
    // coefficients frees capacity worth more than 1e-6 of the total; such instances say nothing.
    prop_assume!(feasible(problem, &lp_second.share).is_ok());
    prop_assume!(problem.smallest_value(&lp_second.share) >= floor * (1.0 - 1e-9));
    let (second, min_value) = problem
        .solve_stage_decomposed(Some(floor), Some(&first.share))
        .expect("stage 2 converges");
    feasible(problem, &second.share).map_err(TestCaseError::fail)?;
    // The master keeps its basic values above -1e-9 (Harris), so a capacity row may be over by
    // about 1e-9 times the usage of a column (up to 40 accelerators per unit of share here), and
    // `fit_capacities` scales that type down by as much: the floor holds to 1e-7 relative.
    prop_assert!(min_value >= floor * (1.0 - 1e-7), "{min_value} < {floor}");
    let (ours, lp) = (
        problem.total_value(&second.share),
        problem.total_value(&lp_second.share),
    );
    // No worse than the LP at the floor, and no better than the LP at the floor ours meets: a
    // job under the floor by rounding frees capacity that a coefficient four orders of magnitude
    // larger turns into more than 1e-6 of the total (2.9e-9 under gave +1.7e-6).
    let lp_at_ours = if min_value < floor {
        let (relaxed, _) = problem.solve_stage_lp(Some(min_value)).expect("lp stage 2");
        problem.total_value(&relaxed.share)
    } else {
        lp
    };
    prop_assert!(
        ours >= lp * (1.0 - 1e-6) && ours <= lp_at_ours * (1.0 + 1e-6),
        "stage 2: {ours} vs lp {lp} (at our floor {lp_at_ours})"
    );
    Ok(())
}

/// One group of a generated instance: per-type coefficients (0: unusable), gang size, number of
/// jobs and the power of ten the coefficients are divided by.
type GroupSpec = ([u32; 4], u32, u32, u32);

/// The owned parts of a [`Grouped`] built from group specs over `workers.len()` types; a group
/// with no usable type gets the first one (every job can run somewhere).
struct Instance {
    coefficients: Vec<Vec<f64>>,
    scale_factors: Vec<u32>,
    counts: Vec<f64>,
    workers: Vec<f64>,
}

impl Instance {
    fn new(groups: &[GroupSpec], workers: Vec<f64>) -> Self {
        let types = workers.len();
        let coefficients = groups
            .iter()
            .map(|(row, _, _, magnitude)| {
                let scale = 10f64.powi(-(*magnitude as i32));
                let mut row: Vec<f64> =
                    row[..types].iter().map(|&a| f64::from(a) * scale).collect();
                if row.iter().all(|&a| a == 0.0) {
                    row[0] = scale;
                }
                row
            })
            .collect();
        Instance {
            coefficients,
            scale_factors: groups.iter().map(|g| g.1).collect(),
            counts: groups.iter().map(|g| f64::from(g.2)).collect(),
            workers,
        }
    }

    fn problem(&self) -> Grouped<'_> {
        Grouped {
            coefficients: &self.coefficients,
            scale_factors: &self.scale_factors,
            counts: &self.counts,
            workers: &self.workers,
        }
    }
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
                proptest::array::uniform4(prop_oneof![Just(0u32), 1u32..100]),
                prop_oneof![Just(1u32), Just(2), Just(4), Just(8)],
                1u32..6,
                0u32..4,
            ),
            1..12,
        ),
        workers in proptest::collection::vec(0u32..24, 1..5),
    ) {
        prop_assume!(workers.iter().sum::<u32>() > 0);
        let instance = Instance::new(&groups, workers.into_iter().map(f64::from).collect());
        check(&instance.problem())?;
    }
}

/// Stage 1's value by decomposition for two one-accelerator jobs on two types of one
/// accelerator each.
fn two_jobs_two_types(coefficients: &[Vec<f64>]) -> f64 {
    let problem = Grouped {
        coefficients,
        scale_factors: &[1, 1],
        counts: &[1.0, 1.0],
        workers: &[1.0, 1.0],
    };
    problem.solve_stage_decomposed(None, None).unwrap().1
}

#[test]
fn a_job_that_cannot_run_anywhere_holds_everyone_at_zero() {
    assert_eq!(two_jobs_two_types(&[vec![2.0, 1.0], vec![0.0, 0.0]]), 0.0);
}

#[test]
fn the_hand_solved_two_type_instance() {
    // As `heterogeneity_aware_max_min_matches_the_hand_solution` in lp.rs: optimum 1.1875.
    let t = two_jobs_two_types(&[vec![4.0, 1.0], vec![1.2, 1.0]]);
    assert!((t - 1.1875).abs() < 1e-9, "{t}");
}

#[test]
fn a_type_without_accelerators_takes_no_share() {
    let groups: [GroupSpec; 10] = [
        ([0, 0, 78, 0], 1, 1, 0),
        ([79, 51, 0, 0], 8, 1, 1),
        ([0, 0, 47, 0], 2, 4, 1),
        ([68, 9, 62, 0], 4, 4, 0),
        ([0, 36, 0, 35], 1, 1, 3),
        ([0, 0, 64, 0], 8, 4, 0),
        ([74, 0, 0, 21], 2, 3, 3),
        ([39, 0, 0, 0], 2, 5, 3),
        ([0, 0, 75, 55], 8, 4, 1),
        ([0, 0, 0, 86], 1, 3, 2),
    ];
    let instance = Instance::new(&groups, vec![5.0, 0.0, 11.0, 22.0]);
    check(&instance.problem()).unwrap();
}

#[test]
fn a_degenerate_pivot_keeps_every_job_at_the_floor() {
    // Stage 2 ended with a basic weight of -2.5e-4: a value Harris's test had left at -1e-9 was
    // divided by a pivot entry of 4e-6, and dropping that weight cut the jobs of the second
    // all-default group (0.001 on type 0, at all their time) 2.5e-4 under the floor.
    let groups: [GroupSpec; 8] = [
        ([38, 0, 0, 0], 1, 2, 2),
        ([0, 0, 0, 0], 1, 5, 0),
        ([0, 0, 0, 0], 2, 4, 3),
        ([0, 59, 0, 0], 4, 3, 1),
        ([0, 48, 0, 0], 2, 2, 0),
        ([0, 0, 4, 0], 2, 2, 0),
        ([0, 1, 60, 0], 1, 4, 1),
        ([33, 0, 0, 0], 2, 1, 1),
    ];
    let instance = Instance::new(&groups, vec![17.0, 18.0, 2.0]);
    check(&instance.problem()).unwrap();
}

#[test]
fn a_column_twice_ends_the_generation() {
    // Pricing returned a point equal to a column to rounding, whose reduced cost rounding put
    // above the entering tolerance; the simplex then swapped the twins until its pivot limit.
    let groups: [GroupSpec; 2] = [([90, 0, 0, 0], 4, 4, 3), ([0, 0, 0, 0], 1, 1, 2)];
    let instance = Instance::new(&groups, vec![17.0]);
    check(&instance.problem()).unwrap();
}

#[test]
fn columns_better_only_by_rounding_do_not_take_turns() {
    // In both, two columns with 4 - 6 = 5 - 7 (the basis's other columns) had reduced costs
    // positive only by rounding and swapped until the master's pivot limit.
    let groups: [GroupSpec; 5] = [
        ([91, 0, 0, 0], 1, 3, 2),
        ([0, 0, 48, 0], 4, 2, 0),
        ([31, 0, 0, 0], 4, 1, 1),
        ([0, 0, 0, 0], 1, 1, 3),
        ([41, 64, 0, 0], 2, 4, 1),
    ];
    check(&Instance::new(&groups, vec![11.0, 5.0, 1.0]).problem()).unwrap();
    let groups: [GroupSpec; 4] = [
        ([30, 17, 87, 0], 4, 4, 1),
        ([40, 0, 0, 0], 2, 3, 0),
        ([0, 2, 0, 0], 1, 5, 1),
        ([0, 0, 87, 0], 4, 3, 0),
    ];
    check(&Instance::new(&groups, vec![6.0, 20.0, 13.0]).problem()).unwrap();
}

#[test]
fn a_total_above_the_lp_by_rounding_under_the_floor() {
    // Ours ends 2.9e-9 under the floor (within its 1e-7) and 1.7e-6 above microlp's total: the
    // capacity that rounding frees goes to a coefficient of 45 against others of 0.002-0.09.
    let groups: [GroupSpec; 11] = [
        ([0, 0, 0, 58], 1, 2, 1),
        ([0, 0, 0, 45], 2, 2, 0),
        ([0, 24, 0, 22], 8, 3, 1),
        ([13, 0, 0, 35], 8, 4, 2),
        ([71, 0, 38, 0], 1, 2, 2),
        ([0, 44, 94, 2], 8, 4, 3),
        ([0, 0, 0, 4], 2, 1, 1),
        ([0, 0, 90, 44], 4, 4, 0),
        ([86, 0, 0, 0], 1, 2, 3),
        ([18, 60, 0, 45], 4, 2, 2),
        ([0, 72, 0, 0], 8, 4, 3),
    ];
    check(&Instance::new(&groups, vec![3.0, 21.0, 6.0, 21.0]).problem()).unwrap();
}
