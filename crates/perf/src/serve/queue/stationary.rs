//! The stationary distribution of the sequences decoding on one replica, split into its modes,
//! and the normal-distribution helpers the queue model uses.

use super::IterationCost;

/// z of the 99th percentile of the standard normal distribution.
pub(super) const Z99: f64 = 2.326;

/// The standard normal CDF, via erf (Abramowitz and Stegun 1964, 7.1.26; |error| < 1.5e-7).
pub(super) fn normal_cdf(x: f64) -> f64 {
    let z = x.abs() / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z);
    let poly = t
        * (0.254_829_592
            + t * (-0.284_496_736
                + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    if x >= 0.0 {
        0.5 * (1.0 + erf)
    } else {
        0.5 * (1.0 - erf)
    }
}

/// One mode of the stationary distribution of the sequences decoding: its share of the time,
/// mean and variance.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mode {
    pub weight: f64,
    pub mean: f64,
    pub variance: f64,
}

/// The points the density is evaluated at: every integer up to 16, then steps of
/// `floor(sqrt(n) / 2)`, and the cap. See `stationary_modes` for why this step loses nothing.
fn grid(cap: usize) -> Vec<f64> {
    let mut points = Vec::new();
    let mut n = 0usize;
    while n < cap {
        points.push(n as f64);
        n += (((n as f64).sqrt() / 2.0) as usize).max(1);
    }
    points.push(cap as f64);
    points
}

/// The stationary distribution of the sequences decoding, split into its modes (see the module
/// documentation of `serve::queue`: a diffusion in N whose drift is the fixed-point map's).
///
/// N rises by one per arrival (rate lambda) and falls as sequences finish, at
/// `mu(N) = N (1 - rho_p) / (O D(N))`. Each arrival also brings `I p` seconds of prefill that
/// stall every decoding sequence, which defers `h = N I p / (O D(N))` departures. A sequence
/// holds its slot for a fixed O iterations, so both the arrival and the departures it defers
/// stay counted for one whole residence: N is a shot noise of pulses of height `1 + h` and
/// length S, whose variance is `lambda S (1 + h)^2` (Campbell's theorem). A diffusion with the
/// same drift has variance `b S / 2`, so its coefficient is `b(N) = (lambda + mu(N)) (1 + h)^2`.
/// (Taking the deferred departures as a jump that relaxes like a Markov count, `lambda (1 +
/// h)^2 + mu`, halves their share: against the simulation of tests/serve_queue.rs N's time
/// variance read 22.8 and 77.5 at 30% and 60% of the highest rate where the simulation measures
/// 27.0 and 103.8; the shot-noise coefficient reads 26.9 and 106.3.) The stationary density of
/// the diffusion is `exp(integral 2 (lambda - mu) / b) / b` (Gardiner, "Handbook of Stochastic
/// Methods", 5.2.2); with `I p = 0` it is the Poisson(lambda O D) count of the
/// processor-sharing queue, which is insensitive to the (here constant) service length (Cohen
/// 1979). The modes are split at the
/// density's interior minima: a replica near the decode step's tile stair has two, and the
/// share of time in each, not the larger fixed point alone, sets the means and percentiles.
///
/// The density is integrated on `grid`, not at every integer up to the cap (the cap reaches
/// thousands, and this runs at every rate a bisection tries). The step is at most half the
/// standard deviation of a mode at N: there the drift falls at `mu'(N) = mu / N (1 - N D' / D)
/// <= lambda / N` (D grows with N) and `b >= 2 lambda`, so the local variance
/// `b / (2 |a'|)` is at least N. The trapezoid rule on a normal density with step `h <= sd / 2`
/// errs by at most `2 exp(-2 pi^2 sd^2 / h^2) < 1e-30` of its mass and moments (Poisson
/// summation), and the potential's midpoint rule is exact on a linear drift. The unit test
/// below compares the two grids.
pub(super) fn stationary_modes(
    cost: &IterationCost,
    input: f64,
    output: f64,
    rate: f64,
) -> Vec<Mode> {
    modes_on(cost, input, output, rate, &grid(cost.max_batch as usize))
}

