//! Statement parser. One sqlparser [`Parser`] walks the whole text; each
//! statement's first words pick either our own grammar (QuestDB syntax) or
//! sqlparser's. Errors carry the 0-based character position QuestDB reports.

use datafusion::sql::sqlparser::ast as sp;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
use datafusion::sql::sqlparser::tokenizer::{Location, Token, TokenWithSpan};

use super::ast::{
    Copy, CopyFromStdin, CopyOnError, CopySource, CreateTable, Insert, PgCopyFormat, PgCopyOptions,
    SessionCommand, Statement, TableRef,
};
use super::limit::QdbLimit;
use crate::catalog::{ColumnMeta, ColumnType, DEFAULT_SCHEMA};
use crate::error::{Error, Result};
use crate::storage::PartitionBy;

/// Parses every statement in `sql` (separated by `;`).
pub fn parse(sql: &str) -> Result<Vec<Statement>> {
    // DataFusion's own default dialect: PostgreSQL-like, and it accepts the
    // `LIMIT lo, hi` form QuestDB uses.
    let dialect = GenericDialect {};
    let parser = Parser::new(&dialect)
        .try_with_sql(sql)
        .map_err(|e| syntax_error(sql, e))?;
    let mut p = Qp { p: parser, sql };
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
    Ok(out)
}

/// Converts a sqlparser location (1-based line and column) to a 0-based
/// character offset in `sql`.
pub fn offset_of(sql: &str, loc: Location) -> usize {
    if loc.line == 0 {
        return 0;
    }
    let mut offset = 0;
    for (i, line) in sql.split('\n').enumerate() {
        if i as u64 + 1 == loc.line {
            return offset + (loc.column.saturating_sub(1) as usize).min(line.chars().count());
        }
        offset += line.chars().count() + 1;
    }
    sql.chars().count()
}

/// sqlparser reports positions inside its message ("… at Line: 1, Column: 8").
fn syntax_error(sql: &str, e: ParserError) -> Error {
    let msg = match e {
        ParserError::ParserError(m) | ParserError::TokenizerError(m) => m,
        ParserError::RecursionLimitExceeded => "statement is nested too deeply".to_string(),
    };
    let (message, position) = match msg.rfind(" at Line: ") {
        Some(i) => {
            let tail = &msg[i + " at Line: ".len()..];
            let mut nums = tail
                .split(|c: char| !c.is_ascii_digit())
                .filter(|s| !s.is_empty());
            let line = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            let column = nums.next().and_then(|n| n.parse().ok()).unwrap_or(0);
            (
                msg[..i].to_string(),
                offset_of(sql, Location { line, column }),
            )
        }
        None => (msg, sql.chars().count()),
    };
    Error::Syntax { message, position }
}

fn wrap<T>(sql: &str, r: std::result::Result<T, ParserError>) -> Result<T> {
    r.map_err(|e| syntax_error(sql, e))
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
}

