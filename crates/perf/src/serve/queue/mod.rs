//! Percentile latencies of one replica under Poisson arrivals: a queueing model of continuous
//! batching with chunked prefill, the highest request rate that meets p99 TTFT and TPOT limits.
//!
//! The engine runs iterations. Each iteration advances every decoding sequence by one token and
//! spends what is left of a token budget (TensorRT-LLM `max_num_tokens`, vLLM
//! `max_num_batched_tokens`) on prompt chunks, first come first served (Agrawal et al. 2024,
//! Sarathi-Serve, section 4; Yu et al. 2022, Orca). An iteration with `n` sequences decoding and
//! `c` prompt tokens takes `D(n) + c p`: the decode step of the serving model plus `p` seconds
//! per prompt token (the compute-bound prefill rate, since the weights are already being read).
//!
//! At `lambda` requests per second of `I` prompt and `O` output tokens:
//! - mean iteration `tau = D(N) / (1 - lambda I p)` and mean decoding sequences `N = lambda O tau`
//!   (Little 1961), solved as a fixed point. It vanishes (a saddle-node) at the replica's
//!   capacity, where the decode step turns compute-bound and more sequences no longer raise the
//!   token rate;
//! - where the decode step climbs a stair (the GEMMs' row tiles fill) the map has two stable
//!   fixed points, and Poisson arrivals visit both. The figures come from the stationary
//!   distribution of N (a diffusion with the map's drift, `stationary_modes`), mode by mode,
//!   weighted by the share of time the batch spends in each; the mean TPOT is Little's
//!   `E[N] / (lambda O)`. Taking the congested point alone read a mean TPOT of 78 ms where the
//!   simulation measured 55 ms (51 ms over 60,000 requests; the model now 49 ms);
//! - fluctuations of N feed back through the step time with gain g = lambda O D'(N) / (1 -
//!   lambda I p), so N's variance is N / (1 - g);
//! - below capacity, Poisson bursts still outrun the replica for a while. With arrivals in a
//!   window of x expected requests at most x + z sqrt(x) (z = 2.326, the Gaussian approximation
//!   of the Poisson count) and the replica draining at capacity C, the excess peaks at
//!   z^2 / (4 (r - 1)) requests, r = C / lambda (maximising x + z sqrt(x) - r x over x). The
//!   engine admits a burst into the batch at once while it has free slots (B - N of them), and
//!   only the rest must drain within the TTFT budget T left after the queue above:
//!   z^2 / (4 (r - 1)) - (B - N) <= (C - lambda) T;
//! - while N stays under the batch cap `B` a burst only lengthens the iterations; when N
//!   reaches the cap, new prompts wait for a slot to free. The
//!   B slots are the servers of a many-server queue, each held for a request's O iterations
//!   (`S = O tau`), and at N near B it is in the Halfin-Whitt regime (Halfin and Whitt 1981,
//!   "Heavy-traffic limits for queues with many exponential servers"): with
//!   `beta = (B - N) / sd(N)` the chance to wait is `1 / (1 + beta Phi(beta) / phi(beta))`, and
//!   a wait is exponential with mean `1 / (B / S_B - lambda)` (Erlang C's conditional wait,
//!   with the slots freeing at the rate of a full batch, `S_B = O D(B) / (1 - lambda I p)`);
//! - near capacity C the Gaussian spread of N misses the congested state: a burst that tips
//!   the batch over the saddle-node holds itself (longer iterations keep sequences longer) until
//!   the slots run out. The batch follows the arrival rate of the last residence time `O tau`
//!   (quasi-static), whose Poisson count gives a rate ~ Normal(lambda, lambda / (O tau)); the
//!   share of such windows above C is a floor on the chance to wait for a slot. Checked against
//!   the simulation (crates/perf/tests/serve_queue.rs): without it the model read p99 TTFT
//!   0.40 s at its highest rate where the simulation measured 2.37 s; with it the model's p99
//!   TTFT stays at or above 90% of the simulation's from 95% to 99% of capacity (a window of
//!   the feedback-stretched correlation time O tau / (1 - g) instead falls below it);
//! - a request's TPOT is the mean iteration over its `O` iterations. Two things vary it within
//!   a mode: the sequences decoding beside it (N's variance from the stationary distribution,
//!   averaged over one residence time S as an Ornstein-Uhlenbeck process relaxing at
//!   (1 - g) / S) and the prompts prefilled during its life (Poisson, lambda O tau of them, each
//!   adding I p). A life made longer by more sequences lets in more prompts, lambda I p per
//!   unit of life, so N's share of the TPOT moves by `D'(N) / (1 - rho_p)`; and since the TPOT
//!   rises with N, its p99 is the step at N's p99, so the slope is the step's rise from the
//!   mode's mean up to that point (the step climbs stairs, steeper above a mode than below).
//!   That gives a normal TPOT per mode; p99 is that of the mixture over the modes and the
//!   full-batch state;
//! - the full-batch state is the one whose chance the slot wait below uses: while every slot is
//!   taken a prompt starts only when a sequence finishes, so an iteration takes
//!   `D(B) + B I p / O` (211 ms on the test replica) whatever the arrival rate. The TTFT has
//!   counted that state since the simulation check near capacity; leaving it out of the TPOT
//!   let the highest rate (7.74 req/s) reach a simulated p99 TPOT of 207 ms against a 200 ms
//!   limit, and with it the highest rate is 7.09 req/s, simulated at 128 ms;
//! - a prompt's TTFT is the rest of the iteration it arrives in plus the iterations until its
//!   last chunk is computed: the engine starts the prompts that arrived during an iteration
//!   together, in the next one, as many as the budget left beside the decoding sequences holds,
//!   so prefill is a bulk-service queue whose iteration grows with the prompts it carries
//!   (`prefill`, its stationary chain solved per mode of the batch). The M/D/1 queue of one
//!   prompt at a time it replaced read the p99 TTFT 5-26% under the simulation.
//!
//! `crate::serve::sim` runs the same batching event by event; the tests compare the two.

