//! Statement parser. One sqlparser [`Parser`] walks the whole text; each
//! statement's first words pick either our own grammar (QuestDB syntax) or
//! sqlparser's. Errors carry the 0-based character position QuestDB reports.
//!
//! One file per statement family: [`ddl`] (CREATE TABLE, SHOW), [`alter`]
//! (ALTER TABLE, UPDATE, DELETE, table options), [`insert`],
//! [`copy`] (QuestDB's COPY forms and PostgreSQL's COPY options), and
//! [`errors`] (sqlparser positions to character offsets). This file holds
//! the dispatch and the token helpers they share.

mod alter;
mod copy;
mod ddl;
mod depth;
mod errors;
mod implicit;
mod insert;
mod tokens;

use datafusion::sql::sqlparser::ast as sp;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::ast::{SessionCommand, Statement, TableRef};
use super::limit::QdbLimit;
use crate::catalog::DEFAULT_SCHEMA;
use crate::error::{Error, Result};
pub use errors::offset_of;
use errors::{syntax_error, wrap};

/// Parses every statement in `sql` (separated by `;`).
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    // DataFusion's own default dialect: PostgreSQL-like, and it accepts the
    // `LIMIT lo, hi` form QuestDB uses.
    let dialect = GenericDialect {};
    let tokens = datafusion::sql::sqlparser::tokenizer::Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| syntax_error(sql, e.into()))?;
    depth::check(sql, &tokens)?;
    let tokens = implicit::implicit_select(tokens);
    let tokens = tokens::rewrite(sql, tokens)?;
    let (tokens, samples) = tokens::take_samples(sql, tokens)?;
    let (tokens, latest) = tokens::take_latest(sql, tokens)?;
    let (tokens, joins) = tokens::take_time_joins(sql, tokens)?;
    let parser = Parser::new(&dialect).with_tokens_with_locations(tokens);
    let mut p = Qp {
        p: parser,
        sql,
        clauses: crate::sql::Clauses {
            samples,
            latest,
            joins,
        },
    };
    let mut out = Vec::new();
    loop {
        while p.p.consume_token(&Token::SemiColon) {}
        if p.p.peek_token().token == Token::EOF {
            break;
        }
        out.push(p.statement()?);
        let next = p.p.peek_token();
        match next.token {
            Token::SemiColon | Token::EOF => {}
            _ => return Err(p.err_at(&next, format!("unexpected token [{}]", next.token))),
        }
    }
    // A clause no query took: it stood where no query could hold it.
    let c = &p.clauses;
    let stray = c
        .samples
        .iter()
        .map(|s| (s.position, "SAMPLE BY"))
        .chain(c.latest.iter().map(|l| (l.position, "LATEST ON")))
        .chain(
            c.joins
                .iter()
                .map(|j| (j.position, "ASOF, LT and SPLICE JOIN")),
        )
        .min();
    if let Some((position, what)) = stray {
        return Err(Error::Syntax {
            message: format!("{what} is allowed in a query only"),
            position,
        });
    }
    Ok(out)
}

/// `(SELECT …)` as `SELECT …`: the parentheses of `CREATE TABLE t AS
/// (SELECT …)` hold nothing else, and the rewrites look at the SELECT.
fn without_parentheses(mut q: Box<sp::Query>) -> Box<sp::Query> {
    while q.with.is_none()
        && q.order_by.is_none()
        && q.limit_clause.is_none()
        && q.fetch.is_none()
        && let sp::SetExpr::Query(inner) = q.body.as_ref()
    {
        q = inner.clone();
    }
    q
}

/// Normalises an identifier: unquoted names fold to lower case.
pub fn ident_name(i: &sp::Ident) -> String {
    if i.quote_style.is_some() {
        i.value.clone()
    } else {
        i.value.to_lowercase()
    }
}

struct Qp<'a> {
    p: Parser<'a>,
    sql: &'a str,
    /// The clauses the token pass took out, until a query holding what
    /// they belong to takes them.
    clauses: crate::sql::Clauses,
}

