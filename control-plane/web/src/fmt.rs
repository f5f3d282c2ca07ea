//! How times and durations are shown: UTC, to the minute, so every replica and every viewer
//! sees the same text.

use time::OffsetDateTime;
use time::macros::format_description;

/// `2026-11-28 23:52 UTC`.
pub(crate) fn datetime(unix_secs: u64) -> String {
    let format = format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| at.format(format).ok())
        .unwrap_or_else(|| unix_secs.to_string())
}

/// `2026-11-28T23:52`: the value of a `datetime-local` input (UTC), the form `parse_when` reads.
pub(crate) fn datetime_local(unix_secs: u64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| at.format(format).ok())
        .unwrap_or_default()
}

/// `2026-11-28` and `23:52:07` separately (for table cells).
pub(crate) fn date_and_time(unix_secs: u64) -> (String, String) {
    let date = format_description!("[year]-[month]-[day]");
    let clock = format_description!("[hour]:[minute]:[second]");
    match i64::try_from(unix_secs)
        .ok()
        .and_then(|secs| OffsetDateTime::from_unix_timestamp(secs).ok())
    {
        Some(at) => (
            at.format(date).unwrap_or_default(),
            at.format(clock).unwrap_or_default(),
        ),
        None => (unix_secs.to_string(), String::new()),
    }
}

/// A duration in words: `45 min`, `11 h 20 min`, `3 days`.
pub(crate) fn duration(secs: u64) -> String {
    let minutes = secs / 60;
    let hours = minutes / 60;
    let days = hours / 24;
    if days >= 2 {
        format!("{days} days")
    } else if hours >= 1 {
        format!("{hours} h {} min", minutes % 60)
    } else {
        format!("{} min", minutes.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_in_utc() {
        assert_eq!(datetime(0), "1970-01-01 00:00 UTC");
        assert_eq!(
            date_and_time(86_399),
            ("1970-01-01".to_owned(), "23:59:59".to_owned())
        );
        assert_eq!(duration(30), "1 min");
        assert_eq!(duration(3_600 * 11 + 1_200), "11 h 20 min");
        assert_eq!(duration(86_400 * 3), "3 days");
    }
}
