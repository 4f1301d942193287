//! Aggregation keyed by SYMBOL columns, planned in place of DataFusion's.
//!
//! A SYMBOL is a dictionary column, and DataFusion groups a dictionary key
//! by converting every row to its row format (`GroupValuesRows`): for
//! SAMPLE BY's usual shape, `GROUP BY bucket, hostname`, that conversion and
//! its hashing was over half the CPU of the whole query. Here a key is
//! fixed-size: each SYMBOL value gets a number once (per distinct value of
//! a batch's dictionary, not per row) and each integer or timestamp key is
//! its 64 bits, so a row's key is a few machine words hashed at once.
//!
//! [`SymbolGroups`] is the physical optimizer rule: it replaces an
//! `AggregateExec` that reads rows (Partial, Single or SinglePartitioned),
//! groups by such keys with at least one SYMBOL among them, and whose
//! aggregates all have group accumulators, by a [`SymbolGroupsExec`] with
//! the same output schema and partitioning. The aggregates themselves are
//! DataFusion's (`GroupsAccumulator`s), except two or more plain `avg`s and
//! `sum`s of FLOAT64, which are kept together (`float_sums`). Anything
//! else keeps DataFusion's operator.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::datatypes::{DataType, Int32Type, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{HashMap, Result, internal_err};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode, aggregate_expressions};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildrenPropertiesMode, DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode,
    PlanProperties, ReplaceChildrenOptions,
};
use futures::StreamExt;

use super::float_sums::{FloatSums, Kind};

/// The most group keys a fixed-size key holds.
const MAX_KEYS: usize = 4;

/// The rule: see the module documentation.
#[derive(Debug, Default)]
pub struct SymbolGroups;