impl Qp<'_> {
    /// The clauses that belong to `q` (or a query inside it).
    fn clauses_in(&mut self, q: &sp::Query) -> crate::sql::Clauses {
        use datafusion::sql::sqlparser::ast::Spanned;
        let span = q.span();
        let inside = |l: &datafusion::sql::sqlparser::tokenizer::Location| {
            span.start <= *l && *l <= span.end
        };
        let c = &mut self.clauses;
        crate::sql::Clauses {
            samples: c.samples.extract_if(.., |s| inside(&s.select)).collect(),
            latest: c.latest.extract_if(.., |l| inside(&l.select)).collect(),
            joins: c.joins.extract_if(.., |j| inside(&j.relation)).collect(),
        }
    }

    fn pos(&self, t: &TokenWithSpan) -> usize {
        offset_of(self.sql, t.span.start)
    }

    fn err_at(&self, t: &TokenWithSpan, message: impl Into<String>) -> Error {
        Error::Syntax {
            message: message.into(),
            position: self.pos(t),
        }
    }

    /// True when the next token is the (non-reserved) word `w`.
    fn peek_word(&self, w: &str) -> bool {
        matches!(&self.p.peek_token().token, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
    }

    fn peek_word_nth(&self, n: usize, w: &str) -> bool {
        matches!(&self.p.peek_nth_token(n).token, Token::Word(word) if word.quote_style.is_none() && word.value.eq_ignore_ascii_case(w))
    }

    fn parse_word(&mut self, w: &str) -> bool {
        if self.peek_word(w) {
            self.p.next_token();
            true
        } else {
            false
        }
    }

    fn expect_word(&mut self, w: &str) -> Result<()> {
        if self.parse_word(w) {
            Ok(())
        } else {
            let t = self.p.peek_token();
            Err(self.err_at(&t, format!("'{}' expected", w.to_lowercase())))
        }
    }

    fn statement(&mut self) -> Result<Statement> {
        let first = self.p.peek_token();
        if self.peek_word("create") {
            if self.peek_word_nth(1, "table") {
                return self.create_table();
            }
            if self.peek_word_nth(1, "schema") {
                self.p.next_token();
                self.p.next_token();
                let if_not_exists =
                    self.p
                        .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
                let id = wrap(self.sql, self.p.parse_identifier())?;
                return Ok(Statement::CreateSchema {
                    name: ident_name(&id),
                    if_not_exists,
                });
            }
        }
        if self.peek_word("drop") && self.peek_word_nth(1, "table") {
            self.p.next_token();
            self.p.next_token();
            let if_exists = self.p.parse_keywords(&[Keyword::IF, Keyword::EXISTS]);
            let tables = self.table_list()?;
            return Ok(Statement::DropTable { tables, if_exists });
        }
        if self.parse_word("truncate") {
            self.expect_word("table")?;
            let tables = self.table_list()?;
            return Ok(Statement::Truncate { tables });
        }
        if self.peek_word("rename") && self.peek_word_nth(1, "table") {
            self.p.next_token();
            self.p.next_token();
            let from = self.table_ref()?;
            self.expect_word("to")?;
            let to = self.table_ref()?;
            return Ok(Statement::RenameTable { from, to });
        }
        if self.peek_word("alter") && self.peek_word_nth(1, "table") {
            self.p.next_token();
            self.p.next_token();
            return self.alter_table();
        }
        if self.peek_word("backup") {
            return self.backup();
        }
        if self.peek_word("update") {
            return self.update();
        }
        if self.peek_word("delete") {
            return self.delete();
        }
        if self.peek_word("insert") {
            return self.insert();
        }
        if self.peek_word("copy") {
            return self.copy();
        }
        if self.peek_word("show") {
            return self.show();
        }
        if let Some(command) = self.session_command()? {
            return Ok(Statement::Session(command));
        }
        match &first.token {
            Token::Word(w)
                if matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES) =>
            {
                self.query()
            }
            Token::LParen => self.query(),
            _ => {
                let stmt = wrap(self.sql, self.p.parse_statement())?;
                match stmt {
                    sp::Statement::Query(q) => self.query_statement(q),
                    sp::Statement::Explain { .. } => self.explain(stmt),
                    other => Err(self.err_at(
                        &first,
                        format!("unsupported statement: {}", first_words(&other.to_string())),
                    )),
                }
            }
        }
    }

    /// A transaction or session statement (BEGIN, COMMIT, SET, …), read
    /// whole; none when the statement is another.
    fn session_command(&mut self) -> Result<Option<SessionCommand>> {
        if self.peek_word("begin")
            || (self.peek_word("start") && self.peek_word_nth(1, "transaction"))
        {
            self.skip_statement();
            return Ok(Some(SessionCommand::Begin));
        }
        if self.peek_word("commit") || self.peek_word("end") {
            self.skip_statement();
            return Ok(Some(SessionCommand::Commit));
        }
        if self.peek_word("savepoint") {
            self.skip_statement();
            return Ok(Some(SessionCommand::Savepoint));
        }
        if self.peek_word("release") {
            self.skip_statement();
            return Ok(Some(SessionCommand::Release));
        }
        if self.peek_word("rollback") || self.peek_word("abort") {
            self.skip_statement();
            return Ok(Some(SessionCommand::Rollback));
        }
        if let Some(timeout) = self.statement_timeout()? {
            return Ok(Some(SessionCommand::StatementTimeout(timeout)));
        }
        // Other session settings have no effect here beyond their tag, which
        // PostgreSQL's own (connection poolers and drivers read it).
        for (word, command) in [
            ("set", SessionCommand::Set),
            ("reset", SessionCommand::Reset),
            ("discard", SessionCommand::Discard),
            ("deallocate", SessionCommand::Deallocate),
        ] {
            if self.peek_word(word) {
                self.skip_statement();
                return Ok(Some(command));
            }
        }
        Ok(None)
    }

    /// `SET [SESSION] statement_timeout {=|TO} value` or `RESET
    /// statement_timeout`: `Some(None)` for the default, `Some(Some(ms))`
    /// for a value (an integer of milliseconds or text with a unit:
    /// `'5s'`, `'250ms'`, `'1min'`), `None` when it is another statement.
    fn statement_timeout(&mut self) -> Result<Option<Option<u64>>> {
        let reset = self.peek_word("reset") && self.peek_word_nth(1, "statement_timeout");
        let session = self.peek_word("set") && self.peek_word_nth(1, "session");
        let set = self.peek_word("set")
            && (self.peek_word_nth(1, "statement_timeout")
                || (session && self.peek_word_nth(2, "statement_timeout")));
        if !reset && !set {
            return Ok(None);
        }
        self.p.next_token();
        if session {
            self.p.next_token();
        }
        self.p.next_token(); // statement_timeout
        if reset {
            return Ok(Some(None));
        }
        if !self.p.consume_token(&Token::Eq) && !self.parse_word("to") {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'=' or 'to' expected"));
        }
        let v = self.p.next_token();
        let text = match &v.token {
            Token::Number(n, _) => n.clone(),
            Token::SingleQuotedString(s) => s.clone(),
            Token::Word(w) if w.value.eq_ignore_ascii_case("default") => {
                return Ok(Some(None));
            }
            _ => return Err(self.err_at(&v, "statement_timeout value expected")),
        };
        let text = text.trim();
        let digits = text.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        let scale = match text[digits.len()..].trim().to_ascii_lowercase().as_str() {
            "" | "ms" => 1,
            "s" => 1_000,
            "min" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(self.err_at(&v, format!("invalid value for statement_timeout: {text}")));
            }
        };
        let n: u64 = digits
            .trim()
            .parse()
            .map_err(|_| self.err_at(&v, format!("invalid value for statement_timeout: {text}")))?;
        Ok(Some(Some(n.saturating_mul(scale))))
    }

    /// Skips to the end of the current statement (for session commands
    /// whose arguments do not matter).
    fn skip_statement(&mut self) {
        while !matches!(self.p.peek_token().token, Token::SemiColon | Token::EOF) {
            self.p.next_token();
        }
    }

    fn query(&mut self) -> Result<Statement> {
        let q = wrap(self.sql, self.p.parse_query())?;
        self.query_statement(q)
    }

    /// A query inside another statement, with its clauses, as for a
    /// query on its own (QuestDB's LIMIT forms stay in the query).
    fn inner_query(&mut self, q: Box<sp::Query>) -> Result<crate::sql::QueryParts> {
        let query = without_parentheses(q);
        let clauses = self.clauses_in(&query);
        Ok(crate::sql::QueryParts { query, clauses })
    }

    /// EXPLAIN of a query: the query is read as one to run (LATEST ON,
    /// SAMPLE BY), so the plan shown is the one that runs.
    fn explain(&mut self, mut stmt: sp::Statement) -> Result<Statement> {
        let sp::Statement::Explain { statement, .. } = &mut stmt else {
            return Ok(Statement::Other(Box::new(stmt)));
        };
        let sp::Statement::Query(q) = statement.as_mut() else {
            return Ok(Statement::Other(Box::new(stmt)));
        };
        let Statement::Query { query, clauses, .. } = self.query_statement(q.clone())? else {
            unreachable!("query_statement returns queries")
        };
        **statement = sp::Statement::Query(query);
        Ok(Statement::Explain {
            statement: Box::new(stmt),
            clauses,
        })
    }

    /// Takes QuestDB's LIMIT forms (`-n`, `lo, hi`) out of the query; a
    /// plain `LIMIT n [OFFSET m]` stays for DataFusion.
    fn query_statement(&mut self, q: Box<sp::Query>) -> Result<Statement> {
        let crate::sql::QueryParts {
            query: mut q,
            clauses,
        } = self.inner_query(q)?;
        let limit = match &q.limit_clause {
            Some(sp::LimitClause::OffsetCommaLimit { offset, limit }) => {
                match (int_literal(offset), int_literal(limit)) {
                    (Some(lo), Some(hi)) => Some(QdbLimit { lo, hi: Some(hi) }),
                    _ => None,
                }
            }
            Some(sp::LimitClause::LimitOffset {
                limit: Some(l),
                offset: None,
                limit_by,
            }) if limit_by.is_empty() => match int_literal(l) {
                Some(n) if n < 0 => Some(QdbLimit { lo: n, hi: None }),
                _ => None,
            },
            _ => None,
        };
        if limit.is_some() {
            q.limit_clause = None;
        }
        Ok(Statement::Query {
            query: q,
            limit,
            clauses,
        })
    }

    fn table_list(&mut self) -> Result<Vec<TableRef>> {
        let mut tables = vec![self.table_ref()?];
        while self.p.consume_token(&Token::Comma) {
            tables.push(self.table_ref()?);
        }
        Ok(tables)
    }

    /// A table name: `name`, `"Name"`, `schema.name` or QuestDB's `'name'`.
    fn table_ref(&mut self) -> Result<TableRef> {
        let t = self.p.peek_token();
        let position = self.pos(&t);
        if let Token::SingleQuotedString(s) = &t.token {
            self.p.next_token();
            return Ok(TableRef {
                schema: DEFAULT_SCHEMA.into(),
                name: s.clone(),
                position,
            });
        }
        if !matches!(t.token, Token::Word(_)) {
            return Err(self.err_at(&t, "table name expected"));
        }
        let name = wrap(self.sql, self.p.parse_object_name(false))?;
        // A table keeps its name as written (the catalog matches it
        // ignoring case); a schema name folds like any unquoted name.
        let count = name.0.len();
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .enumerate()
            .map(|(i, id)| {
                if i + 1 == count {
                    id.value.clone()
                } else {
                    ident_name(id)
                }
            })
            .collect();
        match parts.as_slice() {
            [n] => Ok(TableRef {
                schema: DEFAULT_SCHEMA.into(),
                name: n.clone(),
                position,
            }),
            [s, n] => Ok(TableRef {
                schema: s.clone(),
                name: n.clone(),
                position,
            }),
            _ => Err(self.err_at(&t, "table name expected")),
        }
    }

    fn column_name(&mut self) -> Result<(String, usize)> {
        let t = self.p.peek_token();
        let position = self.pos(&t);
        match &t.token {
            Token::SingleQuotedString(s) => {
                self.p.next_token();
                Ok((s.clone(), position))
            }
            // A column keeps its name as written (matched ignoring case).
            Token::Word(_) => {
                let id = wrap(self.sql, self.p.parse_identifier())?;
                Ok((id.value, position))
            }
            _ => Err(self.err_at(&t, "column name expected")),
        }
    }

    /// Items separated by commas up to a closing parenthesis (the opening
    /// one already read): `(a, b, c)`.
    fn comma_list(&mut self, mut item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        loop {
            item(self)?;
            if self.p.consume_token(&Token::Comma) {
                continue;
            }
            let t = self.p.peek_token();
            if !self.p.consume_token(&Token::RParen) {
                return Err(self.err_at(&t, "',' or ')' expected"));
            }
            return Ok(());
        }
    }

    /// A single-quoted string or a bare word, and where it starts.
    fn string_or_word(&mut self) -> Option<(String, usize)> {
        let t = self.p.peek_token();
        let v = match &t.token {
            Token::SingleQuotedString(s) => s.clone(),
            Token::Word(w) => w.value.clone(),
            Token::Number(n, _) => n.clone(),
            _ => return None,
        };
        self.p.next_token();
        Some((v, self.pos(&t)))
    }
}

