//! Wall-clock time as milliseconds since the Unix epoch, with the two text forms
//! EC2 uses: ISO 8601 in responses (`2026-12-04T15:43:02.000Z`) and the compact
//! SigV4 form (`20261204T154302Z`). A clock is injected so tests can move time.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Where "now" comes from. The real clock in production; tests pass their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's
/// well-known civil-date arithmetic, rewritten here).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    (y, m, d)
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

impl Timestamp {
    pub fn now() -> Self {
        let d = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp(d.as_millis() as i64)
    }

    pub fn from_secs(s: i64) -> Self {
        Timestamp(s * 1000)
    }

    pub fn secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    pub fn plus_secs(self, s: i64) -> Self {
        Timestamp(self.0 + s * 1000)
    }

    fn parts(self) -> (i64, u32, u32, u32, u32, u32, u32) {
        let secs = self.secs();
        let ms = self.0.rem_euclid(1000) as u32;
        let (y, mo, d) = civil_from_days(secs.div_euclid(86400));
        let sod = secs.rem_euclid(86400) as u32;
        (y, mo, d, sod / 3600, (sod / 60) % 60, sod % 60, ms)
    }

    /// `2026-12-04T15:43:02.000Z`, as EC2 writes `launchTime` and friends.
    pub fn iso8601(self) -> String {
        self.iso().to_string()
    }

    /// The ISO 8601 form as a `Display`, to format without allocating.
    pub fn iso(self) -> Iso8601 {
        Iso8601(self)
    }

    /// `2026-12-04T15:43:02Z`: ISO 8601 to the second, for records people read.
    pub fn iso8601_seconds(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.parts();
        format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
    }

    /// `20261204T154302Z`, the SigV4 `X-Amz-Date` form.
    pub fn amz_date(self) -> String {
        let (y, mo, d, h, mi, s, _) = self.parts();
        format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}Z")
    }

    /// Parses the SigV4 `X-Amz-Date` form; anything else is `None`.
    pub fn parse_amz_date(s: &str) -> Option<Timestamp> {
        let b = s.as_bytes();
        if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
            return None;
        }
        let num = |r: std::ops::Range<usize>| -> Option<u32> {
            let part = s.get(r)?;
            if part.bytes().all(|c| c.is_ascii_digit()) {
                part.parse().ok()
            } else {
                None
            }
        };
        let (y, mo, d) = (num(0..4)? as i64, num(4..6)?, num(6..8)?);
        let (h, mi, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
        if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60 {
            return None;
        }
        let days = days_from_civil(y, mo, d);
        Some(Timestamp::from_secs(days * 86400 + (h * 3600 + mi * 60 + sec) as i64))
    }
}

pub struct Iso8601(Timestamp);

impl std::fmt::Display for Iso8601 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Written digit by digit: this is on the hot path of every Describe.
        let (y, mo, d, h, mi, s, ms) = self.0.parts();
        let mut b = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (0..width).rev() {
                b[at + i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y.clamp(0, 9999) as u64);
        put(5, 2, mo as u64);
        put(8, 2, d as u64);
        put(11, 2, h as u64);
        put(14, 2, mi as u64);
        put(17, 2, s as u64);
        put(20, 3, ms as u64);
        f.write_str(std::str::from_utf8(&b).unwrap_or("1970-01-01T00:00:00.000Z"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(Timestamp(0).iso8601(), "1970-01-01T00:00:00.000Z");
        let t = Timestamp::parse_amz_date("20150830T123600Z").expect("valid");
        assert_eq!(t.secs(), 1440938160);
        assert_eq!(t.iso8601(), "2015-08-30T12:36:00.000Z");
        assert_eq!(t.amz_date(), "20150830T123600Z");
        assert_eq!(t.iso8601_seconds(), "2015-08-30T12:36:00Z");
        assert_eq!(Timestamp(951_782_400_123).iso8601(), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn round_trips_every_day_for_centuries() {
        for day in (-50_000..100_000).step_by(7) {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn rejects_bad_dates() {
        for bad in ["", "20150830T123600", "20151330T123600Z", "20150230T123600Z", "2015083XT123600Z", "20150830T253600Z", "２015083T123600Z"] {
            assert!(Timestamp::parse_amz_date(bad).is_none(), "{bad}");
        }
    }
}
