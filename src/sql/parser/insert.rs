//! INSERT: `VALUES` or a query, QuestDB's `batch n` clause.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::Token;

use super::Qp;
use super::errors::wrap;
use crate::error::Result;
use crate::sql::ast::{Insert, Statement};

impl Qp<'_> {
    pub(super) fn insert(&mut self) -> Result<Statement> {
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
        let source = self.inner_query(source)?;
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
}

#[cfg(test)]
mod tests {
    use super::super::one;
    use super::*;

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
}
