//! Column names as written, matched ignoring case (QuestDB's rule): a
//! table keeps `windDir` as its column's name, and `windDir`, `WINDDIR`
//! and `"windDir"` all name it. DataFusion matches names exactly after
//! folding unquoted ones to lower case, so before planning every column
//! reference that matches a column of a table the statement reads,
//! ignoring case, becomes that column's name, quoted. Tables whose names
//! are all lower case (every table made before names kept their case)
//! need nothing, and the pass does nothing for them.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast as sp;

use crate::sql::walk;

/// Column names by their lower-case form, for the names that are not
/// lower case.
pub struct Names(HashMap<String, String>);

impl Names {
    /// The names of `columns` (of the tables a statement reads) that need
    /// mapping; `None` when none does.
    pub fn of<'a>(columns: impl IntoIterator<Item = &'a str>) -> Option<Names> {
        let map: HashMap<String, String> = columns
            .into_iter()
            .filter(|c| c.chars().any(char::is_uppercase))
            .map(|c| (c.to_lowercase(), c.to_string()))
            .collect();
        (!map.is_empty()).then_some(Names(map))
    }

    /// Gives `i` the column's own spelling when it names one.
    pub fn fix(&self, i: &mut sp::Ident) {
        if let Some(name) = self.0.get(&i.value.to_lowercase()) {
            i.value.clone_from(name);
            i.quote_style = Some('"');
        }
    }

    /// Every column reference of `stmt`: identifiers in expressions (the
    /// last part of a qualified one), `USING (…)` lists and INSERT column
    /// lists.
    pub fn apply<V: sp::VisitMut>(&self, node: &mut V) {
        walk::exprs_mut(node, |e| match e {
            sp::Expr::Identifier(i) => self.fix(i),
            sp::Expr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    self.fix(last);
                }
            }
            _ => {}
        });
        let _ = walk::walk_mut(node, &mut UsingLists(self));
    }
}

/// `JOIN … USING (k)`: names outside expressions.
struct UsingLists<'a>(&'a Names);

impl walk::HooksMut for UsingLists<'_> {
    fn pre_table_factor(&mut self, t: &mut sp::TableFactor) -> ControlFlow<()> {
        if let sp::TableFactor::NestedJoin {
            table_with_joins, ..
        } = t
        {
            self.joins(&mut table_with_joins.joins);
        }
        ControlFlow::Continue(())
    }

    fn pre_query(&mut self, q: &mut sp::Query) -> ControlFlow<()> {
        if let sp::SetExpr::Select(s) = q.body.as_mut() {
            for from in &mut s.from {
                self.joins(&mut from.joins);
            }
        }
        ControlFlow::Continue(())
    }
}

impl UsingLists<'_> {
    fn joins(&self, joins: &mut [sp::Join]) {
        for j in joins {
            let constraint = match &mut j.join_operator {
                sp::JoinOperator::Join(c)
                | sp::JoinOperator::Inner(c)
                | sp::JoinOperator::Left(c)
                | sp::JoinOperator::LeftOuter(c)
                | sp::JoinOperator::Right(c)
                | sp::JoinOperator::RightOuter(c)
                | sp::JoinOperator::FullOuter(c) => c,
                _ => continue,
            };
            if let sp::JoinConstraint::Using(names) = constraint {
                for n in names {
                    for part in &mut n.0 {
                        if let sp::ObjectNamePart::Identifier(i) = part {
                            self.0.fix(i);
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql::walk::parse;

    #[test]
    fn references_take_the_columns_spelling() {
        let names = Names::of(["ts", "windDir", "Temp"]).unwrap();
        let mut stmt = parse(
            "SELECT WINDDIR, t.temp, \"winddir\" AS w, avg(TEMP) FROM t JOIN u USING (windDIR) WHERE windDir > 1 ORDER BY temp",
        );
        names.apply(&mut stmt);
        assert_eq!(
            stmt.to_string(),
            "SELECT \"windDir\", t.\"Temp\", \"windDir\" AS w, avg(\"Temp\") FROM t JOIN u USING(\"windDir\") WHERE \"windDir\" > 1 ORDER BY \"Temp\""
        );
        assert!(
            Names::of(["ts", "v"]).is_none(),
            "lower-case tables need nothing"
        );
    }
}
