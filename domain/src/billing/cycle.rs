//! Bill cycles and billing periods.
//!
//! A period is a half-open range of civil dates `[start, end)`. The **bill day** is the first
//! day of every period, so a period ends where the next one starts: monthly with bill day 1
//! gives calendar months (`[2026-10-01, 2026-11-01)`), monthly with bill day 15 gives
//! `[2026-10-15, 2026-11-15)`. Bill days run 1..=28 so that every month has them; `last` means
//! the last day of each month (`[2026-10-31, 2026-11-30)`). Quarterly periods start on the bill
//! day of the first month of each quarter (`first_month` 1..=3 shifts fiscal quarters), annual
//! periods on the bill day of `month`. A period can be billed from its `end` date on
//! ([`period_has_ended`]): the caller passes "today" as a civil date in the operator's timezone.

use jiff::ToSpan;
use jiff::civil::{Date, ISOWeekDate, Weekday};
use serde::{Deserialize, Serialize};

use super::error::BillingError;
use crate::ids::BillCycleId;

/// Days from 1970-01-01 to `date` (proleptic Gregorian; total, never fails).
pub fn day_number(date: Date) -> i64 {
    // Howard Hinnant's days_from_civil.
    let month = i64::from(date.month());
    let year = i64::from(date.year()) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + i64::from(date.day()) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// `date` plus `days` (may be negative).
pub fn add_days(date: Date, days: i64) -> Result<Date, BillingError> {
    Ok(date.checked_add(days.days())?)
}

/// A billing period: the civil dates `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Period {
    /// First day of the period.
    pub start: Date,
    /// First day after the period (the next period's start).
    pub end: Date,
}

impl Period {
    /// Builds a period; `start` must be before `end`.
    pub fn new(start: Date, end: Date) -> Result<Period, BillingError> {
        if start < end {
            Ok(Period { start, end })
        } else {
            Err(BillingError::PeriodMismatch(format!(
                "start {start} is not before end {end}"
            )))
        }
    }

    /// Number of days in the period.
    pub fn days(&self) -> i64 {
        day_number(self.end) - day_number(self.start)
    }

    /// Whether `date` falls in the period.
    pub fn contains(&self, date: Date) -> bool {
        self.start <= date && date < self.end
    }

    /// Days of the period that also fall in `[from, to)` (open ends are unbounded).
    pub fn overlap_days(&self, from: Option<Date>, to: Option<Date>) -> i64 {
        let start = from.map_or(self.start, |f| f.max(self.start));
        let end = to.map_or(self.end, |t| t.min(self.end));
        (day_number(end) - day_number(start)).max(0)
    }
}

/// The bill day of a month-based cycle: a day 1..=28, or the last day of the month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "BillDayRaw", into = "BillDayRaw")]
pub enum BillDay {
    /// A fixed day of the month, 1..=28.
    Day(u8),
    /// The last day of each month.
    Last,
}

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum BillDayRaw {
    Number(u8),
    Text(String),
}

impl TryFrom<BillDayRaw> for BillDay {
    type Error = String;
    fn try_from(raw: BillDayRaw) -> Result<Self, Self::Error> {
        match raw {
            BillDayRaw::Number(day) if (1..=28).contains(&day) => Ok(BillDay::Day(day)),
            BillDayRaw::Text(text) if text == "last" => Ok(BillDay::Last),
            BillDayRaw::Number(day) => Err(format!("bill day {day} is not in 1..=28")),
            BillDayRaw::Text(text) => Err(format!("bill day {text:?} is not 1..=28 or \"last\"")),
        }
    }
}

impl From<BillDay> for BillDayRaw {
    fn from(day: BillDay) -> Self {
        match day {
            BillDay::Day(day) => BillDayRaw::Number(day),
            BillDay::Last => BillDayRaw::Text("last".to_string()),
        }
    }
}

/// A day of the week (the bill day of a weekly cycle).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[allow(missing_docs)]
pub enum BillWeekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl BillWeekday {
    /// Days after Monday (0..=6).
    pub fn monday_offset(self) -> i64 {
        match self {
            BillWeekday::Monday => 0,
            BillWeekday::Tuesday => 1,
            BillWeekday::Wednesday => 2,
            BillWeekday::Thursday => 3,
            BillWeekday::Friday => 4,
            BillWeekday::Saturday => 5,
            BillWeekday::Sunday => 6,
        }
    }
}