/// `stationary_modes` on the given ascending points (the first 0, the last the cap).
fn modes_on(cost: &IterationCost, input: f64, output: f64, rate: f64, points: &[f64]) -> Vec<Mode> {
    let p = cost.prefill_token_s;
    let prefill_share = rate * input * p;
    let diffusion = |n: f64| {
        let raw = n / (output * cost.decode(n.max(1.0)));
        let mu = raw * (1.0 - prefill_share);
        (rate - mu, (rate + mu) * (1.0 + raw * input * p).powi(2))
    };
    let mut log_density = Vec::with_capacity(points.len());
    let mut potential = 0.0;
    for (j, &n) in points.iter().enumerate() {
        let (_, b) = diffusion(n);
        log_density.push(potential - b.ln());
        if let Some(&next) = points.get(j + 1) {
            let (a, b) = diffusion(0.5 * (n + next));
            potential += 2.0 * a / b * (next - n);
        }
    }
    let top = log_density.iter().copied().fold(f64::MIN, f64::max);
    // Trapezoid weights: the density times half the width of the two cells around each point.
    let last = points.len() - 1;
    let mass: Vec<f64> = log_density
        .iter()
        .enumerate()
        .map(|(j, l)| {
            let width = points[(j + 1).min(last)] - points[j.saturating_sub(1)];
            (l - top).exp() * width / 2.0
        })
        .collect();
    let density: Vec<f64> = log_density.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = mass.iter().sum();
    let mut modes = Vec::new();
    let mut start = 0;
    for j in 1..=last {
        if j < last && !(density[j] < density[j - 1] && density[j] <= density[j + 1]) {
            continue;
        }
        let end = if j == last { last + 1 } else { j };
        let part = start..end;
        let weight: f64 = mass[part.clone()].iter().sum();
        let moment = |k: i32| {
            part.clone()
                .map(|i| mass[i] * points[i].powi(k))
                .sum::<f64>()
                / weight.max(f64::MIN_POSITIVE)
        };
        let mean = moment(1);
        modes.push(Mode {
            weight: weight / total,
            mean,
            variance: (moment(2) - mean * mean).max(1e-9),
        });
        start = end;
    }
    modes
}

/// The 99th percentile of a mixture of normal distributions, (weight, mean, sd) (bisection).
pub(super) fn mixture_p99(parts: &[(f64, f64, f64)]) -> f64 {
    let above = |t: f64| {
        parts
            .iter()
            .map(|(w, m, s)| w * (1.0 - normal_cdf((t - m) / s.max(1e-12))))
            .sum::<f64>()
    };
    let bracket = parts
        .iter()
        .fold((f64::MAX, f64::MIN), |(l, h), (_, m, s)| {
            (l.min(*m), h.max(m + 4.0 * Z99 * s))
        });
    p99_by_bisection(above, bracket, 0.0, 60)
}

/// Where `tail` (the share of requests slower than `t`, falling in `t`) crosses 1 %: bisection
/// on `(low, high)` until the bracket is within `relative` of its top, at most `halvings` times.
pub(super) fn p99_by_bisection(
    tail: impl Fn(f64) -> f64,
    (mut low, mut high): (f64, f64),
    relative: f64,
    halvings: usize,
) -> f64 {
    for _ in 0..halvings {
        if high - low <= relative * high {
            break;
        }
        let middle = 0.5 * (low + high);
        if tail(middle) > 0.01 {
            low = middle;
        } else {
            high = middle;
        }
    }
    high
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A replica whose decode step climbs a stair between 100 and 300 sequences (bistable
    /// near 6.5 req/s of 512 + 290 tokens, like the H200 replica of tests/serve_queue.rs).
    fn stair() -> IterationCost {
        let decode_s = (0..40)
            .map(|k| 1.2f64.powi(k).min(2000.0))
            .map(|n| (n, 0.026 + 0.039 * ((n - 100.0) / 200.0).clamp(0.0, 1.0)))
            .collect();
        IterationCost {
            decode_s,
            prefill_token_s: 2.0e-5,
            token_budget: 8192,
            max_batch: 2000,
        }
    }

    #[test]
    fn the_coarse_grid_matches_every_integer() {
        let cost = stair();
        let every: Vec<f64> = (0..=2000).map(f64::from).collect();
        for rate in [1.0, 4.0, 6.0, 6.6, 7.0, 8.0] {
            let fine = modes_on(&cost, 512.0, 290.0, rate, &every);
            let coarse = stationary_modes(&cost, 512.0, 290.0, rate);
            let mean = |m: &[Mode]| m.iter().map(|m| m.weight * m.mean).sum::<f64>();
            let (f, c) = (mean(&fine), mean(&coarse));
            assert!((f - c).abs() <= 1e-3 * f + 0.05, "rate {rate}: {f} vs {c}");
            let heavy = |m: &[Mode]| m.iter().filter(|m| m.weight > 1e-3).count();
            assert_eq!(heavy(&fine), heavy(&coarse), "rate {rate}");
        }
    }
}
