//! CREATE TABLE in QuestDB's form (types, `TIMESTAMP(col)`, `PARTITION BY`,
//! `CAPACITY`, `WAL`, `AS (SELECT …)`) and the SHOW statements.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::Qp;
use super::errors::{syntax_error, wrap};
use crate::catalog::ColumnMeta;
use crate::error::{Error, Result};
use crate::schema::ColumnType;
use crate::sql::ast::{CreateTable, SessionCommand, Statement};
use crate::time::PartitionBy;

impl Qp<'_> {
    pub(super) fn create_table(&mut self) -> Result<Statement> {
        self.p.next_token(); // CREATE
        self.p.next_token(); // TABLE
        let if_not_exists = self
            .p
            .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
        let table = self.table_ref()?;
        let mut columns = Vec::new();
        let mut as_query = None;
        if self.p.parse_keyword(Keyword::AS) {
            let q = wrap(self.sql, self.p.parse_query())?;
            as_query = Some(self.inner_query(q)?);
        } else if self.p.consume_token(&Token::LParen) {
            self.comma_list(|p| {
                columns.push(p.column_def()?);
                Ok(())
            })?;
        } else {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'(' or 'as' expected"));
        }
        let mut timestamp = None;
        let mut partition_by = None;
        let mut wal = None;
        let mut ttl = None;
        let mut params = Vec::new();
        let mut dedup = Vec::new();
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
            } else if self.parse_word("ttl") {
                ttl = self.ttl()?;
            } else if self.p.parse_keyword(Keyword::WITH) {
                params.push(self.table_param()?);
                while self.p.consume_token(&Token::Comma) {
                    params.push(self.table_param()?);
                }
            } else if self.parse_word("dedup") {
                dedup = self.upsert_keys()?;
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
            ttl,
            params,
            dedup,
        }))
    }

    pub(super) fn column_def(&mut self) -> Result<ColumnMeta> {
        let (name, _) = self.column_name()?;
        self.column_type(&name)
    }

    /// A column's type and its options (`CAPACITY`, `INDEX`, …).
    pub(super) fn column_type(&mut self, name: &str) -> Result<ColumnMeta> {
        let name = name.to_string();
        let t = self.p.next_token();
        let type_name = match &t.token {
            Token::Word(w) => w.value.to_ascii_uppercase(),
            _ => return Err(self.err_at(&t, "column type expected")),
        };
        // PostgreSQL's spellings, as ORMs write them, onto our types.
        let type_name = match type_name.as_str() {
            "DOUBLE" if self.parse_word("precision") => "DOUBLE".to_string(),
            "CHARACTER" if self.parse_word("varying") => "VARCHAR".to_string(),
            "CHARACTER" => "CHAR".to_string(),
            // With or without a zone, a TIMESTAMP is a UTC instant here.
            "TIMESTAMP" | "TIMESTAMPTZ" => {
                if self.parse_word("with") || self.parse_word("without") {
                    self.expect_word("time")?;
                    self.expect_word("zone")?;
                }
                "TIMESTAMP".to_string()
            }
            "NUMERIC" | "DECIMAL" | "BYTEA" | "JSON" | "JSONB" | "MONEY" | "INTERVAL" | "TIME"
            | "TIMETZ" => {
                return Err(Error::unsupported(format!(
                    "column type {type_name} is not supported [column={name}]: {}",
                    match type_name.as_str() {
                        "NUMERIC" | "DECIMAL" | "MONEY" =>
                            "exact decimals cannot be stored; use DOUBLE (approximate) or LONG (scaled integers)",
                        "BYTEA" =>
                            "binary values cannot be stored; use VARCHAR (hex or base64 text)",
                        "JSON" | "JSONB" => "use VARCHAR for JSON text",
                        _ => "use LONG (microseconds) or TIMESTAMP",
                    }
                )));
            }
            other => other.to_string(),
        };
        let mut ty = ColumnType::parse(&type_name)
            .ok_or_else(|| self.err_at(&t, format!("unsupported column type: {type_name}")))?;
        // VARCHAR(n), FLOAT(p) and the like: the length is accepted and not
        // enforced; CHAR(n) of more than one character is text.
        if self.p.consume_token(&Token::LParen) {
            let n = wrap(self.sql, self.p.parse_literal_uint())?;
            wrap(self.sql, self.p.expect_token(&Token::RParen))?;
            if ty == ColumnType::Char && n > 1 {
                ty = ColumnType::Varchar;
            }
            // PostgreSQL's FLOAT(p): binary digits of precision; past 24
            // it is DOUBLE PRECISION (SQLAlchemy writes FLOAT(53)), and a
            // 32-bit FLOAT would change the values.
            if ty == ColumnType::Float && n > 24 {
                ty = ColumnType::Double;
            }
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

    pub(super) fn show(&mut self) -> Result<Statement> {
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
        if self.parse_word("partitions") {
            let t = self.p.peek_token();
            if !self.p.parse_keyword(Keyword::FROM) {
                return Err(self.err_at(&t, "'from' expected"));
            }
            return Ok(Statement::ShowPartitions {
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
            return Err(self.err_at(
                &t,
                "'tables', 'columns', 'partitions' or 'create table' expected",
            ));
        }
        Ok(Statement::Session(SessionCommand::Show(words.join(" "))))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{one, parse};
    use super::*;
    use crate::schema::ColumnType;

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
    fn create_table_options() {
        let Statement::CreateTable(c) = one(
            "CREATE TABLE trades (symbol SYMBOL CAPACITY 256 CACHE, price DOUBLE, timestamp TIMESTAMP) \
             timestamp(timestamp) PARTITION BY DAY TTL 2 DAYS WAL \
             WITH maxUncommittedRows=500000, o3MaxLag=600000000us DEDUP UPSERT KEYS(timestamp, symbol);",
        ) else {
            panic!()
        };
        assert_eq!(c.ttl.map(|t| t.count), Some(2));
        assert_eq!(c.params.len(), 2);
        assert_eq!(c.dedup.len(), 2);
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
    fn postgres_type_names() {
        let Statement::CreateTable(c) = one(
            "CREATE TABLE t (a DOUBLE PRECISION, b CHARACTER VARYING(9), c CHAR(4), d CHAR(1), \
             e TIMESTAMP WITH TIME ZONE, f TIMESTAMPTZ, g TIMESTAMP WITHOUT TIME ZONE, \
             h FLOAT(53), i FLOAT(24))",
        ) else {
            panic!("create table expected")
        };
        let types: Vec<ColumnType> = c.columns.iter().map(|c| c.ty).collect();
        use ColumnType::*;
        assert_eq!(
            types,
            [
                Double, Varchar, Varchar, Char, Timestamp, Timestamp, Timestamp, Double, Float
            ]
        );
        for (ty, hint) in [
            ("NUMERIC(10, 2)", "DOUBLE"),
            ("DECIMAL", "LONG"),
            ("BYTEA", "VARCHAR"),
            ("JSONB", "VARCHAR"),
        ] {
            let e = parse(&format!("CREATE TABLE t (price {ty})")).unwrap_err();
            let m = e.to_string();
            assert_eq!(e.sqlstate(), "0A000", "{m}");
            assert!(
                m.contains("is not supported [column=price]") && m.contains(hint),
                "{m}"
            );
        }
    }
}
