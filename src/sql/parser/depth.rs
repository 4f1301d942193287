//! A bound on how deep a statement's expressions can nest, checked on the
//! tokens before sqlparser builds a tree.
//!
//! sqlparser reads `a + b + c …` in a loop, so a run of infix operators
//! becomes a left-deep tree as deep as the run is long, whatever its
//! recursion limit (which bounds parentheses only). Planning such a tree
//! recurses once per level, and parts of that recursion (cloning,
//! hashing, comparing and dropping expressions) have no stack guard: a
//! `SELECT 1+1+…` of 5,000 terms overflowed a server thread's stack and
//! aborted the process. DuckDB refuses expressions deeper than 1,000
//! (`max_expression_depth`); this counts the operators in a row, which
//! is never less than the depth they make.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan};

use super::errors::offset_of;
use crate::error::{Error, Result};

/// The most infix operators in a row, counted through every open
/// parenthesis. Planning a tree this deep stays far below a server
/// thread's stack (a test plans one of each shape).
pub const MAX_OPERATORS: usize = 1_000;

/// Whether `token` continues an expression with an operator: every
/// symbol but the separators, and the keywords that join two operands.
fn is_operator(token: &Token) -> bool {
    match token {
        Token::Word(w) => matches!(
            w.keyword,
            Keyword::AND
                | Keyword::OR
                | Keyword::XOR
                | Keyword::IS
                | Keyword::LIKE
                | Keyword::ILIKE
                | Keyword::SIMILAR
                | Keyword::BETWEEN
                | Keyword::IN
                | Keyword::AT
                | Keyword::COLLATE
                | Keyword::NOT
                | Keyword::REGEXP
                | Keyword::RLIKE
                | Keyword::DIV
                // Set operations and joins chain the same way.
                | Keyword::UNION
                | Keyword::EXCEPT
                | Keyword::INTERSECT
                | Keyword::JOIN
        ),
        Token::EOF
        | Token::Number(..)
        | Token::Char(_)
        | Token::SingleQuotedString(_)
        | Token::DoubleQuotedString(_)
        | Token::NationalStringLiteral(_)
        | Token::EscapedStringLiteral(_)
        | Token::UnicodeStringLiteral(_)
        | Token::HexStringLiteral(_)
        | Token::Whitespace(_)
        | Token::Comma
        | Token::SemiColon
        | Token::LParen
        | Token::RParen
        | Token::LBrace
        | Token::RBrace
        | Token::RBracket
        | Token::Period
        | Token::Colon
        | Token::Placeholder(_) => false,
        _ => true,
    }
}

/// Fails on the first operator that makes more than [`MAX_OPERATORS`] in
/// one expression: a comma starts a new count at its parenthesis level,
/// and the count of a closed group joins its level's (a tree nests
/// through its parenthesised leftmost operands). An expression's depth
/// is never more than its operators (and the parser's own limit on
/// parentheses).
pub(super) fn check(sql: &str, tokens: &[TokenWithSpan]) -> Result<()> {
    let mut levels: Vec<usize> = vec![0];
    let mut total = 0;
    for t in tokens {
        match &t.token {
            Token::LParen | Token::LBracket => levels.push(0),
            // A closed group may be the leftmost operand of what follows:
            // its operators stay in the count of its level's item.
            Token::RParen | Token::RBracket if levels.len() > 1 => {
                let inner = levels.pop().unwrap_or(0);
                *levels.last_mut().expect("a level") += inner;
            }
            Token::Comma | Token::SemiColon => {
                let top = levels.last_mut().expect("a level");
                total -= *top;
                *top = 0;
            }
            token if is_operator(token) => {
                *levels.last_mut().expect("a level") += 1;
                total += 1;
                if total > MAX_OPERATORS {
                    return Err(Error::TooComplex {
                        limit: MAX_OPERATORS,
                        position: offset_of(sql, t.span.start),
                    });
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    fn run(sql: &str) -> Result<()> {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        check(sql, &tokens)
    }

    fn chain(n: usize) -> String {
        vec!["1"; n + 1].join("+")
    }

    #[test]
    fn counts_operators_in_a_row() {
        assert!(run(&format!("SELECT {}", chain(MAX_OPERATORS))).is_ok());
        let sql = format!("SELECT {}", chain(MAX_OPERATORS + 1));
        let Err(Error::TooComplex { limit, position }) = run(&sql) else {
            panic!("accepted {} operators", MAX_OPERATORS + 1);
        };
        assert_eq!(limit, MAX_OPERATORS);
        // The operator past the limit: after "SELECT " and 1,001 "1+".
        assert_eq!(position, "SELECT ".len() + 2 * MAX_OPERATORS + 1);
    }

    #[test]
    fn commas_start_again_and_parentheses_add_up() {
        let half = chain(MAX_OPERATORS / 2 + 1);
        // Two long lists' items are separate trees.
        assert!(run(&format!("SELECT {half}, {half}")).is_ok());
        assert!(run(&format!("SELECT f({half}, {half})")).is_ok());
        // A parenthesised operand nests one run inside the other.
        let nested = format!("SELECT ({half}) + {half}");
        assert!(matches!(run(&nested), Err(Error::TooComplex { .. })));
        let inside = format!("SELECT {half} + ({half})");
        assert!(matches!(run(&inside), Err(Error::TooComplex { .. })));
    }
}
