//! The statements that change a table after CREATE: QuestDB's `ALTER
//! TABLE` forms, `UPDATE` and `DELETE` (PostgreSQL's, which QuestDB lacks),
//! and the table options CREATE TABLE shares with them (`TTL`, `WITH`
//! parameters, `DEDUP UPSERT KEYS`).

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::Qp;
use super::errors::wrap;
use crate::catalog::{TableParam, Ttl, TtlUnit};
use crate::error::Result;
use crate::sql::ast::{AlterTable, PartitionPick, Statement};

impl Qp<'_> {
    /// `ALTER TABLE t …` (the two words already read).
    pub(super) fn alter_table(&mut self) -> Result<Statement> {
        let table = self.table_ref()?;
        let t = self.p.peek_token();
        let action = if self.parse_word("add") {
            self.parse_word("column");
            let if_not_exists =
                self.p
                    .parse_keywords(&[Keyword::IF, Keyword::NOT, Keyword::EXISTS]);
            let mut columns = Vec::new();
            loop {
                let at = self.pos(&self.p.peek_token());
                columns.push((self.column_def()?, at));
                if !self.p.consume_token(&Token::Comma) {
                    break;
                }
                // `ADD COLUMN a INT, COLUMN b INT` and `ADD COLUMN a INT, b INT`.
                self.parse_word("column");
            }
            AlterTable::AddColumns {
                columns,
                if_not_exists,
            }
        } else if self.parse_word("drop") {
            if self.parse_word("partition") {
                AlterTable::DropPartitions(self.partition_pick()?)
            } else {
                self.expect_word("column")?;
                let mut names = vec![self.column_name()?];
                while self.p.consume_token(&Token::Comma) {
                    self.parse_word("column");
                    names.push(self.column_name()?);
                }
                AlterTable::DropColumns(names)
            }
        } else if self.parse_word("detach") {
            self.expect_word("partition")?;
            AlterTable::DetachPartitions(self.partition_pick()?)
        } else if self.parse_word("attach") {
            self.expect_word("partition")?;
            let t = self.p.peek_token();
            match self.partition_pick()? {
                PartitionPick::List(names) => AlterTable::AttachPartitions(names),
                PartitionPick::Where(_) => return Err(self.err_at(&t, "'list' expected")),
            }
        } else if self.parse_word("rename") {
            self.expect_word("column")?;
            let from = self.column_name()?;
            self.expect_word("to")?;
            let (to, _) = self.column_name()?;
            AlterTable::RenameColumn { from, to }
        } else if self.parse_word("alter") {
            self.expect_word("column")?;
            let column = self.column_name()?;
            let t = self.p.peek_token();
            if self.parse_word("type") {
                let col = self.column_type(&column.0)?;
                AlterTable::ColumnType { column, ty: col.ty }
            } else if self.parse_word("add") {
                self.expect_word("index")?;
                // QuestDB's index capacity: a sizing hint with no meaning here.
                if self.parse_word("capacity") {
                    wrap(self.sql, self.p.parse_literal_uint())?;
                }
                AlterTable::Index { column, add: true }
            } else if self.parse_word("drop") {
                self.expect_word("index")?;
                AlterTable::Index { column, add: false }
            } else {
                return Err(self.err_at(&t, "'type', 'add index' or 'drop index' expected"));
            }
        } else if self.parse_word("set") {
            let t = self.p.peek_token();
            if self.parse_word("param") {
                let mut params = vec![self.table_param()?];
                while self.p.consume_token(&Token::Comma) {
                    params.push(self.table_param()?);
                }
                AlterTable::SetParams(params)
            } else if self.parse_word("ttl") {
                AlterTable::SetTtl(self.ttl()?)
            } else {
                return Err(self.err_at(&t, "'param' or 'ttl' expected"));
            }
        } else if self.parse_word("dedup") {
            let t = self.p.peek_token();
            if self.parse_word("disable") {
                AlterTable::Dedup(None)
            } else if self.parse_word("enable") {
                AlterTable::Dedup(Some(self.upsert_keys()?))
            } else {
                return Err(self.err_at(&t, "'enable' or 'disable' expected"));
            }
        } else {
            return Err(self.err_at(
                &t,
                "'add', 'drop', 'rename', 'alter', 'attach', 'detach', 'set' or 'dedup' expected",
            ));
        };
        Ok(Statement::AlterTable { table, action })
    }

    /// `LIST 'a' [, 'b' …]` or `WHERE condition`.
    fn partition_pick(&mut self) -> Result<PartitionPick> {
        let t = self.p.peek_token();
        if self.parse_word("list") {
            let mut names = Vec::new();
            loop {
                let v = self.p.next_token();
                match &v.token {
                    Token::SingleQuotedString(s) => names.push((s.clone(), self.pos(&v))),
                    _ => return Err(self.err_at(&v, "partition name expected")),
                }
                if !self.p.consume_token(&Token::Comma) {
                    break;
                }
            }
            return Ok(PartitionPick::List(names));
        }
        if self.p.parse_keyword(Keyword::WHERE) {
            let e = wrap(self.sql, self.p.parse_expr())?;
            return Ok(PartitionPick::Where(Box::new(e)));
        }
        Err(self.err_at(&t, "'list' or 'where' expected"))
    }

    /// `name = value` of `WITH` and `SET PARAM`.
    pub(super) fn table_param(&mut self) -> Result<TableParam> {
        let name = self.p.next_token();
        let key = match &name.token {
            Token::Word(w) => w.value.to_ascii_lowercase(),
            _ => return Err(self.err_at(&name, "parameter name expected")),
        };
        if !self.p.consume_token(&Token::Eq) {
            let t = self.p.peek_token();
            return Err(self.err_at(&t, "'=' expected"));
        }
        let v = self.p.next_token();
        let number = match &v.token {
            Token::Number(n, _) => n.parse::<u64>().ok(),
            _ => None,
        };
        let Some(n) = number else {
            return Err(self.err_at(
                &v,
                format!(
                    "invalid value [value={}, parameter={}]",
                    v.token, name.token
                ),
            ));
        };
        match key.as_str() {
            "maxuncommittedrows" => Ok(TableParam::MaxUncommittedRows(n)),
            // QuestDB's lag: a number with a unit, microseconds without.
            "o3maxlag" | "commitlag" => {
                let scale = match &self.p.peek_token().token {
                    Token::Word(w) if w.quote_style.is_none() => {
                        match w.value.to_ascii_lowercase().as_str() {
                            "us" => Some(1),
                            "ms" => Some(1_000),
                            "s" => Some(1_000_000),
                            "m" => Some(60_000_000),
                            "h" => Some(3_600_000_000),
                            _ => None,
                        }
                    }
                    _ => None,
                };
                if scale.is_some() {
                    self.p.next_token();
                }
                Ok(TableParam::O3MaxLag(n.saturating_mul(scale.unwrap_or(1))))
            }
            _ => Err(self.err_at(&name, format!("unknown parameter '{}'", name.token))),
        }
    }

    /// `n UNIT` after TTL; `None` for `0` (no TTL).
    pub(super) fn ttl(&mut self) -> Result<Option<Ttl>> {
        let n = self.p.next_token();
        let count = match &n.token {
            Token::Number(s, _) => s.parse::<u32>().ok(),
            _ => None,
        }
        .ok_or_else(|| self.err_at(&n, "TTL value expected (a whole number and a unit)"))?;
        let u = self.p.peek_token();
        let unit = match &u.token {
            Token::Word(w) => TtlUnit::parse(&w.value),
            _ => None,
        };
        match unit {
            Some(unit) => {
                self.p.next_token();
                Ok((count > 0).then_some(Ttl { count, unit }))
            }
            None if count == 0 => Ok(None),
            None => Err(self.err_at(&u, "'HOURS', 'DAYS', 'WEEKS', 'MONTHS' or 'YEARS' expected")),
        }
    }

    /// `UPSERT KEYS(a, b, …)`.
    pub(super) fn upsert_keys(&mut self) -> Result<Vec<(String, usize)>> {
        self.expect_word("upsert")?;
        self.expect_word("keys")?;
        let t = self.p.peek_token();
        if !self.p.consume_token(&Token::LParen) {
            return Err(self.err_at(&t, "'(' expected"));
        }
        let mut keys = Vec::new();
        self.comma_list(|p| {
            keys.push(p.column_name()?);
            Ok(())
        })?;
        Ok(keys)
    }

    /// `BACKUP TABLE a [, …] | BACKUP DATABASE`, then `[TO 'name']`.
    pub(super) fn backup(&mut self) -> Result<Statement> {
        self.p.next_token(); // BACKUP
        let t = self.p.peek_token();
        let tables = if self.parse_word("database") {
            None
        } else if self.parse_word("table") {
            Some(self.table_list()?)
        } else {
            return Err(self.err_at(&t, "'table' or 'database' expected"));
        };
        let name = if self.parse_word("to") {
            let v = self.p.next_token();
            match &v.token {
                Token::SingleQuotedString(s) => Some((s.clone(), self.pos(&v))),
                _ => return Err(self.err_at(&v, "backup name expected")),
            }
        } else {
            None
        };
        Ok(Statement::Backup(crate::sql::ast::Backup { tables, name }))
    }

    /// `UPDATE t SET c = e [, …] [WHERE p]`.
    pub(super) fn update(&mut self) -> Result<Statement> {
        self.p.next_token(); // UPDATE
        let table = self.table_ref()?;
        self.expect_word("set")?;
        let mut assignments = Vec::new();
        loop {
            let column = self.column_name()?;
            if !self.p.consume_token(&Token::Eq) {
                let t = self.p.peek_token();
                return Err(self.err_at(&t, "'=' expected"));
            }
            let value = wrap(self.sql, self.p.parse_expr())?;
            assignments.push((column, value));
            if !self.p.consume_token(&Token::Comma) {
                break;
            }
        }
        let selection = self.where_clause()?;
        Ok(Statement::Update {
            table,
            assignments,
            selection,
        })
    }

    /// `DELETE FROM t [WHERE p]`.
    pub(super) fn delete(&mut self) -> Result<Statement> {
        self.p.next_token(); // DELETE
        let t = self.p.peek_token();
        if !self.p.parse_keyword(Keyword::FROM) {
            return Err(self.err_at(&t, "'from' expected"));
        }
        let table = self.table_ref()?;
        let selection = self.where_clause()?;
        Ok(Statement::Delete { table, selection })
    }

    fn where_clause(&mut self) -> Result<Option<datafusion::sql::sqlparser::ast::Expr>> {
        if self.p.parse_keyword(Keyword::WHERE) {
            Ok(Some(wrap(self.sql, self.p.parse_expr())?))
        } else {
            Ok(None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{one, parse};
    use super::*;

    fn alter(sql: &str) -> AlterTable {
        match one(sql) {
            Statement::AlterTable { action, .. } => action,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn column_changes() {
        let AlterTable::AddColumns {
            columns,
            if_not_exists,
        } = alter("ALTER TABLE t ADD COLUMN IF NOT EXISTS w INT, x SYMBOL INDEX")
        else {
            panic!()
        };
        assert!(if_not_exists);
        assert_eq!(columns.len(), 2);
        assert!(columns[1].0.indexed);
        assert!(matches!(
            alter("alter table t drop column a, b"),
            AlterTable::DropColumns(v) if v.len() == 2
        ));
        assert!(matches!(
            alter("alter table t alter column v type float"),
            AlterTable::ColumnType {
                ty: crate::schema::ColumnType::Float,
                ..
            }
        ));
        assert!(matches!(
            alter("alter table t alter column k drop index"),
            AlterTable::Index { add: false, .. }
        ));
    }

    #[test]
    fn partitions_params_ttl_dedup() {
        assert!(matches!(
            alter("ALTER TABLE t DROP PARTITION LIST '2024-01-01', '2024-01-02'"),
            AlterTable::DropPartitions(PartitionPick::List(v)) if v.len() == 2
        ));
        assert!(matches!(
            alter("ALTER TABLE t DROP PARTITION WHERE ts < '2024-01-01'"),
            AlterTable::DropPartitions(PartitionPick::Where(_))
        ));
        assert!(matches!(
            alter("ALTER TABLE t SET PARAM o3MaxLag = 20s"),
            AlterTable::SetParams(v) if v == [TableParam::O3MaxLag(20_000_000)]
        ));
        assert!(matches!(
            alter("ALTER TABLE t SET TTL 3 WEEKS"),
            AlterTable::SetTtl(Some(Ttl {
                count: 3,
                unit: TtlUnit::Weeks
            }))
        ));
        assert!(matches!(
            alter("ALTER TABLE t DEDUP ENABLE UPSERT KEYS(ts, k)"),
            AlterTable::Dedup(Some(k)) if k.len() == 2
        ));
        let e = parse("ALTER TABLE t SET PARAM foo = 1").unwrap_err();
        assert!(e.to_string().contains("unknown parameter 'foo'"), "{e}");
        let e = parse("ALTER TABLE t frobnicate").unwrap_err();
        assert_eq!(e.position(), Some(14));
    }

    #[test]
    fn update_and_delete() {
        let Statement::Update {
            assignments,
            selection,
            ..
        } = one("UPDATE t SET v = v + 1, k = 'b' WHERE k = 'a'")
        else {
            panic!()
        };
        assert_eq!(assignments.len(), 2);
        assert!(selection.is_some());
        assert!(matches!(
            one("DELETE FROM t"),
            Statement::Delete {
                selection: None,
                ..
            }
        ));
    }
}
