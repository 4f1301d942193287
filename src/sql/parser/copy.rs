//! COPY in every form: QuestDB's `COPY t FROM 'file' WITH …` and
//! `COPY 'id' CANCEL`, PostgreSQL's `COPY t [(cols)] FROM STDIN` and
//! `COPY t | (query) TO STDOUT` with their options, and QuestDB's Parquet
//! export `COPY t | (query) TO 'dir' WITH FORMAT PARQUET …`.

use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::Qp;
use super::errors::{syntax_error, wrap};
use crate::error::{Error, Result};
use crate::sql::ast::{
    Copy, CopyFromStdin, CopyOnError, CopySource, CopyTo, ExportOptions, ParquetCodec,
    PgCopyFormat, PgCopyOptions, Statement, TableRef,
};
use crate::time::PartitionBy;

impl Qp<'_> {
    /// QuestDB's COPY: `COPY t FROM 'file' [WITH option …]` and
    /// `COPY 'id' CANCEL`.
    /// `COPY …`: picks the form from the words after COPY.
    pub(super) fn copy(&mut self) -> Result<Statement> {
        self.p.next_token();
        let first = self.p.peek_token();
        if first.token == Token::LParen {
            return self.copy_query_to_stdout(&first);
        }
        if let Token::SingleQuotedString(id) = &first.token {
            let id = id.clone();
            self.p.next_token();
            self.expect_word("cancel")?;
            return Ok(Statement::CopyCancel { id });
        }
        if matches!(first.token, Token::Number(..)) || self.peek_word_nth(1, "cancel") {
            return self.copy_cancel_unquoted();
        }
        let table = self.table_ref()?;
        let columns = self.copy_column_list()?;
        if self.parse_word("to") {
            return self.copy_table_to_stdout(table, columns);
        }
        if !self.parse_word("from") {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'from' or 'to' or 'cancel' expected"));
        }
        self.copy_from(table, columns)
    }

    /// `COPY (query) TO STDOUT [WITH (…)]`.
    fn copy_query_to_stdout(&mut self, first: &TokenWithSpan) -> Result<Statement> {
        self.p.next_token();
        let query = wrap(self.sql, self.p.parse_query())?;
        let query = Box::new(self.inner_query(query)?);
        self.p
            .expect_token(&Token::RParen)
            .map_err(|e| syntax_error(self.sql, e))?;
        if self.parse_word("from") {
            return Err(self.err_at(first, "subqueries are not supported for `COPY-FROM`"));
        }
        self.expect_word("to")?;
        if let Some(to) = self.copy_to_path(CopySource::Query(query.clone()))? {
            return Ok(to);
        }
        self.expect_stdout()?;
        let options = self.pg_copy_options()?;
        Ok(Statement::CopyToStdout {
            source: CopySource::Query(query),
            options,
        })
    }

    /// An unquoted id: `COPY 55ca24e5ba328050 CANCEL`.
    fn copy_cancel_unquoted(&mut self) -> Result<Statement> {
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
        Ok(Statement::CopyCancel { id })
    }

    /// An optional `(col, …)` after the table (PostgreSQL's COPY).
    fn copy_column_list(&mut self) -> Result<Vec<String>> {
        let mut columns = Vec::new();
        if !self.p.consume_token(&Token::LParen) {
            return Ok(columns);
        }
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
                return Ok(columns);
            }
            let t = self.p.peek_token();
            if !self.p.consume_token(&Token::Comma) {
                return Err(self.err_at(&t, "',' or ')' expected"));
            }
        }
    }

    /// `COPY t TO STDOUT [WITH (…)]`.
    fn copy_table_to_stdout(&mut self, table: TableRef, columns: Vec<String>) -> Result<Statement> {
        if columns.is_empty()
            && let Some(to) = self.copy_to_path(CopySource::Table(table.clone()))?
        {
            return Ok(to);
        }
        self.expect_stdout()?;
        if !columns.is_empty() {
            return Err(Error::unsupported(
                "COPY t (columns) TO STDOUT: use COPY (SELECT columns FROM t) TO STDOUT",
            ));
        }
        let options = self.pg_copy_options()?;
        Ok(Statement::CopyToStdout {
            source: CopySource::Table(table),
            options,
        })
    }

    /// After `TO`: a quoted directory is QuestDB's Parquet export,
    /// `COPY … TO 'dir' [WITH option …]` (`None`: not this form).
    fn copy_to_path(&mut self, source: CopySource) -> Result<Option<Statement>> {
        let lit = self.p.peek_token();
        let Token::SingleQuotedString(path) = &lit.token else {
            return Ok(None);
        };
        let path = path.clone();
        let path_position = self.pos(&lit);
        self.p.next_token();
        if path.is_empty() {
            return Err(self.err_at(&lit, "export directory name expected"));
        }
        let mut options = ExportOptions::default();
        let t = self.p.peek_token();
        if !matches!(t.token, Token::SemiColon | Token::EOF) {
            if !self.parse_word("with") {
                return Err(self.err_at(&t, "'with' expected"));
            }
            loop {
                let t = self.p.peek_token();
                if matches!(t.token, Token::SemiColon | Token::EOF) {
                    break;
                }
                self.export_option(&mut options, &t)?;
            }
        }
        Ok(Some(Statement::CopyTo(CopyTo {
            source,
            path,
            path_position,
            options,
        })))
    }

    /// One option of a Parquet export, in any order.
    fn export_option(&mut self, o: &mut ExportOptions, t: &TokenWithSpan) -> Result<()> {
        let Token::Word(w) = &t.token else {
            return Err(self.err_at(t, "export option expected"));
        };
        let name = w.value.to_ascii_lowercase();
        self.p.next_token();
        // QuestDB writes PARTITION_BY; PARTITION BY as in COPY FROM is
        // taken too.
        let name = if name == "partition" && self.parse_word("by") {
            "partition_by".to_string()
        } else {
            name
        };
        let v = self.p.peek_token();
        match name.as_str() {
            "format" => {
                if !self.parse_word("parquet") {
                    return Err(self.err_at(&v, "'parquet' expected: exports write Parquet"));
                }
            }
            "partition_by" => {
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
                o.partition_by = Some(unit);
            }
            "compression_codec" => {
                let codec = self
                    .string_or_word()
                    .and_then(|(c, _)| ParquetCodec::parse(&c));
                let Some(codec) = codec else {
                    return Err(self.err_at(
                        &v,
                        "'UNCOMPRESSED', 'SNAPPY', 'GZIP', 'LZ4', 'ZSTD', 'LZ4_RAW' or 'BROTLI' expected",
                    ));
                };
                o.codec = Some(codec);
            }
            "compression_level" => o.compression_level = Some(self.export_int(&v, true)?),
            "row_group_size" => o.row_group_size = Some(self.export_uint(&v)?),
            "data_page_size" => o.data_page_size = Some(self.export_uint(&v)?),
            "parquet_version" => {
                let n = self.export_uint(&v)?;
                if n != 1 && n != 2 {
                    return Err(self.err_at(&v, "parquet version 1 or 2 expected"));
                }
                o.parquet_version = Some(n);
            }
            "statistics_enabled" => o.statistics = Some(self.copy_bool()?),
            "bloom_filter_columns" => {
                let Some((cols, _)) = self.string_or_word() else {
                    return Err(self.err_at(&v, "a comma-separated list of columns expected"));
                };
                o.bloom_filter_columns = cols
                    .split(',')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect();
            }
            "bloom_filter_fpp" => {
                let fpp = match &v.token {
                    Token::Number(n, _) => n.parse::<f64>().ok(),
                    _ => None,
                }
                .filter(|f| *f > 0.0 && *f < 1.0);
                let Some(fpp) = fpp else {
                    return Err(self.err_at(&v, "a probability between 0 and 1 expected"));
                };
                self.p.next_token();
                o.bloom_filter_fpp = Some(fpp);
            }
            _ => return Err(self.err_at(t, "unexpected export option")),
        }
        Ok(())
    }

    fn export_uint(&mut self, v: &TokenWithSpan) -> Result<u64> {
        let n = self.export_int(v, false)?;
        if n <= 0 {
            return Err(self.err_at(v, "a positive number expected"));
        }
        Ok(n as u64)
    }

    fn export_int(&mut self, v: &TokenWithSpan, signed: bool) -> Result<i64> {
        let negative = signed && self.p.consume_token(&Token::Minus);
        let t = self.p.peek_token();
        let n = match &t.token {
            Token::Number(n, _) => n.parse::<i64>().ok(),
            _ => None,
        };
        let Some(n) = n else {
            return Err(self.err_at(v, "a number expected"));
        };
        self.p.next_token();
        Ok(if negative { -n } else { n })
    }

    /// After `FROM`: STDIN (PostgreSQL) or a quoted file name (QuestDB).
    fn copy_from(&mut self, table: TableRef, columns: Vec<String>) -> Result<Statement> {
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
            quote: None,
            escape: None,
            skip: None,
            header_lines: None,
            encoding: None,
            partition_by: None,
            on_error: None,
            dry_run: false,
            force: false,
        };
        let t = self.p.peek_token();
        if matches!(t.token, Token::SemiColon | Token::EOF) {
            return Ok(Statement::Copy(copy));
        }
        let with = self.parse_word("with");
        // PostgreSQL's form: `[WITH] (name [value], …)`.
        if self.p.consume_token(&Token::LParen) {
            self.comma_list(|p| {
                let t = p.p.peek_token();
                p.copy_option(&mut copy, &t, true)
            })?;
            let t = self.p.peek_token();
            if !matches!(t.token, Token::SemiColon | Token::EOF) {
                return Err(self.err_at(&t, "end of statement expected"));
            }
            return Ok(Statement::Copy(copy));
        }
        if !with {
            return Err(self.err_at(&t, "'with' expected"));
        }
        loop {
            let t = self.p.peek_token();
            if matches!(t.token, Token::SemiColon | Token::EOF) {
                return Ok(Statement::Copy(copy));
            }
            self.copy_option(&mut copy, &t, false)?;
        }
    }

    /// One of QuestDB's COPY options after `WITH`, in any order; `listed`:
    /// inside PostgreSQL's parentheses, where a flag needs no value and
    /// `FORMAT csv` names the format, not a timestamp pattern.
    fn copy_option(&mut self, copy: &mut Copy, t: &TokenWithSpan, listed: bool) -> Result<()> {
        let flag = |this: &mut Self| -> Result<bool> {
            let next = this.p.peek_token();
            if listed && matches!(next.token, Token::Comma | Token::RParen) {
                return Ok(true);
            }
            this.copy_bool()
        };
        if self.parse_word("header") {
            let v = self.p.peek_token();
            match &v.token {
                Token::Number(n, _) => {
                    let Ok(lines) = n.parse::<usize>() else {
                        return Err(self.err_at(&v, "HEADER expects true, false or a line count"));
                    };
                    self.p.next_token();
                    copy.header = Some(lines > 0);
                    copy.header_lines = Some(lines);
                }
                _ => copy.header = Some(flag(self)?),
            }
        } else if self.parse_word("force") {
            copy.force = flag(self)?;
        } else if self.parse_word("dry") {
            self.expect_word("run")?;
            copy.dry_run = flag(self)?;
        } else if self.parse_word("quote") {
            copy.quote = Some(self.pg_char("QUOTE")?);
        } else if self.parse_word("escape") {
            copy.escape = Some(self.pg_char("ESCAPE")?);
        } else if self.parse_word("skip") {
            let v = self.p.peek_token();
            let n = match &v.token {
                Token::Number(n, _) => n.parse::<usize>().ok(),
                _ => None,
            };
            let Some(n) = n else {
                return Err(self.err_at(&v, "SKIP expects a line count"));
            };
            self.p.next_token();
            copy.skip = Some(n);
        } else if self.parse_word("encoding") {
            let v = self.p.peek_token();
            let Some((name, _)) = self.string_or_word() else {
                return Err(self.err_at(&v, "encoding name expected"));
            };
            copy.encoding = Some(name);
        } else if self.parse_word("timestamp") {
            let v = self.p.peek_token();
            let Some((name, _)) = self.string_or_word() else {
                return Err(self.err_at(&v, "timestamp column name expected"));
            };
            if name.is_empty()
                || name.contains(|c: char| c.is_control() || "\"'?.,/\\:()+*%~-".contains(c))
            {
                return Err(self.err_at(&v, "timestamp column name contains invalid characters"));
            }
            copy.timestamp = Some(name);
        } else if self.parse_word("format") {
            let v = self.p.peek_token();
            let Some((f, _)) = self.string_or_word() else {
                return Err(self.err_at(&v, "format expected"));
            };
            if !(listed && f.eq_ignore_ascii_case("csv")) {
                copy.format = Some(f);
            }
        } else if self.parse_word("delimiter") {
            let v = self.p.peek_token();
            let Some((d, _)) = self.string_or_word() else {
                return Err(self.err_at(&v, "delimiter expected"));
            };
            // `'\t'` as DuckDB and psql users write a tab.
            let d = if d == "\\t" { "\t".to_string() } else { d };
            if !d.is_ascii() {
                return Err(self.err_at(&v, "delimiter is not an ascii character"));
            }
            if d.is_empty() || d.len() > 4 {
                return Err(self.err_at(&v, "delimiter is empty or longer than 4 characters"));
            }
            copy.delimiter = Some(d.into_bytes());
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
            return Err(self.err_at(t, "unexpected option"));
        }
        Ok(())
    }

    /// `true` or `false` after a COPY option's name.
    fn copy_bool(&mut self) -> Result<bool> {
        let v = self.p.peek_token();
        let b = match &v.token {
            Token::Word(w) if w.value.eq_ignore_ascii_case("true") => true,
            Token::Word(w) if w.value.eq_ignore_ascii_case("false") => false,
            _ => return Err(self.err_at(&v, "'true' or 'false' expected")),
        };
        self.p.next_token();
        Ok(b)
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
            self.pg_copy_option(&name, &t, &mut o)?;
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

    /// One of PostgreSQL's COPY options, `name` (at `t`) read already.
    fn pg_copy_option(
        &mut self,
        name: &str,
        t: &TokenWithSpan,
        o: &mut PgCopyOptions,
    ) -> Result<()> {
        match name {
            "format" => o.format = self.pg_format()?,
            "csv" => o.format = PgCopyFormat::Csv,
            "text" => o.format = PgCopyFormat::Text,
            "binary" => o.format = PgCopyFormat::Binary,
            "header" => o.header = self.pg_bool().unwrap_or(true),
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
                // Accepted and ignored, with or without its boolean.
                let v = self.p.peek_token();
                if matches!(&v.token, Token::Word(w) if matches!(w.value.to_ascii_lowercase().as_str(), "true" | "false" | "on" | "off"))
                {
                    self.p.next_token();
                }
            }
            other => {
                return Err(self.err_at(t, format!("COPY option '{other}' is not supported")));
            }
        }
        Ok(())
    }

    /// FORMAT's value: csv, text or binary, bare or quoted.
    fn pg_format(&mut self) -> Result<PgCopyFormat> {
        let v = self.p.next_token();
        let text = match &v.token {
            Token::Word(w) => w.value.to_ascii_lowercase(),
            Token::SingleQuotedString(s) => s.to_ascii_lowercase(),
            _ => String::new(),
        };
        match text.as_str() {
            "csv" => Ok(PgCopyFormat::Csv),
            "text" => Ok(PgCopyFormat::Text),
            "binary" => Ok(PgCopyFormat::Binary),
            _ => Err(Error::unsupported(format!(
                "COPY format '{}' is not supported (csv, text or binary)",
                v.token
            ))),
        }
    }

    /// A boolean value, when one follows (true/on/1, false/off/0); none
    /// is read otherwise (`HEADER` alone means true).
    fn pg_bool(&mut self) -> Option<bool> {
        let v = self.p.peek_token();
        let value = match &v.token {
            Token::Word(w) => match w.value.to_ascii_lowercase().as_str() {
                "true" | "on" => true,
                "false" | "off" => false,
                _ => return None,
            },
            Token::Number(n, _) if n == "1" || n == "0" => n == "1",
            _ => return None,
        };
        self.p.next_token();
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{one, parse};
    use super::*;

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
        assert_eq!(c.delimiter.as_deref(), Some(&b";"[..]));
        assert_eq!(c.on_error, Some(CopyOnError::SkipColumn));
        assert!(!c.dry_run);
        let Statement::Copy(c) = one("copy y from 'somefile.csv';") else {
            panic!()
        };
        assert_eq!((c.header, c.delimiter, c.on_error), (None, None, None));
        let Statement::Copy(c) = one("COPY y FROM 'f.csv' WITH DRY RUN true HEADER false") else {
            panic!()
        };
        assert_eq!((c.dry_run, c.header), (true, Some(false)));
        let Statement::Copy(c) = one("COPY y FROM 'd/' WITH FORCE true") else {
            panic!()
        };
        assert!(c.force);
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
            "delimiter is empty or longer than 4 characters"
        );
        assert_eq!(
            err("copy x from 'a.csv' with delimiter '_____';").0,
            "delimiter is empty or longer than 4 characters"
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
}
