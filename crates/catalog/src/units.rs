//! The one place durations, counts and sizes are parsed: every command-line flag and the
//! simulator's `--failures` and `--checkpoint` specs use it.
//!
//! Durations need a unit (`500ms`, `2s`, `15m`, `4h`, `30d`, any case): a bare `500` is an error
//! naming the units, because `--ttft-slo 500` read as seconds was silently wrong. Counts take
//! decimal suffixes (`2T` tokens, `4M`, `300B`); sequence lengths take binary ones (`8k` = 8192,
//! `128k` = 131072), as model context lengths are quoted.

/// A value on the command line or in a spec that is not what its unit asks for; the message
/// says what would be right.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct UnitError(pub String);

/// Seconds per unit, longest suffix first so `ms` is not read as `m` + `s`.
const DURATION_UNITS: [(&str, f64); 10] = [
    ("us", 1e-6),
    ("µs", 1e-6),
    ("ms", 1e-3),
    ("min", 60.0),
    ("s", 1.0),
    ("m", 60.0),
    ("h", 3600.0),
    ("d", 86_400.0),
    ("w", 604_800.0),
    ("y", 31_536_000.0),
];

/// Parses a duration with its unit into seconds: `500ms`, `1.5s`, `15m`, `4h`, `30d` (any case).
pub fn parse_duration_s(text: &str) -> Result<f64, UnitError> {
    let trimmed = text.trim();
    let lower = trimmed.to_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+' || c == 'e'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    if number.is_empty() {
        return Err(UnitError(format!(
            "`{text}` is not a duration: write a number and a unit, e.g. 500ms, 2s, 15m, 4h or 30d"
        )));
    }
    if unit.is_empty() {
        return Err(UnitError(match number.parse::<f64>() {
            Ok(_) => format!(
                "`{text}` has no unit; add one, e.g. {trimmed}ms or {trimmed}s (units: ms, s, m, h, d)"
            ),
            Err(_) => format!("`{text}` is not a duration; write e.g. 500ms, 2s, 15m, 4h or 30d"),
        }));
    }
    let Some(&(_, unit_s)) = DURATION_UNITS.iter().find(|(name, _)| *name == unit.trim()) else {
        return Err(UnitError(format!(
            "`{text}`: unknown unit `{}`; use ms, s, m, h or d (e.g. 500ms, 30d)",
            unit.trim()
        )));
    };
    match number.parse::<f64>() {
        Ok(value) if value < 0.0 => Err(UnitError(format!(
            "`{text}` is negative; durations are at least 0"
        ))),
        Ok(value) if value.is_finite() && value * unit_s < 1e12 => Ok(value * unit_s),
        _ => Err(UnitError(format!(
            "`{text}` is not a duration; write e.g. 500ms, 2s, 15m, 4h or 30d"
        ))),
    }
}

/// A duration that must be more than zero.
pub fn parse_positive_duration_s(text: &str) -> Result<f64, UnitError> {
    match parse_duration_s(text)? {
        0.0 => Err(UnitError(format!(
            "`{text}` is zero; give a positive duration"
        ))),
        value => Ok(value),
    }
}

/// A duration in whole seconds, at least one.
pub fn parse_duration_whole_s(text: &str) -> Result<i64, UnitError> {
    let seconds = parse_positive_duration_s(text)?.round();
    if seconds < 1.0 {
        return Err(UnitError(format!(
            "`{text}` is under a second; give at least 1s"
        )));
    }
    Ok(seconds as i64)
}

/// Parses a positive count with an optional decimal suffix: `2T`, `300B`/`300G`, `4M`, `64k`,
/// `1.5e12`, `1_000` (any case).
pub fn parse_count(text: &str) -> Result<f64, UnitError> {
    parse_scaled(text, 1e3).map_err(|()| {
        UnitError(format!(
            "`{text}` is not a positive count; write e.g. 2T, 300B, 4M, 64k or 1.5e12"
        ))
    })
}

