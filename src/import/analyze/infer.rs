//! Type inference: QuestDB's probes in priority order, each value judged
//! as accepted, refused (a row error under the majority rule) or vetoed
//! (it would parse but change, so the column never gets the type).

use super::super::format::{Pattern, parse_iso};
use crate::config::TextLoaderFormats;
use crate::schema::ColumnType;
use crate::schema::values::{self, parse_float, parse_int, parse_ipv4, parse_uuid};

/// A column type inferred from the sample; timestamp-like types keep the
/// pattern that matched.
#[derive(Debug, Clone)]
pub struct Detected {
    pub ty: ColumnType,
    pub pattern: Option<Pattern>,
    /// The type came from inference (not from the caller or FORMAT): its
    /// decoder then rejects values inference would not have kept.
    pub inferred: bool,
}

impl Detected {
    pub(super) fn given(ty: ColumnType, pattern: Option<Pattern>) -> Detected {
        Detected {
            ty,
            pattern,
            inferred: false,
        }
    }
}

/// Share of a column's sampled non-null values, in percent, that must
/// parse as a type for the column to get it; the rest become row errors.
/// Below it the column is VARCHAR, which keeps every value.
pub const INFER_MAJORITY_PERCENT: usize = 95;

/// One type probe, in QuestDB's priority order: the first of the probes
/// accepting the most values wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Probe {
    Char,
    Int,
    Long,
    Double,
    Boolean,
    Uuid,
    Ipv4,
    /// `text_loader.json`'s date patterns, by index.
    Date(usize),
    /// `text_loader.json`'s timestamp patterns, by index.
    Timestamp(usize),
    /// ISO-8601 text of any precision, `T` or space ([`parse_iso`]),
    /// kept in microseconds; then in nanoseconds when it has more digits.
    Iso,
    IsoNs,
}

/// How one value fares under one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Accept,
    /// Does not parse: under the majority rule, a row error.
    Reject,
    /// Parses, but the value would change (`08123` as a number): the
    /// column never gets this type.
    Veto,
}

/// The probes, in QuestDB's priority order.
pub(super) struct Probes {
    dates: Vec<Pattern>,
    timestamps: Vec<Pattern>,
    order: Vec<Probe>,
}

impl Probes {
    pub(super) fn new(formats: &TextLoaderFormats) -> Probes {
        let compile = |list: &[crate::config::TimestampFormat]| {
            list.iter()
                .filter_map(|f| Pattern::compile(&f.format).ok())
                .collect::<Vec<_>>()
        };
        let dates = compile(&formats.date);
        let timestamps = compile(&formats.timestamp);
        let mut order = vec![
            Probe::Char,
            Probe::Int,
            Probe::Long,
            Probe::Double,
            Probe::Boolean,
            Probe::Uuid,
            Probe::Ipv4,
        ];
        order.extend((0..dates.len()).map(Probe::Date));
        order.extend((0..timestamps.len()).map(Probe::Timestamp));
        order.extend([Probe::Iso, Probe::IsoNs]);
        Probes {
            dates,
            timestamps,
            order,
        }
    }

