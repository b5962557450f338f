//! ISO 8601 timestamps as Discord writes them (`2017-03-13T19:19:14.040000+00:00`), from the
//! system clock, without a date-time library.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Discord's format.
pub fn now_iso() -> String {
    let micros = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0);
    iso_from_unix_micros(micros)
}

/// A Unix time in microseconds, in Discord's format (UTC, microsecond precision).
pub fn iso_from_unix_micros(micros: u64) -> String {
    let secs = micros / 1_000_000;
    let frac = micros % 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{frac:06}+00:00",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_docs_example() {
        // 2017-03-13T19:19:14.040000+00:00 from the slash command example interaction.
        assert_eq!(
            iso_from_unix_micros(1_489_432_754_040_000),
            "2017-03-13T19:19:14.040000+00:00"
        );
        assert_eq!(iso_from_unix_micros(0), "1970-01-01T00:00:00.000000+00:00");
        assert_eq!(
            iso_from_unix_micros(951_782_400_000_000),
            "2000-02-29T00:00:00.000000+00:00"
        );
    }
}
