//! Rewrites of QuestDB's time-series syntax at the token level, before
//! sqlparser reads the statement: `x [NOT] IN '<interval>'` becomes
//! `[NOT] (x >= '<lo>' AND x < '<hi>')` (see [`crate::time::interval`]),
//! and QuestDB's clauses sqlparser cannot read are taken out, typed, and
//! tied to the AST node they belong to by a place in the text: `SAMPLE BY
//! …` and `LATEST ON | BY …` (to their SELECT), `ASOF | LT | SPLICE JOIN`
//! (to the joined table). `crate::query` plans them.

use datafusion::sql::sqlparser::ast::Ident;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan, Whitespace};

use super::errors::offset_of;
use crate::error::{Error, Result};
use crate::sql::{Align, Fill, LatestOn, SampleBy, TimeJoin, TimeJoinKind};
use crate::time::Stride;
use crate::time::interval;

fn is_ws(t: &TokenWithSpan) -> bool {
    matches!(t.token, Token::Whitespace(_))
}

fn is_keyword(t: &TokenWithSpan, k: Keyword) -> bool {
    matches!(&t.token, Token::Word(w) if w.keyword == k)
}

/// The index of the previous token that is not whitespace.
fn prev(tokens: &[TokenWithSpan], mut i: usize) -> Option<usize> {
    while i > 0 {
        i -= 1;
        if !is_ws(&tokens[i]) {
            return Some(i);
        }
    }
    None
}

fn next(tokens: &[TokenWithSpan], mut i: usize) -> Option<usize> {
    while i + 1 < tokens.len() {
        i += 1;
        if !is_ws(&tokens[i]) {
            return Some(i);
        }
    }
    None
}

/// Applies the rewrites to a statement's tokens.
pub(super) fn rewrite(sql: &str, mut tokens: Vec<TokenWithSpan>) -> Result<Vec<TokenWithSpan>> {
    let mut i = 0;
    while i < tokens.len() {
        if is_keyword(&tokens[i], Keyword::IN)
            && let Some(s) = next(&tokens, i)
            && let Token::SingleQuotedString(text) = &tokens[s].token
            && let Some(parsed) = interval::parse(text)
        {
            let (lo, hi) = parsed.map_err(|m| Error::Syntax {
                message: m,
                position: offset_of(sql, tokens[s].span.start),
            })?;
            // The operand: a column, maybe qualified (`t.ts`).
            let Some(mut start) = prev(&tokens, i) else {
                i += 1;
                continue;
            };
            let negated = is_keyword(&tokens[start], Keyword::NOT);
            if negated {
                match prev(&tokens, start) {
                    Some(p) => start = p,
                    None => {
                        i += 1;
                        continue;
                    }
                }
            }
            let end = start;
            if !matches!(tokens[end].token, Token::Word(_)) {
                i += 1;
                continue;
            }
            while let Some(dot) = prev(&tokens, start)
                && tokens[dot].token == Token::Period
                && let Some(w) = prev(&tokens, dot)
                && matches!(tokens[w].token, Token::Word(_))
            {
                start = w;
            }
            let operand: Vec<TokenWithSpan> = tokens[start..=end].to_vec();
            let span = tokens[i].span;
            let t = |token: Token| TokenWithSpan::new(token, span);
            let mut out = Vec::new();
            if negated {
                out.push(t(Token::make_keyword("NOT")));
            }
            out.push(t(Token::LParen));
            out.extend(operand.iter().cloned());
            out.push(t(Token::GtEq));
            out.push(t(Token::SingleQuotedString(interval::literal(lo))));
            out.push(t(Token::make_keyword("AND")));
            out.extend(operand);
            out.push(t(Token::Lt));
            out.push(t(Token::SingleQuotedString(interval::literal(hi))));
            out.push(t(Token::RParen));
            let n = out.len();
            tokens.splice(start..=s, out);
            i = start + n;
            continue;
        }
        i += 1;
    }
    Ok(tokens)
}

fn word_is(t: &TokenWithSpan, w: &str) -> bool {
    matches!(&t.token, Token::Word(x) if x.quote_style.is_none() && x.value.eq_ignore_ascii_case(w))
}

