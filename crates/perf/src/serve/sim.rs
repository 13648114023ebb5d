//! A discrete-event simulation of continuous batching with chunked prefill on one replica,
//! iteration by iteration, the check on the percentile model of `crate::serve::queue`.
//!
//! Requests arrive as a Poisson process (exponential gaps from a seeded xorshift generator).
//! Each iteration: every admitted sequence that has its first token decodes one more; the rest
//! of the token budget goes to waiting prompts, first come first served, chunked, as long as the
//! admitted sequences stay within the batch cap; the iteration lasts
//! [`IterationCost::iteration`]. A prompt's first token comes at the end of the iteration that
//! finishes its prefill (TTFT); its TPOT is (finish - first token) / (output - 1), MLPerf's
//! definition.

use super::queue::IterationCost;
use std::collections::VecDeque;

/// Percentiles measured by a simulation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measured {
    pub completed: usize,
    pub ttft_mean_s: f64,
    pub ttft_p99_s: f64,
    pub tpot_mean_s: f64,
    pub tpot_p99_s: f64,
    pub output_tokens_per_s: f64,
}

struct Prompt {
    arrival_s: f64,
    left: u64,
}

struct Decoding {
    first_token_s: f64,
    left: u64,
}

/// Uniform in (0, 1) from a 64-bit xorshift state (Marsaglia 2003).
fn uniform(state: &mut u64) -> f64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    ((*state >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

fn percentile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * q).round() as usize;
    values.get(index).copied().unwrap_or(f64::NAN)
}

/// The prompt chunks of the next iteration: the token budget left by the decoding sequences,
/// first come first served, one slot of the batch cap per prompt started.
fn schedule(
    cost: &IterationCost,
    decoding: usize,
    waiting: &VecDeque<(usize, Prompt)>,
) -> Vec<(usize, u64)> {
    let mut budget = cost.token_budget.saturating_sub(decoding as u64);
    let mut slots = cost.max_batch.saturating_sub(decoding as u64) as usize;
    let mut chunks = Vec::new();
    for (index, (_, prompt)) in waiting.iter().enumerate() {
        if budget == 0 || slots == 0 {
            break;
        }
        let take = prompt.left.min(budget);
        budget -= take;
        slots -= 1;
        chunks.push((index, take));
    }
    chunks
}

/// Simulates `requests` requests of `input` + `output` tokens at `rate` per second; the first
/// tenth are warm-up and not measured.
pub fn simulate(
    cost: &IterationCost,
    input: u64,
    output: u64,
    rate: f64,
    requests: usize,
    seed: u64,
) -> Measured {
    let mut state = seed.max(1);
    let mut next_arrival = -uniform(&mut state).ln() / rate;
    let mut arrived = 0usize;
    let mut waiting: VecDeque<(usize, Prompt)> = VecDeque::new();
    let mut running: Vec<(usize, Decoding)> = Vec::new();
    let (mut ttft, mut tpot) = (Vec::new(), Vec::new());
    let warmup = requests / 10;
    let mut now = 0.0f64;
    let (mut measured_tokens, mut measure_start) = (0u64, None::<f64>);
    let mut done = 0usize;
    while done < requests {
        while arrived < requests && next_arrival <= now {
            waiting.push_back((
                arrived,
                Prompt {
                    arrival_s: next_arrival,
                    left: input,
                },
            ));
            arrived += 1;
            next_arrival += -uniform(&mut state).ln() / rate;
        }
        if running.is_empty() && waiting.is_empty() {
            now = next_arrival;
            continue;
        }
        let decoding = running.len();
        let chunks = schedule(cost, decoding, &waiting);
        let prompt_tokens: u64 = chunks.iter().map(|c| c.1).sum();
        now += cost.iteration(decoding, prompt_tokens);
        if measure_start.is_some() {
            measured_tokens += decoding as u64;
        }
        for (id, seq) in running.iter_mut() {
            seq.left -= 1;
            if seq.left == 0 {
                done += 1;
                if *id >= warmup && output > 1 {
                    tpot.push((now - seq.first_token_s) / (output - 1) as f64);
                }
            }
        }
        running.retain(|(_, seq)| seq.left > 0);
        let mut finished = Vec::new();
        for (index, take) in chunks {
            let prompt = &mut waiting[index].1;
            prompt.left -= take;
            if prompt.left == 0 {
                finished.push(index);
            }
        }
        for index in finished.into_iter().rev() {
            let (id, prompt) = waiting.remove(index).expect("index from this queue");
            if id >= warmup {
                ttft.push(now - prompt.arrival_s);
                measure_start.get_or_insert(now);
            }
            measured_tokens += u64::from(measure_start.is_some());
            if output <= 1 {
                done += 1;
            } else {
                running.push((
                    id,
                    Decoding {
                        first_token_s: now,
                        left: output - 1,
                    },
                ));
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let elapsed = now - measure_start.unwrap_or(0.0);
    Measured {
        completed: tpot.len(),
        ttft_mean_s: mean(&ttft),
        ttft_p99_s: percentile(&mut ttft, 0.99),
        tpot_mean_s: mean(&tpot),
        tpot_p99_s: percentile(&mut tpot, 0.99),
        output_tokens_per_s: measured_tokens as f64 / elapsed.max(1e-12),
    }
}
