//! Timestamps on the wire: ISO-8601 in UTC with milliseconds, as Harbor
//! writes them; Harbor's zero time for "never".

use berth_core::clock::Millis;
use time::OffsetDateTime;

pub const ZERO_TIME: &str = "0001-01-01T00:00:00.000Z";

pub fn iso(ms: Millis) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn iso_or_zero(ms: Option<Millis>) -> String {
    ms.map(iso).unwrap_or_else(|| ZERO_TIME.to_owned())
}

/// Parses an RFC 3339 time or Harbor's "2020-04-09 02:36:00" (UTC).
pub fn parse(s: &str) -> Option<Millis> {
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as Millis);
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(s, &fmt)
        .ok()
        .map(|t| (t.assume_utc().unix_timestamp_nanos() / 1_000_000) as Millis)
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_like_harbor() {
        assert_eq!(super::iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(super::iso(1_678_082_303_431), "2023-03-06T05:58:23.431Z");
        assert_eq!(super::iso_or_zero(None), super::ZERO_TIME);
        assert_eq!(
            super::parse("2023-03-06T05:58:23.431Z"),
            Some(1_678_082_303_431)
        );
        assert_eq!(super::parse("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(super::parse("yesterday"), None);
    }
}
