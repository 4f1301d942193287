//! How the file maps onto the table: a new table's definition from the
//! inferred types, or an existing table's columns by name, else by
//! position, with the table's types winning.

use super::super::ImportError;
use super::super::csv::Nulls;
use super::super::decode::TimestampParser;
use super::super::format::Pattern;
use super::Structure;
use crate::catalog::{ColumnMeta, TableMeta};
use crate::config::TextLoaderFormats;
use crate::schema::ColumnType;
use crate::time::PartitionBy;

/// How the file maps onto the table.
#[derive(Debug, Clone)]
pub struct Plan {
    pub meta: TableMeta,
    pub new_table: bool,
    /// Per table column: the file column feeding it.
    pub sources: Vec<Option<usize>>,
    /// Per table column: how timestamp-like text is parsed.
    pub parsers: Vec<Option<TimestampParser>>,
    /// Per table column: its type was inferred (a new table), so text it
    /// would not keep is a row error ([`crate::schema::values::inferred_text_fits`]).
    pub inferred: Vec<bool>,
    /// The designated timestamp: table column and file column.
    pub timestamp: Option<(usize, usize)>,
    pub file_columns: usize,
    /// Which fields are NULL.
    pub nulls: Nulls,
    /// Values past the file's columns are ignored instead of rejected.
    pub skip_extra_values: bool,
}

/// What the COPY statement asked for, as far as the plan cares.
pub struct PlanOptions<'a> {
    pub table: &'a str,
    pub timestamp: Option<&'a str>,
    pub format: Option<&'a Pattern>,
    pub partition_by: Option<PartitionBy>,
    pub formats: &'a TextLoaderFormats,
}

fn all_patterns(formats: &TextLoaderFormats, first: Option<&Pattern>) -> Vec<Pattern> {
    let mut v: Vec<Pattern> = first.into_iter().cloned().collect();
    for f in formats.date.iter().chain(&formats.timestamp) {
        if let Ok(p) = Pattern::compile(&f.format)
            && !v.contains(&p)
        {
            v.push(p);
        }
    }
    v
}

/// Builds the plan for a new table (`existing` = None) or an existing one.
pub fn plan(
    s: &Structure,
    existing: Option<&TableMeta>,
    o: &PlanOptions<'_>,
) -> Result<Plan, ImportError> {
    match existing {
        None => new_table(s, o),
        Some(meta) => existing_table(s, meta, o),
    }
}

/// A new table: a column per file column, of the type its sample gave.
fn new_table(s: &Structure, o: &PlanOptions<'_>) -> Result<Plan, ImportError> {
    let width = s.names.len();
    let mut columns = Vec::with_capacity(width);
    let mut parsers = Vec::with_capacity(width);
    let mut inferred = Vec::with_capacity(width);
    for (i, name) in s.names.iter().enumerate() {
        let d = &s.detected[i];
        let ty = d.as_ref().map(|d| d.ty).unwrap_or(ColumnType::Varchar);
        // FORMAT is the only pattern of the TIMESTAMP column; other
        // columns try their detected pattern first, then the rest.
        let given = o
            .format
            .filter(|_| o.timestamp.is_some_and(|t| t.eq_ignore_ascii_case(name)));
        parsers.push(ty.is_timestamp().then(|| TimestampParser {
            patterns: match given {
                Some(f) => vec![f.clone()],
                None => all_patterns(o.formats, d.as_ref().and_then(|d| d.pattern.as_ref())),
            },
            iso: given.is_none(),
            epoch_integers: false,
        }));
        inferred.push(d.as_ref().is_some_and(|d| d.inferred));
        // Kept as written; queries match it ignoring case.
        columns.push(ColumnMeta::new(name.clone(), ty));
    }
    let partitioned = o.partition_by.is_some_and(|p| p != PartitionBy::None);
    let mut new = NewColumns {
        columns,
        parsers,
        inferred,
    };
    let timestamp = match o.timestamp {
        None => None,
        Some(ts) => Some(new.designate(s, o, ts, partitioned)?),
    };
    let NewColumns {
        columns,
        parsers,
        inferred,
    } = new;
    let ts_name = timestamp.map(|(i, _)| columns[i].name.clone());
    let meta = TableMeta::new_imported(
        columns,
        ts_name,
        if partitioned {
            o.partition_by.unwrap_or(PartitionBy::None)
        } else {
            PartitionBy::None
        },
    )
    .map_err(|e| ImportError::setup(e.to_string()))?;
    Ok(Plan {
        meta,
        new_table: true,
        sources: (0..width).map(Some).collect(),
        parsers,
        inferred,
        timestamp,
        file_columns: width,
        nulls: Nulls::default(),
        skip_extra_values: false,
    })
}

/// A new table's columns as the sample typed them.
struct NewColumns {
    columns: Vec<ColumnMeta>,
    parsers: Vec<Option<TimestampParser>>,
    inferred: Vec<bool>,
}