/// Takes every `SAMPLE BY …` clause (and a GROUP BY after it, which only
/// repeats the keys) out of the tokens. Each clause knows the SELECT it
/// ends by where that SELECT starts in the text, which its AST node keeps.
pub(super) fn take_samples(
    sql: &str,
    mut tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<SampleBy>)> {
    let mut samples = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some(by) = next(&tokens, i) else { break };
        if !(word_is(&tokens[i], "sample") && word_is(&tokens[by], "by")) {
            i += 1;
            continue;
        }
        let position = offset_of(sql, tokens[i].span.start);
        let Some(select) = owning_select(&tokens, i) else {
            return Err(Error::Syntax {
                message: "SAMPLE BY ends a SELECT".into(),
                position,
            });
        };
        if let Some(g) = group_by_before(&tokens, select, i) {
            return Err(Error::Syntax {
                message:
                    "SAMPLE BY groups by the selected keys itself: GROUP BY may only follow it"
                        .into(),
                position: offset_of(sql, tokens[g].span.start),
            });
        }
        let end = clause_end(
            &tokens,
            by + 1,
            &["order", "limit", "union", "except", "intersect", "group"],
        );
        // QuestDB accepts a GROUP BY after SAMPLE BY that repeats the
        // timestamp and the keys (`SAMPLE BY 1h GROUP BY ts, host`, as
        // TSBS writes it): the sampled select groups by them already, so
        // the list is read past, to the next clause at this depth.
        let stop = if end < tokens.len()
            && word_is(&tokens[end], "group")
            && next(&tokens, end).is_some_and(|b| word_is(&tokens[b], "by"))
        {
            clause_end(
                &tokens,
                end,
                &["order", "limit", "union", "except", "intersect"],
            )
        } else {
            end
        };
        let clause: Vec<TokenWithSpan> = tokens[by + 1..end]
            .iter()
            .filter(|t| !is_ws(t))
            .cloned()
            .collect();
        let mut sample = sample_clause(sql, &clause, position)?;
        sample.select = tokens[select].span.start;
        samples.push(sample);
        tokens.splice(
            i..stop,
            [TokenWithSpan::new(
                Token::Whitespace(Whitespace::Space),
                tokens[i].span,
            )],
        );
        i += 1;
    }
    Ok((tokens, samples))
}

/// The first token at or after `from`, at the depth of `from`, that ends a
/// clause: one of `words`, a closing parenthesis, `;` or the end.
fn clause_end(tokens: &[TokenWithSpan], from: usize, words: &[&str]) -> usize {
    let mut end = from;
    let mut depth = 0i32;
    while end < tokens.len() {
        let t = &tokens[end];
        match &t.token {
            Token::LParen => depth += 1,
            Token::RParen if depth == 0 => break,
            Token::RParen => depth -= 1,
            Token::SemiColon | Token::EOF if depth == 0 => break,
            Token::Word(_) if end > from && depth == 0 && words.iter().any(|w| word_is(t, w)) => {
                break;
            }
            _ => {}
        }
        end += 1;
    }
    end
}

/// The SELECT keyword a clause at `at` belongs to: the nearest one before
/// it at the same depth.
fn owning_select(tokens: &[TokenWithSpan], at: usize) -> Option<usize> {
    let mut depth = 0i32;
    let mut k = at;
    while k > 0 {
        k -= 1;
        match &tokens[k].token {
            Token::RParen => depth += 1,
            Token::LParen if depth == 0 => return None,
            Token::LParen => depth -= 1,
            Token::SemiColon if depth == 0 => return None,
            _ if depth == 0 && is_keyword(&tokens[k], Keyword::SELECT) => return Some(k),
            _ => {}
        }
    }
    None
}

/// A `GROUP BY` between a SELECT and its SAMPLE BY, at their depth.
fn group_by_before(tokens: &[TokenWithSpan], select: usize, sample: usize) -> Option<usize> {
    let mut depth = 0i32;
    for k in select..sample {
        match &tokens[k].token {
            Token::LParen => depth += 1,
            Token::RParen => depth -= 1,
            _ if depth == 0
                && word_is(&tokens[k], "group")
                && next(tokens, k).is_some_and(|b| word_is(&tokens[b], "by")) =>
            {
                return Some(k);
            }
            _ => {}
        }
    }
    None
}

/// The parts of a SAMPLE BY clause (its tokens after `BY`, no whitespace).
fn sample_clause(sql: &str, t: &[TokenWithSpan], position: usize) -> Result<SampleBy> {
    let mut r = ClauseReader {
        sql,
        t,
        position,
        k: 0,
    };
    let mut s = SampleBy {
        stride: r.stride()?,
        select: Location::empty(),
        fill: Vec::new(),
        align: Align::Calendar {
            offset: 0,
            zone: None,
        },
        from: None,
        to: None,
        position,
    };
    while r.k < t.len() {
        if r.word(r.k, "fill") {
            s.fill.extend(r.fills()?);
        } else if r.word(r.k, "align") {
            s.align = r.align()?;
        } else if r.word(r.k, "from") {
            s.from = Some(r.string_after("a timestamp expected")?);
        } else if r.word(r.k, "to") {
            s.to = Some(r.string_after("a timestamp expected")?);
        } else {
            return Err(r.err(r.k, "FILL, ALIGN TO, FROM or TO expected"));
        }
    }
    Ok(s)
}

