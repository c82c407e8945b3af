//! [`super::FinanceStore`] in memory.