use serde::Serialize;

use prefill::PrefillQueue;
use stationary::{Mode, Z99, mixture_p99, normal_cdf, stationary_modes};

mod prefill;
mod stationary;

/// Mean and 99th percentile of the wait for a batch slot, and the chance that all slots are
/// taken, when `n` sequences (variance `n_variance`) use `slots` slots and, all slots taken,
/// they free `drain_per_s` faster than requests arrive (see the module documentation).
fn slot_wait_s(
    slots: f64,
    n: f64,
    n_variance: f64,
    drain_per_s: f64,
    congested: f64,
) -> (f64, f64, f64) {
    if drain_per_s <= 0.0 {
        return (f64::INFINITY, f64::INFINITY, 1.0);
    }
    let beta = (slots - n) / n_variance.max(1e-9).sqrt();
    let density = (-0.5 * beta * beta).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let waits =
        (1.0 / (1.0 + beta * normal_cdf(beta) / density.max(f64::MIN_POSITIVE))).max(congested);
    let conditional_mean = 1.0 / drain_per_s;
    let p99 = if waits > 0.01 {
        conditional_mean * (waits / 0.01).ln()
    } else {
        0.0
    };
    (waits * conditional_mean, p99, waits.min(1.0))
}

/// The decode step's slope over the range N fluctuates in, N +- z sd(N).
fn decode_slope(cost: &IterationCost, n: f64, n_variance: f64) -> f64 {
    let reach = (Z99 * n_variance.sqrt()).max(1.0);
    let low = (n - reach).max(1.0);
    (cost.decode(n + reach) - cost.decode(low)) / (n + reach - low)
}

/// The cost of one engine iteration on one replica.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct IterationCost {
    /// (sequences decoding, seconds of the decode step), ascending in sequences, from 1.
    pub decode_s: Vec<(f64, f64)>,
    /// Seconds per prompt token added to an iteration.
    pub prefill_token_s: f64,
    /// Tokens one iteration may hold, decode tokens included.
    pub token_budget: u64,
    /// Sequences that may be decoding at once.
    pub max_batch: u64,
}

impl IterationCost {
    /// Seconds of a decode step with `n` sequences (interpolated; clamped to the table).
    pub fn decode(&self, n: f64) -> f64 {
        let points = &self.decode_s;
        let (Some(first), Some(last)) = (points.first(), points.last()) else {
            return 0.0;
        };
        if n <= first.0 {
            return first.1;
        }
        if n >= last.0 {
            return last.1;
        }
        let high = points.partition_point(|p| p.0 < n);
        let (a, b) = (points[high - 1], points[high]);
        a.1 + (b.1 - a.1) * (n - a.0) / (b.0 - a.0)
    }

    /// Seconds of one iteration with `n` decoding and `prompt_tokens` prefilled.
    pub fn iteration(&self, n: usize, prompt_tokens: u64) -> f64 {
        let decode = if n == 0 { 0.0 } else { self.decode(n as f64) };
        let prompts = prompt_tokens as f64 * self.prefill_token_s;
        // An iteration with prompt tokens and no decode still runs the weights once.
        (decode + prompts).max(if prompt_tokens > 0 {
            self.decode(1.0)
        } else {
            0.0
        })
    }
}

