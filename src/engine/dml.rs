//! UPDATE and DELETE: copy-on-write. Every file holding a row the WHERE
//! condition selects is written again without it (DELETE) or with the new
//! values (UPDATE), and the new files replace the old in one Delta version
//! ([`Table::change`](crate::catalog::Table::change)), so a crash at any
//! moment leaves the table as before or as after. Files without such a
//! row are kept as they are.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::compute::{cast, filter_record_batch, not, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ParamValues, ScalarValue};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::sql::sqlparser::ast as sp;

use super::{Command, CommandKind, Engine, Output};
use crate::catalog::table::Selection;
use crate::error::{Error, Result};
use crate::sql::ast::TableRef;

/// A condition on a batch's rows: true where it holds (NULL is false).
pub(super) type Condition = Box<dyn Fn(&RecordBatch) -> Result<BooleanArray> + Send + Sync>;

impl Engine {
    pub(super) async fn delete(
        &self,
        table: TableRef,
        selection: Option<sp::Expr>,
        params: &[ScalarValue],
    ) -> Result<Output> {
        let t = self.table(&table)?;
        self.apply_wal(&t).await?;
        let meta = t.meta();
        let condition = selection
            .map(|e| self.row_condition(e, &meta.arrow_schema(), params))
            .transpose()?;
        let rows = match condition {
            // Without a condition every file goes whole.
            None => {
                t.change(
                    meta,
                    |files| {
                        Ok(Selection {
                            dropped: files.to_vec(),
                            rewritten: Vec::new(),
                        })
                    },
                    Box::new(|b| Ok((b, 0))),
                )
                .await?
            }
            Some(condition) => {
                t.change(
                    meta,
                    Selection::rewrite_all,
                    Box::new(move |b| {
                        let hit = condition(&b)?;
                        let n = hit.true_count() as u64;
                        if n == 0 {
                            return Ok((b, 0));
                        }
                        Ok((filter_record_batch(&b, &not(&hit)?)?, n))
                    }),
                )
                .await?
            }
        };
        Ok(dml("DELETE", rows))
    }

    pub(super) async fn update(
        &self,
        table: TableRef,
        assignments: Vec<((String, usize), sp::Expr)>,
        selection: Option<sp::Expr>,
        params: &[ScalarValue],
    ) -> Result<Output> {
        let t = self.table(&table)?;
        self.apply_wal(&t).await?;
        let meta = t.meta();
        let schema = meta.arrow_schema();
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let mut sets: Vec<(usize, Arc<dyn PhysicalExpr>)> = Vec::new();
        for ((name, position), value) in assignments {
            let i = meta
                .column_index(&name)
                .ok_or_else(|| Error::ColumnNotFound {
                    column: name.clone(),
                    position: Some(position),
                })?;
            if meta.timestamp_index() == Some(i) {
                // QuestDB's rule: rows do not move between partitions.
                return Err(Error::Invalid {
                    message: "Designated timestamp column cannot be updated".into(),
                    position: Some(position),
                });
            }
            if sets.iter().any(|(j, _)| *j == i) {
                return Err(Error::DuplicateColumn { column: name });
            }
            sets.push((i, self.physical(value, &df_schema, params)?));
        }
        let condition = selection
            .map(|e| self.row_condition(e, &schema, params))
            .transpose()?;
        let types: Vec<_> = meta.columns.iter().map(|c| c.ty).collect();
        let rows = t
            .change(
                meta.clone(),
                Selection::rewrite_all,
                Box::new(move |b| {
                    let hit = match &condition {
                        Some(c) => c(&b)?,
                        None => BooleanArray::from(vec![true; b.num_rows()]),
                    };
                    let n = hit.true_count() as u64;
                    if n == 0 {
                        return Ok((b, 0));
                    }
                    let mut columns = b.columns().to_vec();
                    for (i, e) in &sets {
                        let target = schema.field(*i);
                        let value = e.evaluate(&b)?.into_array(b.num_rows())?;
                        let value = if value.data_type() == target.data_type() {
                            value
                        } else {
                            let cast_to = cast(&value, target.data_type())?;
                            // Only rows being updated must convert unchanged.
                            let picked = filter_record_batch(
                                &RecordBatch::try_from_iter([
                                    ("old", Arc::clone(&value)),
                                    ("new", Arc::clone(&cast_to)),
                                ])?,
                                &hit,
                            )?;
                            super::alter::check_kept(
                                target.name(),
                                types[*i],
                                types[*i],
                                picked.column(0),
                                picked.column(1),
                            )?;
                            cast_to
                        };
                        columns[*i] = zip(&hit, &value, &columns[*i])?;
                    }
                    Ok((RecordBatch::try_new(Arc::clone(&schema), columns)?, n))
                }),
            )
            .await?;
        Ok(dml("UPDATE", rows))
    }