impl Qp<'_> {
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
            let table = self.table_ref()?;
            let t = self.p.peek_token();
            if self.parse_word("rename") {
                self.expect_word("column")?;
                let (from, at) = self.column_name()?;
                self.expect_word("to")?;
                let (to, _) = self.column_name()?;
                return Ok(Statement::RenameColumn {
                    table,
                    from: (from, at),
                    to,
                });
            }
            return Err(self.err_at(
                &t,
                "'rename column' expected (only ALTER TABLE … RENAME COLUMN is supported)",
            ));
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
        if self.peek_word("begin")
            || (self.peek_word("start") && self.peek_word_nth(1, "transaction"))
        {
            self.skip_statement();
            return Ok(Statement::Session(SessionCommand::Begin));
        }
        if self.peek_word("commit") || self.peek_word("end") {
            self.skip_statement();
            return Ok(Statement::Session(SessionCommand::Commit));
        }
        if self.peek_word("rollback") || self.peek_word("abort") {
            self.skip_statement();
            return Ok(Statement::Session(SessionCommand::Rollback));
        }
        if self.peek_word("set")
            || self.peek_word("discard")
            || self.peek_word("reset")
            || self.peek_word("deallocate")
        {
            self.skip_statement();
            return Ok(Statement::Session(SessionCommand::Set));
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
                    sp::Statement::Query(q) => Ok(Self::query_statement(q)),
                    sp::Statement::Explain { .. } => Ok(Statement::Other(Box::new(stmt))),
                    other => Err(self.err_at(
                        &first,
                        format!("unsupported statement: {}", first_words(&other.to_string())),
                    )),
                }
            }
        }
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
        Ok(Self::query_statement(q))
    }

    /// Takes QuestDB's LIMIT forms (`-n`, `lo, hi`) out of the query; a
    /// plain `LIMIT n [OFFSET m]` stays for DataFusion.
    fn query_statement(mut q: Box<sp::Query>) -> Statement {
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
        Statement::Query { query: q, limit }
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
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .map(ident_name)
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
            Token::Word(_) => {
                let id = wrap(self.sql, self.p.parse_identifier())?;
                Ok((ident_name(&id), position))
            }
            _ => Err(self.err_at(&t, "column name expected")),
        }
    }

    fn create_table(&mut self) -> Result<Statement> {
        self.p.next_token(); // CREATE
        self.p.next_token(); // TABLE
        let if_not_exists = self
            .p
            .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let table = self.table_ref()?;
        let mut columns = Vec::new();
        let mut as_query = None;
        if self.p.parse_keyword(Keyword::AS) {
            as_query = Some(wrap(self.sql, self.p.parse_query())?);
        } else if self.p.consume_token(&Token::LParen) {
            loop {
                columns.push(self.column_def()?);
                if self.p.consume_token(&Token::Comma) {
                    continue;
                }
                let t = self.p.peek_token();
                if !self.p.consume_token(&Token::RParen) {
                    return Err(self.err_at(&t, "',' or ')' expected"));
                }
                break;
            }
        } else {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'(' or 'as' expected"));
        }
        let mut timestamp = None;
        let mut partition_by = None;
        let mut wal = None;
        loop {
            let t = self.p.peek_token();
            if self.parse_word("timestamp") {
                self.p
                    .expect_token(&Token::LParen)
                    .map_err(|e| syntax_error(self.sql, e))?;
                timestamp = Some(self.column_name()?);
                self.p
                    .expect_token(&Token::RParen)
                    .map_err(|e| syntax_error(self.sql, e))?;
            } else if self.parse_word("partition") {
                self.expect_word("by")?;
                let u = self.p.next_token();
                let unit = match &u.token {
                    Token::Word(w) => PartitionBy::parse(&w.value),
                    _ => None,
                };
                partition_by = Some(unit.ok_or_else(|| {
                    self.err_at(
                        &u,
                        "'NONE', 'HOUR', 'DAY', 'WEEK', 'MONTH' or 'YEAR' expected",
                    )
                })?);
            } else if self.parse_word("wal") {
                wal = Some(true);
            } else if self.parse_word("bypass") {
                self.expect_word("wal")?;
                wal = Some(false);
            } else if matches!(t.token, Token::SemiColon | Token::EOF) {
                break;
            } else {
                return Err(self.err_at(&t, format!("unexpected token [{}]", t.token)));
            }
        }
        Ok(Statement::CreateTable(CreateTable {
            table,
            if_not_exists,
            columns,
            as_query,
            timestamp,
            partition_by,
            wal,
        }))
    }

    fn column_def(&mut self) -> Result<ColumnMeta> {
        let (name, _) = self.column_name()?;
        let t = self.p.next_token();
        let mut type_name = match &t.token {
            Token::Word(w) => w.value.clone(),
            _ => return Err(self.err_at(&t, "column type expected")),
        };
        if type_name.eq_ignore_ascii_case("double") && self.parse_word("precision") {
            type_name = "DOUBLE PRECISION".into();
        }
        let ty = ColumnType::parse(&type_name)
            .ok_or_else(|| self.err_at(&t, format!("unsupported column type: {type_name}")))?;
        // VARCHAR(n) and the like: the length is accepted and ignored.
        if self.p.consume_token(&Token::LParen) {
            wrap(self.sql, self.p.parse_literal_uint())?;
            wrap(self.sql, self.p.expect_token(&Token::RParen))?;
        }
        let mut col = ColumnMeta::new(name, ty);
        loop {
            let t = self.p.peek_token();
            if self.parse_word("capacity") {
                let n = wrap(self.sql, self.p.parse_literal_uint())?;
                if ty != ColumnType::Symbol {
                    return Err(self.err_at(&t, "CAPACITY is only valid for SYMBOL columns"));
                }
                col.symbol_capacity = Some(n.min(u32::MAX as u64) as u32);
            } else if self.parse_word("cache") {
                col.symbol_cache = Some(true);
            } else if self.parse_word("nocache") {
                col.symbol_cache = Some(false);
            } else if self.parse_word("index") {
                col.indexed = true;
                if self.parse_word("capacity") {
                    let n = wrap(self.sql, self.p.parse_literal_uint())?;
                    col.index_capacity = Some(n.min(u32::MAX as u64) as u32);
                }
            } else {
                break;
            }
        }
        Ok(col)
    }

    fn insert(&mut self) -> Result<Statement> {
        self.p.next_token(); // INSERT
        let mut batch = self.batch_clause()?;
        let t = self.p.peek_token();
        if !self.p.parse_keyword(Keyword::INTO) {
            return Err(self.err_at(&t, "'into' expected"));
        }
        let table = self.table_ref()?;
        let mut columns = Vec::new();
        if self.p.peek_token().token == Token::LParen {
            // `(` starts either a column list or a parenthesised query.
            let is_query = matches!(&self.p.peek_nth_token(1).token, Token::Word(w) if matches!(w.keyword, Keyword::SELECT | Keyword::WITH | Keyword::VALUES));
            if !is_query {
                self.p.next_token();
                loop {
                    columns.push(self.column_name()?);
                    if !self.p.consume_token(&Token::Comma) {
                        break;
                    }
                }
                wrap(self.sql, self.p.expect_token(&Token::RParen))?;
            }
        }
        if let Some(b) = self.batch_clause()? {
            batch = Some(b);
        }
        let source = wrap(self.sql, self.p.parse_query())?;
        Ok(Statement::Insert(Insert {
            table,
            columns,
            source,
            batch,
        }))
    }

    /// QuestDB's `batch N` (and `o3MaxLag …`, accepted and ignored).
    fn batch_clause(&mut self) -> Result<Option<u64>> {
        let mut batch = None;
        loop {
            if self.parse_word("batch") {
                let t = self.p.peek_token();
                let n = wrap(self.sql, self.p.parse_literal_uint())?;
                if n == 0 {
                    return Err(self.err_at(&t, "batch size must be positive"));
                }
                batch = Some(n);
            } else if self.parse_word("o3maxlag") {
                self.p.next_token();
            } else {
                return Ok(batch);
            }
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

    /// QuestDB's COPY: `COPY t FROM 'file' [WITH option …]` and
    /// `COPY 'id' CANCEL`.
    fn copy(&mut self) -> Result<Statement> {
        self.p.next_token();
        let first = self.p.peek_token();
        if first.token == Token::LParen {
            self.p.next_token();
            let query = wrap(self.sql, self.p.parse_query())?;
            self.p
                .expect_token(&Token::RParen)
                .map_err(|e| syntax_error(self.sql, e))?;
            if self.parse_word("from") {
                return Err(self.err_at(&first, "subqueries are not supported for `COPY-FROM`"));
            }
            self.expect_word("to")?;
            self.expect_stdout()?;
            let options = self.pg_copy_options()?;
            return Ok(Statement::CopyToStdout {
                source: CopySource::Query(query),
                options,
            });
        }
        if let Token::SingleQuotedString(id) = &first.token {
            let id = id.clone();
            self.p.next_token();
            self.expect_word("cancel")?;
            return Ok(Statement::CopyCancel { id });
        }
        if matches!(first.token, Token::Number(..)) || self.peek_word_nth(1, "cancel") {
            // An unquoted id: `COPY 55ca24e5ba328050 CANCEL`.
            let mut id = String::new();
            while !self.peek_word("cancel") {
                let t = self.p.next_token();
                match t.token {
                    Token::Word(w) => id.push_str(&w.value),
                    Token::Number(n, _) => id.push_str(&n),
                    _ => return Err(self.err_at(&t, "'cancel' expected")),
                }
            }
            self.p.next_token();
            return Ok(Statement::CopyCancel { id });
        }
        let table = self.table_ref()?;
        let mut columns = Vec::new();
        if self.p.consume_token(&Token::LParen) {
            loop {
                let t = self.p.next_token();
                match t.token {
                    Token::Word(w) => columns.push(if w.quote_style.is_some() {
                        w.value
                    } else {
                        w.value.to_lowercase()
                    }),
                    _ => return Err(self.err_at(&t, "column name expected")),
                }
                if self.p.consume_token(&Token::RParen) {
                    break;
                }
                let t = self.p.peek_token();
                if !self.p.consume_token(&Token::Comma) {
                    return Err(self.err_at(&t, "',' or ')' expected"));
                }
            }
        }
        if self.parse_word("to") {
            self.expect_stdout()?;
            if !columns.is_empty() {
                return Err(Error::unsupported(
                    "COPY t (columns) TO STDOUT: use COPY (SELECT columns FROM t) TO STDOUT",
                ));
            }
            let options = self.pg_copy_options()?;
            return Ok(Statement::CopyToStdout {
                source: CopySource::Table(table),
                options,
            });
        }
        if !self.parse_word("from") {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'from' or 'to' or 'cancel' expected"));
        }
        let lit = self.p.peek_token();
        let file_position = self.pos(&lit);
        let file = match &lit.token {
            Token::SingleQuotedString(s) => s.clone(),
            Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("stdin") => {
                self.p.next_token();
                let options = self.pg_copy_options()?;
                return Ok(Statement::CopyFromStdin(CopyFromStdin {
                    table,
                    columns,
                    options,
                }));
            }
            _ => return Err(self.err_at(&lit, "file name expected")),
        };
        self.p.next_token();
        if !columns.is_empty() {
            return Err(Error::unsupported(
                "a column list is supported by COPY FROM STDIN only",
            ));
        }
        if file.is_empty() {
            return Err(self.err_at(&lit, "file name expected"));
        }
        if let Some(i) = file.find("..") {
            // QuestDB's position: the literal's plus the index in the name.
            return Err(Error::syntax(
                "'.' is not allowed",
                file_position + file[..i].chars().count(),
            ));
        }
        let mut copy = Copy {
            table,
            file,
            file_position,
            header: None,
            timestamp: None,
            format: None,
            delimiter: None,
            partition_by: None,
            on_error: None,
        };
        let t = self.p.peek_token();
        if matches!(t.token, Token::SemiColon | Token::EOF) {
            return Ok(Statement::Copy(copy));
        }
        if !self.parse_word("with") {
            return Err(self.err_at(&t, "'with' expected"));
        }
        loop {
            let t = self.p.peek_token();
            if matches!(t.token, Token::SemiColon | Token::EOF) {
                break;
            }
            if self.parse_word("header") {
                let v = self.p.peek_token();
                copy.header = Some(match &v.token {
                    Token::Word(w) if w.value.eq_ignore_ascii_case("true") => true,
                    Token::Word(w) if w.value.eq_ignore_ascii_case("false") => false,
                    _ => return Err(self.err_at(&v, "'true' or 'false' expected")),
                });
                self.p.next_token();
            } else if self.parse_word("timestamp") {
                let v = self.p.peek_token();
                let Some((name, _)) = self.string_or_word() else {
                    return Err(self.err_at(&v, "timestamp column name expected"));
                };
                if name.is_empty()
                    || name.contains(|c: char| c.is_control() || "\"'?.,/\\:()+*%~-".contains(c))
                {
                    return Err(
                        self.err_at(&v, "timestamp column name contains invalid characters")
                    );
                }
                copy.timestamp = Some(name);
            } else if self.parse_word("format") {
                let v = self.p.peek_token();
                let Some((f, _)) = self.string_or_word() else {
                    return Err(self.err_at(&v, "format expected"));
                };
                copy.format = Some(f);
            } else if self.parse_word("delimiter") {
                let v = self.p.peek_token();
                let Some((d, _)) = self.string_or_word() else {
                    return Err(self.err_at(&v, "delimiter expected"));
                };
                let mut chars = d.chars();
                match (chars.next(), chars.next()) {
                    (Some(c), None) if c.is_ascii() => copy.delimiter = Some(c as u8),
                    (Some(_), None) => {
                        return Err(self.err_at(&v, "delimiter is not an ascii character"));
                    }
                    _ => {
                        return Err(
                            self.err_at(&v, "delimiter is empty or contains more than 1 character")
                        );
                    }
                }
            } else if self.parse_word("partition") {
                self.expect_word("by")?;
                let v = self.p.peek_token();
                let unit = match &v.token {
                    Token::Word(w) => PartitionBy::parse(&w.value),
                    _ => None,
                };
                let Some(unit) = unit else {
                    return Err(self.err_at(
                        &v,
                        "'NONE', 'HOUR', 'DAY', 'WEEK', 'MONTH' or 'YEAR' expected",
                    ));
                };
                self.p.next_token();
                copy.partition_by = Some(unit);
            } else if self.parse_word("on") {
                self.expect_word("error")?;
                let v = self.p.peek_token();
                let mode = match &v.token {
                    Token::Word(w) => match w.value.to_ascii_lowercase().as_str() {
                        "skip_row" => Some(CopyOnError::SkipRow),
                        "skip_column" => Some(CopyOnError::SkipColumn),
                        "abort" => Some(CopyOnError::Abort),
                        _ => None,
                    },
                    _ => None,
                };
                let Some(mode) = mode else {
                    return Err(self.err_at(&v, "invalid 'on error' copy option found"));
                };
                self.p.next_token();
                copy.on_error = Some(mode);
            } else {
                return Err(self.err_at(&t, "unexpected option"));
            }
        }
        Ok(Statement::Copy(copy))
    }

    fn expect_stdout(&mut self) -> Result<()> {
        let t = self.p.peek_token();
        if self.parse_word("stdout") {
            Ok(())
        } else {
            Err(self.err_at(&t, "COPY … TO supports STDOUT only ('stdout' expected)"))
        }
    }

    /// One quoted character option (DELIMITER, QUOTE, ESCAPE).
    fn pg_char(&mut self, name: &str) -> Result<u8> {
        let v = self.p.peek_token();
        let Some((text, _)) = self.string_or_word() else {
            return Err(self.err_at(&v, format!("{name} expects a quoted character")));
        };
        match text.as_bytes() {
            [c] if c.is_ascii() => Ok(*c),
            _ => Err(self.err_at(
                &v,
                format!("COPY {name} must be a single one-byte character"),
            )),
        }
    }

    /// PostgreSQL's COPY options: `[WITH] (name [value], …)` or the legacy
    /// bare words (`CSV HEADER DELIMITER ','`).
    fn pg_copy_options(&mut self) -> Result<PgCopyOptions> {
        let mut o = PgCopyOptions::default();
        self.parse_word("with");
        let at_end = |t: &Token| matches!(t, Token::SemiColon | Token::EOF);
        let parenthesised = self.p.consume_token(&Token::LParen);
        loop {
            let t = self.p.peek_token();
            if parenthesised && self.p.consume_token(&Token::RParen) {
                break;
            }
            if !parenthesised && at_end(&t.token) {
                break;
            }
            let name = match &t.token {
                Token::Word(w) => w.value.to_ascii_lowercase(),
                _ => return Err(self.err_at(&t, "COPY option expected")),
            };
            self.p.next_token();
            // In the list form a value may follow; in the legacy form `AS` may.
            if !parenthesised {
                self.parse_word("as");
            }
            match name.as_str() {
                "format" => {
                    let v = self.p.next_token();
                    o.format = match &v.token {
                        Token::Word(w) if w.value.eq_ignore_ascii_case("csv") => PgCopyFormat::Csv,
                        Token::Word(w) if w.value.eq_ignore_ascii_case("text") => {
                            PgCopyFormat::Text
                        }
                        Token::SingleQuotedString(s) if s.eq_ignore_ascii_case("csv") => {
                            PgCopyFormat::Csv
                        }
                        Token::SingleQuotedString(s) if s.eq_ignore_ascii_case("text") => {
                            PgCopyFormat::Text
                        }
                        _ => {
                            return Err(Error::unsupported(format!(
                                "COPY format '{}' is not supported (csv or text)",
                                v.token
                            )));
                        }
                    };
                }
                "csv" => o.format = PgCopyFormat::Csv,
                "text" => o.format = PgCopyFormat::Text,
                "binary" => {
                    return Err(Error::unsupported(
                        "COPY format binary is not supported (csv or text)",
                    ));
                }
                "header" => {
                    let v = self.p.peek_token();
                    o.header = match &v.token {
                        Token::Word(w)
                            if matches!(w.value.to_ascii_lowercase().as_str(), "true" | "on") =>
                        {
                            self.p.next_token();
                            true
                        }
                        Token::Word(w)
                            if matches!(w.value.to_ascii_lowercase().as_str(), "false" | "off") =>
                        {
                            self.p.next_token();
                            false
                        }
                        Token::Number(n, _) if n == "1" || n == "0" => {
                            self.p.next_token();
                            n == "1"
                        }
                        _ => true,
                    };
                }
                "delimiter" => o.delimiter = Some(self.pg_char("DELIMITER")?),
                "quote" => o.quote = Some(self.pg_char("QUOTE")?),
                "escape" => o.escape = Some(self.pg_char("ESCAPE")?),
                "null" => {
                    let v = self.p.peek_token();
                    match &v.token {
                        Token::SingleQuotedString(s) => o.null = Some(s.clone()),
                        _ => return Err(self.err_at(&v, "NULL expects a quoted string")),
                    }
                    self.p.next_token();
                }
                "on_error" => {
                    let v = self.p.next_token();
                    o.ignore_errors = match &v.token {
                        Token::Word(w) if w.value.eq_ignore_ascii_case("ignore") => true,
                        Token::Word(w) if w.value.eq_ignore_ascii_case("stop") => false,
                        _ => return Err(self.err_at(&v, "ON_ERROR expects stop or ignore")),
                    };
                }
                "encoding" => {
                    let v = self.p.next_token();
                    let text = match &v.token {
                        Token::SingleQuotedString(s) => s.clone(),
                        Token::Word(w) => w.value.clone(),
                        _ => String::new(),
                    };
                    let ok = matches!(
                        text.to_ascii_lowercase().replace(['-', '_'], "").as_str(),
                        "utf8" | "unicode"
                    );
                    if !ok {
                        return Err(Error::unsupported("COPY ENCODING must be UTF8"));
                    }
                }
                "freeze" => {
                    let v = self.p.peek_token();
                    if matches!(&v.token, Token::Word(w) if matches!(w.value.to_ascii_lowercase().as_str(), "true" | "false" | "on" | "off"))
                    {
                        self.p.next_token();
                    }
                }
                other => {
                    return Err(self.err_at(&t, format!("COPY option '{other}' is not supported")));
                }
            }
            if parenthesised && !self.p.consume_token(&Token::Comma) {
                let t = self.p.peek_token();
                if !self.p.consume_token(&Token::RParen) {
                    return Err(self.err_at(&t, "',' or ')' expected"));
                }
                break;
            }
        }
        let t = self.p.peek_token();
        if !at_end(&t.token) {
            return Err(self.err_at(&t, "unexpected text after the COPY options"));
        }
        Ok(o)
    }

    fn show(&mut self) -> Result<Statement> {
        self.p.next_token(); // SHOW
        if self.parse_word("tables") {
            return Ok(Statement::ShowTables);
        }
        if self.parse_word("columns") {
            let t = self.p.peek_token();
            if !self.p.parse_keyword(Keyword::FROM) {
                return Err(self.err_at(&t, "'from' expected"));
            }
            return Ok(Statement::ShowColumns {
                table: self.table_ref()?,
            });
        }
        if self.peek_word("create") && self.peek_word_nth(1, "table") {
            self.p.next_token();
            self.p.next_token();
            return Ok(Statement::ShowCreateTable {
                table: self.table_ref()?,
            });
        }
        let mut words = Vec::new();
        while !matches!(self.p.peek_token().token, Token::SemiColon | Token::EOF) {
            words.push(self.p.next_token().token.to_string().to_lowercase());
        }
        if words.is_empty() {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'tables', 'columns' or 'create table' expected"));
        }
        Ok(Statement::Session(SessionCommand::Show(words.join(" "))))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn one(sql: &str) -> Statement {
        let mut v = parse(sql).unwrap();
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn create_table_questdb_style() {
        let s = one(
            "CREATE TABLE weather (ts TIMESTAMP, city SYMBOL CAPACITY 256 CACHE INDEX, temp DOUBLE, ok BOOLEAN) TIMESTAMP(ts) PARTITION BY DAY WAL;",
        );
        let Statement::CreateTable(c) = s else {
            panic!()
        };
        assert_eq!(c.table.name, "weather");
        assert_eq!(c.columns.len(), 4);
        assert_eq!(c.columns[1].symbol_capacity, Some(256));
        assert!(c.columns[1].indexed);
        assert_eq!(c.timestamp.unwrap().0, "ts");
        assert_eq!(c.partition_by, Some(PartitionBy::Day));
        assert_eq!(c.wal, Some(true));
    }

    #[test]
    fn create_table_as() {
        let s =
            one("create table t2 as (select * from t) timestamp(ts) partition by month bypass wal");
        let Statement::CreateTable(c) = s else {
            panic!()
        };
        assert!(c.as_query.is_some());
        assert_eq!(c.partition_by, Some(PartitionBy::Month));
        assert_eq!(c.wal, Some(false));
    }

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
        let Statement::Query { limit, query } = one("select * from t limit -2") else {
            panic!()
        };
        assert_eq!(limit, Some(QdbLimit { lo: -2, hi: None }));
        assert!(query.limit_clause.is_none());
        let Statement::Query { limit, .. } = one("select * from t limit 1, 3") else {
            panic!()
        };
        assert_eq!(limit, Some(QdbLimit { lo: 1, hi: Some(3) }));
        let Statement::Query { limit, query } = one("select * from t limit 5") else {
            panic!()
        };
        assert_eq!(limit, None);
        assert!(query.limit_clause.is_some());
    }

    #[test]
    fn insert_forms() {
        let Statement::Insert(i) = one("insert into t (a, b) values (1, 'x'), (2, 'y')") else {
            panic!()
        };
        assert_eq!(
            i.columns.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        let Statement::Insert(i) = one("insert into t batch 100 select * from u") else {
            panic!()
        };
        assert_eq!(i.batch, Some(100));
        let Statement::Insert(i) = one("insert batch 5 into t select * from u") else {
            panic!()
        };
        assert_eq!(i.batch, Some(5));
    }

    #[test]
    fn copy_grammar() {
        let Statement::Copy(c) = one(
            "COPY x FROM 'somefile.csv' WITH HEADER TRUE PARTITION BY DAY TIMESTAMP 'ts1' FORMAT 'yyyy-MM-ddTHH:mm:ss' DELIMITER ';' ON ERROR SKIP_COLUMN",
        ) else {
            panic!()
        };
        assert_eq!(c.header, Some(true));
        assert_eq!(c.partition_by, Some(PartitionBy::Day));
        assert_eq!(c.timestamp.as_deref(), Some("ts1"));
        assert_eq!(c.format.as_deref(), Some("yyyy-MM-ddTHH:mm:ss"));
        assert_eq!(c.delimiter, Some(b';'));
        assert_eq!(c.on_error, Some(CopyOnError::SkipColumn));
        let Statement::Copy(c) = one("copy y from 'somefile.csv';") else {
            panic!()
        };
        assert_eq!((c.header, c.delimiter, c.on_error), (None, None, None));
        let err = |sql: &str| {
            let e = parse(sql).unwrap_err();
            (e.to_string(), e.position())
        };
        assert_eq!(
            err("copy x from ''"),
            ("file name expected".into(), Some(12))
        );
        assert_eq!(
            err("copy x from '../../../../../'"),
            ("'.' is not allowed".into(), Some(12))
        );
        assert_eq!(
            err(r"copy x from '\..\..\'"),
            ("'.' is not allowed".into(), Some(13))
        );
        assert_eq!(
            err("copy x from 'somefile.csv' partition by HOUR;"),
            ("'with' expected".into(), Some(27))
        );
        assert_eq!(
            err("copy 'foobar' cancel aw beans;"),
            ("unexpected token [aw]".into(), Some(21))
        );
        assert_eq!(
            err("copy x from 'a.csv' with delimiter '';").0,
            "delimiter is empty or contains more than 1 character"
        );
        assert_eq!(
            err("copy x from 'a.csv' with delimiter '____';").0,
            "delimiter is empty or contains more than 1 character"
        );
        assert_eq!(
            err("copy x from 'a.csv' with delimiter 'ą';").0,
            "delimiter is not an ascii character"
        );
        assert_eq!(
            err("copy x from 'a.csv' with YadaYadaYada;").0,
            "unexpected option"
        );
        assert_eq!(
            err("copy x from 'a.csv' with on error EXPLODE;").0,
            "invalid 'on error' copy option found"
        );
        assert_eq!(
            err("copy x from 'a.csv' with partition by jiffy;").0,
            "'NONE', 'HOUR', 'DAY', 'WEEK', 'MONTH' or 'YEAR' expected"
        );
        assert_eq!(
            err("copy x from 'a.csv' with header yes;").0,
            "'true' or 'false' expected"
        );
        assert_eq!(
            err("copy (select 1) from 'a.csv'").0,
            "subqueries are not supported for `COPY-FROM`"
        );
        assert_eq!(
            err("copy x with header true").0,
            "'from' or 'to' or 'cancel' expected"
        );
        assert!(matches!(one("copy 'ab12' cancel"), Statement::CopyCancel { id } if id == "ab12"));
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
            Statement::RenameColumn { .. }
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