impl NewColumns {
    /// Makes the file column `ts` the designated timestamp (table and
    /// file column, the same index): a column of timestamps, of raw
    /// integers (epoch microseconds) or with no sampled value.
    fn designate(
        &mut self,
        s: &Structure,
        o: &PlanOptions<'_>,
        ts: &str,
        partitioned: bool,
    ) -> Result<(usize, usize), ImportError> {
        let Some(i) = s.names.iter().position(|n| n.eq_ignore_ascii_case(ts)) else {
            return Err(ImportError::setup(if partitioned {
                format!("timestamp column '{ts}' not found in file header")
            } else {
                format!("invalid timestamp column '{ts}'")
            }));
        };
        if s.detected[i].is_none() {
            // No values were sampled (a header-only file, say): nothing
            // contradicts a timestamp.
            self.columns[i].ty = o.format.map_or(ColumnType::Timestamp, |f| f.column_type());
            self.parsers[i] = Some(TimestampParser {
                patterns: match o.format {
                    Some(f) => vec![f.clone()],
                    None => all_patterns(o.formats, None),
                },
                iso: o.format.is_none(),
                epoch_integers: false,
            });
        }
        match self.columns[i].ty {
            ColumnType::Timestamp | ColumnType::TimestampNs => {}
            ColumnType::Long => {
                // Raw integers: epoch microseconds.
                self.columns[i].ty = ColumnType::Timestamp;
                self.parsers[i] = Some(TimestampParser {
                    patterns: Vec::new(),
                    iso: false,
                    epoch_integers: true,
                });
                self.inferred[i] = false;
            }
            _ => {
                return Err(ImportError::setup(if partitioned {
                    format!("column is not a timestamp [no={i}, name='{ts}']")
                } else {
                    format!("not a timestamp '{ts}'")
                }));
            }
        }
        Ok((i, i))
    }
}

/// An existing table: file columns by name, else by position; the
/// table's types win (the sample only orders the timestamp patterns, and
/// a value that matches none is a row error).
fn existing_table(
    s: &Structure,
    meta: &TableMeta,
    o: &PlanOptions<'_>,
) -> Result<Plan, ImportError> {
    let width = s.names.len();
    let tcols = meta.columns.len();
    check_existing(meta, width, o)?;
    let designated = meta.timestamp_index();
    let sources = sources(s, meta)?;
    let parsers = meta
        .columns
        .iter()
        .enumerate()
        .map(|(c, col)| {
            col.ty.is_timestamp().then(|| {
                let detected = sources[c].and_then(|f| s.detected[f].as_ref());
                let format_applies = o.format.is_some()
                    && match o.timestamp {
                        Some(ts) => col.name.eq_ignore_ascii_case(ts),
                        None => Some(c) == designated,
                    };
                let patterns = match o.format.filter(|_| format_applies) {
                    Some(f) => vec![f.clone()],
                    None => all_patterns(o.formats, detected.and_then(|d| d.pattern.as_ref())),
                };
                TimestampParser {
                    patterns,
                    iso: !format_applies,
                    epoch_integers: true,
                }
            })
        })
        .collect();
    let timestamp = match designated {
        None => None,
        Some(c) => {
            let Some(f) = sources[c] else {
                return Err(ImportError::setup(format!(
                    "the file has no column for the designated timestamp [column={}, table={}]",
                    meta.columns[c].name, o.table
                )));
            };
            Some((c, f))
        }
    };
    Ok(Plan {
        meta: meta.clone(),
        new_table: false,
        sources,
        parsers,
        inferred: vec![false; tcols],
        timestamp,
        file_columns: width,
        nulls: Nulls::default(),
        skip_extra_values: false,
    })
}

/// What COPY into an existing table refuses before any row: more file
/// columns than the table's, another PARTITION BY, a TIMESTAMP that is
/// not the table's designated one.
fn check_existing(meta: &TableMeta, width: usize, o: &PlanOptions<'_>) -> Result<(), ImportError> {
    let tcols = meta.columns.len();
    if width > tcols {
        return Err(ImportError::setup(format!(
            "column count mismatch [textColumnCount={width}, tableColumnCount={tcols}, table={}]",
            o.table
        )));
    }
    if let Some(p) = o.partition_by
        && meta.partition_by != PartitionBy::None
        && p != meta.partition_by
    {
        return Err(ImportError::setup(
            "declared partition by unit doesn't match table's",
        ));
    }
    let designated = meta.timestamp_index();
    if let Some(ts) = o.timestamp {
        let named = meta
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(ts));
        if named.is_none() || named != designated && designated.is_some() {
            return Err(ImportError::setup(format!(
                "invalid timestamp column [name='{ts}']"
            )));
        }
    }
    Ok(())
}

/// Per table column, the file column feeding it: by name, else by
/// position; two file columns for one table column is an error.
fn sources(s: &Structure, meta: &TableMeta) -> Result<Vec<Option<usize>>, ImportError> {
    let mut sources: Vec<Option<usize>> = vec![None; meta.columns.len()];
    for (i, name) in s.names.iter().enumerate() {
        let target = meta
            .columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
            .unwrap_or(i);
        if sources[target].is_some() {
            return Err(ImportError::setup(format!(
                "file columns {} and {i} both map to table column '{}'",
                sources[target].unwrap_or_default(),
                meta.columns[target].name
            )));
        }
        sources[target] = Some(i);
    }
    Ok(sources)
}
