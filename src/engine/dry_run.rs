//! The report of `COPY … WITH DRY RUN true`: the importer's [`DryRun`]
//! turned into rows of text (`section`, `name`, `value`, `detail`), the
//! one presentation the SQL result and `sluice import --dry-run` share.

use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::error::Result;
use crate::import::analyze::dialect::shown;
use crate::import::{DryRun, Summary};

/// A real import takes this many times its dry run: the dry run does all
/// of its reading and decoding but none of its sorting, encoding and
/// writing. Measured on the import bench files (docs/import.md, "Dry run").
const REAL_OVER_DRY: f64 = 1.1;

/// The report's columns.
pub fn schema() -> SchemaRef {
    Arc::new(Schema::new(
        ["section", "name", "value", "detail"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ))
}

fn byte(b: u8) -> String {
    shown(&[b])
}

/// The report's rows, in order: file, dialect, table, columns,
/// partitions, rejected rows, summary.
pub fn rows(file: &str, table: &str, s: &Summary) -> Vec<[String; 4]> {
    let Some(d) = &s.dry_run else {
        return Vec::new();
    };
    let mut out: Vec<[String; 4]> = Vec::new();
    let mut row = |section: &str, name: String, value: String, detail: String| {
        out.push([section.to_string(), name, value, detail]);
    };
    row(
        "file",
        file.to_string(),
        format!("{} bytes", s.bytes),
        String::new(),
    );
    dialect_rows(d, &mut row);
    let unit = d.partition_by.name();
    row(
        "table",
        table.to_string(),
        if d.new_table { "new" } else { "existing" }.into(),
        format!("PARTITION BY {unit}"),
    );
    for c in &d.columns {
        let mut detail = Vec::new();
        if c.designated {
            detail.push("designated timestamp".to_string());
        }
        match &c.source {
            Some(src) if src != &c.name => detail.push(format!("from file column '{src}'")),
            Some(_) => {}
            None => detail.push("not in the file: NULL".to_string()),
        }
        if c.inferred {
            detail.push("type inferred".to_string());
        }
        if let Some(f) = &c.format {
            detail.push(format!("format '{f}'"));
        }
        row(
            "column",
            c.name.clone(),
            c.ty.name().to_string(),
            detail.join("; "),
        );
    }
    for (name, n) in &d.partitions {
        row("partition", name.clone(), n.to_string(), "rows".into());
    }
    for e in &d.rejected {
        let mut detail = format!("offset {}", e.byte_offset);
        if let Some(c) = &e.column_name {
            detail.push_str(&format!(", column {c}"));
        }
        if let Some(v) = &e.value {
            detail.push_str(&format!(", value '{v}'"));
        }
        row(
            "rejected",
            format!("line {}", e.line),
            e.message.clone(),
            detail,
        );
    }
    let recorded = if d.rejected.len() as u64 == s.errors {
        String::new()
    } else {
        format!("the first {} are listed", d.rejected.len())
    };
    let mut summary = |name: &str, value: String, detail: &str| {
        out.push(["summary".into(), name.into(), value, detail.into()]);
    };
    summary("rows_handled", s.rows_handled.to_string(), "");
    summary("rows_imported", s.rows_imported.to_string(), "");
    summary("errors", s.errors.to_string(), &recorded);
    summary("partitions", d.partitions.len().to_string(), "");
    summary("dry_run_seconds", format!("{:.2}", s.seconds), "");
    summary(
        "projected_seconds",
        format!("{:.1}", s.seconds * REAL_OVER_DRY),
        "the import itself, estimated from this run",
    );
    out
}

fn dialect_rows(d: &DryRun, row: &mut impl FnMut(&str, String, String, String)) {
    if d.parquet {
        row(
            "dialect",
            "format".into(),
            "parquet".into(),
            "columns and types from the file's schema".into(),
        );
        return;
    }
    let how = |given: bool| if given { "given" } else { "detected" };
    let delimiter_detail = match &d.suggested_delimiter {
        Some(b) => format!(
            "given; the file's first lines look delimited by '{0}': DELIMITER '{0}' or no DELIMITER",
            shown(b)
        ),
        None => how(d.given.delimiter.is_some()).to_string(),
    };
    row(
        "dialect",
        "delimiter".into(),
        shown(&d.dialect.delimiter_bytes()),
        delimiter_detail,
    );
    row(
        "dialect",
        "quote".into(),
        byte(d.dialect.quote),
        how(d.given.quote.is_some()).into(),
    );
    let escape = if d.dialect.escape == d.dialect.quote {
        "the quote, doubled".to_string()
    } else {
        how(d.given.escape.is_some()).into()
    };
    row("dialect", "escape".into(), byte(d.dialect.escape), escape);
    row(
        "dialect",
        "header".into(),
        d.header.to_string(),
        if d.header_detected {
            "detected"
        } else {
            "given"
        }
        .into(),
    );
    row(
        "dialect",
        "evidence".into(),
        d.evidence.clone(),
        String::new(),
    );
}

/// The report as one batch of [`schema`].
pub fn batch(rows: &[[String; 4]]) -> Result<RecordBatch> {
    let column = |i: usize| {
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r[i].as_str()),
        )) as _
    };
    Ok(RecordBatch::try_new(
        schema(),
        (0..4).map(column).collect(),
    )?)
}
