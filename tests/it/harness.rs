//! Test harness: temporary registries on disk and runs of the `flagops` binary.
