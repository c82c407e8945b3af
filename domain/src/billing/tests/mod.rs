//! Billing tests.
