//! Time for rating: schedules of time bands in a named timezone, holidays, and periods.
//!
//! A [`Schedule`] maps every local second of every day type (Monday .. Sunday, and "holiday",
//! which takes precedence on listed dates) to exactly one band; [`ScheduleSpec::build`] refuses a
//! schedule with a gap or an overlap. Band times are local wall-clock times of one calendar day:
//! a band "20:00 to 08:00" covers 20:00-24:00 and 00:00-08:00 of each listed day. DST is handled
//! by converting band boundaries back to instants in the schedule's timezone, so a segment's
//! length is always real elapsed seconds.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

/// Seconds in a civil day.
pub const DAY_SECONDS: u32 = 86_400;
/// Day-type index of holidays (0..=6 are Monday..Sunday).
pub const HOLIDAY: usize = 7;

/// One band on one day type: `[start_s, end_s)` local seconds of the day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    start_s: u32,
    end_s: u32,
    band: u16,
}

/// A validated schedule of time bands.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Schedule id.
    pub id: SmolStr,
    /// Timezone the band times are written in.
    pub tz: TimeZone,
    /// Band names; spans refer to them by index.
    pub bands: Vec<SmolStr>,
    /// Holidays as days since 1970-01-01, sorted.
    holiday_days: Vec<i64>,
    days: [Vec<Span>; 8],
}

fn epoch_day(date: Date) -> Option<i64> {
    let ts = date
        .to_datetime(Time::midnight())
        .to_zoned(TimeZone::UTC)
        .ok()?
        .timestamp();
    Some(ts.as_second().div_euclid(i64::from(DAY_SECONDS)))
}

/// The band in force at an instant, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BandAt {
    /// Band index into [`Schedule::bands`].
    pub band: u16,
    /// First instant after the band's span ends (the next boundary).
    pub until: Timestamp,
}

/// Input to build a schedule: bands with day types and local times.
#[derive(Debug, Clone, Default)]
pub struct ScheduleSpec {
    /// Schedule id.
    pub id: SmolStr,
    /// Timezone.
    pub tz: Option<TimeZone>,
    /// Holiday dates.
    pub holidays: Vec<Date>,
    /// (band name, day-type indices, start second, end second).
    pub bands: Vec<BandSpec>,
}

/// One band as written: its name, its day types and its local time range.
#[derive(Debug, Clone)]
pub struct BandSpec {
    /// Band name.
    pub name: SmolStr,
    /// Day types (0..=6 Monday..Sunday, 7 holiday).
    pub days: Vec<usize>,
    /// Local start, seconds of day.
    pub from_s: u32,
    /// Local end, seconds of day (86400 = midnight at the end of the day); may be before `from_s`
    /// to wrap around midnight within the same day.
    pub to_s: u32,
}

const DAY_NAMES: [&str; 8] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday"];

/// Parses a day-type word: `mon`..`sun`, `holiday`, `weekdays`, `weekend`, `all`.
pub fn parse_days(word: &str) -> Option<Vec<usize>> {
    match word {
        "weekdays" => Some((0..5).collect()),
        "weekend" => Some(vec![5, 6]),
        "all" => Some((0..7).collect()),
        _ => DAY_NAMES.iter().position(|d| *d == word).map(|i| vec![i]),
    }
}

/// Parses `HH:MM` or `HH:MM:SS` (00:00 .. 24:00) into seconds of day.
pub fn parse_clock(text: &str) -> Option<u32> {
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.len() != 2) {
        return None;
    }
    let num = |p: &str| p.parse::<u32>().ok();
    let h = num(parts[0])?;
    let m = num(parts[1])?;
    let s = if parts.len() == 3 { num(parts[2])? } else { 0 };
    if m > 59 || s > 59 {
        return None;
    }
    let total = h * 3600 + m * 60 + s;
    (total <= DAY_SECONDS).then_some(total)
}

fn clock(s: u32) -> String {
    format!("{:02}:{:02}", s / 3600, (s % 3600) / 60)
}

