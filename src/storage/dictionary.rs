//! The distinct values of a text column of one Parquet file, read from its
//! dictionary pages alone: a column chunk whose data pages are all
//! dictionary encoded holds each of its values once in the dictionary page
//! at its start, so the set costs a small read per row group, not a scan.

use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

use datafusion::parquet::basic::{Encoding, Type as PhysicalType};
use datafusion::parquet::column::page::Page;
use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

use super::files::CREATED_BY;
use crate::error::{Error, Result};

/// A column's distinct values in a file, NULL apart.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Distinct {
    pub values: HashSet<String>,
    pub null: bool,
}

impl Distinct {
    /// How many distinct keys, NULL counted as one.
    pub fn len(&self) -> usize {
        self.values.len() + usize::from(self.null)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds `other`'s values to these.
    pub fn extend(&mut self, other: &Distinct) {
        self.values.extend(other.values.iter().cloned());
        self.null |= other.null;
    }

    /// True when every value of `other` is one of these.
    pub fn covers(&self, other: &Distinct) -> bool {
        (self.null || !other.null) && other.values.is_subset(&self.values)
    }
}

/// The distinct values of `column` (a top-level text column) in the file at
/// `path`, or None when it is missing, not text, not wholly dictionary
/// encoded, has more than `cap` values, or another writer wrote the file:
/// then only a scan can tell.
pub fn distinct_text(path: &Path, column: &str, cap: usize) -> Result<Option<Distinct>> {
    let file = File::open(path).map_err(|e| Error::io(path, e))?;
    let reader = SerializedFileReader::new(file)?;
    let meta = reader.metadata();
    // Only our writer's dictionaries are known to hold just the values
    // written (another writer's may list values no row has).
    if !meta
        .file_metadata()
        .created_by()
        .is_some_and(|w| w.starts_with(CREATED_BY))
    {
        return Ok(None);
    }
    let schema = meta.file_metadata().schema_descr();
    let index = (0..schema.num_columns()).find(|&i| {
        let c = schema.column(i);
        c.path().parts().len() == 1 && c.name() == column
    });
    let Some(index) = index else {
        return Ok(None);
    };
    if schema.column(index).physical_type() != PhysicalType::BYTE_ARRAY {
        return Ok(None);
    }
    let mut set = Distinct::default();
    for g in 0..meta.num_row_groups() {
        let chunk = meta.row_group(g).column(index);
        if chunk.num_values() == 0 {
            continue;
        }
        set.null |= chunk
            .statistics()
            .and_then(|s| s.null_count_opt())
            .is_none_or(|n| n > 0);
        let all_dictionary = chunk.dictionary_page_offset().is_some()
            && chunk.page_encoding_stats_mask().is_some_and(|m| {
                m.is_only(Encoding::RLE_DICTIONARY) || m.is_only(Encoding::PLAIN_DICTIONARY)
            });
        if !all_dictionary {
            return Ok(None);
        }
        let mut pages = reader.get_row_group(g)?.get_column_page_reader(index)?;
        let Some(Page::DictionaryPage {
            buf,
            num_values,
            encoding: Encoding::PLAIN | Encoding::PLAIN_DICTIONARY,
            ..
        }) = pages.get_next_page()?
        else {
            return Ok(None);
        };
        if !plain_byte_arrays(&buf, num_values as usize, &mut set.values) || set.len() > cap {
            return Ok(None);
        }
    }
    Ok(Some(set))
}

/// Decodes PLAIN BYTE_ARRAY values (a 4-byte little-endian length, then the
/// bytes) into `out`; false when the buffer is not that or not UTF-8.
fn plain_byte_arrays(mut buf: &[u8], count: usize, out: &mut HashSet<String>) -> bool {
    for _ in 0..count {
        let Some((len, rest)) = buf.split_first_chunk::<4>() else {
            return false;
        };
        let len = u32::from_le_bytes(*len) as usize;
        if rest.len() < len {
            return false;
        }
        let Ok(s) = std::str::from_utf8(&rest[..len]) else {
            return false;
        };
        // Row groups repeat a file's values: no copy of one already held.
        if !out.contains(s) {
            out.insert(s.to_string());
        }
        buf = &rest[len..];
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use std::sync::Arc;

    fn write(path: &Path, dictionary: bool, city: Vec<Option<&str>>) {
        let n = city.len() as i64;
        let batch = RecordBatch::try_from_iter([
            ("city", Arc::new(StringArray::from(city)) as ArrayRef),
            (
                "v",
                Arc::new(Int64Array::from_iter_values(0..n)) as ArrayRef,
            ),
        ])
        .unwrap();
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_max_row_group_row_count(Some(3))
            .set_created_by(CREATED_BY.to_string())
            .build();
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn reads_the_dictionaries_of_every_row_group() {
        let dir = std::env::temp_dir().join(format!("sluice-dict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("a.parquet");
        let cities = vec![
            Some("Oslo"),
            Some("Rome"),
            Some("Oslo"),
            None,
            Some("Lima"),
            Some("Rome"),
            Some("Bonn"),
        ];
        write(&f, true, cities);
        let city = distinct_text(&f, "city", 100).unwrap().unwrap();
        let mut values: Vec<_> = city.values.iter().cloned().collect();
        values.sort();
        assert_eq!(values, ["Bonn", "Lima", "Oslo", "Rome"]);
        assert!(city.null);
        assert_eq!(city.len(), 5);
        assert_eq!(distinct_text(&f, "v", 100).unwrap(), None, "not text");
        assert_eq!(
            distinct_text(&f, "nope", 100).unwrap(),
            None,
            "no such column"
        );
        assert_eq!(distinct_text(&f, "city", 3).unwrap(), None, "over the cap");
        write(&f, false, vec![Some("Oslo"), Some("Rome")]);
        assert_eq!(distinct_text(&f, "city", 100).unwrap(), None, "plain pages");
        let other = WriterProperties::builder()
            .set_created_by("duckdb".into())
            .build();
        let batch = RecordBatch::try_from_iter([(
            "city",
            Arc::new(StringArray::from(vec!["Oslo"])) as ArrayRef,
        )])
        .unwrap();
        let mut w =
            ArrowWriter::try_new(File::create(&f).unwrap(), batch.schema(), Some(other)).unwrap();
        w.write(&batch).unwrap();
        w.close().unwrap();
        assert_eq!(
            distinct_text(&f, "city", 100).unwrap(),
            None,
            "another writer"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
