//! `COPY … WITH DRY RUN true` and `sluice import --dry-run`: the import's
//! own phases run over the whole file (analysis, boundaries, indexing and
//! the decoding of every record, with ON ERROR applied) but nothing is
//! written: no files, no table, no log rows. What they found is a
//! [`DryRun`], so its rejected rows are exactly the ones the real import
//! would reject, by the same code.

use super::analyze::{Analysis, Given, dialect};
use super::csv::Dialect;
use super::log::ErrorRow;
use crate::schema::ColumnType;
use crate::time::PartitionBy;

/// What the real import would do.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The bytes the import splits records with.
    pub dialect: Dialect,
    /// Which of them the caller gave (the rest were sniffed).
    pub given: Given,
    /// How the sniffer chose (delimiter, quote, preamble).
    pub evidence: String,
    /// The delimiter the file's first lines suggest, when the statement
    /// gave another (a likely mistake).
    pub suggested_delimiter: Option<Vec<u8>>,
    pub header: bool,
    /// The header was detected rather than given.
    pub header_detected: bool,
    /// The table would be created (else appended to).
    pub new_table: bool,
    pub partition_by: PartitionBy,
    pub columns: Vec<DryColumn>,
    /// The partitions that would receive rows, in time order, with their
    /// row counts.
    pub partitions: Vec<(String, u64)>,
    /// The rows `sys.text_import_errors` would list, in file order.
    pub rejected: Vec<ErrorRow>,
    /// The file is Parquet: its schema gives the columns, there is no
    /// dialect.
    pub parquet: bool,
}

/// One column of the target as the import would fill it.
#[derive(Debug, Clone)]
pub struct DryColumn {
    pub name: String,
    pub ty: ColumnType,
    /// The file column feeding it (`None`: it stays NULL).
    pub source: Option<String>,
    pub designated: bool,
    /// Its type was inferred from the file (a new table).
    pub inferred: bool,
    /// The timestamp format its values are parsed with (the one the
    /// analysis matched; the configured others are tried after it).
    pub format: Option<String>,
}

impl DryRun {
    /// The report's fixed part, from the analysis of `buf` (`given`: the
    /// dialect's parts the statement named; `header_given`: HEADER was in
    /// it).
    pub fn new(a: &Analysis, buf: &[u8], given: Given, header_given: bool) -> DryRun {
        let plan = &a.plan;
        let dialect = a.structure.dialect.dialect;
        // Only a given delimiter can be a mistake: a sniffed one is the
        // sniffer's choice already.
        let suggested_delimiter = given.delimiter.and_then(|_| {
            let end = buf.len().min(a.structure.text_start + 64 * 1024);
            let head = &buf[a.structure.text_start..end];
            let sniffed = dialect::sniff(head, end == buf.len(), &Given::default())
                .dialect
                .delimiter_bytes();
            (sniffed != dialect.delimiter_bytes()).then_some(sniffed)
        });
        let columns = plan
            .meta
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| DryColumn {
                name: c.name.clone(),
                ty: c.ty,
                source: plan.sources[i].map(|s| {
                    a.structure
                        .names
                        .get(s)
                        .cloned()
                        .unwrap_or_else(|| format!("f{s}"))
                }),
                designated: plan.timestamp.is_some_and(|(t, _)| t == i),
                inferred: plan.inferred[i],
                format: plan.parsers[i]
                    .as_ref()
                    .and_then(|p| p.patterns.first())
                    .map(|p| p.text.clone()),
            })
            .collect();
        DryRun {
            dialect,
            given,
            evidence: a.structure.dialect.evidence.clone(),
            suggested_delimiter,
            header: a.structure.header,
            header_detected: !header_given,
            new_table: plan.new_table,
            partition_by: plan.meta.partition_by,
            columns,
            partitions: Vec::new(),
            rejected: Vec::new(),
            parquet: false,
        }
    }
}