impl ScheduleSpec {
    /// Validates and builds; on failure returns every problem found.
    pub fn build(self) -> Result<Schedule, Vec<String>> {
        let mut problems = Vec::new();
        let tz = self.tz.unwrap_or(TimeZone::UTC);
        let mut names: Vec<SmolStr> = Vec::new();
        let mut days: [Vec<Span>; 8] = Default::default();
        for spec in &self.bands {
            let band = match names.iter().position(|n| *n == spec.name) {
                Some(i) => i,
                None => {
                    names.push(spec.name.clone());
                    names.len() - 1
                }
            } as u16;
            if spec.from_s == spec.to_s {
                problems.push(format!(
                    "band {:?}: from and to are equal ({})",
                    spec.name,
                    clock(spec.from_s)
                ));
                continue;
            }
            let ranges: Vec<(u32, u32)> = if spec.from_s < spec.to_s {
                vec![(spec.from_s, spec.to_s)]
            } else {
                vec![(spec.from_s, DAY_SECONDS), (0, spec.to_s)]
            };
            for &day in &spec.days {
                for &(start_s, end_s) in &ranges {
                    if end_s > start_s {
                        days[day].push(Span {
                            start_s,
                            end_s,
                            band,
                        });
                    }
                }
            }
        }
        let needs_holiday = !self.holidays.is_empty();
        for (day, spans) in days.iter_mut().enumerate() {
            spans.sort_by_key(|s| s.start_s);
            if spans.is_empty() {
                if day != HOLIDAY {
                    problems.push(format!("no band covers {}", DAY_NAMES[day]));
                } else if needs_holiday {
                    problems.push(
                        "holidays are listed but no band covers day type \"holiday\"".to_string(),
                    );
                }
                continue;
            }
            let mut at = 0u32;
            for span in spans.iter() {
                if span.start_s > at {
                    problems.push(format!(
                        "{}: no band covers {}-{}",
                        DAY_NAMES[day],
                        clock(at),
                        clock(span.start_s)
                    ));
                } else if span.start_s < at {
                    problems.push(format!(
                        "{}: bands overlap at {}-{} (band {:?})",
                        DAY_NAMES[day],
                        clock(span.start_s),
                        clock(at.min(span.end_s)),
                        names[usize::from(span.band)]
                    ));
                }
                at = at.max(span.end_s);
            }
            if at < DAY_SECONDS {
                problems.push(format!(
                    "{}: no band covers {}-24:00",
                    DAY_NAMES[day],
                    clock(at)
                ));
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let mut holiday_days: Vec<i64> =
            self.holidays.iter().filter_map(|d| epoch_day(*d)).collect();
        holiday_days.sort_unstable();
        holiday_days.dedup();
        Ok(Schedule {
            id: self.id,
            tz,
            bands: names,
            holiday_days,
            days,
        })
    }
}

impl Schedule {
    /// A one-band, whole-week schedule, standing in for one that failed validation so that the
    /// rest of a catalogue can still be checked.
    pub(crate) fn placeholder(id: SmolStr, tz: TimeZone) -> Schedule {
        let whole_day = || {
            vec![Span {
                start_s: 0,
                end_s: DAY_SECONDS,
                band: 0,
            }]
        };
        Schedule {
            id,
            tz,
            bands: vec![SmolStr::new("all")],
            holiday_days: Vec::new(),
            days: std::array::from_fn(|_| whole_day()),
        }
    }

    /// Whether `date` is a listed holiday.
    pub fn is_holiday(&self, date: Date) -> bool {
        epoch_day(date).is_some_and(|day| self.holiday_days.binary_search(&day).is_ok())
    }

    fn span(&self, day_type: usize, second: u32) -> Span {
        let spans = &self.days[day_type];
        // Validation guarantees full coverage; the fallback keeps this total.
        spans
            .iter()
            .find(|s| s.start_s <= second && second < s.end_s)
            .or(spans.last())
            .copied()
            .unwrap_or(Span {
                start_s: 0,
                end_s: DAY_SECONDS,
                band: 0,
            })
    }

    /// The band in force at `at`, and the instant its span ends.
    ///
    /// Fast path: local time is the instant plus the zone's UTC offset; the span's end is
    /// taken back to an instant with the same offset, and accepted when the offset there is
    /// unchanged. Around a DST transition the exact civil-time computation below is used.
    pub fn band_at(&self, at: Timestamp) -> BandAt {
        let offset = i64::from(self.tz.to_offset(at).seconds());
        let local = at.as_second() + offset;
        let day = local.div_euclid(i64::from(DAY_SECONDS));
        let second = local.rem_euclid(i64::from(DAY_SECONDS)) as u32;
        let day_type = if self.holiday_days.binary_search(&day).is_ok() {
            HOLIDAY
        } else {
            // 1970-01-01 was a Thursday (index 3 counting from Monday).
            (day + 3).rem_euclid(7) as usize
        };
        let span = self.span(day_type, second);
        let end = day * i64::from(DAY_SECONDS) + i64::from(span.end_s) - offset;
        if let Ok(until) = Timestamp::from_second(end)
            && end > at.as_second()
            && i64::from(self.tz.to_offset(until).seconds()) == offset
        {
            return BandAt {
                band: span.band,
                until,
            };
        }
        self.band_at_exact(at)
    }

    fn band_at_exact(&self, at: Timestamp) -> BandAt {
        let local = self.tz.to_datetime(at);
        let date = local.date();
        let day = if !self.holiday_days.is_empty() && self.is_holiday(date) {
            HOLIDAY
        } else {
            weekday_index(date.weekday())
        };
        let time = local.time();
        let second = time.hour() as u32 * 3600 + time.minute() as u32 * 60 + time.second() as u32;
        let span = self.span(day, second);
        let end_local = local_end(date, span.end_s);
        // In a DST fold the boundary exists twice: take the first occurrence after `at`.
        let after = |t: &Timestamp| t.as_second() > at.as_second();
        let until = end_local
            .and_then(|dt| {
                let ambiguous = self.tz.to_ambiguous_timestamp(dt);
                ambiguous
                    .compatible()
                    .ok()
                    .filter(after)
                    .or_else(|| ambiguous.later().ok().filter(after))
            })
            .unwrap_or_else(|| Timestamp::from_second(at.as_second() + 1).unwrap_or(at));
        BandAt {
            band: span.band,
            until,
        }
    }

    /// Splits `seconds` starting at `start` into consecutive (band, seconds) segments.
    pub fn split(&self, start: Timestamp, seconds: u64, out: &mut Vec<(u16, u64)>) {
        let mut at = start;
        let mut left = seconds;
        while left > 0 {
            let band = self.band_at(at);
            let span = (band.until.as_second() - at.as_second()).max(1) as u64;
            let take = span.min(left);
            match out.last_mut() {
                Some((b, n)) if *b == band.band => *n += take,
                _ => out.push((band.band, take)),
            }
            left -= take;
            at = band.until;
        }
    }
}

fn local_end(date: Date, end_s: u32) -> Option<DateTime> {
    if end_s >= DAY_SECONDS {
        date.tomorrow()
            .ok()
            .map(|d| d.to_datetime(Time::midnight()))
    } else {
        let t = Time::new(
            (end_s / 3600) as i8,
            ((end_s % 3600) / 60) as i8,
            (end_s % 60) as i8,
            0,
        )
        .ok()?;
        Some(date.to_datetime(t))
    }
}

fn weekday_index(w: Weekday) -> usize {
    w.to_monday_zero_offset() as usize
}

/// The length of a counting period (free units, tiers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum PeriodKind {
    /// A calendar day.
    Day,
    /// An ISO week (Monday to Sunday).
    Week,
    /// A calendar month.
    #[default]
    Month,
    /// A calendar quarter.
    Quarter,
    /// A calendar year.
    Year,
}

impl PeriodKind {
    /// The period containing `at` in `tz`, as a stable key (`2026-03`, `2026-W09`, `2026-Q1`...).
    pub fn key(self, tz: &TimeZone, at: Timestamp) -> SmolStr {
        let date = tz.to_datetime(at).date();
        let y = date.year();
        match self {
            PeriodKind::Day => {
                smol_str::format_smolstr!("{y:04}-{:02}-{:02}", date.month(), date.day())
            }
            PeriodKind::Week => {
                let iso = date.iso_week_date();
                smol_str::format_smolstr!("{:04}-W{:02}", iso.year(), iso.week())
            }
            PeriodKind::Month => smol_str::format_smolstr!("{y:04}-{:02}", date.month()),
            PeriodKind::Quarter => {
                smol_str::format_smolstr!("{y:04}-Q{}", (date.month() - 1) / 3 + 1)
            }
            PeriodKind::Year => smol_str::format_smolstr!("{y:04}"),
        }
    }
}

/// Parses an instant: RFC 3339 (`2026-03-01T10:00:00Z`, with offset), or a civil date/time
/// (`2026-03-01`, `2026-03-01 10:00:00`, `2026-03-01T10:00:00`) read in `tz`.
pub fn parse_instant(text: &str, tz: &TimeZone) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts);
    }
    let civil = match text.replacen(' ', "T", 1).parse::<DateTime>() {
        Ok(dt) => dt,
        Err(_) => text
            .parse::<Date>()
            .map(|d| d.to_datetime(Time::midnight()))
            .map_err(|_| format!("{text:?} is not a date (YYYY-MM-DD) or timestamp (RFC 3339)"))?,
    };
    tz.to_ambiguous_timestamp(civil)
        .compatible()
        .map_err(|e| format!("{text:?} does not exist in the timezone: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn business(tz: &str, holidays: Vec<Date>) -> Schedule {
        ScheduleSpec {
            id: "business".into(),
            tz: Some(TimeZone::get(tz).unwrap()),
            holidays,
            bands: vec![
                BandSpec {
                    name: "peak".into(),
                    days: (0..5).collect(),
                    from_s: 8 * 3600,
                    to_s: 20 * 3600,
                },
                BandSpec {
                    name: "offpeak".into(),
                    days: (0..5).collect(),
                    from_s: 20 * 3600,
                    to_s: 8 * 3600,
                },
                BandSpec {
                    name: "weekend".into(),
                    days: vec![5, 6, HOLIDAY],
                    from_s: 0,
                    to_s: DAY_SECONDS,
                },
            ],
        }
        .build()
        .unwrap()
    }

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn band_at_uses_local_time_of_the_timezone() {
        let s = business("Europe/Berlin", vec![]);
        // 2026-03-02 is a Monday. 06:59:59Z = 07:59:59 CET -> offpeak; 07:00Z = 08:00 CET -> peak.
        let b = s.band_at(ts("2026-03-02T06:59:59Z"));
        assert_eq!(s.bands[usize::from(b.band)], "offpeak");
        assert_eq!(b.until, ts("2026-03-02T07:00:00Z"));
        let b = s.band_at(ts("2026-03-02T07:00:00Z"));
        assert_eq!(s.bands[usize::from(b.band)], "peak");
        assert_eq!(b.until, ts("2026-03-02T19:00:00Z"));
        // Saturday.
        assert_eq!(
            s.bands[usize::from(s.band_at(ts("2026-03-07T12:00:00Z")).band)],
            "weekend"
        );
    }

    #[test]
    fn holidays_take_precedence_over_weekdays() {
        let s = business("Europe/Berlin", vec!["2026-12-25".parse().unwrap()]);
        // Friday 2026-12-25 at noon local is a holiday -> weekend band.
        let b = s.band_at(ts("2026-12-25T11:00:00Z"));
        assert_eq!(s.bands[usize::from(b.band)], "weekend");
    }

    #[test]
    fn split_follows_band_boundaries_in_real_seconds() {
        let s = business("Europe/Berlin", vec![]);
        let mut out = Vec::new();
        // 19:58 local on a Monday, 5 minutes: 120 s peak then 180 s offpeak.
        s.split(ts("2026-03-02T18:58:00Z"), 300, &mut out);
        assert_eq!(out, vec![(0, 120), (1, 180)]);
        // Across midnight the offpeak spans of two days merge into one segment.
        out.clear();
        s.split(ts("2026-03-02T22:30:00Z"), 3600, &mut out);
        assert_eq!(out, vec![(1, 3600)]);
    }

    #[test]
    fn dst_change_is_real_elapsed_time() {
        // Night of 2026-03-29 in Berlin: 02:00 CET jumps to 03:00 CEST. A Sunday: one band all day.
        // Monday 2026-03-30 peak starts 08:00 CEST = 06:00Z.
        let s = business("Europe/Berlin", vec![]);
        let b = s.band_at(ts("2026-03-29T12:00:00Z"));
        assert_eq!(b.until, ts("2026-03-29T22:00:00Z"), "midnight CEST");
        let b = s.band_at(ts("2026-03-30T05:59:00Z"));
        assert_eq!(b.until, ts("2026-03-30T06:00:00Z"));
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_civil_time(secs in 1_600_000_000i64..1_950_000_000i64) {
            let s = business("Europe/Berlin", vec!["2026-12-25".parse().unwrap(), "2027-01-01".parse().unwrap()]);
            let at = Timestamp::from_second(secs).unwrap();
            proptest::prop_assert_eq!(s.band_at(at), s.band_at_exact(at));
        }
    }

    #[test]
    fn gaps_and_overlaps_are_reported() {
        let err = ScheduleSpec {
            id: "bad".into(),
            tz: None,
            holidays: vec!["2026-01-01".parse().unwrap()],
            bands: vec![
                BandSpec {
                    name: "a".into(),
                    days: (0..7).collect(),
                    from_s: 0,
                    to_s: 10 * 3600,
                },
                BandSpec {
                    name: "b".into(),
                    days: (0..7).collect(),
                    from_s: 9 * 3600,
                    to_s: 20 * 3600,
                },
            ],
        }
        .build()
        .unwrap_err();
        assert!(err.iter().any(|p| p.contains("overlap")), "{err:?}");
        assert!(err.iter().any(|p| p.contains("20:00-24:00")), "{err:?}");
        assert!(err.iter().any(|p| p.contains("holiday")), "{err:?}");
    }

    #[test]
    fn periods_and_instants() {
        let tz = TimeZone::get("Europe/Moscow").unwrap();
        // 2026-01-31T22:00Z is 2026-02-01 01:00 in Moscow.
        let at = ts("2026-01-31T22:00:00Z");
        assert_eq!(PeriodKind::Month.key(&tz, at), "2026-02");
        assert_eq!(PeriodKind::Month.key(&TimeZone::UTC, at), "2026-01");
        assert_eq!(PeriodKind::Quarter.key(&tz, at), "2026-Q1");
        assert_eq!(PeriodKind::Day.key(&tz, at), "2026-02-01");
        assert_eq!(PeriodKind::Week.key(&tz, at), "2026-W05");
        assert_eq!(PeriodKind::Year.key(&tz, at), "2026");
        assert_eq!(
            parse_instant("2026-02-01", &tz).unwrap(),
            ts("2026-01-31T21:00:00Z")
        );
        assert_eq!(
            parse_instant("2026-02-01 10:00:00", &tz).unwrap(),
            ts("2026-02-01T07:00:00Z")
        );
        assert_eq!(
            parse_instant("2026-02-01T10:00:00+01:00", &tz).unwrap(),
            ts("2026-02-01T09:00:00Z")
        );
        assert!(parse_instant("yesterday", &tz).is_err());
        assert_eq!(parse_clock("24:00"), Some(DAY_SECONDS));
        assert_eq!(parse_clock("24:01"), None);
        assert_eq!(parse_clock("8:00"), None);
        assert_eq!(parse_days("weekend"), Some(vec![5, 6]));
    }
}
