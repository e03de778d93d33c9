//! Wall-clock time as RFC 3339 strings. Clocks at offline centres are often wrong, so time
//! is only ever shown to people; freshness is judged by sequence numbers.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
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
