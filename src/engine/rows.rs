//! Query results as streams of record batches. Every result the engine
//! returns is a [`Rows`]: DataFusion's stream for queries (batches are
//! produced as the client consumes them, so memory is a few batches, not
//! the result), or a small in-memory result for SHOW and the like. The
//! statement's deadline and cancel signal travel with the stream and stop
//! it between batches; QuestDB's LIMIT forms are applied on the way.

use std::collections::VecDeque;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::sql::QdbLimit;
use crate::sql::limit::LimitPlan;

/// The rows of a result, produced as they are read.
pub struct Rows {
    pub schema: SchemaRef,
    stream: SendableRecordBatchStream,
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("schema", &self.schema)
            .finish()
    }
}

impl Rows {
    /// A result over a stream DataFusion (or anyone) produces.
    pub fn new(stream: SendableRecordBatchStream) -> Rows {
        Rows {
            schema: stream.schema(),
            stream,
        }
    }

    /// Keeps `plan` alive as long as the stream (its scans pin the table
    /// snapshots they read).
    pub fn holding(self, plan: Arc<dyn datafusion::physical_plan::ExecutionPlan>) -> Rows {
        self.keeping(plan)
    }

    /// Keeps `value` alive as long as the stream.
    pub fn keeping<T: Send + 'static>(self, value: T) -> Rows {
        let stream = self.stream.map(move |b| {
            let _kept = &value;
            b
        });
        Rows {
            schema: Arc::clone(&self.schema),
            stream: Box::pin(RecordBatchStreamAdapter::new(self.schema, stream)),
        }
    }

    /// A small result already in memory.
    pub fn from_batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> Rows {
        let stream = futures::stream::iter(batches.into_iter().map(Ok));
        Rows {
            stream: Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&schema), stream)),
            schema,
        }
    }

    /// Puts a batch already taken with [`Rows::next`] back in front.
    pub fn prepend(self, first: Option<RecordBatch>) -> Rows {
        let schema = Arc::clone(&self.schema);
        let stream = futures::stream::iter(first.map(Ok)).chain(self.stream);
        Rows {
            stream: Box::pin(RecordBatchStreamAdapter::new(Arc::clone(&schema), stream)),
            schema,
        }
    }

    /// The next batch, `None` at the end.
    pub async fn next(&mut self) -> Option<Result<RecordBatch>> {
        self.stream.next().await.map(|r| r.map_err(Error::from))
    }

    /// Every remaining batch (for callers that need the whole result: the
    /// CLI's table, tests).
    pub async fn collect(mut self) -> Result<Vec<RecordBatch>> {
        let mut out = Vec::new();
        while let Some(b) = self.next().await {
            out.push(b?);
        }
        Ok(out)
    }

    /// The batches as a stream of engine results.
    pub fn into_stream(self) -> impl Stream<Item = Result<RecordBatch>> + Send + 'static {
        self.stream.map(|r| r.map_err(Error::from))
    }

    /// Keeps the rows QuestDB's LIMIT selects. A window from the start
    /// skips and takes while streaming; rows counted from the end are
    /// found by holding only as many rows as the limit names, so memory is
    /// bounded by the limit, not by the result.
    ///
    /// A window from the start stops reading the query once it is full,
    /// unless `drain` (the rest is still read, for a total count).
    pub fn limit(self, limit: QdbLimit, drain: bool) -> Rows {
        let state = Some((self.stream, Shape::new(limit)));
        // Each input batch gives zero or more output batches; the end of
        // the input flushes what was held.
        let stream = futures::stream::unfold(state, move |state| async move {
            let (mut input, mut shape) = state?;
            match input.next().await {
                Some(Ok(b)) => {
                    let out = shape_push(&mut shape, b);
                    // Dropping the input stops the scan.
                    let full = matches!(shape.plan, LimitPlan::Window { .. }) && shape.take == 0;
                    let next = (!full || drain).then_some((input, shape));
                    Some((Ok(out), next))
                }
                Some(Err(e)) => Some((Err(e), None)),
                None => Some((Ok(shape_finish(&mut shape)), None)),
            }
        })
        .flat_map(|r| match r {
            Ok(batches) => futures::stream::iter(batches.into_iter().map(Ok)).left_stream(),
            Err(e) => futures::stream::once(async { Err(e) }).right_stream(),
        });
        Rows {
            schema: Arc::clone(&self.schema),
            stream: Box::pin(RecordBatchStreamAdapter::new(self.schema, stream)),
        }
    }

    /// Rewrites the stream's errors with `f`.
    pub fn map_err(self, f: impl Fn(Error) -> Error + Send + 'static) -> Rows {
        let stream = self
            .stream
            .map(move |r| r.map_err(|e| DataFusionError::from(f(Error::from(e)))));
        Rows {
            schema: Arc::clone(&self.schema),
            stream: Box::pin(RecordBatchStreamAdapter::new(self.schema, stream)),
        }
    }

    /// Adds the number of rows that pass to `counter`.
    pub fn counted(self, counter: Arc<std::sync::atomic::AtomicUsize>) -> Rows {
        let stream = self.stream.inspect(move |b| {
            if let Ok(b) = b {
                counter.fetch_add(b.num_rows(), std::sync::atomic::Ordering::Relaxed);
            }
        });
        Rows {
            schema: Arc::clone(&self.schema),
            stream: Box::pin(RecordBatchStreamAdapter::new(self.schema, stream)),
        }
    }

    /// Stops the stream with 57014 when `cancel` fires or `deadline`
    /// passes (see [`guard`]).
    pub fn guarded(
        self,
        cancel: CancellationToken,
        deadline: Option<tokio::time::Instant>,
    ) -> Rows {
        let stream = guard(self.stream, cancel, deadline);
        Rows {
            schema: Arc::clone(&self.schema),
            stream: Box::pin(RecordBatchStreamAdapter::new(self.schema, stream)),
        }
    }
}

