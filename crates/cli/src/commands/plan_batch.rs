//! The global batch of `suanli plan train`: read in sequences or tokens, defaulted after
//! published practice, and moved to the nearest size the layout divides, saying so.

use suanli_perf::goal;
use suanli_perf::layout::Layout;
use suanli_perf::search::{self, Constraints};
use suanli_perf::train::TrainSetup;

/// A global batch as the user wrote it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BatchSpec {
    Sequences(u64),
    Tokens(u64),
}

/// Parses `--global-batch`: `16M`, `16M tokens`, `4Mtok` are tokens (binary suffixes, as batch
/// sizes are quoted: Llama 3's 16M = 2048 x 8192); `2048`, `2k`, `2048 seqs` are sequences.
pub fn parse_global_batch(text: &str) -> anyhow::Result<BatchSpec> {
    let lower = text.trim().to_ascii_lowercase();
    let strip = |units: &[&str]| {
        units
            .iter()
            .find_map(|u| lower.strip_suffix(u).map(|rest| rest.trim().to_string()))
    };
    let (number, tokens) = if let Some(rest) = strip(&["tokens", "token", "tok"]) {
        (rest, Some(true))
    } else if let Some(rest) = strip(&["sequences", "sequence", "seqs", "seq"]) {
        (rest, Some(false))
    } else {
        (lower.clone(), None)
    };
    // Without a unit word, a million-or-more suffix can only mean tokens.
    let tokens = tokens.unwrap_or_else(|| number.ends_with(['m', 'g', 'b', 't']));
    let bad = || {
        anyhow::anyhow!(
            "--global-batch `{text}`: write tokens as 16M or 16M tokens, or sequences as 2048 or \
             2048 seqs"
        )
    };
    if tokens {
        let value = crate::units::parse_tokens_binary(&number).map_err(|_| bad())?;
        Ok(BatchSpec::Tokens(value))
    } else {
        let value = crate::units::parse_whole_count(&number).map_err(|_| bad())?;
        Ok(BatchSpec::Sequences(value))
    }
}

/// Sequences per step for the spec (or the default), and a line saying what was chosen when
/// the user did not give sequences outright.
pub fn resolve(
    spec: Option<BatchSpec>,
    setup: &TrainSetup,
) -> anyhow::Result<(u64, Option<String>)> {
    let seq_len = setup.seq_len.max(1);
    match spec {
        Some(BatchSpec::Sequences(0)) | Some(BatchSpec::Tokens(0)) => {
            anyhow::bail!("--global-batch must be at least one sequence")
        }
        Some(BatchSpec::Sequences(n)) => Ok((n, None)),
        Some(BatchSpec::Tokens(tokens)) => {
            let sequences = (tokens as f64 / seq_len as f64).round().max(1.0) as u64;
            let note = (sequences * seq_len != tokens).then(|| {
                format!(
                    "global batch {tokens} tokens is {:.2} sequences of {seq_len}; using {sequences} ({} tokens)",
                    tokens as f64 / seq_len as f64,
                    sequences * seq_len
                )
            });
            Ok((sequences, note))
        }
        None => {
            let d = goal::default_global_batch(&setup.model, setup.count, seq_len);
            Ok((
                d.sequences,
                Some(format!(
                    "global batch not given: using {} sequences ({:.1}M tokens), after {}; set --global-batch",
                    d.sequences,
                    d.tokens as f64 / 1e6,
                    d.reason
                )),
            ))
        }
    }
}

/// Moves `setup.global_batch` to the nearest size `layout` divides (dp x micro-batch, and a
/// multiple of pp x that when interleaved, as Megatron-LM requires); the line says so.
pub fn fit_to_layout(setup: &mut TrainSetup, layout: &Layout) -> Option<String> {
    let mut step = layout.dp as u64 * layout.micro_batch as u64;
    if layout.vpp > 1 {
        step *= layout.pp as u64;
    }
    let step = step.max(1);
    let wanted = setup.global_batch;
    if wanted.is_multiple_of(step) {
        return None;
    }
    let below = wanted / step * step;
    let chosen = if below == 0 || wanted - below > below + step - wanted {
        below + step
    } else {
        below
    };
    setup.global_batch = chosen;
    Some(format!(
        "global batch {wanted} is not a multiple of {step} (dp x mb{}); using the nearest, {chosen}",
        if layout.vpp > 1 { " x pp" } else { "" }
    ))
}

/// Moves `setup.global_batch` to the nearest size some layout divides when none divides it.
pub fn fit_to_search(setup: &mut TrainSetup, constraints: &Constraints) -> Option<String> {
    if !search::candidates(setup, constraints).is_empty() {
        return None;
    }
    let wanted = setup.global_batch;
    let chosen = search::nearest_valid_global_batch(setup, constraints)?;
    setup.global_batch = chosen;
    Some(format!(
        "no layout of {} accelerators divides a global batch of {wanted}; using the nearest that one does, {chosen}",
        setup.count
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_decide_tokens_or_sequences() {
        assert_eq!(
            parse_global_batch("16M").ok(),
            Some(BatchSpec::Tokens(16 << 20))
        );
        assert_eq!(
            parse_global_batch("16M tokens").ok(),
            Some(BatchSpec::Tokens(16 << 20))
        );
        assert_eq!(
            parse_global_batch("4096 tok").ok(),
            Some(BatchSpec::Tokens(4096))
        );
        assert_eq!(
            parse_global_batch("2048").ok(),
            Some(BatchSpec::Sequences(2048))
        );
        assert_eq!(
            parse_global_batch("2k").ok(),
            Some(BatchSpec::Sequences(2000))
        );
        assert_eq!(
            parse_global_batch("1536 seqs").ok(),
            Some(BatchSpec::Sequences(1536))
        );
        assert!(
            parse_global_batch("lots")
                .unwrap_err()
                .to_string()
                .contains("16M tokens")
        );
        assert!(parse_global_batch("-5").is_err());
    }
}
