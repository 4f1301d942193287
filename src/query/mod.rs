//! The query side between the parsed statement and DataFusion: passes over
//! the AST and the logical plan that give QuestDB's behaviour (result
//! column names, designated-timestamp order of scans) and QuestDB's
//! functions. Everything here builds DataFusion plans and expressions or
//! edits the typed AST; nothing prints SQL to parse it again.

pub mod date_functions;
pub mod names;
pub mod sample_by;
pub mod scan_order;
pub mod time_functions;