/// How often a cycle bills, and on which day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Frequency {
    /// Every week, periods starting on `weekday`.
    Weekly {
        /// First day of each period.
        weekday: BillWeekday,
    },
    /// Every month, periods starting on `bill_day`.
    Monthly {
        /// First day of each period.
        bill_day: BillDay,
    },
    /// Every three months.
    Quarterly {
        /// First day of each period.
        bill_day: BillDay,
        /// The quarter's first month among 1..=3 (1: Jan/Apr/Jul/Oct).
        #[serde(default = "first_month_default")]
        first_month: u8,
    },
    /// Every year.
    Annual {
        /// First day of each period.
        bill_day: BillDay,
        /// Month the period starts in, 1..=12.
        #[serde(default = "first_month_default")]
        month: u8,
    },
}

fn first_month_default() -> u8 {
    1
}

/// A bill cycle: an id and its frequency. Accounts refer to it by id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BillCycle {
    /// Cycle id.
    pub id: BillCycleId,
    /// Frequency and bill day.
    pub frequency: Frequency,
}

/// Month-based layout: months per period, first month (0-based) of the grid, bill day.
struct MonthGrid {
    step: i64,
    anchor: i64,
    day: BillDay,
}

fn month_index(date: Date) -> i64 {
    i64::from(date.year()) * 12 + i64::from(date.month()) - 1
}

fn boundary(index: i64, day: BillDay) -> Result<Date, BillingError> {
    let year = i16::try_from(index.div_euclid(12)).map_err(|_| BillingError::DateOutOfRange)?;
    let month = (index.rem_euclid(12) + 1) as i8;
    let first = Date::new(year, month, 1)?;
    let day = match day {
        BillDay::Day(day) => day as i8,
        BillDay::Last => first.days_in_month(),
    };
    Ok(Date::new(year, month, day)?)
}

impl BillCycle {
    /// Checks bill days and months are in range.
    pub fn validate(&self) -> Result<(), BillingError> {
        let bad = |what: String| Err(BillingError::BadCycle(format!("{}: {what}", self.id)));
        let day = match self.frequency {
            Frequency::Weekly { .. } => return Ok(()),
            Frequency::Monthly { bill_day } => bill_day,
            Frequency::Quarterly {
                bill_day,
                first_month,
            } => {
                if !(1..=3).contains(&first_month) {
                    return bad(format!("first_month {first_month} is not in 1..=3"));
                }
                bill_day
            }
            Frequency::Annual { bill_day, month } => {
                if !(1..=12).contains(&month) {
                    return bad(format!("month {month} is not in 1..=12"));
                }
                bill_day
            }
        };
        match day {
            BillDay::Day(d) if !(1..=28).contains(&d) => bad(format!("bill day {d}")),
            _ => Ok(()),
        }
    }

    fn grid(&self) -> Result<Option<MonthGrid>, BillingError> {
        self.validate()?;
        Ok(match self.frequency {
            Frequency::Weekly { .. } => None,
            Frequency::Monthly { bill_day } => Some(MonthGrid {
                step: 1,
                anchor: 0,
                day: bill_day,
            }),
            Frequency::Quarterly {
                bill_day,
                first_month,
            } => Some(MonthGrid {
                step: 3,
                anchor: i64::from(first_month) - 1,
                day: bill_day,
            }),
            Frequency::Annual { bill_day, month } => Some(MonthGrid {
                step: 12,
                anchor: i64::from(month) - 1,
                day: bill_day,
            }),
        })
    }

    /// The period containing `date`.
    pub fn period_containing(&self, date: Date) -> Result<Period, BillingError> {
        match (self.grid()?, self.frequency) {
            (Some(grid), _) => {
                let index = month_index(date);
                let mut first = index - (index - grid.anchor).rem_euclid(grid.step);
                if boundary(first, grid.day)? > date {
                    first -= grid.step;
                }
                Period::new(
                    boundary(first, grid.day)?,
                    boundary(first + grid.step, grid.day)?,
                )
            }
            (None, Frequency::Weekly { weekday }) => {
                let today = i64::from(date.weekday().to_monday_zero_offset());
                let back = (today - weekday.monday_offset()).rem_euclid(7);
                let start = add_days(date, -back)?;
                Period::new(start, add_days(start, 7)?)
            }
            (None, _) => Err(BillingError::BadCycle(self.id.to_string())),
        }
    }

    /// The latest period that ends on or before `date` (the one a bill run on `date` bills).
    pub fn period_ended_by(&self, date: Date) -> Result<Period, BillingError> {
        let current = self.period_containing(date)?;
        self.previous_period(&current)
    }

    /// The period after `period`.
    pub fn next_period(&self, period: &Period) -> Result<Period, BillingError> {
        self.period_containing(period.end)
    }

    /// The period before `period`.
    pub fn previous_period(&self, period: &Period) -> Result<Period, BillingError> {
        self.period_containing(add_days(period.start, -1)?)
    }

