//! When a `[[schedule]]` fires: a cron line read by croner in an IANA time zone, or
//! `@every <duration>` ticking at multiples of the duration since the Unix epoch (so every
//! node computes the same ticks without talking to the others). The same parser checks the
//! manifest at deploy and drives the scheduler, so what deploys is exactly what runs.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// A parsed schedule line with its time zone.
#[derive(Debug, Clone)]
pub struct Cadence {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Every { period_ms: i64 },
    Cron { cron: Box<Cron>, tz: Tz },
}

impl Cadence {
    /// Parses `line` read in time zone `tz`; the error says what is wrong (positions name
    /// the field) without the list of accepted forms, which the manifest adds.
    pub fn parse(line: &str, tz: &str) -> Result<Cadence, String> {
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("@every") {
            let period = every(rest.trim())?;
            let period_ms = i64::try_from(period.as_millis()).unwrap_or(i64::MAX);
            return Ok(Cadence {
                kind: Kind::Every { period_ms },
            });
        }
        let tz = parse_tz(tz)?;
        // The shape check first: its messages name the field and its position.
        crate::cron::check(line)?;
        let parser = CronParser::builder()
            .seconds(Seconds::Optional)
            .year(Year::Disallowed)
            .build();
        let cron = parser
            .parse(line)
            .map_err(|error| format!("cron line not understood: {error}"))?;
        // A line that never matches (e.g. 30 February) is a mistake, not a schedule.
        let probe = Utc::now().with_timezone(&tz);
        if cron.find_next_occurrence(&probe, false).is_err() {
            return Err(format!("{line:?} never matches a real date"));
        }
        Ok(Cadence {
            kind: Kind::Cron {
                cron: Box::new(cron),
                tz,
            },
        })
    }

    /// The first tick strictly after `after_ms` (ms since the Unix epoch).
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every { period_ms } => {
                Some((after_ms.div_euclid(*period_ms) + 1).saturating_mul(*period_ms))
            }
            Kind::Cron { cron, tz } => {
                let start = tz.from_utc_datetime(&utc(after_ms)?.naive_utc());
                let next = cron.find_next_occurrence(&start, false).ok()?;
                Some(next.timestamp_millis())
            }
        }
    }

    /// The last tick at or before `at_ms`.
    pub fn latest_at_or_before(&self, at_ms: i64) -> Option<i64> {
        match &self.kind {
            Kind::Every { period_ms } => Some(at_ms.div_euclid(*period_ms) * period_ms),
            Kind::Cron { cron, tz } => {
                let start = tz.from_utc_datetime(&utc(at_ms)?.naive_utc());
                let previous = cron.find_previous_occurrence(&start, true).ok()?;
                Some(previous.timestamp_millis())
            }
        }
    }
}

fn utc(ms: i64) -> Option<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms)
}

fn every(duration: &str) -> Result<Duration, String> {
    if duration.is_empty() {
        return Err("@every needs a duration".to_string());
    }
    let parsed = humantime::parse_duration(duration)
        .map_err(|error| format!("invalid duration {duration:?} ({error})"))?;
    if parsed < Duration::from_secs(1) {
        return Err(format!("duration {duration:?} is shorter than 1s"));
    }
    Ok(parsed)
}

/// An IANA zone name such as `Europe/Berlin` or `UTC`.
pub(crate) fn parse_tz(tz: &str) -> Result<Tz, String> {
    Tz::from_str(tz).map_err(|_| {
        format!(
            "unknown time zone {tz:?}: use an IANA name such as \"UTC\", \"Europe/Berlin\" or \"America/New_York\""
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn every_ticks_on_multiples_of_the_period() {
        let cadence = Cadence::parse("@every 30s", "UTC").unwrap();
        let at = ms("2026-11-28T06:00:10Z");
        assert_eq!(cadence.next_after(at), Some(ms("2026-11-28T06:00:30Z")));
        assert_eq!(
            cadence.latest_at_or_before(at),
            Some(ms("2026-11-28T06:00:00Z"))
        );
        // A tick itself is "at or before" and not "after".
        let tick = ms("2026-11-28T06:00:30Z");
        assert_eq!(cadence.latest_at_or_before(tick), Some(tick));
        assert_eq!(cadence.next_after(tick), Some(ms("2026-11-28T06:01:00Z")));
    }

    #[test]
    fn five_and_six_field_lines() {
        let five = Cadence::parse("*/15 * * * *", "UTC").unwrap();
        assert_eq!(
            five.next_after(ms("2026-11-28T06:07:00Z")),
            Some(ms("2026-11-28T06:15:00Z"))
        );
        let six = Cadence::parse("30 0 12 * * MON", "UTC").unwrap();
        // 2026-11-28 is a Saturday: next Monday noon and 30 s.
        assert_eq!(
            six.next_after(ms("2026-11-28T06:00:00Z")),
            Some(ms("2026-11-30T12:00:30Z"))
        );
        assert_eq!(
            six.latest_at_or_before(ms("2026-11-28T06:00:00Z")),
            Some(ms("2026-11-23T12:00:30Z"))
        );
    }

    #[test]
    fn time_zones_move_the_ticks() {
        let berlin = Cadence::parse("0 9 * * *", "Europe/Berlin").unwrap();
        // Winter time: 09:00 in Berlin is 08:00 UTC.
        assert_eq!(
            berlin.next_after(ms("2026-11-28T06:00:00Z")),
            Some(ms("2026-11-28T08:00:00Z"))
        );
        // Summer time: 07:00 UTC.
        assert_eq!(
            berlin.next_after(ms("2026-07-01T00:00:00Z")),
            Some(ms("2026-07-01T07:00:00Z"))
        );
    }

    #[test]
    fn macros_and_names() {
        let daily = Cadence::parse("@daily", "UTC").unwrap();
        assert_eq!(
            daily.next_after(ms("2026-11-28T06:00:00Z")),
            Some(ms("2026-11-29T00:00:00Z"))
        );
        assert!(Cadence::parse("0 0 1 JAN *", "UTC").is_ok());
    }

    #[test]
    fn mistakes_are_named() {
        let error = Cadence::parse("0 0 30 2 *", "UTC").unwrap_err();
        assert!(error.contains("never matches"), "{error}");
        let error = Cadence::parse("* * *", "UTC").unwrap_err();
        assert!(error.contains("wrong number of fields"), "{error}");
        let error = Cadence::parse("0 0 * * *", "Mars/Olympus").unwrap_err();
        assert!(error.contains("Europe/Berlin"), "{error}");
        let error = Cadence::parse("61 0 * * *", "UTC").unwrap_err();
        assert!(error.contains("field 1 (minute)"), "{error}");
        let error = Cadence::parse("@every 10ms", "UTC").unwrap_err();
        assert!(error.contains("shorter than 1s"), "{error}");
    }
}