/// A SAMPLE BY clause's tokens, read from `k` on; errors point at the
/// token they name, or at the clause when there is none.
struct ClauseReader<'a> {
    sql: &'a str,
    t: &'a [TokenWithSpan],
    position: usize,
    k: usize,
}

impl ClauseReader<'_> {
    fn err(&self, at: usize, m: &str) -> Error {
        Error::Syntax {
            message: m.to_string(),
            position: self
                .t
                .get(at)
                .map_or(self.position, |t| offset_of(self.sql, t.span.start)),
        }
    }

    fn word(&self, at: usize, w: &str) -> bool {
        self.t.get(at).is_some_and(|x| word_is(x, w))
    }

    fn string_at(&self, at: usize) -> Option<String> {
        match self.t.get(at).map(|t| &t.token) {
            Some(Token::SingleQuotedString(v)) => Some(v.clone()),
            _ => None,
        }
    }

    /// The quoted text after the keyword at `k` (FROM, TO); past both.
    fn string_after(&mut self, expected: &str) -> Result<String> {
        let v = self
            .string_at(self.k + 1)
            .ok_or_else(|| self.err(self.k + 1, expected))?;
        self.k += 2;
        Ok(v)
    }

    /// The stride: `1h` is a number and a word; `h` alone is one unit.
    fn stride(&mut self) -> Result<Stride> {
        let mut text = String::new();
        if let Some(Token::Number(n, _)) = self.t.first().map(|t| &t.token) {
            text.push_str(n);
            self.k = 1;
        }
        match self.t.get(self.k).map(|t| &t.token) {
            Some(Token::Word(w)) => text.push_str(&w.value),
            _ => return Err(self.err(self.k, "a sample interval such as 1h expected")),
        }
        self.k += 1;
        Stride::parse(&text).ok_or_else(|| {
            self.err(
                0,
                "invalid sample interval: a count and one of U T s m h d w M y expected",
            )
        })
    }

    /// `FILL(item, …)`, from FILL to past its `)`.
    fn fills(&mut self) -> Result<Vec<Fill>> {
        if self.t.get(self.k + 1).map(|t| &t.token) != Some(&Token::LParen) {
            return Err(self.err(self.k + 1, "'(' expected"));
        }
        self.k += 2;
        let mut fills = Vec::new();
        loop {
            fills.push(self.fill()?);
            self.k += 1;
            match self.t.get(self.k).map(|t| &t.token) {
                Some(Token::Comma) => self.k += 1,
                Some(Token::RParen) => {
                    self.k += 1;
                    return Ok(fills);
                }
                _ => return Err(self.err(self.k, "',' or ')' expected")),
            }
        }
    }

    /// One FILL item, at `k` (left on its last token).
    fn fill(&mut self) -> Result<Fill> {
        let keyword = "NONE, NULL, PREV, LINEAR or a constant expected";
        // Past the last token: the error points at the clause.
        let item = self
            .t
            .get(self.k)
            .ok_or_else(|| self.err(self.t.len(), "')' expected"))?;
        Ok(match &item.token {
            Token::Word(w) => match w.value.to_ascii_lowercase().as_str() {
                "none" => Fill::None,
                "null" => Fill::Null,
                "prev" => Fill::Prev,
                "linear" => Fill::Linear,
                _ => return Err(self.err(self.k, keyword)),
            },
            Token::Number(n, _) => Fill::Value(n.clone()),
            Token::Minus => match self.t.get(self.k + 1).map(|t| &t.token) {
                Some(Token::Number(n, _)) => {
                    self.k += 1;
                    Fill::Value(format!("-{n}"))
                }
                _ => return Err(self.err(self.k, "a number expected")),
            },
            Token::SingleQuotedString(v) => Fill::Value(format!("'{}'", v.replace('\'', "''"))),
            _ => return Err(self.err(self.k, keyword)),
        })
    }

    /// `ALIGN TO FIRST OBSERVATION` or `ALIGN TO CALENDAR [TIME ZONE 'z']
    /// [WITH OFFSET 'hh:mm']`, from ALIGN to past its end.
    fn align(&mut self) -> Result<Align> {
        if !self.word(self.k + 1, "to") {
            return Err(self.err(self.k + 1, "'to' expected"));
        }
        self.k += 2;
        if self.word(self.k, "first") {
            if !self.word(self.k + 1, "observation") {
                return Err(self.err(self.k + 1, "'observation' expected"));
            }
            self.k += 2;
            return Ok(Align::FirstObservation);
        }
        if !self.word(self.k, "calendar") {
            return Err(self.err(self.k, "'calendar' or 'first observation' expected"));
        }
        self.k += 1;
        let mut offset = 0;
        let mut zone = None;
        loop {
            if self.word(self.k, "time") {
                if !self.word(self.k + 1, "zone") {
                    return Err(self.err(self.k + 1, "'zone' expected"));
                }
                let v = self.string_at(self.k + 2).ok_or_else(|| {
                    self.err(self.k + 2, "a time zone such as 'Europe/Berlin' expected")
                })?;
                if crate::time::Zone::parse(&v).is_none() {
                    return Err(self.err(self.k + 2, &format!("invalid timezone: {v}")));
                }
                zone = Some(v);
                self.k += 3;
            } else if self.word(self.k, "with") {
                if !self.word(self.k + 1, "offset") {
                    return Err(self.err(self.k + 1, "'offset' expected"));
                }
                let v = self
                    .string_at(self.k + 2)
                    .ok_or_else(|| self.err(self.k + 2, "an offset such as '00:30' expected"))?;
                offset = parse_offset(&v).ok_or_else(|| {
                    self.err(self.k + 2, "an offset such as '00:30' or '-01:00' expected")
                })?;
                self.k += 3;
            } else {
                return Ok(Align::Calendar { offset, zone });
            }
        }
    }
}

