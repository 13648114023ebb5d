//! Days since the Unix epoch as calendar dates, for times shown to people (CLI and console).

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar: Howard
/// Hinnant's `civil_from_days` (https://howardhinnant.github.io/date_algorithms.html).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) to days since 1970-01-01: Hinnant's `days_from_civil`, the inverse of
/// [`civil_from_days`].
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds as `2026-12-24 00:00 UTC`.
pub fn utc_text(epoch_s: i64) -> String {
    let (year, month, day) = civil_from_days(epoch_s.div_euclid(86_400));
    let second = epoch_s.rem_euclid(86_400);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        second / 3600,
        second % 3600 / 60
    )
}

/// A span of seconds as `45s`, `12m`, `7h31m` or `1d07h32m`, to the nearest minute from a
/// minute up (plans print spans from now, which read the same on every run).
pub fn span_text(seconds: i64) -> String {
    let sign = if seconds < 0 { "-" } else { "" };
    let s = seconds.unsigned_abs();
    if s < 60 {
        return format!("{sign}{s}s");
    }
    let minutes = (s + 30) / 60;
    let (d, h, m) = (minutes / 1440, minutes % 1440 / 60, minutes % 60);
    match (d, h) {
        (0, 0) => format!("{sign}{m}m"),
        (0, _) => format!("{sign}{h}h{m:02}m"),
        _ => format!("{sign}{d}d{h:02}h{m:02}m"),
    }
}

/// Text that is not a UTC time [`parse_utc`] reads; the message shows the forms it takes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a UTC time; write it like 2026-12-24T00:00Z or 2026-12-24")]
pub struct NotUtcTime(pub String);

/// A UTC time as `2026-12-24`, `2026-12-24T06:00Z` or `2026-12-24T06:00:30Z` (a space may
/// stand for the `T`; the `Z` may be left out) to Unix seconds.
pub fn parse_utc(text: &str) -> Result<i64, NotUtcTime> {
    let bad = || NotUtcTime(text.to_string());
    let trimmed = text.trim().trim_end_matches(['Z', 'z']);
    let (date, time) = match trimmed.split_once(['T', 't', ' ']) {
        Some((date, time)) => (date, time),
        None => (trimmed, "00:00"),
    };
    let numbers = |part: &str, sep: char| -> Option<Vec<i64>> {
        part.split(sep).map(|n| n.parse::<i64>().ok()).collect()
    };
    let date = numbers(date, '-')
        .filter(|d| d.len() == 3)
        .ok_or_else(bad)?;
    let time = numbers(time, ':')
        .filter(|t| (2..=3).contains(&t.len()))
        .ok_or_else(bad)?;
    let (month, day) = (date[1], date[2]);
    let (hour, minute, second) = (time[0], time[1], time.get(2).copied().unwrap_or(0));
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || !(0..24).contains(&hour)
        || !(0..60).contains(&minute)
        || !(0..60).contains(&second)
    {
        return Err(bad());
    }
    let days = days_from_civil(date[0], month, day);
    if civil_from_days(days) != (date[0], month, day) {
        return Err(bad());
    }
    Ok(days * 86_400 + hour * 3600 + minute * 60 + second)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_dates() {
        // 2000-02-29 is day 11,016; 1969-12-31 is day -1 (dates from any calendar).
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(super::civil_from_days(-1), (1969, 12, 31));
    }

    #[test]
    fn utc_times_parse_to_the_epoch_seconds_date_prints() {
        // `date -u -d 2026-12-24T00:00Z +%s` = 1798070400; `date -u -d @951782400` = 2000-02-29.
        assert_eq!(super::parse_utc("2026-12-24T00:00Z"), Ok(1_798_070_400));
        assert_eq!(super::parse_utc("2000-02-29"), Ok(951_782_400));
        assert_eq!(super::parse_utc("2000-02-29 00:00:30"), Ok(951_782_430));
        assert_eq!(super::utc_text(1_798_070_400), "2026-12-24 00:00 UTC");
        assert_eq!(super::span_text(59), "59s");
        assert_eq!(super::span_text(89), "1m");
        assert_eq!(super::span_text(90), "2m");
        assert_eq!(super::span_text(27_124), "7h32m");
        assert_eq!(super::span_text(86_399), "1d00h00m");
        assert!(super::parse_utc("2026-02-30").is_err());
        assert!(
            super::parse_utc("tomorrow")
                .unwrap_err()
                .to_string()
                .contains("2026-12-24T00:00Z")
        );
    }
}
