//! A result as one Parquet file, encoded as it streams: each row group is
//! handed on as soon as it is written, so memory holds one row group (at
//! most [`ROW_GROUP_ROWS`] rows, encoded), never the result. Columns keep
//! their Arrow types (timestamps in UTC microseconds or nanoseconds).

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::{Stream, StreamExt};

use super::Rows;
use crate::error::Result;

/// Rows per row group of an exported file.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;

/// The bytes the writer has produced and the stream has not yet sent.
#[derive(Clone, Default)]
struct Pending(Arc<Mutex<Vec<u8>>>);

impl Pending {
    fn take(&self) -> Bytes {
        Bytes::from(std::mem::take(&mut *self.0.lock().expect("parquet buffer")))
    }
}

impl std::io::Write for Pending {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .expect("parquet buffer")
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `rows` as the bytes of one Parquet file (Snappy-compressed columns).
pub fn parquet_stream(rows: Rows) -> Result<impl Stream<Item = Result<Bytes>> + Send + 'static> {
    let pending = Pending::default();
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_created_by(crate::storage::files::CREATED_BY.to_string())
        .build();
    let writer = ArrowWriter::try_new(pending.clone(), Arc::clone(&rows.schema), Some(props))?;
    let state = Some((writer, rows.into_stream().boxed(), pending));
    Ok(futures::stream::unfold(state, |state| async move {
        let (mut writer, mut batches, pending) = state?;
        loop {
            match batches.next().await {
                Some(Ok(batch)) => {
                    if let Err(e) = writer.write(&batch) {
                        return Some((Err(e.into()), None));
                    }
                    let chunk = pending.take();
                    if !chunk.is_empty() {
                        return Some((Ok(chunk), Some((writer, batches, pending))));
                    }
                }
                Some(Err(e)) => return Some((Err(e), None)),
                None => {
                    return match writer.close() {
                        Ok(_) => Some((Ok(pending.take()), None)),
                        Err(e) => Some((Err(e.into()), None)),
                    };
                }
            }
        }
    }))
}