/// Latencies of one replica at one request rate.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Latencies {
    pub rate_per_s: f64,
    /// Mean sequences decoding at once.
    pub mean_batch: f64,
    pub ttft_mean_s: f64,
    pub ttft_p99_s: f64,
    pub tpot_mean_s: f64,
    pub tpot_p99_s: f64,
    /// Share of the replica's time spent on prompt tokens.
    pub prefill_share: f64,
}

/// Iterates N <- lambda O D(N) / (1 - rho_p) from `start` (monotone, since D grows with N).
fn iterate_fixed_point(
    cost: &IterationCost,
    output: f64,
    rate: f64,
    prefill_share: f64,
    start: f64,
) -> Option<(f64, f64)> {
    let mut n = start;
    let mut tau = cost.decode(1.0) / (1.0 - prefill_share);
    for _ in 0..200 {
        tau = cost.decode(n) / (1.0 - prefill_share);
        let next = (rate * output * tau).max(1e-9);
        let converged = (next - n).abs() <= 1e-6 * n.max(1.0);
        n = next;
        if n > cost.max_batch as f64 {
            return None;
        }
        if converged {
            return Some((n, tau));
        }
    }
    Some((n, tau))
}

/// Latencies at `rate` requests per second of `input_len` + `output_len` tokens, or `None` when
/// the replica cannot keep up (prefill saturates or the mean batch exceeds the cap).
pub fn latencies(cost: &IterationCost, input: f64, output: f64, rate: f64) -> Option<Latencies> {
    let capacity = capacity_rate(cost, input, output);
    latencies_below(cost, Some(capacity), input, output, rate)
}

/// The chance that the arrivals of one residence time `residence_s` come at a rate above the
/// replica's `capacity` (see the module documentation: the congested state).
fn congested_share(rate: f64, capacity: Option<f64>, residence_s: f64) -> f64 {
    match capacity {
        Some(capacity) if residence_s > 0.0 => {
            let spread = (rate / residence_s).sqrt();
            1.0 - normal_cdf((capacity - rate) / spread.max(f64::MIN_POSITIVE))
        }
        _ => 0.0,
    }
}

/// The TPOT distribution as a mixture of normals, (weight, mean, sd): one per mode of the batch
/// and one for the full-batch state, whose share is `full_share`.
fn tpot_parts(
    cost: &IterationCost,
    modes: &[Mode],
    full_share: f64,
    input: f64,
    output: f64,
    rate: f64,
) -> Vec<(f64, f64, f64)> {
    let p = cost.prefill_token_s;
    let prefill_share = rate * input * p;
    let slots = cost.max_batch as f64;
    // Prompt work during a life lengthens it and lets more prompts in: a Poisson branching
    // process with mean offspring rho_p = lambda I p, whose total work has variance
    // 1 / (1 - rho_p)^3 times that of the first generation (busy-period moments, M/G/1).
    let amplification = (1.0 - prefill_share).powi(-3);
    // TPOT of one request in a mode: D(N_avg) + K I p / O with N_avg averaged over one
    // residence (variance 2/3 of N's, the triangular autocovariance of a constant-residence
    // count) and K ~ Poisson(lambda O tau) prompts; p99 of the mixture over the modes, each
    // normal (both counts being large).
    let mut parts: Vec<(f64, f64, f64)> = modes
        .iter()
        .map(|m| {
            let slope = decode_slope(cost, m.mean, m.variance);
            let mode_tau = m.mean / (rate * output);
            // N relaxes at (1 - g) / S (S = O tau, g the feedback gain): the average of an
            // Ornstein-Uhlenbeck process over a window S, x = S / theta = 1 - g, keeps
            // 2 (x - 1 + exp(-x)) / x^2 of its variance (0.74 at g = 0, 1 as g reaches 1).
            let gain = rate * output * slope / (1.0 - prefill_share);
            let x = (1.0 - gain).max(1e-3);
            let kept = 2.0 * (x - 1.0 + (-x).exp()) / (x * x);
            // The p99 reads the upper tail: the step's rise from the mean to N's p99 (over the
            // averaged spread), with the prompts a longer life lets in, 1 / (1 - rho_p).
            let reach = (Z99 * (kept * m.variance).sqrt()).max(1.0);
            let upward =
                (cost.decode(m.mean + reach) - cost.decode(m.mean)) / reach / (1.0 - prefill_share);
            let variance = upward * upward * kept * m.variance
                + amplification * rate * output * mode_tau * (input * p / output).powi(2);
            ((1.0 - full_share) * m.weight, mode_tau, variance.sqrt())
        })
        .collect();
    // While every slot is taken (the chance the slot wait above gives), a prompt starts only
    // when a sequence finishes: B sequences decode and each brings I p of prefill per O
    // iterations, so an iteration takes D(B) + B I p / O whatever the arrival rate, with the
    // Poisson(B) count of prompts started during a life as its spread. Requests living in that
    // state set the p99 TPOT once it holds more than 1% of them.
    let full_tau = cost.decode(slots) + slots * input * p / output;
    parts.push((full_share, full_tau, slots.sqrt() * input * p / output));
    parts
}