    /// The types of the `$n` parameters of an UPDATE or DELETE, from the
    /// columns they are assigned to or compared with (what drivers ask at
    /// Describe before they encode values).
    pub(super) fn dml_param_types(
        &self,
        table: &TableRef,
        assigned: &[((String, usize), sp::Expr)],
        selection: Option<&sp::Expr>,
    ) -> Result<Vec<Option<DataType>>> {
        let meta = self.table(table)?.meta();
        let schema = DFSchema::try_from(meta.arrow_schema().as_ref().clone())?;
        let mut out: Vec<Option<DataType>> = Vec::new();
        let mut note = |id: &str, t: Option<DataType>| {
            if let Ok(n) = id.trim_start_matches('$').parse::<usize>()
                && n >= 1
            {
                if out.len() < n {
                    out.resize(n, None);
                }
                if out[n - 1].is_none() {
                    out[n - 1] = t;
                }
            }
        };
        for ((name, _), value) in assigned {
            if let sp::Expr::Value(v) = value
                && let sp::Value::Placeholder(id) = &v.value
            {
                note(id, meta.column(name).map(|c| c.ty.arrow_type()));
            }
        }
        let exprs = assigned.iter().map(|(_, e)| e).chain(selection);
        for e in exprs {
            let logical = self.planner.create_logical_expr_from_sql_expr(
                sp::ExprWithAlias {
                    expr: e.clone(),
                    alias: None,
                },
                &schema,
            )?;
            let (typed, _) = logical.infer_placeholder_types(&schema)?;
            typed.apply(|e| {
                if let Expr::Placeholder(p) = e {
                    note(&p.id, p.field.as_ref().map(|f| f.data_type().clone()));
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })?;
        }
        Ok(out)
    }

    /// `e` as a condition on rows of `schema`, typed and coerced as
    /// DataFusion does a WHERE clause.
    pub(super) fn row_condition(
        &self,
        e: sp::Expr,
        schema: &SchemaRef,
        params: &[ScalarValue],
    ) -> Result<Condition> {
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        let expr = self.physical(e, &df_schema, params)?;
        Ok(Box::new(move |b: &RecordBatch| {
            let v: ArrayRef = expr.evaluate(b)?.into_array(b.num_rows())?;
            let mask = v.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| {
                Error::invalid(format!(
                    "boolean expression expected, not {}",
                    v.data_type()
                ))
            })?;
            Ok(if mask.null_count() == 0 {
                mask.clone()
            } else {
                prep_null_mask_filter(mask)
            })
        }))
    }

    /// A SQL expression over `schema` as a physical expression, with the
    /// statement's `$n` parameters bound.
    fn physical(
        &self,
        e: sp::Expr,
        schema: &DFSchema,
        params: &[ScalarValue],
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let expr = self.planner.create_logical_expr_from_sql_expr(
            sp::ExprWithAlias {
                expr: e,
                alias: None,
            },
            schema,
        )?;
        let values = ParamValues::List(params.iter().cloned().map(Into::into).collect());
        let expr = expr
            .transform(|e| match e {
                Expr::Placeholder(p) => {
                    let v = values.get_placeholders_with_values(&p.id)?;
                    Ok(Transformed::yes(Expr::Literal(v.value, v.metadata)))
                }
                other => Ok(Transformed::no(other)),
            })?
            .data;
        Ok(self.planner.create_physical_expr(expr, schema)?)
    }
}

/// The command tag of an UPDATE or DELETE with its row count.
fn dml(tag: &'static str, rows: u64) -> Output {
    Output::Command(Command {
        tag,
        rows: Some(rows),
        kind: CommandKind::Dml,
    })
}
