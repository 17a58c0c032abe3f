//! The integration tests: one crate, one module per feature.

mod harness;