/// A whole positive count (`4M`, `1024`, `2k`).
pub fn parse_whole_count(text: &str) -> Result<u64, UnitError> {
    let value = parse_count(text)?;
    whole(text, value)
}

/// A sequence length: binary suffixes as context lengths are quoted (`8k` = 8192, `128K` =
/// 131072, `1M` = 1048576), or a plain number of tokens.
pub fn parse_tokens_binary(text: &str) -> Result<u64, UnitError> {
    let value = parse_scaled(text, 1024.0).map_err(|()| {
        UnitError(format!(
            "`{text}` is not a positive length; write e.g. 4096, 8k (8192) or 128k"
        ))
    })?;
    whole(text, value)
}

fn whole(text: &str, value: f64) -> Result<u64, UnitError> {
    if value.fract() != 0.0 || value > 9e15 {
        return Err(UnitError(format!("`{text}` must be a whole number")));
    }
    Ok(value as u64)
}

fn parse_scaled(text: &str, base: f64) -> Result<f64, ()> {
    let cleaned: String = text.trim().chars().filter(|&c| c != '_').collect();
    let (number, power) = match cleaned.chars().last() {
        Some('k' | 'K') => (&cleaned[..cleaned.len() - 1], 1),
        Some('M' | 'm') => (&cleaned[..cleaned.len() - 1], 2),
        Some('B' | 'b' | 'G' | 'g') => (&cleaned[..cleaned.len() - 1], 3),
        Some('T' | 't') => (&cleaned[..cleaned.len() - 1], 4),
        _ => (cleaned.as_str(), 0),
    };
    match number.parse::<f64>() {
        Ok(value) if value > 0.0 && value.is_finite() => Ok(value * base.powi(power)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bare_number_is_not_a_duration_and_the_error_names_the_unit() {
        let error = parse_duration_s("500").unwrap_err();
        assert!(
            error.0.contains("500ms") && error.0.contains("500s"),
            "{error}"
        );
        assert_eq!(parse_duration_s("500ms"), Ok(0.5));
        assert_eq!(parse_duration_s("500MS"), Ok(0.5));
        assert_eq!(parse_duration_s("2s"), Ok(2.0));
        assert_eq!(parse_duration_s("15m"), Ok(900.0));
        assert_eq!(parse_duration_s("30d"), Ok(2_592_000.0));
        assert!(parse_duration_s("-1s").unwrap_err().0.contains("negative"));
        assert!(
            parse_duration_s("5 parsecs")
                .unwrap_err()
                .0
                .contains("unknown unit")
        );
        assert!(parse_duration_s("nan").is_err());
        assert!(
            parse_duration_s("fast")
                .unwrap_err()
                .0
                .contains("not a duration")
        );
        assert!(parse_duration_s("1e300s").is_err());
        assert_eq!(parse_duration_whole_s("30d"), Ok(2_592_000));
        assert!(parse_duration_whole_s("0s").is_err());
    }

    #[test]
    fn counts_take_decimal_suffixes_in_any_case() {
        assert_eq!(parse_count("2t"), Ok(2e12));
        assert_eq!(parse_count("2T"), Ok(2e12));
        assert_eq!(parse_count("300B"), Ok(3e11));
        assert_eq!(parse_whole_count("4M"), Ok(4_000_000));
        assert_eq!(parse_whole_count("1_024"), Ok(1024));
        assert!(parse_count("-1T").is_err());
        assert!(parse_whole_count("1.5").is_err());
    }

    #[test]
    fn sequence_lengths_take_binary_suffixes() {
        assert_eq!(parse_tokens_binary("8k"), Ok(8192));
        assert_eq!(parse_tokens_binary("128K"), Ok(131_072));
        assert_eq!(parse_tokens_binary("4096"), Ok(4096));
        assert!(parse_tokens_binary("0").is_err());
    }
}