/// An integer literal, possibly negative.
fn int_literal(e: &sp::Expr) -> Option<i64> {
    match e {
        sp::Expr::Value(v) => match &v.value {
            sp::Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        sp::Expr::UnaryOp {
            op: sp::UnaryOperator::Minus,
            expr,
        } => int_literal(expr).map(|n| -n),
        sp::Expr::Nested(inner) => int_literal(inner),
        _ => None,
    }
}

fn first_words(s: &str) -> String {
    s.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
        .to_uppercase()
}

/// The one statement of `sql`, for the parser's tests.
#[cfg(test)]
fn one(sql: &str) -> Statement {
    let mut v = parse(sql).unwrap();
    assert_eq!(v.len(), 1);
    v.remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::ast::SessionCommand;

    #[test]
    fn syntax_error_has_position() {
        let e = parse("CREATE TABLE t (a INT) PARTITION BY DECADE").unwrap_err();
        assert_eq!(e.sqlstate(), "42601");
        assert_eq!(e.position(), Some(36));
        let e = parse("SELEC 1").unwrap_err();
        assert_eq!(e.sqlstate(), "42601");
        let e = parse("select * from t where").unwrap_err();
        assert!(e.position().is_some());
    }

    #[test]
    fn limits() {
        let Statement::Query { limit, query, .. } = one("select * from t limit -2") else {
            panic!()
        };
        assert_eq!(limit, Some(QdbLimit { lo: -2, hi: None }));
        assert!(query.limit_clause.is_none());
        let Statement::Query { limit, .. } = one("select * from t limit 1, 3") else {
            panic!()
        };
        assert_eq!(limit, Some(QdbLimit { lo: 1, hi: Some(3) }));
        let Statement::Query { limit, query, .. } = one("select * from t limit 5") else {
            panic!()
        };
        assert_eq!(limit, None);
        assert!(query.limit_clause.is_some());
    }

    #[test]
    fn misc_statements() {
        assert!(matches!(one("SHOW TABLES"), Statement::ShowTables));
        assert!(matches!(
            one("show columns from weather"),
            Statement::ShowColumns { .. }
        ));
        assert!(matches!(
            one("SHOW CREATE TABLE weather"),
            Statement::ShowCreateTable { .. }
        ));
        assert!(matches!(
            one("rename table a to b"),
            Statement::RenameTable { .. }
        ));
        assert!(matches!(
            one("alter table a rename column x to y"),
            Statement::AlterTable {
                action: crate::sql::ast::AlterTable::RenameColumn { .. },
                ..
            }
        ));
        assert!(matches!(
            one("truncate table a"),
            Statement::Truncate { .. }
        ));
        assert!(matches!(
            one("drop table if exists a"),
            Statement::DropTable {
                if_exists: true,
                ..
            }
        ));
        assert!(matches!(
            one("BEGIN"),
            Statement::Session(SessionCommand::Begin)
        ));
        assert!(matches!(
            one("SET extra_float_digits = 3"),
            Statement::Session(SessionCommand::Set)
        ));
        assert_eq!(parse("select 1; select 2;").unwrap().len(), 2);
        assert!(matches!(
            one("CREATE SCHEMA s2"),
            Statement::CreateSchema { .. }
        ));
    }

    /// Words of our grammar, hostile literals and punctuation, in any order.
    fn grammar_words() -> impl proptest::strategy::Strategy<Value = Vec<&'static str>> {
        const WORDS: &[&str] = &[
            "COPY",
            "t",
            "FROM",
            "'f.csv'",
            "WITH",
            "HEADER",
            "true",
            "TIMESTAMP",
            "'ts'",
            "PARTITION",
            "BY",
            "DAY",
            "ON",
            "ERROR",
            "STDIN",
            "(",
            ")",
            ",",
            "FORMAT",
            "csv",
            "DELIMITER",
            "QUOTE",
            "''''",
            "CANCEL",
            "CREATE",
            "TABLE",
            "SCHEMA",
            "\"../x\"",
            "INSERT",
            "INTO",
            "VALUES",
            "LIMIT",
            "-1",
            "SELECT",
            "*",
            ";",
            "'\u{0}'",
            "RENAME",
        ];
        proptest::collection::vec(proptest::sample::select(WORDS), 0..14)
    }

    proptest::proptest! {
        /// The SQL front end answers any text with statements or an error
        /// whose position lies inside the text, never a panic.
        #[test]
        fn any_text_parses_or_errors(sql in "\\PC{0,80}") {
            if let Err(e) = parse(&sql) {
                let pos = e.position().unwrap_or(0);
                proptest::prop_assert!(pos <= sql.chars().count(), "{} at {}", sql, pos);
            }
        }

        #[test]
        fn grammar_words_in_any_order(words in grammar_words()) {
            let sql = words.join(" ");
            if let Err(e) = parse(&sql) {
                proptest::prop_assert!(e.position().unwrap_or(0) <= sql.chars().count(), "{}", sql);
            }
        }
    }
}
