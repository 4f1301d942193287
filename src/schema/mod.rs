//! Column types, names and value rules, below every other module: the
//! QuestDB column types and their Arrow form ([`types`]), the one rule for
//! schema and table names ([`name`]), and how text becomes a value of a
//! column ([`values`]).

pub mod name;
pub mod types;
pub mod values;

pub use name::NameKind;
pub use types::ColumnType;
