//! Invoice balances, payment validation and allocation, refunds and reversals.
