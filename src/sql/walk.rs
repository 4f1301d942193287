//! The crate's one way through a sqlparser AST. sqlparser's walk is
//! generic over the visitor, and DataFusion builds it with its recursion
//! protection (a stack check around every node's visit), so every visitor
//! type in the crate used to compile the whole walk again: a quarter of the
//! crate's machine code and of its release build. Every pass here is a set
//! of hooks behind one visitor type, [`Dyn`] for reading and [`DynMut`] for
//! rewriting, so the walk is compiled once each way.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self as sp, Visit, VisitMut};

/// What a read-only pass does at the nodes it looks at; `Break` ends the
/// walk.
pub trait Hooks {
    fn pre_query(&mut self, _query: &sp::Query) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn pre_table_factor(&mut self, _factor: &sp::TableFactor) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn pre_relation(&mut self, _name: &sp::ObjectName) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn pre_expr(&mut self, _expr: &sp::Expr) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// What a rewriting pass does at the nodes it changes; `Break` ends the
/// walk.
pub trait HooksMut {
    fn pre_query(&mut self, _query: &mut sp::Query) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn post_query(&mut self, _query: &mut sp::Query) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn pre_table_factor(&mut self, _factor: &mut sp::TableFactor) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    fn pre_relation(&mut self, _name: &mut sp::ObjectName) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
    /// After the expression's own parts were visited (bottom up).
    fn post_expr(&mut self, _expr: &mut sp::Expr) -> ControlFlow<()> {
        ControlFlow::Continue(())
    }
}

/// The one read-only visitor type.
struct Dyn<'a>(&'a mut dyn Hooks);

impl sp::Visitor for Dyn<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &sp::Query) -> ControlFlow<()> {
        self.0.pre_query(query)
    }
    fn pre_visit_table_factor(&mut self, factor: &sp::TableFactor) -> ControlFlow<()> {
        self.0.pre_table_factor(factor)
    }
    fn pre_visit_relation(&mut self, name: &sp::ObjectName) -> ControlFlow<()> {
        self.0.pre_relation(name)
    }
    fn pre_visit_expr(&mut self, expr: &sp::Expr) -> ControlFlow<()> {
        self.0.pre_expr(expr)
    }
}

/// The one rewriting visitor type.
struct DynMut<'a>(&'a mut dyn HooksMut);

impl sp::VisitorMut for DynMut<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut sp::Query) -> ControlFlow<()> {
        self.0.pre_query(query)
    }
    fn post_visit_query(&mut self, query: &mut sp::Query) -> ControlFlow<()> {
        self.0.post_query(query)
    }
    fn pre_visit_table_factor(&mut self, factor: &mut sp::TableFactor) -> ControlFlow<()> {
        self.0.pre_table_factor(factor)
    }
    fn pre_visit_relation(&mut self, name: &mut sp::ObjectName) -> ControlFlow<()> {
        self.0.pre_relation(name)
    }
    fn post_visit_expr(&mut self, expr: &mut sp::Expr) -> ControlFlow<()> {
        self.0.post_expr(expr)
    }
}

/// Walks `node` (a statement, a query, an expression) with `hooks`.
pub fn walk<N: Visit + ?Sized>(node: &N, hooks: &mut dyn Hooks) -> ControlFlow<()> {
    node.visit(&mut Dyn(hooks))
}

/// Walks `node` with `hooks`, which may change it.
pub fn walk_mut<N: VisitMut + ?Sized>(node: &mut N, hooks: &mut dyn HooksMut) -> ControlFlow<()> {
    node.visit(&mut DynMut(hooks))
}

/// Calls `f` on every expression of `node`, outer before inner, until it
/// breaks.
pub fn exprs<N: Visit + ?Sized>(node: &N, mut f: impl FnMut(&sp::Expr) -> ControlFlow<()>) {
    struct Each<'a>(&'a mut dyn FnMut(&sp::Expr) -> ControlFlow<()>);
    impl Hooks for Each<'_> {
        fn pre_expr(&mut self, expr: &sp::Expr) -> ControlFlow<()> {
            (self.0)(expr)
        }
    }
    let _ = walk(node, &mut Each(&mut f));
}

/// Whether any expression of `node` satisfies `test` (stops at the first).
pub fn any_expr<N: Visit + ?Sized>(node: &N, mut test: impl FnMut(&sp::Expr) -> bool) -> bool {
    let mut found = false;
    exprs(node, |e| {
        if test(e) {
            found = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    });
    found
}

/// Calls `f` on every expression of `node`, inner before outer, and lets
/// it change them.
pub fn exprs_mut<N: VisitMut + ?Sized>(node: &mut N, mut f: impl FnMut(&mut sp::Expr)) {
    struct Each<'a>(&'a mut dyn FnMut(&mut sp::Expr));
    impl HooksMut for Each<'_> {
        fn post_expr(&mut self, expr: &mut sp::Expr) -> ControlFlow<()> {
            (self.0)(expr);
            ControlFlow::Continue(())
        }
    }
    let _ = walk_mut(node, &mut Each(&mut f));
}

/// The names of the relations `node` reads, as written, in order.
pub fn relations<N: Visit + ?Sized>(node: &N) -> Vec<sp::ObjectName> {
    struct Names(Vec<sp::ObjectName>);
    impl Hooks for Names {
        fn pre_relation(&mut self, name: &sp::ObjectName) -> ControlFlow<()> {
            self.0.push(name.clone());
            ControlFlow::Continue(())
        }
    }
    let mut names = Names(Vec::new());
    let _ = walk(node, &mut names);
    names.0
}

/// The first statement of `sql` as sqlparser parses it (for the tests of
/// the AST passes).
#[cfg(test)]
pub(crate) fn parse(sql: &str) -> sp::Statement {
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;
    Parser::parse_sql(&GenericDialect {}, sql)
        .unwrap()
        .remove(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_come_outer_first_and_rewrites_inner_first() {
        let stmt = parse("SELECT a + (b * c) FROM t");
        let mut seen = Vec::new();
        exprs(&stmt, |e| {
            seen.push(e.to_string());
            ControlFlow::Continue(())
        });
        assert_eq!(seen, ["a + (b * c)", "a", "(b * c)", "b * c", "b", "c"]);

        let mut stmt = stmt;
        let mut order = Vec::new();
        exprs_mut(&mut stmt, |e| {
            order.push(e.to_string());
            if let sp::Expr::Identifier(i) = e {
                i.value = i.value.to_uppercase();
            }
        });
        assert_eq!(order[0], "a");
        assert_eq!(stmt.to_string(), "SELECT A + (B * C) FROM t");
    }

    #[test]
    fn a_break_ends_the_walk_and_relations_are_listed_in_order() {
        let stmt = parse("SELECT x FROM a JOIN b ON a.k = b.k WHERE x IN (SELECT y FROM c)");
        let mut visited = 0;
        assert!(any_expr(&stmt, |e| {
            visited += 1;
            matches!(e, sp::Expr::Identifier(_))
        }));
        assert_eq!(visited, 1);
        let names: Vec<String> = relations(&stmt).iter().map(|n| n.to_string()).collect();
        assert_eq!(names, ["a", "b", "c"]);
    }
}
