//! INSERT: `VALUES` or a query, QuestDB's `batch n` clause.

use datafusion::sql::sqlparser::ast as sp;
use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::parser::{Parser, ParserError};
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
        let source = match self.p.maybe_parse(literal_values) {
            Ok(Some(values)) => Box::new(values),
            _ => wrap(self.sql, self.p.parse_query())?,
        };
        let source = self.inner_query(source)?;
        Ok(Statement::Insert(std::sync::Arc::new(Insert {
            table,
            columns,
            source,
            batch,
        })))
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

/// `VALUES (…), …` ending the statement, read as sqlparser reads it, but
/// with a plain literal (a number, a quoted string, a negative number)
/// taken as one token. sqlparser first tries each expression as a typed
/// string (`DATE '…'`) and formats the error of that try: for a 100-row
/// INSERT that was a third of the parse. Anything else (other expressions,
/// clauses after the list, a syntax error) is an error here, and the caller
/// parses the statement the usual way from where it was.
fn literal_values(p: &mut Parser<'_>) -> std::result::Result<sp::Query, ParserError> {
    let not_plain = || ParserError::ParserError("not a plain VALUES list".into());
    if !p.parse_keyword(Keyword::VALUES) {
        return Err(not_plain());
    }
    let ends_value = |t: &Token| matches!(t, Token::Comma | Token::RParen);
    enum Plain {
        Literal,
        Negative,
    }
    let mut rows = Vec::new();
    loop {
        let opening = p.expect_token(&Token::LParen)?;
        let mut row = Vec::new();
        loop {
            // Looked at in place: no token is copied for the look.
            let plain = {
                let at = |n| &p.peek_nth_token_ref(n).token;
                match at(0) {
                    Token::Number(..) | Token::SingleQuotedString(_) if ends_value(at(1)) => {
                        Some(Plain::Literal)
                    }
                    Token::Minus if matches!(at(1), Token::Number(..)) && ends_value(at(2)) => {
                        Some(Plain::Negative)
                    }
                    _ => None,
                }
            };
            let expr = match plain {
                Some(Plain::Literal) => sp::Expr::Value(p.parse_value()?),
                Some(Plain::Negative) => {
                    p.next_token();
                    sp::Expr::UnaryOp {
                        op: sp::UnaryOperator::Minus,
                        expr: Box::new(sp::Expr::Value(p.parse_value()?)),
                    }
                }
                None => p.parse_expr()?,
            };
            row.push(expr);
            if !p.consume_token(&Token::Comma) {
                break;
            }
        }
        let closing = p.expect_token(&Token::RParen)?;
        rows.push(sp::Parens {
            opening_token: opening.into(),
            content: row,
            closing_token: closing.into(),
        });
        if !p.consume_token(&Token::Comma) {
            break;
        }
    }
    if !matches!(p.peek_token_ref().token, Token::EOF | Token::SemiColon) {
        return Err(not_plain());
    }
    Ok(crate::sql::ast::values_query(rows))
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

    #[test]
    fn plain_values_read_as_sqlparser_reads_them() {
        use datafusion::sql::sqlparser::dialect::GenericDialect;
        for sql in [
            "VALUES (1, 'x', -2.5, '2026-01-01T00:00:00Z'), (2, 'it''s', 3e5, NULL)",
            "VALUES (-1, now(), 1 + 2, -x, 'a' || 'b', '1'::int, DATE '2020-01-01')",
            "VALUES (1);",
        ] {
            let parse =
                |f: &dyn Fn(&mut Parser<'_>) -> std::result::Result<sp::Query, ParserError>| {
                    let dialect = GenericDialect {};
                    let mut p = Parser::new(&dialect).try_with_sql(sql).unwrap();
                    f(&mut p).unwrap()
                };
            let ours = parse(&|p| literal_values(p));
            let theirs = parse(&|p| p.parse_query().map(|q| *q));
            assert_eq!(ours, theirs, "{sql}");
        }
        // Not a plain list: left to sqlparser, from where it was.
        for sql in ["VALUES (1) ORDER BY 1", "VALUES (1", "SELECT 1"] {
            let dialect = GenericDialect {};
            let mut p = Parser::new(&dialect).try_with_sql(sql).unwrap();
            assert!(p.maybe_parse(literal_values).unwrap().is_none(), "{sql}");
            assert_eq!(
                p.peek_token_ref().token,
                Parser::new(&dialect)
                    .try_with_sql(sql)
                    .unwrap()
                    .peek_token_ref()
                    .token
            );
        }
        let Statement::Insert(i) = one("insert into t values (1, -2, 'x')") else {
            panic!()
        };
        assert!(
            matches!(*i.source.query.body, sp::SetExpr::Values(ref v) if v.rows[0].content.len() == 3)
        );
    }
}
