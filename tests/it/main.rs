//! The integration tests: one crate, one module per feature.

mod check;
mod cli;
mod docs;
mod flipper_oracle;
mod flipper_sql;
mod harness;
mod history;
mod import;
mod postgres;
mod report;
mod site;
mod sync;