/// The mean-field steady state at `rate`: the sequences decoding at the largest fixed point that
/// holds (else the smallest), or `None` when the replica cannot keep up. It decides the
/// capacity alone (`capacity_rate` bisects on it); the latencies come from the stationary
/// distribution.
fn steady_state(cost: &IterationCost, input: f64, output: f64, rate: f64) -> Option<f64> {
    let prefill_share = rate * input * cost.prefill_token_s;
    if rate.is_nan() || rate <= 0.0 || prefill_share >= 1.0 {
        return None;
    }
    // The fixed point N = lambda O tau(N), tau = D(N) / (1 - rho_p), below the cap. Where the
    // map has two fixed points the search starts from the cap and walks down to the largest;
    // where that one does not exist below the cap, or sits on a stair too steep to hold, the
    // replica still keeps up at the smallest if that one holds.
    let cap = cost.max_batch as f64;
    let fixed_n = [cap, 1.0]
        .into_iter()
        .filter_map(|start| iterate_fixed_point(cost, output, rate, prefill_share, start))
        .map(|(n, _)| n)
        .find(|&n| n < cap && holds(cost, output, rate, prefill_share, n))?;
    // The prefill queue (see `latencies_below`) must keep up too.
    let room = (cost.token_budget as f64 - fixed_n).max(1.0);
    let service = input * (cost.prefill_token_s + cost.decode(fixed_n) / room);
    (rate * service < 1.0).then_some(fixed_n)
}

/// Whether the batch holds at fixed point `fixed_n`: more sequences decoding lengthen the step,
/// which keeps them longer, so a fluctuation of N feeds back with gain g = lambda O D'(N) /
/// (1 - rho_p) (the slope of the fixed-point map), the slope taken over the range N fluctuates
/// in (the step rises in stairs where the GEMMs' row tiles fill, `kernels::Device::gemm_s`).
/// As g reaches 1 the replica saturates.
fn holds(cost: &IterationCost, output: f64, rate: f64, prefill_share: f64, fixed_n: f64) -> bool {
    let mut fixed_variance = fixed_n;
    for _ in 0..8 {
        let slope = decode_slope(cost, fixed_n, fixed_variance);
        let gain = rate * output * slope / (1.0 - prefill_share);
        if gain >= 1.0 {
            return false;
        }
        fixed_variance = fixed_n / (1.0 - gain);
    }
    true
}

