//! Result column names as QuestDB gives them: a function call is named
//! after the function (`count(*)` is `count`, `avg(x)` is `avg`), a
//! constant after its text (`select 1` gives `1`), a cast `cast`, any other
//! expression `column`; a name already taken gets a number (`avg`,
//! `avg1`). Columns and aliases keep their names. Only the outermost
//! SELECT's unnamed items are named (its first SELECT for a UNION).

use std::collections::HashSet;

use datafusion::sql::sqlparser::ast as sp;

use crate::sql::parser::ident_name;

/// Names the unnamed items of the query's result.
pub fn questdb_names(query: &mut sp::Query) {
    let mut body = query.body.as_mut();
    loop {
        match body {
            sp::SetExpr::SetOperation { left, .. } => body = left.as_mut(),
            sp::SetExpr::Query(q) => body = q.body.as_mut(),
            sp::SetExpr::Select(select) => {
                name_items(&mut select.projection);
                return;
            }
            _ => return,
        }
    }
}

fn name_items(items: &mut [sp::SelectItem]) {
    let mut taken: HashSet<String> = items
        .iter()
        .filter_map(|i| match i {
            sp::SelectItem::ExprWithAlias { alias, .. } => Some(ident_name(alias)),
            sp::SelectItem::UnnamedExpr(sp::Expr::Identifier(i)) => Some(ident_name(i)),
            sp::SelectItem::UnnamedExpr(sp::Expr::CompoundIdentifier(p)) => {
                p.last().map(ident_name)
            }
            _ => None,
        })
        .collect();
    for item in items.iter_mut() {
        let sp::SelectItem::UnnamedExpr(expr) = item else {
            continue;
        };
        let Some(base) = questdb_name(expr) else {
            continue;
        };
        let mut name = base.clone();
        let mut k = 1;
        while !taken.insert(name.clone()) {
            name = format!("{base}{k}");
            k += 1;
        }
        *item = sp::SelectItem::ExprWithAlias {
            expr: expr.clone(),
            alias: sp::Ident::with_quote('"', name),
        };
    }
}

/// QuestDB's name for an unnamed expression; `None` for a column, which
/// keeps its own.
fn questdb_name(e: &sp::Expr) -> Option<String> {
    Some(match e {
        sp::Expr::Identifier(_) | sp::Expr::CompoundIdentifier(_) => return None,
        sp::Expr::Function(f) => f.name.0.last()?.as_ident().map(ident_name)?,
        sp::Expr::Value(v) => match &v.value {
            sp::Value::Number(n, _) => n.clone(),
            sp::Value::SingleQuotedString(s) => s.clone(),
            sp::Value::Boolean(b) => b.to_string(),
            sp::Value::Null => "null".into(),
            _ => "column".into(),
        },
        sp::Expr::Nested(inner) => return questdb_name(inner),
        sp::Expr::Cast { .. } => "cast".into(),
        _ => "column".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::Statement;

    fn names(sql: &str) -> String {
        let Some(Statement::Query { mut query, .. }) = crate::sql::parse(sql).unwrap().pop() else {
            panic!("not a query")
        };
        questdb_names(&mut query);
        query.to_string()
    }

    #[test]
    fn functions_constants_and_duplicates() {
        assert_eq!(names("select 1"), "SELECT 1 AS \"1\"");
        assert_eq!(
            names("select count(*), avg(x), avg(y), x, t.y from t"),
            "SELECT count(*) AS \"count\", avg(x) AS \"avg\", avg(y) AS \"avg1\", x, t.y FROM t"
        );
        assert_eq!(
            names("select x + 1, hour(ts) h from t"),
            "SELECT x + 1 AS \"column\", hour(ts) AS h FROM t"
        );
    }
}