impl PhysicalOptimizerRule for SymbolGroups {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let replaced = node
                .downcast_ref::<AggregateExec>()
                .map(SymbolGroupsExec::replacing)
                .transpose()?
                .flatten();
            Ok(match replaced {
                Some(exec) => Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "symbol_groups"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// How one group key is read from a batch and written out.
#[derive(Debug, Clone, Copy, PartialEq)]
enum KeyKind {
    /// A SYMBOL (`Dictionary(Int32, Utf8)`): the key is the value's number.
    Symbol,
    /// A primitive of this many bytes (8 or 4): the key is its bits.
    Number(usize),
}

impl KeyKind {
    fn of(t: &DataType) -> Option<KeyKind> {
        match t {
            DataType::Dictionary(k, v) if **k == DataType::Int32 && **v == DataType::Utf8 => {
                Some(KeyKind::Symbol)
            }
            DataType::Int64
            | DataType::UInt64
            | DataType::Timestamp(..)
            | DataType::Date64
            | DataType::Duration(_) => Some(KeyKind::Number(8)),
            DataType::Int32 | DataType::UInt32 | DataType::Date32 => Some(KeyKind::Number(4)),
            _ => None,
        }
    }
}

/// An aggregation whose groups are found by fixed-size keys.
#[derive(Debug)]
pub struct SymbolGroupsExec {
    /// The operator replaced: its input, group and aggregate expressions,
    /// mode and schema are this one's.
    aggregate: Arc<AggregateExec>,
    keys: Vec<KeyKind>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl SymbolGroupsExec {
    /// This operator in place of `agg`, when the module's conditions hold.
    pub fn replacing(agg: &AggregateExec) -> Result<Option<SymbolGroupsExec>> {
        let raw = matches!(
            agg.mode(),
            AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
        );
        let group = agg.group_expr();
        if !raw
            || !group.is_single()
            || group.expr().is_empty()
            || group.expr().len() > MAX_KEYS
            || agg.limit_options().is_some()
            || !agg.dynamic_expressions_produced().is_empty()
            || *agg.input_order_mode() != InputOrderMode::Linear
            || agg.properties().output_ordering().is_some()
            || !agg
                .aggr_expr()
                .iter()
                .all(|a| a.groups_accumulator_supported())
        {
            return Ok(None);
        }
        let input_schema = agg.input().schema();
        let mut keys = Vec::new();
        for (expr, _) in group.expr() {
            match KeyKind::of(&expr.data_type(&input_schema)?) {
                Some(k) => keys.push(k),
                None => return Ok(None),
            }
        }
        // Without a SYMBOL key DataFusion's own column-wise groups are
        // as fast.
        if !keys.contains(&KeyKind::Symbol) {
            return Ok(None);
        }
        let schema = agg.schema();
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            agg.properties().output_partitioning().clone(),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Ok(Some(SymbolGroupsExec {
            aggregate: Arc::new(agg.clone()),
            keys,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }

    /// Whether this step emits final values (else partial states).
    fn finishes(&self) -> bool {
        !matches!(self.aggregate.mode(), AggregateMode::Partial)
    }
}

impl DisplayAs for SymbolGroupsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: Vec<String>| v.join(", ");
        write!(
            f,
            "SymbolGroupsExec: mode={:?}, gby=[{}], aggr=[{}]",
            self.aggregate.mode(),
            names(
                self.aggregate
                    .group_expr()
                    .expr()
                    .iter()
                    .map(|(e, n)| format!("{e} as {n}"))
                    .collect()
            ),
            names(
                self.aggregate
                    .aggr_expr()
                    .iter()
                    .map(|a| a.name().to_string())
                    .collect()
            ),
        )
    }
}

impl ExecutionPlan for SymbolGroupsExec {
    fn name(&self) -> &str {
        "SymbolGroupsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let [input] = <[_; 1]>::try_from(children)
            .or_else(|_| internal_err!("SymbolGroupsExec has one input"))?;
        let agg = Arc::clone(&self.aggregate).replace_children(
            vec![input],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )?;
        match agg
            .downcast_ref::<AggregateExec>()
            .map(SymbolGroupsExec::replacing)
            .transpose()?
            .flatten()
        {
            Some(exec) => Ok(Arc::new(exec)),
            // The new input no longer suits: DataFusion's operator.
            None => Ok(agg),
        }
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let agg = &self.aggregate;
        let input = agg.input().execute(partition, Arc::clone(&context))?;
        // Plain `avg`s and `sum`s of FLOAT64 are kept together (see
        // `float_sums`) when there are two or more; the others are
        // DataFusion's accumulators.
        let input_schema = agg.input().schema();
        let mut kinds = Vec::new();
        for (a, f) in agg.aggr_expr().iter().zip(agg.filter_expr()) {
            kinds.push(Kind::of(a, f.is_some(), &input_schema)?);
        }
        let fused = kinds.iter().flatten().count() >= 2;
        let mut together = Vec::new();
        let mut accumulators = Vec::new();
        for (a, kind) in agg.aggr_expr().iter().zip(kinds) {
            accumulators.push(match kind {
                Some(kind) if fused => {
                    together.push(kind);
                    Accumulator::Together(together.len() - 1)
                }
                _ => Accumulator::Own(a.create_groups_accumulator()?),
            });
        }
        let reservation = MemoryConsumer::new(format!("SymbolGroupsExec[{partition}]"))
            .with_can_spill(!self.finishes())
            .register(context.memory_pool());
        let state = Grouping {
            input,
            group_exprs: agg
                .group_expr()
                .expr()
                .iter()
                .map(|(e, _)| Arc::clone(e))
                .collect(),
            arguments: aggregate_expressions(agg.aggr_expr(), agg.mode(), 0)?,
            filters: agg.filter_expr().to_vec(),
            accumulators,
            sums: FloatSums::new(together),
            table: KeyTable::new(&self.keys),
            finishes: self.finishes(),
            schema: agg.schema(),
            batch_size: context.session_config().batch_size(),
            reservation,
            metrics: BaselineMetrics::new(&self.metrics, partition),
            group_indices: Vec::new(),
            pending: Vec::new(),
            done: false,
        };
        let stream = futures::stream::unfold(state, |mut s| async move {
            let next = s.next().await;
            next.map(|b| (b, s))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            agg.schema(),
            stream,
        )))
    }
}

/// A group key: each column's 64 bits, and which columns are NULL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    words: [u64; MAX_KEYS],
    nulls: u8,
}

impl std::hash::Hash for Key {
    /// One word for the hasher: the map's hasher then mixes 8 bytes, not
    /// 33 (hashing the array as bytes was a tenth of a query's time).
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut h = u64::from(self.nulls);
        for w in self.words {
            h = (h ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
        }
        state.write_u64(h);
    }
}

/// The groups found so far: their keys, and the SYMBOL values' numbers.
struct KeyTable {
    kinds: Vec<KeyKind>,
    index: HashMap<Key, usize>,
    keys: Vec<Key>,
    /// Per key column (used for SYMBOL columns only): each distinct value's
    /// number, and the values in number order.
    symbols: Vec<Symbols>,
    /// The SYMBOL column whose numbers index `direct` (the last one).
    direct_column: usize,
    /// Per SYMBOL number: the run it was last seen in, and its group there.
    direct: Vec<(u64, usize)>,
    /// The other keys of the current run (the SYMBOL's word zero).
    run: Key,
    generation: u64,
}

#[derive(Default)]
struct Symbols {
    numbers: HashMap<Box<str>, u64>,
    values: Vec<Box<str>>,
}

impl Symbols {
    fn number(&mut self, value: &str) -> u64 {
        if let Some(n) = self.numbers.get(value) {
            return *n;
        }
        let n = self.values.len() as u64;
        self.values.push(value.into());
        self.numbers.insert(value.into(), n);
        n
    }

    fn size(&self) -> usize {
        self.values
            .iter()
            .map(|v| 2 * (v.len() + 32))
            .sum::<usize>()
    }
}

/// One key column of a batch: its words and NULLs.
struct Words {
    words: Source,
    nulls: Option<NullBuffer>,
}

/// Where a key column's words come from: a number column's own values
/// (not copied), or the SYMBOL numbers of the batch's rows.
enum Source {
    Wide(ScalarBuffer<i64>),
    Narrow(ScalarBuffer<i32>),
    Numbers(Vec<u64>),
}

impl Source {
    /// Adds to `out` the rows whose word differs from the row before
    /// (the first row's from `before`).
    fn changes(&self, before: u64, rows: usize, out: &mut Vec<usize>) {
        fn scan<T: Copy + PartialEq>(v: &[T], before: T, out: &mut Vec<usize>) {
            let mut last = before;
            for (row, &w) in v.iter().enumerate() {
                if w != last {
                    out.push(row);
                    last = w;
                }
            }
        }
        match self {
            Source::Wide(v) => scan(&v[..rows], before as i64, out),
            Source::Narrow(v) => scan(&v[..rows], before as u32 as i32, out),
            Source::Numbers(v) => scan(&v[..rows], before, out),
        }
    }

    #[inline]
    fn get(&self, row: usize) -> u64 {
        match self {
            Source::Wide(v) => v[row] as u64,
            Source::Narrow(v) => v[row] as u32 as u64,
            Source::Numbers(v) => v[row],
        }
    }
}

impl KeyTable {
    fn new(kinds: &[KeyKind]) -> KeyTable {
        KeyTable {
            kinds: kinds.to_vec(),
            index: HashMap::default(),
            keys: Vec::new(),
            symbols: kinds.iter().map(|_| Symbols::default()).collect(),
            direct_column: kinds
                .iter()
                .rposition(|k| *k == KeyKind::Symbol)
                .unwrap_or(0),
            direct: Vec::new(),
            run: Key {
                words: [0; MAX_KEYS],
                nulls: 0,
            },
            // Entries of `direct` start at generation 0: never current.
            generation: 1,
        }
    }

    fn size(&self) -> usize {
        self.index.capacity() * (size_of::<(Key, usize)>() + 1)
            + self.keys.capacity() * size_of::<Key>()
            + self.direct.capacity() * size_of::<(u64, usize)>()
            + self.symbols.iter().map(Symbols::size).sum::<usize>()
    }

    /// A key column's words for each row of `array`.
    fn words(&mut self, column: usize, array: &ArrayRef) -> Result<Words> {
        let nulls = array.logical_nulls().filter(|n| n.null_count() > 0);
        let words = match self.kinds[column] {
            KeyKind::Number(8) => {
                let data = array.to_data().into_builder().data_type(DataType::Int64);
                Source::Wide(Int64Array::from(data.build()?).values().clone())
            }
            KeyKind::Number(_) => {
                let data = array.to_data().into_builder().data_type(DataType::Int32);
                Source::Narrow(Int32Array::from(data.build()?).values().clone())
            }
            KeyKind::Symbol => {
                let dict = array.as_dictionary::<Int32Type>();
                let values = dict.values().as_string::<i32>();
                let symbols = &mut self.symbols[column];
                let keys = dict.keys();
                // A value's number is looked up once per batch, when a row
                // first uses it (a NULL row's word is never read: 0).
                let mut number = |k: usize| match values.is_valid(k) {
                    true => symbols.number(values.value(k)),
                    false => 0,
                };
                let used = |i: usize| keys.is_valid(i).then(|| keys.value(i).max(0) as usize);
                let rows: Vec<u64> = if values.len() <= 2 * keys.len() + 64 {
                    // A dictionary about the batch's size or smaller: every
                    // value gets its number, then each row its value's.
                    let numbers: Vec<u64> = (0..values.len()).map(number).collect();
                    let of = |k: &i32| numbers.get(*k as usize).copied().unwrap_or(0);
                    match keys.nulls().filter(|n| n.null_count() > 0) {
                        None => keys.values().iter().map(of).collect(),
                        Some(valid) => keys
                            .values()
                            .iter()
                            .enumerate()
                            .map(|(i, k)| if valid.is_valid(i) { of(k) } else { 0 })
                            .collect(),
                    }
                } else {
                    // A dictionary much longer than the batch (a file's
                    // whole dictionary on every chunk): remember only the
                    // values the rows use.
                    let mut numbers: HashMap<usize, u64> = HashMap::default();
                    (0..keys.len())
                        .map(|i| match used(i) {
                            Some(k) if k < values.len() => {
                                *numbers.entry(k).or_insert_with(|| number(k))
                            }
                            _ => 0,
                        })
                        .collect()
                };
                Source::Numbers(rows)
            }
        };
        Ok(Words { words, nulls })
    }

    /// Each row's group, adding the new ones.
    ///
    /// Rows in time order repeat the other keys (SAMPLE BY's bucket) for
    /// long runs: while they do, a row's group is found by its SYMBOL
    /// number in `direct`, without hashing; `generation` tells which run
    /// an entry of `direct` belongs to.
    fn groups(&mut self, columns: &[Words], rows: usize, out: &mut Vec<usize>) {
        out.clear();
        out.reserve(rows);
        let symbol = self.direct_column;
        if columns.iter().all(|c| c.nulls.is_none()) {
            self.groups_without_nulls(columns, rows, out);
            return;
        }
        let symbol_bit = 1u8 << symbol;
        for row in 0..rows {
            let mut key = Key {
                words: [0; MAX_KEYS],
                nulls: 0,
            };
            for (c, col) in columns.iter().enumerate() {
                if col.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
                    key.nulls |= 1 << c;
                } else {
                    key.words[c] = col.words.get(row);
                }
            }
            if key.nulls & symbol_bit != 0 {
                out.push(self.group_of(key));
                continue;
            }
            let number = key.words[symbol] as usize;
            let mut rest = key;
            rest.words[symbol] = 0;
            if rest != self.run {
                self.run = rest;
                self.generation += 1;
            }
            out.push(self.direct_group(number, key));
        }
    }

    /// [`KeyTable::groups`] for a batch without NULL keys: the rows where
    /// the other keys change are found column by column first, then each
    /// run's rows find their groups by their SYMBOL numbers alone (a key
    /// is only put together when `direct` does not know its group).
    fn groups_without_nulls(&mut self, columns: &[Words], rows: usize, out: &mut Vec<usize>) {
        let symbol = self.direct_column;
        if self.run.nulls != 0 {
            self.run.nulls = 0;
            self.generation += 1;
        }
        let mut changes = Vec::new();
        for (c, col) in columns.iter().enumerate() {
            if c != symbol {
                col.words.changes(self.run.words[c], rows, &mut changes);
            }
        }
        changes.sort_unstable();
        changes.dedup();
        let Source::Numbers(numbers) = &columns[symbol].words else {
            unreachable!("the direct column is a SYMBOL's numbers");
        };
        let mut from = 0;
        for to in changes.into_iter().chain([rows]) {
            if to > from {
                self.run_groups(symbol, &numbers[from..to], out);
            }
            if to < rows {
                for (c, col) in columns.iter().enumerate() {
                    if c != symbol {
                        self.run.words[c] = col.words.get(to);
                    }
                }
                self.generation += 1;
            }
            from = to;
        }
    }

    /// The groups of rows in one run of the other keys, by SYMBOL number.
    fn run_groups(&mut self, symbol: usize, numbers: &[u64], out: &mut Vec<usize>) {
        for &number in numbers {
            let group = match self.direct.get(number as usize) {
                Some(&(g, group)) if g == self.generation => group,
                _ => {
                    let mut key = self.run;
                    key.words[symbol] = number;
                    self.direct_group(number as usize, key)
                }
            };
            out.push(group);
        }
    }

    /// The group of `key`, whose SYMBOL number is `number`, in the run.
    #[inline]
    fn direct_group(&mut self, number: usize, key: Key) -> usize {
        match self.direct.get(number) {
            Some(&(g, group)) if g == self.generation => group,
            _ => {
                let group = self.group_of(key);
                if number >= self.direct.len() {
                    self.direct.resize(number + 1, (0, 0));
                }
                self.direct[number] = (self.generation, group);
                group
            }
        }
    }

    /// The group of `key`, added when new.
    fn group_of(&mut self, key: Key) -> usize {
        let next = self.keys.len();
        let group = *self.index.entry(key).or_insert(next);
        if group == next {
            self.keys.push(key);
        }
        group
    }

    /// The key columns of every group, as `schema`'s first fields, and an
    /// empty table.
    fn take(&mut self, schema: &SchemaRef) -> Result<Vec<ArrayRef>> {
        let keys = std::mem::take(&mut self.keys);
        // Its memory too: a partial step empties it to fit in less.
        self.index = HashMap::default();
        self.generation += 1;
        let mut out = Vec::with_capacity(self.kinds.len());
        for (c, kind) in self.kinds.iter().enumerate() {
            let nulls = NullBuffer::from_iter(keys.iter().map(|k| k.nulls & (1 << c) == 0));
            let nulls = (nulls.null_count() > 0).then_some(nulls);
            let target = schema.field(c).data_type();
            let array: ArrayRef = match kind {
                KeyKind::Symbol => {
                    let numbers: Int32Array = keys.iter().map(|k| k.words[c] as i32).collect();
                    let numbers = Int32Array::new(numbers.values().clone(), nulls);
                    let values = StringArray::from_iter_values(self.symbols[c].values.iter());
                    Arc::new(DictionaryArray::<Int32Type>::try_new(
                        numbers,
                        Arc::new(values),
                    )?)
                }
                KeyKind::Number(8) => {
                    let ints =
                        Int64Array::new(keys.iter().map(|k| k.words[c] as i64).collect(), nulls);
                    datafusion::arrow::array::make_array(
                        ints.into_data()
                            .into_builder()
                            .data_type(target.clone())
                            .build()?,
                    )
                }
                KeyKind::Number(_) => {
                    let ints = Int32Array::new(
                        keys.iter().map(|k| k.words[c] as u32 as i32).collect(),
                        nulls,
                    );
                    datafusion::arrow::array::make_array(
                        ints.into_data()
                            .into_builder()
                            .data_type(target.clone())
                            .build()?,
                    )
                }
            };
            out.push(array);
        }
        Ok(out)
    }
}

/// How one aggregate of the operator is kept.
enum Accumulator {
    /// DataFusion's accumulator.
    Own(Box<dyn GroupsAccumulator>),
    /// Column `k` of the operator's [`FloatSums`].
    Together(usize),
}

/// One partition's aggregation, as a stream's state.
struct Grouping {
    input: SendableRecordBatchStream,
    group_exprs: Vec<Arc<dyn PhysicalExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Accumulator>,
    /// The aggregates kept together.
    sums: FloatSums,
    table: KeyTable,
    finishes: bool,
    schema: SchemaRef,
    batch_size: usize,
    reservation: MemoryReservation,
    metrics: BaselineMetrics,
    /// Each row's group in the batch at hand (kept to reuse its memory).
    group_indices: Vec<usize>,
    /// Output batches not yet returned, last first.
    pending: Vec<RecordBatch>,
    done: bool,
}

impl Grouping {
    async fn next(&mut self) -> Option<Result<RecordBatch>> {
        loop {
            if let Some(b) = self.pending.pop() {
                self.metrics.record_output(b.num_rows());
                return Some(Ok(b));
            }
            if self.done {
                self.metrics.done();
                return None;
            }
            let step = match self.input.next().await {
                Some(Ok(batch)) => self.update(&batch),
                Some(Err(e)) => Err(e),
                None => {
                    self.done = true;
                    self.emit()
                }
            };
            if let Err(e) = step {
                self.done = true;
                return Some(Err(e));
            }
        }
    }

    fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        let timer = self.metrics.elapsed_compute().timer();
        let rows = batch.num_rows();
        let mut columns = Vec::with_capacity(self.group_exprs.len());
        for (c, e) in self.group_exprs.iter().enumerate() {
            let array = e.evaluate(batch)?.into_array(rows)?;
            columns.push(self.table.words(c, &array)?);
        }
        let mut groups = std::mem::take(&mut self.group_indices);
        self.table.groups(&columns, rows, &mut groups);
        let total = self.table.keys.len();
        let mut together = Vec::new();
        for ((acc, args), filter) in self
            .accumulators
            .iter_mut()
            .zip(&self.arguments)
            .zip(&self.filters)
        {
            let values = args
                .iter()
                .map(|e| e.evaluate(batch).and_then(|v| v.into_array(rows)))
                .collect::<Result<Vec<_>>>()?;
            let acc = match acc {
                Accumulator::Own(acc) => acc,
                Accumulator::Together(_) => {
                    together.extend(values);
                    continue;
                }
            };
            let filter = match filter {
                Some(f) => Some(f.evaluate(batch)?.into_array(rows)?),
                None => None,
            };
            let filter = filter.as_ref().map(|f| f.as_boolean() as &BooleanArray);
            acc.update_batch(&values, &groups, filter, total)?;
        }
        if !together.is_empty() {
            self.sums.update(&together, &groups, total);
        }
        timer.done();
        let size = self.table.size()
            + groups.capacity() * size_of::<usize>()
            + self.sums.size()
            + self
                .accumulators
                .iter()
                .map(|a| match a {
                    Accumulator::Own(a) => a.size(),
                    Accumulator::Together(_) => 0,
                })
                .sum::<usize>();
        self.group_indices = groups;
        match self.reservation.try_resize(size) {
            Ok(()) => Ok(()),
            // A partial step may hand on what it has and start again: the
            // final step merges the pieces.
            Err(_) if !self.finishes && total > 0 => self.emit(),
            Err(e) => Err(e),
        }
    }

    /// Every group so far as output batches, and an empty table.
    fn emit(&mut self) -> Result<()> {
        let mut columns = self.table.take(&self.schema)?;
        let mut together = self.sums.take(self.finishes);
        for acc in &mut self.accumulators {
            match acc {
                Accumulator::Together(k) => columns.append(&mut together[*k]),
                Accumulator::Own(acc) if self.finishes => columns.push(acc.evaluate(EmitTo::All)?),
                Accumulator::Own(acc) => columns.extend(acc.state(EmitTo::All)?),
            }
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        let rows = batch.num_rows();
        let mut start = rows;
        while start > 0 {
            let from = start.saturating_sub(self.batch_size);
            self.pending.push(batch.slice(from, start - from));
            start = from;
        }
        // What stays (the SYMBOL values' numbers) is counted, fitting or
        // not: the next batch's groups try the pool again.
        self.reservation.resize(self.table.size());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Float64Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema, TimeUnit};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use datafusion::execution::runtime_env::RuntimeEnvBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    use super::*;

    /// Two partitions of rows with SYMBOL, timestamp and integer keys
    /// (some NULL), each batch with its own dictionary.
    fn table() -> MemTable {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "host",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                true,
            ),
            Field::new(
                "ts",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("n", DataType::Int32, true),
            Field::new("x", DataType::Float64, true),
            Field::new("y", DataType::Float64, true),
        ]));
        let mut partitions = Vec::new();
        let mut seed = 7u64;
        let mut next = move || {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            seed >> 33
        };
        for _ in 0..2 {
            let mut batches = Vec::new();
            for b in 0..5 {
                let rows = 700;
                // A dictionary per batch, in another order each time, with
                // a value no row uses.
                let names: Vec<String> = (0..9).map(|i| format!("h{}", (i * 7 + b) % 9)).collect();
                let keys: Int32Array = (0..rows)
                    .map(|_| {
                        let k = next() % 10;
                        (k < 8).then_some(k as i32)
                    })
                    .collect();
                let host =
                    DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(names)))
                        .unwrap();
                let ts: TimestampMicrosecondArray = (0..rows)
                    .map(|_| {
                        let t = next() % 50;
                        (t != 0).then_some((t as i64 / 10) * 3_600_000_000)
                    })
                    .collect::<TimestampMicrosecondArray>()
                    .with_timezone("UTC");
                let n: Int32Array = (0..rows)
                    .map(|_| (next() % 4 != 0).then_some((next() % 3) as i32 - 1))
                    .collect();
                let x: Float64Array = (0..rows)
                    .map(|_| (next() % 6 != 0).then_some((next() % 1000) as f64 / 8.0))
                    .collect();
                // NULLs in one batch of five; values that round when added.
                let y: Float64Array = (0..rows)
                    .map(|_| (b != 2 || next() % 3 != 0).then_some((next() % 1000) as f64 * 0.1))
                    .collect();
                batches.push(
                    RecordBatch::try_new(
                        Arc::clone(&schema),
                        vec![
                            Arc::new(host),
                            Arc::new(ts),
                            Arc::new(n),
                            Arc::new(x),
                            Arc::new(y),
                        ],
                    )
                    .unwrap(),
                );
            }
            partitions.push(batches);
        }
        MemTable::try_new(schema, partitions).unwrap()
    }

    fn context(ours: bool, pool: Option<usize>, partitions: usize) -> SessionContext {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(bytes) = pool {
            runtime = runtime.with_memory_pool(Arc::new(GreedyMemoryPool::new(bytes)));
        }
        let mut state = SessionStateBuilder::new()
            .with_config(SessionConfig::new().with_target_partitions(partitions))
            .with_runtime_env(runtime.build_arc().unwrap())
            .with_default_features();
        if ours {
            state = state.with_physical_optimizer_rule(Arc::new(SymbolGroups));
        }
        let ctx = SessionContext::new_with_state(state.build());
        ctx.register_table("t", Arc::new(table())).unwrap();
        ctx
    }

    async fn run(ctx: &SessionContext, sql: &str) -> (String, String) {
        let df = ctx.sql(sql).await.unwrap();
        let plan = df.clone().create_physical_plan().await.unwrap();
        let shown = datafusion::physical_plan::displayable(plan.as_ref())
            .indent(true)
            .to_string();
        let rows = pretty_format_batches(&df.collect().await.unwrap())
            .unwrap()
            .to_string();
        (rows, shown)
    }

    const QUERIES: &[&str] = &[
        // No NULL key: the path that compares runs word by word.
        "SELECT ts, host, count(*), sum(x) FROM t WHERE ts IS NOT NULL AND host IS NOT NULL GROUP BY ts, host ORDER BY ts, host",
        "SELECT host, count(*), sum(x), avg(x), min(x), max(x), count(x) FROM t GROUP BY host ORDER BY host",
        "SELECT ts, host, avg(x), max(n) FROM t GROUP BY ts, host ORDER BY ts, host",
        "SELECT host, n, ts, count(*) FILTER (WHERE x > 60), sum(n) FROM t GROUP BY host, n, ts ORDER BY host, n, ts",
        "SELECT date_bin(INTERVAL '2 hours', ts) AS b, host, first_value(x ORDER BY x, n), last_value(n ORDER BY x, n) FROM t GROUP BY b, host ORDER BY b, host",
        // avg and sum of FLOAT64 kept together, among other aggregates.
        "SELECT ts, host, avg(y), max(x), sum(y), avg(x), sum(x) FILTER (WHERE n > 0), sum(x), count(y) FROM t GROUP BY ts, host ORDER BY ts, host",
        "SELECT host, avg(y), avg(y + 1) FROM t WHERE y IS NOT NULL GROUP BY host ORDER BY host",
    ];

    /// Every query answers as DataFusion's own operator does, on one
    /// partition and on two (partial and final steps), and uses ours.
    #[tokio::test]
    async fn answers_as_datafusion_does() {
        for partitions in [1, 2] {
            let theirs = context(false, None, partitions);
            let ours = context(true, None, partitions);
            for q in QUERIES {
                let (expected, _) = run(&theirs, q).await;
                let (got, plan) = run(&ours, q).await;
                assert_eq!(got, expected, "{q} on {partitions} partitions");
                assert!(plan.contains("SymbolGroupsExec"), "{plan}");
                assert!(expected.lines().count() > 10, "{expected}");
            }
        }
    }

    /// A dictionary much longer than its batch: only the values rows use
    /// get numbers, and the groups come out with their values.
    #[test]
    fn long_dictionaries() {
        let values: Vec<String> = (0..1000).map(|i| format!("v{i}")).collect();
        let keys = Int32Array::from(vec![Some(5), Some(999), Some(5), None]);
        let array: ArrayRef = Arc::new(
            DictionaryArray::<Int32Type>::try_new(keys, Arc::new(StringArray::from(values)))
                .unwrap(),
        );
        let mut table = KeyTable::new(&[KeyKind::Symbol]);
        let words = table.words(0, &array).unwrap();
        assert_eq!(table.symbols[0].values.len(), 2);
        let mut groups = Vec::new();
        table.groups(&[words], 4, &mut groups);
        assert_eq!(groups[0], groups[2]);
        assert_eq!(
            groups
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            3
        );
        let schema = Arc::new(Schema::new(vec![Field::new(
            "k",
            array.data_type().clone(),
            true,
        )]));
        let out = table.take(&schema).unwrap();
        let dict = out[0].as_dictionary::<Int32Type>();
        let text = |g: usize| {
            dict.is_valid(g).then(|| {
                dict.values()
                    .as_string::<i32>()
                    .value(dict.keys().value(g) as usize)
                    .to_string()
            })
        };
        assert_eq!(text(groups[0]).as_deref(), Some("v5"));
        assert_eq!(text(groups[1]).as_deref(), Some("v999"));
        assert_eq!(text(groups[3]), None);
    }

    /// Without a SYMBOL key DataFusion's operator stays.
    #[tokio::test]
    async fn other_keys_keep_datafusions_operator() {
        let (_, plan) = run(
            &context(true, None, 2),
            "SELECT n, count(*) FROM t GROUP BY n",
        )
        .await;
        assert!(!plan.contains("SymbolGroupsExec"), "{plan}");
    }

    /// A partial step short of memory hands on what it has and goes on
    /// (the final step merges the pieces); a final one fails with the
    /// pool's error.
    #[tokio::test]
    async fn memory_pressure() {
        let q = "SELECT host, n, ts, count(*) FROM t GROUP BY host, n, ts";
        let ctx = context(true, None, 2);
        let plan = ctx
            .sql(q)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut partial = None;
        plan.apply(|p| {
            if p.downcast_ref::<SymbolGroupsExec>().is_some() {
                partial = Some(Arc::clone(p));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let partial = partial.expect("a SymbolGroupsExec");
        let distinct: usize = run(
            &context(false, None, 2),
            &format!("SELECT count(*) FROM ({q})"),
        )
        .await
        .0
        .lines()
        .nth(3)
        .and_then(|l| l.trim_matches(|c: char| c == '|' || c == ' ').parse().ok())
        .unwrap();
        let small = context(true, Some(8 << 10), 2);
        let (mut rows, mut counted) = (0, 0);
        for part in 0..2 {
            let out = datafusion::physical_plan::common::collect(
                partial.execute(part, small.task_ctx()).unwrap(),
            )
            .await
            .unwrap();
            for b in out {
                rows += b.num_rows();
                let counts = b
                    .column(3)
                    .as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                counted += counts.values().iter().sum::<i64>();
            }
        }
        // Every input row counted once; groups handed on more than once.
        assert_eq!(counted, 7000);
        assert!(rows > distinct, "{rows} rows for {distinct} groups");
        let err = context(true, Some(4 << 10), 1)
            .sql(QUERIES[3])
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(err.to_string().contains("Resources exhausted"), "{err}");
    }
}
