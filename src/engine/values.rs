//! `INSERT … VALUES` of plain literals and parameters, turned into columns
//! without DataFusion's planner: a single-row INSERT's planning cost
//! more than the rest of its work. The columns have the types DataFusion
//! gives such a VALUES list (text, BIGINT, DOUBLE, BOOLEAN, the
//! parameters' own types), so the table's conversion rules see exactly
//! what they see on the planned path; anything else (an expression, a
//! cast, a column of mixed number types) is left to the planner.

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use datafusion::sql::sqlparser::ast as sp;

use crate::error::Result;
use crate::sql::QueryParts;

/// One literal as DataFusion would type it, or `None` when it is not a
/// plain literal.
fn literal(e: &sp::Expr, params: &[ScalarValue]) -> Option<ScalarValue> {
    match e {
        sp::Expr::Value(v) => match &v.value {
            sp::Value::Number(n, _) => number(n, false),
            sp::Value::SingleQuotedString(s) => Some(ScalarValue::Utf8(Some(s.clone()))),
            sp::Value::Boolean(b) => Some(ScalarValue::Boolean(Some(*b))),
            sp::Value::Null => Some(ScalarValue::Null),
            sp::Value::Placeholder(p) => {
                let n: usize = p.trim_start_matches('$').parse().ok()?;
                params.get(n.checked_sub(1)?).cloned()
            }
            _ => None,
        },
        sp::Expr::UnaryOp {
            op: sp::UnaryOperator::Minus,
            expr,
        } => match expr.as_ref() {
            sp::Expr::Value(v) => match &v.value {
                sp::Value::Number(n, _) => number(n, true),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn number(text: &str, negative: bool) -> Option<ScalarValue> {
    let signed = if negative {
        format!("-{text}")
    } else {
        text.to_string()
    };
    if text.contains(['.', 'e', 'E']) {
        signed
            .parse::<f64>()
            .ok()
            .map(|v| ScalarValue::Float64(Some(v)))
    } else {
        signed
            .parse::<i64>()
            .ok()
            .map(|v| ScalarValue::Int64(Some(v)))
    }
}

/// The type DataFusion gives a VALUES column of NULLs alone.
const NULL_COLUMN: DataType = DataType::Utf8;

/// The columns of a VALUES list: one array per column, `rows` long.
#[derive(Debug)]
pub struct Columns {
    pub arrays: Vec<ArrayRef>,
    pub rows: usize,
}

/// The rows of `source` when it is a VALUES list of plain literals and
/// parameters whose columns each have one type; `None` otherwise.
pub fn columns(source: &QueryParts, params: &[ScalarValue]) -> Option<Result<Columns>> {
    let q = source.query.as_ref();
    if !source.clauses.is_empty()
        || q.with.is_some()
        || q.order_by.is_some()
        || q.limit_clause.is_some()
        || q.fetch.is_some()
    {
        return None;
    }
    let sp::SetExpr::Values(values) = q.body.as_ref() else {
        return None;
    };
    let width = values.rows.first()?.len();
    if width == 0 || values.rows.iter().any(|r| r.len() != width) {
        return None;
    }
    if let [row] = values.rows.as_slice() {
        // One row (the common prepared INSERT): each value is its column.
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(width);
        for e in row.iter() {
            let v = match literal(e, params)? {
                ScalarValue::Null => ScalarValue::try_from(&NULL_COLUMN).ok()?,
                v => v,
            };
            match v.to_array_of_size(1) {
                Ok(a) => arrays.push(a),
                Err(e) => return Some(Err(e.into())),
            }
        }
        return Some(Ok(Columns { arrays, rows: 1 }));
    }
    let mut columns: Vec<Vec<ScalarValue>> = vec![Vec::with_capacity(values.rows.len()); width];
    for row in &values.rows {
        for (c, e) in row.iter().enumerate() {
            columns[c].push(literal(e, params)?);
        }
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(width);
    for column in columns {
        let ty = column
            .iter()
            .map(ScalarValue::data_type)
            .find(|t| *t != DataType::Null)
            .unwrap_or(NULL_COLUMN);
        let typed: Option<Vec<ScalarValue>> = column
            .into_iter()
            .map(|v| match v {
                ScalarValue::Null => ScalarValue::try_from(&ty).ok(),
                v if v.data_type() == ty => Some(v),
                // Mixed types: DataFusion's coercion decides.
                _ => None,
            })
            .collect();
        match ScalarValue::iter_to_array(typed?) {
            Ok(a) => arrays.push(a),
            Err(e) => return Some(Err(e.into())),
        }
    }
    Some(Ok(Columns {
        arrays,
        rows: values.rows.len(),
    }))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Array, Float64Array, Int64Array, StringArray};

    use super::*;
    use crate::sql::{Statement, parse};

    fn source(sql: &str) -> QueryParts {
        match parse(sql).unwrap().remove(0) {
            Statement::Insert(i) => i.source.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn literals_take_the_types_the_planner_gives_them() {
        let b = columns(
            &source(
                "INSERT INTO t VALUES ('2024-01-01T00:00:00Z', 5, -2.5, NULL), ('x', -7, 1e3, 'y')",
            ),
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.rows, 2);
        let types: Vec<_> = b.arrays.iter().map(|a| a.data_type().clone()).collect();
        assert_eq!(
            types,
            [
                DataType::Utf8,
                DataType::Int64,
                DataType::Float64,
                DataType::Utf8
            ]
        );
        let ints = b.arrays[1].as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(ints.values(), &[5, -7]);
        let floats = b.arrays[2].as_any().downcast_ref::<Float64Array>().unwrap();
        assert_eq!(floats.values(), &[-2.5, 1000.0]);
        let text = b.arrays[3].as_any().downcast_ref::<StringArray>().unwrap();
        assert!(text.is_null(0));
        assert_eq!(text.value(1), "y");
    }

    #[test]
    fn parameters_keep_their_types() {
        let b = columns(
            &source("INSERT INTO t VALUES ($1, $2)"),
            &[ScalarValue::Int32(Some(3)), ScalarValue::Utf8(None)],
        )
        .unwrap()
        .unwrap();
        assert_eq!(b.rows, 1);
        assert_eq!(b.arrays[0].data_type(), &DataType::Int32);
        assert!(b.arrays[1].is_null(0));
    }

    #[test]
    fn one_row_is_typed_as_a_list_of_rows_is() {
        let one = columns(
            &source("INSERT INTO t VALUES ('a', 5, -2.5, NULL, true)"),
            &[],
        )
        .unwrap()
        .unwrap();
        let two = columns(
            &source("INSERT INTO t VALUES ('a', 5, -2.5, NULL, true), ('a', 5, -2.5, NULL, true)"),
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(one.rows, 1);
        for (a, b) in one.arrays.iter().zip(&two.arrays) {
            assert_eq!(a.data_type(), b.data_type());
            assert_eq!(a.to_data(), b.slice(0, 1).to_data());
        }
    }

    #[test]
    fn anything_else_is_left_to_the_planner() {
        for sql in [
            "INSERT INTO t VALUES (1), (2.5)",
            "INSERT INTO t VALUES (now())",
            "INSERT INTO t VALUES ('1'::INT)",
            "INSERT INTO t VALUES (1 + 2)",
            "INSERT INTO t SELECT 1",
        ] {
            assert!(columns(&source(sql), &[]).is_none(), "{sql}");
        }
    }
}
