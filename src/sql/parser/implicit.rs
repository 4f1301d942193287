//! QuestDB's implicit SELECT: a statement that starts with a table's name
//! or a table function's call (`weather;`, `weather WHERE tempF > 90`,
//! `tables();`) reads as `SELECT * FROM` it. Done on the tokens, before
//! sqlparser reads them: `SELECT * FROM` goes in front of the name, with
//! the name's place, so an error points at what the user wrote.

use datafusion::sql::sqlparser::keywords::Keyword;
use datafusion::sql::sqlparser::tokenizer::{Token, TokenWithSpan, Word};

/// `tokens` with `SELECT * FROM` before each statement that starts with a
/// name no statement starts with.
pub(super) fn implicit_select(tokens: Vec<TokenWithSpan>) -> Vec<TokenWithSpan> {
    let mut out = Vec::with_capacity(tokens.len() + 3);
    let mut at_start = true;
    for t in tokens {
        match &t.token {
            Token::Whitespace(_) => {}
            Token::SemiColon => at_start = true,
            Token::Word(w) if at_start => {
                if names_a_relation(w) {
                    let at = |token: Token| TokenWithSpan::new(token, t.span);
                    out.push(at(Token::make_keyword("SELECT")));
                    out.push(at(Token::Mul));
                    out.push(at(Token::make_keyword("FROM")));
                }
                at_start = false;
            }
            _ => at_start = false,
        }
        out.push(t);
    }
    out
}

/// Whether a statement's first word can only be a table or table
/// function: a quoted name, a word that is no SQL keyword, or `tables`
/// (a keyword of `SHOW TABLES`, and QuestDB's `tables()`). Every statement
/// sqlparser or sluice reads starts with a keyword.
fn names_a_relation(w: &Word) -> bool {
    w.quote_style.is_some() || matches!(w.keyword, Keyword::NoKeyword | Keyword::TABLES)
}

#[cfg(test)]
mod tests {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::tokenizer::Tokenizer;

    use super::*;

    fn rewritten(sql: &str) -> String {
        let tokens = Tokenizer::new(&GenericDialect {}, sql)
            .tokenize_with_location()
            .unwrap();
        implicit_select(tokens)
            .iter()
            .map(|t| t.token.to_string())
            .collect::<Vec<_>>()
            .join("|")
    }

    #[test]
    fn a_name_first_is_a_select_of_it() {
        assert_eq!(rewritten("weather"), "SELECT|*|FROM|weather");
        assert_eq!(
            rewritten("tables();x"),
            "SELECT|*|FROM|tables|(|)|;|SELECT|*|FROM|x"
        );
        assert_eq!(
            rewritten("\"my t\" where a"),
            "SELECT|*|FROM|\"my t\"| |where| |a"
        );
        // Statements are left as they are.
        assert_eq!(rewritten("select 1"), "select| |1");
        assert_eq!(rewritten("backup table t"), "backup| |table| |t");
        assert_eq!(rewritten("set x = 1"), "set| |x| |=| |1");
    }
}
