//! Durations as people write them: `1`, `1.5`, `500ms`, `2s`, `2m`, `1h`.
//!
//! A bare number means seconds because that is what `starttime` and `stoptime` meant in
//! supervisord, and what most configurations already say. The number is read as an exact
//! decimal (never through `f64`), so `0.1s` is exactly 100 ms, and forms a float parser would
//! let through (`inf`, `NaN`, `1e3`, `-0`) are refused with a message that says what is wanted.

use std::time::Duration;

const NANOS_PER_SECOND: u128 = 1_000_000_000;

/// Units, longest first so that `ms` is not read as `m` followed by junk.
const UNITS: [(&str, u128); 4] = [
    ("ms", 1_000_000),
    ("s", NANOS_PER_SECOND),
    ("m", 60 * NANOS_PER_SECOND),
    ("h", 3600 * NANOS_PER_SECOND),
];

/// Parses a duration: a non-negative decimal number, optionally followed (with or without
/// spaces) by a unit `ms`, `s`, `m` or `h`; without a unit it is seconds.
///
/// The error is a complete sentence naming the text, ready to be shown to the user.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let hint = "expected a number of seconds such as 1 or 1.5, or a number with a unit ms, s, m or h such as 500ms";
    if trimmed.is_empty() {
        return Err(format!("invalid duration {text:?}: {hint}"));
    }
    if trimmed.starts_with('-') {
        return Err(format!("invalid duration {text:?}: must not be negative"));
    }
    let number_end = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, rest) = trimmed.split_at(number_end);
    let unit = rest.trim_start();
    let unit_nanos = if unit.is_empty() {
        NANOS_PER_SECOND
    } else {
        match UNITS.iter().find(|(name, _)| *name == unit) {
            Some(&(_, nanos)) => nanos,
            None if number.is_empty() => return Err(format!("invalid duration {text:?}: {hint}")),
            None => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {unit:?} (expected ms, s, m or h)"
                ))
            }
        }
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
        return Err(format!("invalid duration {text:?}: {hint}"));
    }
    let too_large = || format!("invalid duration {text:?}: too large");
    let mut nanos: u128 = 0;
    for digit in whole.bytes() {
        nanos = nanos
            .checked_mul(10)
            .and_then(|n| n.checked_add(u128::from(digit - b'0')))
            .ok_or_else(too_large)?;
    }
    nanos = nanos.checked_mul(unit_nanos).ok_or_else(too_large)?;
    // Digits past the 18th are below a nanosecond for every unit: ignore them.
    let fraction = &fraction[..fraction.len().min(18)];
    let mut fraction_value: u128 = 0;
    for digit in fraction.bytes() {
        fraction_value = fraction_value * 10 + u128::from(digit - b'0');
    }
    let scale = 10u128.pow(u32::try_from(fraction.len()).unwrap_or(0));
    nanos = nanos
        .checked_add(fraction_value * unit_nanos / scale)
        .ok_or_else(too_large)?;
    let seconds = u64::try_from(nanos / NANOS_PER_SECOND).map_err(|_| too_large())?;
    let subsec = u32::try_from(nanos % NANOS_PER_SECOND).map_err(|_| too_large())?;
    Ok(Duration::new(seconds, subsec))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(text: &str) -> Duration {
        match parse_duration(text) {
            Ok(d) => d,
            Err(e) => panic!("{text:?}: {e}"),
        }
    }

    #[test]
    fn bare_numbers_are_seconds() {
        assert_eq!(ok("1"), Duration::from_secs(1));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("0.1"), Duration::from_millis(100));
        assert_eq!(ok(".5"), Duration::from_millis(500));
        assert_eq!(ok("2."), Duration::from_secs(2));
        assert_eq!(ok(" 10 "), Duration::from_secs(10));
    }

    #[test]
    fn units_ms_s_m_h_scale_the_number() {
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("2s"), Duration::from_secs(2));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("0.5h"), Duration::from_secs(1800));
        assert_eq!(ok("1.5ms"), Duration::from_micros(1500));
        assert_eq!(ok("0.0000000001s"), Duration::ZERO);
    }

    #[test]
    fn whitespace_between_number_and_unit_is_allowed() {
        assert_eq!(ok("500 ms"), Duration::from_millis(500));
        assert_eq!(ok("2 s"), Duration::from_secs(2));
    }

    #[test]
    fn negative_durations_are_rejected() {
        assert_eq!(
            parse_duration("-1"),
            Err(r#"invalid duration "-1": must not be negative"#.to_string())
        );
        assert!(parse_duration("-0.5s").is_err());
    }

    #[test]
    fn empty_nan_infinity_and_exponents_are_rejected() {
        for text in [
            "", " ", "NaN", "inf", "1e3", ".", "1.2.3", "s", "ms", "+1", "1 2",
        ] {
            assert!(parse_duration(text).is_err(), "{text:?}");
        }
        assert_eq!(
            parse_duration("abc"),
            Err(r#"invalid duration "abc": expected a number of seconds such as 1 or 1.5, or a number with a unit ms, s, m or h such as 500ms"#.to_string())
        );
    }

    #[test]
    fn unknown_unit_is_named() {
        assert_eq!(
            parse_duration("5x"),
            Err(r#"invalid duration "5x": unknown unit "x" (expected ms, s, m or h)"#.to_string())
        );
        assert!(parse_duration("5sec").is_err());
        assert!(parse_duration("5S").is_err());
    }

    #[test]
    fn overflow_is_rejected_not_wrapped() {
        assert_eq!(
            parse_duration("99999999999999999999999h"),
            Err(r#"invalid duration "99999999999999999999999h": too large"#.to_string())
        );
        assert!(parse_duration(&"9".repeat(200)).is_err());
        assert_eq!(ok("18446744073709551615"), Duration::from_secs(u64::MAX));
        assert!(parse_duration("18446744073709551616").is_err());
    }
}