/// Ends `input` with an error when `cancel` fires (57014, canceled) or
/// `deadline` passes (57014, timeout), also while it waits for an item, so
/// a long sort is stopped too: `input` is dropped, which aborts
/// DataFusion's tasks.
pub fn guard<T, E>(
    input: impl Stream<Item = std::result::Result<T, E>> + Send + Unpin + 'static,
    cancel: CancellationToken,
    deadline: Option<tokio::time::Instant>,
) -> impl Stream<Item = std::result::Result<T, E>> + Send + 'static
where
    T: Send + 'static,
    E: From<Error> + Send + 'static,
{
    let millis = deadline.map_or(0, |d| {
        d.saturating_duration_since(tokio::time::Instant::now())
            .as_millis() as u64
    });
    futures::stream::unfold(Some(input), move |state| {
        let cancel = cancel.clone();
        async move {
            let mut input = state?;
            let next = tokio::select! {
                item = input.next() => item,
                _ = cancel.cancelled() => Some(Err(Error::Cancelled.into())),
                _ = sleep_until(deadline) => Some(Err(Error::Timeout { millis }.into())),
            };
            match next {
                None => None,
                // An error ends the stream.
                Some(Err(e)) => Some((Err(e), None)),
                Some(Ok(item)) => Some((Ok(item), Some(input))),
            }
        }
    })
}

/// Sleeps until `deadline`, or forever without one.
pub(crate) async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A QuestDB LIMIT applied to a stream (see [`LimitPlan`]).
struct Shape {
    limit: QdbLimit,
    plan: LimitPlan,
    /// Rows seen so far.
    seen: usize,
    /// Rows still to skip, then to take (a window from the start).
    skip: usize,
    take: usize,
    /// Held batches and their row count (the tail or the lag).
    held: VecDeque<RecordBatch>,
    held_rows: usize,
}

impl Shape {
    fn new(limit: QdbLimit) -> Shape {
        let plan = limit.plan();
        let (skip, take) = match plan {
            LimitPlan::Window { skip, take } => (skip, take),
            LimitPlan::AllButLast { skip, .. } => (skip, usize::MAX),
            LimitPlan::Tail { .. } => (0, usize::MAX),
        };
        Shape {
            limit,
            plan,
            seen: 0,
            skip,
            take,
            held: VecDeque::new(),
            held_rows: 0,
        }
    }

    /// Drops the first `skip` rows of `b` still to be skipped, and caps it
    /// at what is still to be taken.
    fn window(&mut self, b: RecordBatch) -> Option<RecordBatch> {
        let n = b.num_rows();
        let s = self.skip.min(n);
        self.skip -= s;
        let t = self.take.min(n - s);
        self.take -= t;
        (t > 0).then(|| b.slice(s, t))
    }

    /// Holds `b`, then releases the oldest batches while the rest still
    /// has at least `keep` rows; returns what was released.
    fn hold(&mut self, b: RecordBatch, keep: usize) -> Vec<RecordBatch> {
        self.held_rows += b.num_rows();
        self.held.push_back(b);
        let mut released = Vec::new();
        while let Some(front) = self.held.front() {
            if self.held_rows - front.num_rows() < keep {
                break;
            }
            self.held_rows -= front.num_rows();
            released.extend(self.held.pop_front());
        }
        released
    }
}

fn shape_push(shape: &mut Shape, b: RecordBatch) -> Vec<RecordBatch> {
    shape.seen += b.num_rows();
    match shape.plan {
        LimitPlan::Window { .. } => shape.window(b).into_iter().collect(),
        // Released batches are older than the tail: not selected.
        LimitPlan::Tail { keep } => {
            shape.hold(b, keep);
            Vec::new()
        }
        // Released batches are not among the last `last` rows: selected
        // (after the rows to skip).
        LimitPlan::AllButLast { last, .. } => match shape.window(b) {
            Some(b) => shape.hold(b, last),
            None => Vec::new(),
        },
    }
}

fn shape_finish(shape: &mut Shape) -> Vec<RecordBatch> {
    let held: Vec<RecordBatch> = shape.held.drain(..).collect();
    let held_rows = std::mem::take(&mut shape.held_rows);
    // The held rows are rows `first..seen` of the result (for the lag,
    // counted after the skipped rows; its selection is "all but the last").
    let (first, start, end) = match shape.plan {
        LimitPlan::Window { .. } => return Vec::new(),
        LimitPlan::Tail { .. } => {
            let (s, e) = shape.limit.range(shape.seen);
            (shape.seen - held_rows, s, e)
        }
        LimitPlan::AllButLast { last, .. } => (0, 0, held_rows.saturating_sub(last)),
    };
    let mut out = Vec::new();
    let mut offset = first;
    for b in held {
        let (bs, be) = (offset, offset + b.num_rows());
        offset = be;
        let (s, e) = (start.max(bs), end.min(be));
        if s < e {
            out.push(b.slice(s - bs, e - s));
        }
    }
    out
}
