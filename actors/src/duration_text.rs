//! Durations as people read them in logs and messages: rounded to three significant digits
//! below a minute (`1.04s`, `250ms`, `12.3ms`), to whole seconds above (`2m 5s`), never
//! `1s 35ms 434us 113ns`.

use std::fmt;
use std::time::Duration;

/// A duration that displays rounded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rounded(pub Duration);

/// `duration`, displayed rounded.
pub fn rounded(duration: Duration) -> Rounded {
    Rounded(duration)
}

/// `value` with three significant digits (`value` between 1 and 1000), trailing zeros dropped.
fn three_digits(value: f64) -> String {
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.decimals$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        text
    }
}

impl fmt::Display for Rounded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        let nanos = d.as_nanos();
        if nanos == 0 {
            return f.write_str("0s");
        }
        // Below a minute: the unit that puts the value between 1 and 1000, three digits. A
        // value that rounds up to 1000 of a unit is written in the next one.
        let units: [(f64, &str); 4] = [(1e-9, "ns"), (1e-6, "µs"), (1e-3, "ms"), (1.0, "s")];
        let secs = d.as_secs_f64();
        if secs < 59.95 {
            for (i, (scale, name)) in units.iter().enumerate() {
                let value = secs / scale;
                let last = i == units.len() - 1;
                if last || value < 999.5 {
                    return write!(f, "{}{name}", three_digits(value));
                }
            }
        }
        // A minute and more: whole seconds.
        let whole = d.as_secs() + u64::from(d.subsec_millis() >= 500);
        let (h, m, s) = (whole / 3600, whole / 60 % 60, whole % 60);
        let mut parts = Vec::new();
        if h > 0 {
            parts.push(format!("{h}h"));
        }
        if m > 0 {
            parts.push(format!("{m}m"));
        }
        if s > 0 || parts.is_empty() {
            parts.push(format!("{s}s"));
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(d: Duration) -> String {
        rounded(d).to_string()
    }

    #[test]
    fn three_significant_digits_below_a_minute() {
        assert_eq!(text(Duration::new(1, 35_434_113)), "1.04s");
        assert_eq!(text(Duration::from_millis(250)), "250ms");
        assert_eq!(text(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(text(Duration::from_millis(1500)), "1.5s");
        assert_eq!(text(Duration::from_secs(30)), "30s");
        assert_eq!(text(Duration::from_nanos(850)), "850ns");
        assert_eq!(text(Duration::from_micros(999_700)), "1s");
        assert_eq!(text(Duration::ZERO), "0s");
    }

    #[test]
    fn whole_seconds_from_a_minute() {
        assert_eq!(text(Duration::from_millis(59_960)), "1m");
        assert_eq!(text(Duration::from_millis(125_400)), "2m 5s");
        assert_eq!(text(Duration::from_secs(5400)), "1h 30m");
        assert_eq!(text(Duration::from_secs(3601)), "1h 1s");
    }
}