/// `hh:mm` or `-hh:mm` as microseconds.
fn parse_offset(v: &str) -> Option<i64> {
    let (sign, rest) = match v.strip_prefix('-') {
        Some(r) => (-1, r),
        None => (1, v.strip_prefix('+').unwrap_or(v)),
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    (m < 60).then_some(sign * (h * 3_600_000_000 + m * 60_000_000))
}

/// Takes every `LATEST ON … PARTITION BY …` and `LATEST BY …` clause out
/// of the tokens. Each clause knows its SELECT by where that SELECT starts.
/// QuestDB's older form puts the WHERE after `LATEST BY keys`; that WHERE
/// (applied before the pick either way) moves in front of the clause.
pub(super) fn take_latest(
    sql: &str,
    mut tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<LatestOn>)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some(on) = next(&tokens, i) else { break };
        let latest_by = word_is(&tokens[i], "latest") && word_is(&tokens[on], "by");
        if !(word_is(&tokens[i], "latest") && (word_is(&tokens[on], "on") || latest_by)) {
            i += 1;
            continue;
        }
        let position = offset_of(sql, tokens[i].span.start);
        let err = |t: Option<&TokenWithSpan>, m: &str| Error::Syntax {
            message: m.to_string(),
            position: t.map_or(position, |t| offset_of(sql, t.span.start)),
        };
        let Some(select) = owning_select(&tokens, i) else {
            return Err(err(None, "LATEST ON ends a SELECT"));
        };
        let (ts, by) = if latest_by {
            (None, on)
        } else {
            let Some(ts_at) = next(&tokens, on) else {
                return Err(err(None, "timestamp column expected"));
            };
            let ts = match ident(&tokens[ts_at]) {
                Some(ts) => ts,
                None => return Err(err(Some(&tokens[ts_at]), "timestamp column expected")),
            };
            let part = next(&tokens, ts_at);
            let by = part.and_then(|p| next(&tokens, p));
            let (Some(part), Some(by)) = (part, by) else {
                return Err(err(None, "'partition by' expected"));
            };
            if !(word_is(&tokens[part], "partition") && word_is(&tokens[by], "by")) {
                return Err(err(Some(&tokens[part]), "'partition by' expected"));
            }
            (Some(ts), by)
        };
        let mut keys = Vec::new();
        let mut end = by;
        loop {
            let Some(k) = next(&tokens, end) else {
                return Err(err(None, "column expected"));
            };
            match ident(&tokens[k]) {
                Some(key) => keys.push(key),
                None => return Err(err(Some(&tokens[k]), "column expected")),
            }
            end = k;
            match next(&tokens, end) {
                Some(c) if tokens[c].token == Token::Comma => end = c,
                _ => break,
            }
        }
        found.push(LatestOn {
            select: tokens[select].span.start,
            ts,
            keys,
            position,
        });
        let space = TokenWithSpan::new(Token::Whitespace(Whitespace::Space), tokens[i].span);
        let filter = next(&tokens, end).filter(|w| is_keyword(&tokens[*w], Keyword::WHERE));
        match filter {
            Some(w) => {
                let stop = clause_end(
                    &tokens,
                    w,
                    &[
                        "order",
                        "limit",
                        "union",
                        "except",
                        "intersect",
                        "group",
                        "sample",
                    ],
                );
                let mut replacement: Vec<TokenWithSpan> = tokens[w..stop].to_vec();
                let m = replacement.len();
                replacement.push(space);
                tokens.splice(i..stop, replacement);
                i += m + 1;
            }
            None => {
                tokens.splice(i..=end, [space]);
                i += 1;
            }
        }
    }
    Ok((tokens, found))
}

