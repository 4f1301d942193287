//! QuestDB's LIMIT: `LIMIT n`, `LIMIT -n` (last n rows), `LIMIT lo, hi`
//! (rows lo+1..=hi), with negative bounds counting from the end. The same
//! rules serve the `limit` parameter of `/exec` and `/exp`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QdbLimit {
    pub lo: i64,
    pub hi: Option<i64>,
}

/// Where a QuestDB LIMIT's rows lie, so a streamed result needs to hold
/// at most the limit's own size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitPlan {
    /// Rows `skip..skip + take` from the start.
    Window { skip: usize, take: usize },
    /// Within the last `keep` rows; which ones, `range` says once the
    /// total is known.
    Tail { keep: usize },
    /// From row `skip` to the end, except the last `last` rows.
    AllButLast { skip: usize, last: usize },
}

impl QdbLimit {
    /// Parses the HTTP form: `n` or `lo,hi`.
    pub fn parse_param(s: &str) -> Option<QdbLimit> {
        let mut parts = s.splitn(2, ',');
        let a = parts.next()?.trim();
        match parts.next() {
            None => Some(QdbLimit {
                lo: a.parse().ok()?,
                hi: None,
            }),
            Some(b) => {
                let b = b.trim();
                let lo = if a.is_empty() { 0 } else { a.parse().ok()? };
                let hi = if b.is_empty() {
                    None
                } else {
                    Some(b.parse().ok()?)
                };
                Some(QdbLimit { lo, hi })
            }
        }
    }

    /// Whether DataFusion can apply it natively (a plain `LIMIT n`).
    pub fn as_plain(&self) -> Option<usize> {
        match self.hi {
            None | Some(0) if self.lo >= 0 => Some(self.lo as usize),
            _ => None,
        }
    }

    /// How the selected rows can be found while the result streams.
    pub fn plan(&self) -> LimitPlan {
        match self.hi {
            None | Some(0) if self.lo >= 0 => LimitPlan::Window {
                skip: 0,
                take: self.lo as usize,
            },
            Some(hi) if self.lo >= 0 && hi >= 0 => LimitPlan::Window {
                skip: self.lo.min(hi) as usize,
                take: self.lo.abs_diff(hi) as usize,
            },
            Some(hi) if self.lo >= 0 => LimitPlan::AllButLast {
                skip: self.lo as usize,
                last: hi.unsigned_abs() as usize,
            },
            // A negative `lo`: every selected row is among the last |lo|
            // (or |hi|, if larger).
            hi => LimitPlan::Tail {
                keep: self
                    .lo
                    .unsigned_abs()
                    .max(hi.map_or(0, |h| if h < 0 { h.unsigned_abs() } else { 0 }))
                    as usize,
            },
        }
    }

    /// The half-open row range `[start, end)` selected from `total` rows.
    pub fn range(&self, total: usize) -> (usize, usize) {
        let n = total as i64;
        let clamp = |v: i64| v.clamp(0, n) as usize;
        let (lo, hi) = match self.hi {
            None | Some(0) => {
                if self.lo >= 0 {
                    (0, self.lo)
                } else {
                    (n + self.lo, n)
                }
            }
            Some(hi) => {
                let (mut lo, mut hi) = (self.lo, hi);
                if lo >= 0 && hi >= 0 {
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    (lo, hi)
                } else if lo < 0 && hi < 0 {
                    // [-m, -n): m is the larger magnitude.
                    if lo > hi {
                        std::mem::swap(&mut lo, &mut hi);
                    }
                    (n + lo, n + hi)
                } else if lo >= 0 {
                    (lo, n + hi)
                } else {
                    (n + lo, hi)
                }
            }
        };
        let (s, e) = (clamp(lo), clamp(hi));
        if s > e { (s, s) } else { (s, e) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(l: QdbLimit) -> Vec<usize> {
        let (s, e) = l.range(10);
        (s + 1..=e).collect()
    }

    /// The streamed plan selects what `range` does, for every form.
    #[test]
    fn plans_agree_with_ranges() {
        for lo in -12i64..=12 {
            for hi in [
                None,
                Some(0),
                Some(-12),
                Some(-3),
                Some(-1),
                Some(1),
                Some(4),
                Some(12),
            ] {
                let l = QdbLimit { lo, hi };
                for total in [0usize, 1, 5, 10, 20] {
                    let (s, e) = l.range(total);
                    let got = match l.plan() {
                        LimitPlan::Window { skip, take } => {
                            (skip.min(total), (skip + take).min(total))
                        }
                        LimitPlan::Tail { keep } => {
                            assert!(s >= total.saturating_sub(keep) || s == e, "{l:?} {total}");
                            (s, e)
                        }
                        LimitPlan::AllButLast { skip, last } => {
                            let end = total.saturating_sub(last);
                            (skip.min(end), end)
                        }
                    };
                    let norm = |(a, b): (usize, usize)| if a >= b { (0, 0) } else { (a, b) };
                    assert_eq!(norm(got), norm((s, e)), "{l:?} of {total}");
                }
            }
        }
    }

    #[test]
    fn questdb_examples() {
        assert_eq!(rows(QdbLimit { lo: 3, hi: None }), vec![1, 2, 3]);
        assert_eq!(rows(QdbLimit { lo: -2, hi: None }), vec![9, 10]);
        assert_eq!(
            rows(QdbLimit {
                lo: 2,
                hi: 5.into()
            }),
            vec![3, 4, 5]
        );
        assert_eq!(
            rows(QdbLimit {
                lo: 5,
                hi: 2.into()
            }),
            vec![3, 4, 5]
        );
        assert_eq!(
            rows(QdbLimit {
                lo: -4,
                hi: Some(-1)
            }),
            vec![7, 8, 9]
        );
        assert_eq!(
            rows(QdbLimit {
                lo: 2,
                hi: Some(-2)
            }),
            vec![3, 4, 5, 6, 7, 8]
        );
        assert_eq!(rows(QdbLimit { lo: 4, hi: Some(0) }), vec![1, 2, 3, 4]);
        assert_eq!(rows(QdbLimit { lo: 20, hi: None }).len(), 10);
    }

    #[test]
    fn http_param() {
        assert_eq!(
            QdbLimit::parse_param("10"),
            Some(QdbLimit { lo: 10, hi: None })
        );
        assert_eq!(
            QdbLimit::parse_param("10,20"),
            Some(QdbLimit {
                lo: 10,
                hi: Some(20)
            })
        );
        assert_eq!(QdbLimit::parse_param("x"), None);
    }
}