    fn judge(&self, probe: Probe, v: &[u8]) -> Verdict {
        use Verdict::{Accept, Reject, Veto};
        let ok = |b: bool| if b { Accept } else { Reject };
        // Text that parses but would not keep its meaning in `ty`.
        let fits = |ty: ColumnType| values::inferred_text_fits(ty, v).is_ok();
        match probe {
            Probe::Char => ok(v.len() == 1 && v[0].is_ascii_alphabetic()),
            Probe::Int | Probe::Long => {
                let Some(x) = parse_int(v) else {
                    return Reject;
                };
                if probe == Probe::Int && i32::try_from(x).is_err() {
                    return Reject;
                }
                if fits(ColumnType::Long) { Accept } else { Veto }
            }
            Probe::Double => match parse_float(v) {
                None => Reject,
                Some(x) if x.is_infinite() && v.iter().any(u8::is_ascii_digit) => Veto,
                Some(x) if !fits(ColumnType::Double) || !values::float_round_trips(v, x) => Veto,
                Some(_) => Accept,
            },
            Probe::Boolean => {
                ok(v.eq_ignore_ascii_case(b"true") || v.eq_ignore_ascii_case(b"false"))
            }
            Probe::Uuid => match std::str::from_utf8(v).ok().and_then(parse_uuid) {
                // Only the canonical 8-4-4-4-12 form reads back as written.
                Some(_) if v.len() == 36 && v[8] == b'-' => Accept,
                Some(_) => Veto,
                None => Reject,
            },
            Probe::Ipv4 => match std::str::from_utf8(v).ok().and_then(parse_ipv4) {
                Some(_) if v.contains(&b'.') && fits(ColumnType::Ipv4) => Accept,
                Some(_) if v.contains(&b'.') => Veto,
                _ => Reject,
            },
            Probe::Date(i) => match self.dates[i].parse(v) {
                Some(n) if n % 1_000_000 == 0 => Accept,
                Some(_) => Veto,
                None => Reject,
            },
            Probe::Timestamp(i) => {
                let p = &self.timestamps[i];
                match p.parse(v) {
                    Some(n) if p.nanos || n % 1_000 == 0 => Accept,
                    Some(_) => Veto,
                    None => Reject,
                }
            }
            Probe::Iso => match parse_iso(v) {
                Some(n) if n % 1_000 == 0 => Accept,
                Some(_) => Veto,
                None => Reject,
            },
            Probe::IsoNs => ok(parse_iso(v).is_some()),
        }
    }

    fn detected(&self, probe: Probe) -> Detected {
        let (ty, pattern) = match probe {
            Probe::Char => (ColumnType::Char, None),
            Probe::Int => (ColumnType::Int, None),
            Probe::Long => (ColumnType::Long, None),
            Probe::Double => (ColumnType::Double, None),
            Probe::Boolean => (ColumnType::Boolean, None),
            Probe::Uuid => (ColumnType::Uuid, None),
            Probe::Ipv4 => (ColumnType::Ipv4, None),
            Probe::Date(i) => (ColumnType::Date, Some(self.dates[i].clone())),
            Probe::Timestamp(i) => {
                let pat = self.timestamps[i].clone();
                (pat.column_type(), Some(pat))
            }
            Probe::Iso => (ColumnType::Timestamp, None),
            Probe::IsoNs => (ColumnType::TimestampNs, None),
        };
        Detected {
            ty,
            pattern,
            inferred: true,
        }
    }

    /// Types of every column over `records` (field values, `None` = null).
    /// A probe that any value vetoes is out; of the rest, the one accepting
    /// the most values wins (the first in priority order on a tie) when it
    /// accepts at least `majority` percent of the non-null values. CHAR
    /// must accept all of them: a text column never rejects a row.
    pub(super) fn detect(
        &self,
        records: &[Vec<Option<Vec<u8>>>],
        width: usize,
        majority: usize,
    ) -> Vec<Option<Detected>> {
        (0..width)
            .map(|c| {
                let mut accepted = vec![0usize; self.order.len()];
                let mut vetoed = vec![false; self.order.len()];
                let mut seen = 0usize;
                for r in records {
                    let Some(Some(v)) = r.get(c) else { continue };
                    seen += 1;
                    for (k, &probe) in self.order.iter().enumerate() {
                        if vetoed[k] {
                            continue;
                        }
                        match self.judge(probe, v) {
                            Verdict::Accept => accepted[k] += 1,
                            Verdict::Reject => {}
                            Verdict::Veto => vetoed[k] = true,
                        }
                    }
                }
                if seen == 0 {
                    return None;
                }
                let mut best: Option<(usize, usize)> = None;
                for (k, &probe) in self.order.iter().enumerate() {
                    let need = if probe == Probe::Char { 100 } else { majority };
                    if vetoed[k] || accepted[k] * 100 < seen * need {
                        continue;
                    }
                    if best.is_none_or(|(_, n)| accepted[k] > n) {
                        best = Some((k, accepted[k]));
                    }
                }
                Some(match best {
                    Some((k, _)) => self.detected(self.order[k]),
                    None => Detected {
                        ty: ColumnType::Varchar,
                        pattern: None,
                        inferred: true,
                    },
                })
            })
            .collect()
    }
}

pub(super) fn is_text(d: &Option<Detected>) -> bool {
    match d {
        None => true,
        Some(d) => matches!(d.ty, ColumnType::Varchar | ColumnType::Char),
    }
}
