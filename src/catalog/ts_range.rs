//! The designated-timestamp range a scan's filters allow, which files
//! meet it and about how many of their rows fall inside.

use datafusion::common::ScalarValue;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::storage::DataFile;

/// An inclusive range of designated timestamps (UTC microseconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TsRange {
    pub lo: i64,
    pub hi: i64,
}

impl TsRange {
    pub const ALL: TsRange = TsRange {
        lo: i64::MIN,
        hi: i64::MAX,
    };

    /// The rows of `f` inside the range, if they are spread evenly over
    /// the file's time range (all of them when the file has none).
    pub fn share_of(&self, f: &DataFile) -> u64 {
        let (Some(min), Some(max)) = (f.min_ts, f.max_ts) else {
            return f.rows;
        };
        let span = (max as i128 - min as i128).max(1);
        let inside = (max.min(self.hi) as i128 - min.max(self.lo) as i128 + 1).clamp(0, span);
        ((f.rows as i128 * inside).div_euclid(span) as u64).min(f.rows)
    }

    pub fn meets(&self, f: &DataFile) -> bool {
        match (f.min_ts, f.max_ts) {
            (Some(min), Some(max)) => max >= self.lo && min <= self.hi,
            _ => true,
        }
    }

    /// Whether condition `e` says no more than the range it gives: a bound
    /// on `ts` by a microsecond literal (so on a microsecond column), which
    /// the range keeps exactly.
    pub fn covers(e: &Expr, ts: &str) -> bool {
        let micros = |v: &Expr| {
            matches!(
                v,
                Expr::Literal(ScalarValue::TimestampMicrosecond(Some(_), _), _)
            )
        };
        let column = |c: &Expr| matches!(c, Expr::Column(c) if c.name == ts);
        match e {
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                matches!(
                    op,
                    Operator::Eq | Operator::Gt | Operator::GtEq | Operator::Lt | Operator::LtEq
                ) && ((column(left) && micros(right)) || (micros(left) && column(right)))
            }
            Expr::Between(b) => !b.negated && column(&b.expr) && micros(&b.low) && micros(&b.high),
            _ => false,
        }
    }

    /// Narrows the range by every filter of the form `ts <op> literal` or
    /// `ts BETWEEN a AND b`. Anything else leaves it as it is (the filter is
    /// still applied to the rows by DataFusion).
    pub fn from_filters(filters: &[Expr], ts: &str) -> TsRange {
        let mut r = TsRange::ALL;
        for f in filters {
            r.narrow(f, ts);
        }
        r
    }

    fn narrow(&mut self, e: &Expr, ts: &str) {
        match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::And,
                right,
            }) => {
                self.narrow(left, ts);
                self.narrow(right, ts);
            }
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let (op, v) = match (left.as_ref(), right.as_ref()) {
                    (Expr::Column(c), Expr::Literal(v, _)) if c.name == ts => (*op, v),
                    (Expr::Literal(v, _), Expr::Column(c)) if c.name == ts => match op.swap() {
                        Some(op) => (op, v),
                        None => return,
                    },
                    _ => return,
                };
                let Some(t) = scalar_micros(v) else { return };
                // A strict bound excludes the literal itself when it is
                // exact in microseconds (an interval's end: `ts < next
                // day` keeps the next day's partition out).
                let exact = !matches!(v, ScalarValue::TimestampNanosecond(Some(ns), _) if ns.rem_euclid(1_000) != 0);
                // A nanosecond row just after the literal's microsecond
                // rounds down to it: `>` keeps that microsecond.
                let nanos = matches!(v, ScalarValue::TimestampNanosecond(..));
                match op {
                    Operator::Eq => {
                        self.lo = self.lo.max(t);
                        self.hi = self.hi.min(t);
                    }
                    Operator::Gt if !nanos => self.lo = self.lo.max(t.saturating_add(1)),
                    Operator::Gt | Operator::GtEq => self.lo = self.lo.max(t),
                    Operator::Lt if exact => self.hi = self.hi.min(t.saturating_sub(1)),
                    Operator::Lt | Operator::LtEq => self.hi = self.hi.min(t),
                    _ => {}
                }
            }
            Expr::Between(b) if !b.negated => {
                if let (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _)) =
                    (b.expr.as_ref(), b.low.as_ref(), b.high.as_ref())
                    && c.name == ts
                {
                    if let Some(lo) = scalar_micros(lo) {
                        self.lo = self.lo.max(lo);
                    }
                    if let Some(hi) = scalar_micros(hi) {
                        self.hi = self.hi.min(hi);
                    }
                }
            }
            _ => {}
        }
    }
}

/// A timestamp literal as UTC microseconds. Nanoseconds round down, which
/// only ever widens the range kept.
fn scalar_micros(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::TimestampSecond(Some(s), _) => s.checked_mul(1_000_000),
        ScalarValue::TimestampMillisecond(Some(ms), _) => ms.checked_mul(1_000),
        ScalarValue::TimestampMicrosecond(Some(us), _) => Some(*us),
        ScalarValue::TimestampNanosecond(Some(ns), _) => Some(ns.div_euclid(1_000)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn file(path: &str, min: i64, max: i64) -> DataFile {
        DataFile::spanning(path, 1, min, max)
    }

    #[test]
    fn range_from_filters() {
        use datafusion::prelude::{col, lit};
        let t = |us: i64| {
            lit(ScalarValue::TimestampMicrosecond(
                Some(us),
                Some(Arc::from("UTC")),
            ))
        };
        let r = TsRange::from_filters(
            &[
                col("ts").gt_eq(t(100)),
                col("ts").lt(t(200)),
                col("x").gt(lit(1)),
            ],
            "ts",
        );
        // `< 200` keeps 199 µs at most: a file starting at 200 is out.
        assert_eq!(r, TsRange { lo: 100, hi: 199 });
        assert!(!r.meets(&file("a", 0, 99)));
        assert!(r.meets(&file("b", 150, 300)));
        assert!(!r.meets(&file("c", 200, 300)));
        let mut big = file("d", 0, 999);
        big.rows = 1000;
        assert_eq!(
            r.share_of(&big),
            100,
            "a tenth of its time range, a tenth of its rows"
        );
        assert_eq!(TsRange::ALL.share_of(&big), 1000);
        assert_eq!(r.share_of(&file("e", 150, 150)), 1);
        // A TIMESTAMP_NS column: `> 100 µs` keeps 100 µs, where 100.5 µs
        // (100,500 ns) rounds down to.
        let ns = lit(ScalarValue::TimestampNanosecond(
            Some(100_000),
            Some(Arc::from("UTC")),
        ));
        let r = TsRange::from_filters(&[col("ts").gt(ns.clone())], "ts");
        assert_eq!(r.lo, 100);
        // What the range covers exactly: microsecond bounds on `ts`.
        assert!(TsRange::covers(&col("ts").lt(t(5)), "ts"));
        assert!(TsRange::covers(&t(5).lt_eq(col("ts")), "ts"));
        assert!(
            !TsRange::covers(&col("ts").gt(ns), "ts"),
            "nanoseconds round"
        );
        assert!(!TsRange::covers(&col("other").lt(t(5)), "ts"));
        assert!(!TsRange::covers(&col("ts").not_eq(t(5)), "ts"));
    }
}