/// A column name token as an identifier.
fn ident(t: &TokenWithSpan) -> Option<Ident> {
    match &t.token {
        Token::Word(w) => Some(Ident {
            value: w.value.clone(),
            quote_style: w.quote_style,
            span: t.span,
        }),
        _ => None,
    }
}

/// `a ASOF JOIN b [ON (k, …) | ON a.x = b.y …]`, `LT JOIN` and `SPLICE
/// JOIN`: sqlparser reads them as `a LEFT JOIN b [USING (k, …) | ON …]`;
/// each is recorded with where its joined table's name starts.
pub(super) fn take_time_joins(
    sql: &str,
    mut tokens: Vec<TokenWithSpan>,
) -> Result<(Vec<TokenWithSpan>, Vec<TimeJoin>)> {
    let mut found = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let Some(j) = next(&tokens, i) else { break };
        let kind = [
            ("asof", TimeJoinKind::Asof),
            ("lt", TimeJoinKind::Lt),
            ("splice", TimeJoinKind::Splice),
        ]
        .into_iter()
        .find(|(w, _)| word_is(&tokens[i], w))
        .map(|(_, k)| k);
        let Some(kind) = kind.filter(|_| word_is(&tokens[j], "join")) else {
            i += 1;
            continue;
        };
        let position = offset_of(sql, tokens[i].span.start);
        let span = tokens[i].span;
        let t = |token: Token| TokenWithSpan::new(token, span);
        tokens.splice(
            i..=j,
            [
                t(Token::make_keyword("LEFT")),
                t(Token::Whitespace(Whitespace::Space)),
                t(Token::make_keyword("JOIN")),
            ],
        );
        // The joined table: a name (maybe qualified) and an optional alias.
        let Some(name) = next(&tokens, i + 2) else {
            break;
        };
        if !matches!(tokens[name].token, Token::Word(_)) {
            return Err(Error::Syntax {
                message: "ASOF, LT and SPLICE JOIN join a table".into(),
                position: offset_of(sql, tokens[name].span.start),
            });
        }
        found.push(TimeJoin {
            kind,
            relation: tokens[name].span.start,
            position,
        });
        let mut k = name;
        while let Some(dot) = next(&tokens, k)
            && tokens[dot].token == Token::Period
            && let Some(w) = next(&tokens, dot)
        {
            k = w;
        }
        if let Some(a) = next(&tokens, k)
            && matches!(&tokens[a].token, Token::Word(w) if w.keyword == Keyword::NoKeyword || w.keyword == Keyword::AS)
        {
            k = a;
            if is_keyword(&tokens[a], Keyword::AS)
                && let Some(b) = next(&tokens, a)
            {
                k = b;
            }
        }
        // `ON (k1, k2)`: columns of the same name on both sides, which is
        // what USING says. `ON a.x = b.y …` stays as it is.
        if let Some(on) = next(&tokens, k).filter(|o| is_keyword(&tokens[*o], Keyword::ON))
            && let Some(open) = next(&tokens, on).filter(|o| tokens[*o].token == Token::LParen)
            && let Some(close) = column_list_end(&tokens, open)
        {
            tokens.splice(on..=on, [t(Token::make_keyword("USING"))]);
            i = close + 1;
        } else {
            i = k + 1;
        }
    }
    Ok((tokens, found))
}

/// The `)` that ends a list of column names opened at `open`, if the
/// parentheses hold only that.
fn column_list_end(tokens: &[TokenWithSpan], open: usize) -> Option<usize> {
    let mut p = open;
    loop {
        let w = next(tokens, p)?;
        if !matches!(tokens[w].token, Token::Word(_)) {
            return None;
        }
        let c = next(tokens, w)?;
        match tokens[c].token {
            Token::Comma => p = c,
            Token::RParen => return Some(c),
            _ => return None,
        }
    }
}
