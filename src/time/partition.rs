//! Time partition units and partition names, QuestDB's: `2010-07-05` (DAY),
//! `2010-07-05T13` (HOUR), `2010-W27` (WEEK, ISO week), `2010-07` (MONTH),
//! `2010` (YEAR), `default` (NONE).

use chrono::{DateTime, Datelike, Timelike};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PartitionBy {
    None,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

const MICROS_PER_HOUR: i64 = 3_600_000_000;
const MICROS_PER_DAY: i64 = 24 * MICROS_PER_HOUR;

impl PartitionBy {
    /// Parses a unit name, case-insensitively.
    pub fn parse(s: &str) -> Option<PartitionBy> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NONE" => PartitionBy::None,
            "HOUR" => PartitionBy::Hour,
            "DAY" => PartitionBy::Day,
            "WEEK" => PartitionBy::Week,
            "MONTH" => PartitionBy::Month,
            "YEAR" => PartitionBy::Year,
            _ => return None,
        })
    }

    pub fn name(&self) -> &'static str {
        match self {
            PartitionBy::None => "NONE",
            PartitionBy::Hour => "HOUR",
            PartitionBy::Day => "DAY",
            PartitionBy::Week => "WEEK",
            PartitionBy::Month => "MONTH",
            PartitionBy::Year => "YEAR",
        }
    }

    /// The start (UTC microseconds) of the partition holding `micros`. Two
    /// timestamps share a partition exactly when their floors are equal.
    #[inline]
    pub fn floor(&self, micros: i64) -> i64 {
        match self {
            PartitionBy::None => i64::MIN,
            PartitionBy::Hour => micros.div_euclid(MICROS_PER_HOUR) * MICROS_PER_HOUR,
            PartitionBy::Day => micros.div_euclid(MICROS_PER_DAY) * MICROS_PER_DAY,
            PartitionBy::Week => {
                // 1970-01-01 was a Thursday; ISO weeks start on Monday.
                let day = micros.div_euclid(MICROS_PER_DAY);
                let monday = day - (day + 3).rem_euclid(7);
                monday * MICROS_PER_DAY
            }
            PartitionBy::Month | PartitionBy::Year => {
                let dt = to_datetime(micros);
                let month = if *self == PartitionBy::Year {
                    1
                } else {
                    dt.month()
                };
                let start = chrono::NaiveDate::from_ymd_opt(dt.year(), month, 1)
                    .expect("valid first of month")
                    .and_hms_opt(0, 0, 0)
                    .expect("midnight");
                start.and_utc().timestamp_micros()
            }
        }
    }

    /// The start of the partition after the one starting at `floor`
    /// (where that one ends).
    pub fn next(&self, floor: i64) -> i64 {
        match self {
            PartitionBy::None => i64::MAX,
            PartitionBy::Hour => floor + MICROS_PER_HOUR,
            PartitionBy::Day => floor + MICROS_PER_DAY,
            PartitionBy::Week => floor + 7 * MICROS_PER_DAY,
            // From the first of a month 32 days land in the next month, and
            // from January 1st 366 days in the next year.
            PartitionBy::Month => self.floor(floor + 32 * MICROS_PER_DAY),
            PartitionBy::Year => self.floor(floor + 366 * MICROS_PER_DAY),
        }
    }

    /// The directory name of the partition holding `micros`.
    pub fn partition_name(&self, micros: i64) -> String {
        if *self == PartitionBy::None {
            return "default".to_string();
        }
        let dt = to_datetime(micros);
        match self {
            PartitionBy::None => unreachable!(),
            PartitionBy::Hour => format!(
                "{:04}-{:02}-{:02}T{:02}",
                dt.year(),
                dt.month(),
                dt.day(),
                dt.hour()
            ),
            PartitionBy::Day => format!("{:04}-{:02}-{:02}", dt.year(), dt.month(), dt.day()),
            PartitionBy::Week => {
                let w = dt.iso_week();
                format!("{:04}-W{:02}", w.year(), w.week())
            }
            PartitionBy::Month => format!("{:04}-{:02}", dt.year(), dt.month()),
            PartitionBy::Year => format!("{:04}", dt.year()),
        }
    }
}

fn to_datetime(micros: i64) -> DateTime<chrono::Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(s)
            .unwrap()
            .timestamp_micros()
    }

    #[test]
    fn next_partition_starts() {
        let t = ts("2024-02-10T05:00:00Z");
        for (unit, want) in [
            (PartitionBy::Hour, "2024-02-10T06:00:00Z"),
            (PartitionBy::Day, "2024-02-11T00:00:00Z"),
            (PartitionBy::Week, "2024-02-12T00:00:00Z"),
            (PartitionBy::Month, "2024-03-01T00:00:00Z"),
            (PartitionBy::Year, "2025-01-01T00:00:00Z"),
        ] {
            assert_eq!(unit.next(unit.floor(t)), ts(want), "{unit:?}");
        }
    }

    #[test]
    fn names_follow_questdb() {
        let t = ts("2010-07-05T13:45:00Z");
        assert_eq!(PartitionBy::Hour.partition_name(t), "2010-07-05T13");
        assert_eq!(PartitionBy::Day.partition_name(t), "2010-07-05");
        assert_eq!(PartitionBy::Week.partition_name(t), "2010-W27");
        assert_eq!(PartitionBy::Month.partition_name(t), "2010-07");
        assert_eq!(PartitionBy::Year.partition_name(t), "2010");
        assert_eq!(PartitionBy::None.partition_name(t), "default");
    }

    #[test]
    fn floors_agree_with_names() {
        for unit in [
            PartitionBy::Hour,
            PartitionBy::Day,
            PartitionBy::Week,
            PartitionBy::Month,
            PartitionBy::Year,
        ] {
            for s in [
                "1969-12-31T23:59:59Z",
                "2010-07-05T13:45:00Z",
                "2012-02-29T00:00:00Z",
                "2021-01-03T10:00:00Z",
            ] {
                let t = ts(s);
                let f = unit.floor(t);
                assert!(f <= t);
                assert_eq!(
                    unit.partition_name(f),
                    unit.partition_name(t),
                    "{unit:?} {s}"
                );
                assert_ne!(
                    unit.partition_name(f - 1),
                    unit.partition_name(t),
                    "{unit:?} {s}"
                );
            }
        }
    }
}
