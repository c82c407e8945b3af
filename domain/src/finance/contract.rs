//! The contract every [`super::FinanceStore`] must keep.