/// Latencies at `rate` given the replica's capacity (`None`: without the congestion of windows
/// above capacity).
pub fn latencies_below(
    cost: &IterationCost,
    capacity: Option<f64>,
    input: f64,
    output: f64,
    rate: f64,
) -> Option<Latencies> {
    let p = cost.prefill_token_s;
    let prefill_share = rate * input * p;
    steady_state(cost, input, output, rate)?;
    // The figures come from the stationary distribution of N, mode by mode: near the tile
    // stair a burst can tip the batch into a congested state that holds itself, and the
    // replica spends a share of its time there that the diffusion gives (`stationary_modes`).
    let modes = stationary_modes(cost, input, output, rate);
    let n: f64 = modes.iter().map(|m| m.weight * m.mean).sum();
    let n_variance = modes
        .iter()
        .map(|m| m.weight * (m.variance + m.mean * m.mean))
        .sum::<f64>()
        - n * n;
    // Little: N = lambda O tau, so the mean iteration (and TPOT) in a mode is N / (lambda O).
    let tau = n / (rate * output);
    let decode_mean = cost.decode(n);
    let slots = cost.max_batch as f64;
    let full_batch_hold_s = output * cost.decode(slots) / (1.0 - prefill_share);
    let congested = congested_share(rate, capacity, output * tau);
    let (slot_wait_mean, slot_wait_p99, full_share) = slot_wait_s(
        slots,
        n,
        n_variance,
        slots / full_batch_hold_s - rate,
        congested,
    );
    let parts = tpot_parts(cost, &modes, full_share, input, output, rate);
    let tpot_mean_s = parts.iter().map(|(w, m, _)| w * m).sum::<f64>();
    let tpot_p99_s = mixture_p99(&parts);
    // TTFT: the prefill queue, a batch-service queue in each mode of the batch (`prefill`);
    // it keeps up while the budget left beside the decoding sequences outpaces the prompts.
    let room = |n: f64| (cost.token_budget as f64 - n).max(1.0);
    if rate * input * (p + decode_mean / room(n)) >= 1.0 {
        return None;
    }
    let mut prefill_parts = Vec::with_capacity(modes.len());
    for m in &modes {
        let queue = PrefillQueue {
            rate,
            decode_s: cost.decode(m.mean.max(1.0)),
            prompt_s: input * p,
            per_iteration: room(m.mean) / input,
        };
        prefill_parts.push((m.weight, queue.ttft()?));
    }
    let ttft_mean_s = prefill_parts
        .iter()
        .map(|(w, d)| w * d.mean_s())
        .sum::<f64>();
    let ttft_p99_s = prefill::ttft_p99(&prefill_parts);
    Some(Latencies {
        rate_per_s: rate,
        mean_batch: n,
        ttft_mean_s: slot_wait_mean + ttft_mean_s,
        ttft_p99_s: slot_wait_p99 + ttft_p99_s,
        tpot_mean_s,
        tpot_p99_s,
        prefill_share,
    })
}

/// The replica's capacity: the highest rate at which a steady state exists (bisection).
pub fn capacity_rate(cost: &IterationCost, input: f64, output: f64) -> f64 {
    let ceiling = (1.0 / (input * cost.prefill_token_s))
        .min(cost.max_batch as f64 / (output * cost.decode(1.0)));
    let exists = |rate: f64| steady_state(cost, input, output, rate).is_some();
    let (mut low, mut high) = (ceiling * 1e-6, ceiling);
    if !exists(low) {
        return 0.0;
    }
    for _ in 0..80 {
        let middle = (low * high).sqrt();
        if exists(middle) {
            low = middle;
        } else {
            high = middle;
        }
        if high / low < 1.0 + 1e-5 {
            break;
        }
    }
    low
}

/// Whether Poisson bursts at `rate` against a replica of `capacity` whose batch has
/// `free_slots` unused drain within `slack_s` (see the module documentation).
pub fn absorbs_bursts(rate: f64, capacity: f64, free_slots: f64, slack_s: f64) -> bool {
    if rate <= 0.0 || slack_s <= 0.0 || capacity <= rate {
        return false;
    }
    let r = capacity / rate;
    let excess_requests = Z99 * Z99 / (4.0 * (r - 1.0)) - free_slots.max(0.0);
    excess_requests <= (capacity - rate) * slack_s
}

/// Latencies at `rate` if they meet both p99 limits and bursts drain within the TTFT budget.
pub fn meets(
    cost: &IterationCost,
    capacity: f64,
    input: f64,
    output: f64,
    rate: f64,
    ttft_p99_s: f64,
    tpot_p99_s: f64,
) -> Option<Latencies> {
    latencies_below(cost, Some(capacity), input, output, rate).filter(|l| {
        l.ttft_p99_s <= ttft_p99_s
            && l.tpot_p99_s <= tpot_p99_s
            && absorbs_bursts(
                rate,
                capacity,
                cost.max_batch as f64 - l.mean_batch,
                ttft_p99_s - l.ttft_p99_s,
            )
    })
}

/// The highest rate whose p99 TTFT and TPOT stay within the limits (bisection; latencies grow
/// with the rate), with its latencies; `None` when even a trickle misses them.
pub fn max_rate(
    cost: &IterationCost,
    input: f64,
    output: f64,
    ttft_p99_s: f64,
    tpot_p99_s: f64,
) -> Option<Latencies> {
    let capacity = capacity_rate(cost, input, output);
    let check = |rate: f64| meets(cost, capacity, input, output, rate, ttft_p99_s, tpot_p99_s);
    let (mut low, mut high) = (capacity * 1e-6, capacity);
    check(low)?;
    for _ in 0..60 {
        let middle = (low * high).sqrt();
        if check(middle).is_some() {
            low = middle;
        } else {
            high = middle;
        }
        if high / low < 1.0 + 1e-4 {
            break;
        }
    }
    check(low)
}
