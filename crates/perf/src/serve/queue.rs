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
//!   (Little 1961), solved as a fixed point;
//! - a request's TPOT is the mean iteration over its `O` iterations. Two things vary it: the
//!   sequences decoding beside it (Poisson with mean N in an M/G/infinity system; its average over
//!   a window of one residence time has variance 2N/3, from the triangular autocovariance of a
//!   constant-residence M/D/infinity count) and the prompts prefilled during its life (Poisson,
//!   lambda O tau of them, each adding I p). Linearising D around N gives the variance; p99 is
//!   mean + 2.326 sd (normal approximation, both counts being large);
//! - a prompt's TTFT is its wait in the prefill queue plus the iterations it rides in (its first
//!   token leaves when the iteration holding its last chunk ends). Prefill is an M/D/1
//!   queue whose service is `s = I (p + D(N) / (B - N))` (each of its tokens takes p and a
//!   share of the decode step of the iterations it rides in), utilisation `rho = lambda s`; the
//!   mean wait is Pollaczek-Khinchine's `rho s / (2 (1 - rho))` and the waiting time beyond zero
//!   is taken exponential with that conditional mean (Kingman's heavy-traffic approximation), so
//!   `P(W > t) = rho exp(-t rho / Wq)`.
//!
//! `crate::serve::sim` runs the same batching event by event; the tests compare the two.

use serde::Serialize;

/// z of the 99th percentile of the standard normal distribution.
const Z99: f64 = 2.326;

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

/// Latencies at `rate` requests per second of `input_len` + `output_len` tokens, or `None` when
/// the replica cannot keep up (prefill saturates or the mean batch exceeds the cap).
pub fn latencies(cost: &IterationCost, input: f64, output: f64, rate: f64) -> Option<Latencies> {
    let p = cost.prefill_token_s;
    let prefill_share = rate * input * p;
    if rate.is_nan() || rate <= 0.0 || prefill_share >= 1.0 {
        return None;
    }
    let mut n = 1.0f64;
    let mut tau = cost.decode(1.0) / (1.0 - prefill_share);
    for _ in 0..100 {
        tau = cost.decode(n) / (1.0 - prefill_share);
        let next = (rate * output * tau).max(1e-9);
        let converged = (next - n).abs() <= 1e-6 * n.max(1.0);
        n = next;
        // The decoding count is Poisson around its mean; beyond the cap prompts stop being
        // admitted and queue without bound, so its 99th percentile must fit.
        if n + Z99 * n.sqrt() > cost.max_batch as f64 {
            return None;
        }
        if converged {
            break;
        }
    }
    // TPOT of one request: D(N_avg) + K I p / O with N_avg ~ (N, 2N/3) and K ~ Poisson(lambda O tau).
    let slope = (cost.decode(n + 1.0) - cost.decode((n - 1.0).max(1.0))) / 2.0;
    let decode_mean = cost.decode(n);
    let arrivals = rate * output * tau;
    // Prompt work during a life lengthens it and lets more prompts in: a Poisson branching
    // process with mean offspring rho_p = lambda I p, whose total work has variance
    // 1 / (1 - rho_p)^3 times that of the first generation (busy-period moments, M/G/1).
    let amplification = (1.0 - prefill_share).powi(-3);
    let variance =
        slope * slope * 2.0 * n / 3.0 + amplification * arrivals * (input * p / output).powi(2);
    let tpot_mean_s = decode_mean + arrivals * input * p / output;
    let tpot_p99_s = tpot_mean_s + Z99 * variance.sqrt();
    // TTFT: M/D/1 prefill queue.
    let room = (cost.token_budget as f64 - n).max(1.0);
    let service = input * (p + decode_mean / room);
    let rho = rate * service;
    if rho >= 1.0 {
        return None;
    }
    let wait_mean = rho * service / (2.0 * (1.0 - rho));
    let wait_p99 = if rho > 0.01 {
        wait_mean / rho * (rho / 0.01).ln()
    } else {
        0.0
    };
    // The first token leaves at the end of the last iteration that holds a chunk of the prompt:
    // the prompt joins at an iteration boundary (half an iteration in progress, on average) and
    // rides in ceil(I / (B - N)) iterations, each a decode step plus its chunk.
    let iterations = (input / room).ceil().max(1.0);
    let aligned = tau / 2.0 + iterations * decode_mean + input * p;
    Some(Latencies {
        rate_per_s: rate,
        mean_batch: n,
        ttft_mean_s: wait_mean + aligned,
        ttft_p99_s: wait_p99 + aligned,
        tpot_mean_s,
        tpot_p99_s,
        prefill_share,
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
    let meets = |rate: f64| {
        latencies(cost, input, output, rate)
            .filter(|l| l.ttft_p99_s <= ttft_p99_s && l.tpot_p99_s <= tpot_p99_s)
    };
    // No rate beyond prefill saturation or the batch cap at the fastest step can be served.
    let ceiling = (1.0 / (input * cost.prefill_token_s))
        .min(cost.max_batch as f64 / (output * cost.decode(1.0)));
    let (mut low, mut high) = (ceiling * 1e-6, ceiling);
    meets(low)?;
    for _ in 0..60 {
        let middle = (low * high).sqrt();
        if meets(middle).is_some() {
            low = middle;
        } else {
            high = middle;
        }
        if high / low < 1.0 + 1e-4 {
            break;
        }
    }
    meets(low)
}
