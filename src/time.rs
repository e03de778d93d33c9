//! Wall-clock time as RFC 3339 strings. Clocks at offline centres are often wrong, so time
//! is only ever shown to people; freshness is judged by sequence numbers.

use std::time::{SystemTime, UNIX_EPOCH};

/// The environment variable that sets this process's clock (RFC 3339 UTC, or Unix seconds):
/// for rehearsing an exam day and for tests that play several days without waiting.
pub const CLOCK_VARIABLE: &str = "COURIER_NOW";

/// Seconds since the Unix epoch, now (or as `COURIER_NOW` says, when it holds a time).
pub fn unix_now() -> i64 {
    if let Some(t) = std::env::var(CLOCK_VARIABLE)
        .ok()
        .and_then(|v| parse_time(v.trim()))
    {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Unix seconds of `YYYY-MM-DDTHH:MM:SSZ` (as [`rfc3339`] writes it) or of plain digits.
pub fn parse_time(text: &str) -> Option<i64> {
    if !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let b = text.as_bytes();
    if b.len() != 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'Z' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let part = &text[from..to];
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let (y, m, d) = (num(0, 4)?, num(5, 7)?, num(8, 10)?);
    let (hh, mm, ss) = (num(11, 13)?, num(14, 16)?, num(17, 19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some(days_from_civil(y, m as u32, d as u32) * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// Whole days from `earlier` to `later` (both RFC 3339), rounded down; `None` when either
/// cannot be read.
pub fn days_between(earlier: &str, later: i64) -> Option<i64> {
    Some((later - parse_time(earlier)?).div_euclid(86_400))
}

/// The current time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn now_rfc3339() -> String {
    rfc3339(unix_now())
}

/// Format Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// A date given on the command line as the bound of a range (`--before DATE`): `YYYY-MM-DD`
/// (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`, returned in the second form, which orders as
/// text like the times courier stores. `None` when it is neither.
pub fn date_bound(text: &str) -> Option<String> {
    let full = match text.len() {
        10 => format!("{text}T00:00:00Z"),
        20 => text.to_string(),
        _ => return None,
    };
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    let fits = full.bytes().zip(shape.bytes()).all(|(c, s)| match s {
        b'd' => c.is_ascii_digit(),
        _ => c == s,
    });
    fits.then_some(full)
}

/// A TAO microtime, as PHP's `microtime()` writes it: the fraction of a second, a space, then
/// Unix seconds (`"0.54321000 1764144192"`). Ordered by seconds, then fraction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Microtime {
    secs: i64,
    nanos: u32,
}

impl Microtime {
    /// Parse `"0.FFFFFFFF SSSSSSSSSS"`; `None` when the text is not of that shape.
    pub fn parse(text: &str) -> Option<Microtime> {
        let mut parts = text.split(' ');
        let (frac, secs) = (parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let digits = frac.strip_prefix("0.")?;
        if digits.is_empty() || digits.len() > 9 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if secs.is_empty() || secs.len() > 18 || !secs.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let nanos = format!("{digits:0<9}").parse().ok()?;
        Some(Microtime {
            secs: secs.parse().ok()?,
            nanos,
        })
    }
}

impl std::fmt::Display for Microtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let frac = format!("{:09}", self.nanos);
        write!(
            f,
            "{} (+0.{})",
            rfc3339(self.secs),
            frac.trim_end_matches('0')
        )
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian (year, month, day).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    #[test]
    fn times_read_back_as_written() {
        for secs in [
            0,
            951_782_400,
            1_764_144_000,
            1_764_144_000 + 86_399,
            4_102_444_800,
        ] {
            assert_eq!(super::parse_time(&super::rfc3339(secs)), Some(secs));
        }
        assert_eq!(super::parse_time("1764144000"), Some(1_764_144_000));
        for bad in [
            "",
            "2025-13-01T00:00:00Z",
            "2025-11-26 08:00:00Z",
            "2025-11-26T08:00:00",
        ] {
            assert_eq!(super::parse_time(bad), None, "{bad:?}");
        }
        assert_eq!(
            super::days_between("2025-11-26T08:00:00Z", 1_764_144_000 + 3 * 86_400 - 1),
            Some(2)
        );
    }

    #[test]
    fn microtimes_order_by_seconds_then_fraction() {
        use super::Microtime;
        let t = |s| Microtime::parse(s).expect(s);
        assert!(t("0.54321000 1764144192") < t("0.11111100 1764151200"));
        assert!(t("0.1 1764144192") < t("0.54321000 1764144192"));
        assert_eq!(t("0.5 1764144192"), t("0.50000000 1764144192"));
        for bad in [
            "",
            "1764144192",
            "0.5",
            "1.5 17",
            "0.5 -1",
            "0.5  17",
            "0.x 17",
            "0. 17",
        ] {
            assert_eq!(Microtime::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn formats_known_instants() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_764_144_000), "2025-11-26T08:00:00Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}