    /// Checks that `period` is exactly one of this cycle's periods.
    pub fn check_period(&self, period: &Period) -> Result<(), BillingError> {
        let expected = self.period_containing(period.start)?;
        if expected == *period {
            Ok(())
        } else {
            Err(BillingError::PeriodMismatch(format!(
                "[{}, {}) is not a period of cycle {}; the period containing {} is [{}, {})",
                period.start, period.end, self.id, period.start, expected.start, expected.end
            )))
        }
    }

    /// Resolves a period named by a key or by explicit dates, and checks it is one of the
    /// cycle's periods.
    ///
    /// Keys name the period that *starts* in: `2026-10` (a month: monthly, or the first month
    /// of a quarter / the year's start month), `2026-Q4` (quarterly), `2026` (annual),
    /// `2026-W42` (weekly: the period starting in that ISO week).
    pub fn resolve_period(&self, spec: &PeriodSpec) -> Result<Period, BillingError> {
        match spec {
            PeriodSpec::Range(period) => {
                let period = Period::new(period.start, period.end)?;
                self.check_period(&period)?;
                Ok(period)
            }
            PeriodSpec::Key(key) => self.period_from_key(key.trim()),
        }
    }

    fn period_from_key(&self, key: &str) -> Result<Period, BillingError> {
        let mismatch = |why: &str| {
            BillingError::PeriodMismatch(format!("{key:?} for cycle {}: {why}", self.id))
        };
        let number = |text: &str| text.parse::<i64>().ok().filter(|_| !text.is_empty());
        let (year_text, rest) = key.split_once('-').unwrap_or((key, ""));
        let year = number(year_text)
            .filter(|_| year_text.len() == 4)
            .ok_or_else(|| mismatch("expected YYYY, YYYY-MM, YYYY-Qn or YYYY-Www"))?;
        let grid = self.grid()?;
        let start_month = if let Some(week) = rest.strip_prefix('W') {
            let Frequency::Weekly { weekday } = self.frequency else {
                return Err(mismatch("a week names a weekly cycle's period"));
            };
            let week = number(week)
                .and_then(|w| i8::try_from(w).ok())
                .ok_or_else(|| mismatch("bad week number"))?;
            let year = i16::try_from(year).map_err(|_| mismatch("bad year"))?;
            let monday = ISOWeekDate::new(year, week, Weekday::Monday)
                .map_err(|_| mismatch("no such ISO week"))?
                .date();
            let start = add_days(monday, weekday.monday_offset())?;
            return Period::new(start, add_days(start, 7)?);
        } else if let Some(quarter) = rest.strip_prefix('Q') {
            match (number(quarter), &grid) {
                (Some(q @ 1..=4), Some(g)) if g.step == 3 => year * 12 + g.anchor + (q - 1) * 3,
                _ => return Err(mismatch("a quarter names a quarterly cycle's period")),
            }
        } else if rest.is_empty() {
            match &grid {
                Some(g) if g.step == 12 => year * 12 + g.anchor,
                _ => return Err(mismatch("a year names an annual cycle's period")),
            }
        } else {
            let month = number(rest)
                .filter(|m| (1..=12).contains(m) && rest.len() == 2)
                .ok_or_else(|| mismatch("bad month"))?;
            year * 12 + month - 1
        };
        let Some(grid) = grid else {
            return Err(mismatch("a weekly cycle's period is named YYYY-Www"));
        };
        if (start_month - grid.anchor).rem_euclid(grid.step) != 0 {
            return Err(mismatch("no period of this cycle starts in that month"));
        }
        Period::new(
            boundary(start_month, grid.day)?,
            boundary(start_month + grid.step, grid.day)?,
        )
    }

    /// Resolves a period and checks that it has ended on `today` (a bill run's check).
    pub fn billable_period(&self, spec: &PeriodSpec, today: Date) -> Result<Period, BillingError> {
        let period = self.resolve_period(spec)?;
        if period_has_ended(&period, today) {
            Ok(period)
        } else {
            Err(BillingError::PeriodNotEnded {
                end: period.end,
                today,
            })
        }
    }
}

/// Whether the period is over on `today` (its last day is before `today`).
pub fn period_has_ended(period: &Period, today: Date) -> bool {
    today >= period.end
}

/// Finds a cycle by id (`billing.unknown_cycle` otherwise).
pub fn find_cycle<'a>(
    cycles: &'a [BillCycle],
    id: &BillCycleId,
) -> Result<&'a BillCycle, BillingError> {
    cycles
        .iter()
        .find(|c| c.id == *id)
        .ok_or_else(|| BillingError::UnknownCycle(id.clone()))
}

/// A period as an API or bill run names it: a key such as `"2026-10"`, or explicit dates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PeriodSpec {
    /// `YYYY-MM`, `YYYY-Qn`, `YYYY` or `YYYY-Www`.
    Key(String),
    /// Explicit `{ "start": ..., "end": ... }`.
    Range(Period),
}
