//! End-to-end tests live in `tests/`; they drive the `tollgate` binary and real services.
