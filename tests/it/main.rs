//! The integration tests: one crate, one module per feature.

mod adopt;
mod check;
mod cli;
mod deps;
mod docs;
mod emergency;
mod eval;
mod fake_gitlab;
mod flipper_oracle;
mod flipper_sql;
mod gitlab;
mod hardening_paths;
mod hardening_state;
mod hardening_text;
mod harness;
mod history;
mod hostile;
mod import;
mod main_job;
mod merge_request;
mod pipeline;
mod policy;
mod postgres;
mod report;
mod set;
mod show;
mod site;
mod site_browser;
mod sync;
#[path = "../../benches/synthetic.rs"]
mod synthetic;
