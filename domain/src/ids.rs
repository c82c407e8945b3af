//! Identity newtypes. Cheap to clone: short ids are stored inline, long ones shared.

use std::fmt;

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub SmolStr);

        impl $name {
            /// Builds the id from text.
            pub fn new(id: impl AsRef<str>) -> Self {
                $name(SmolStr::new(id.as_ref()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                self.0.as_str()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), self.0.as_str())
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(SmolStr::new(s))
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                self.0.as_str()
            }
        }
    };
}

string_id!(
    /// A subscriber (the party whose balance a CDR or session charges).
    SubscriberId
);
string_id!(
    /// A usage record's idempotency key.
    CdrId
);
string_id!(
    /// A partner that takes a revenue share.
    PartnerId
);
string_id!(
    /// A customer (the physical or juridical person accounts belong to).
    CustomerId
);
string_id!(
    /// A billing account (a node of a customer's account hierarchy).
    AccountId
);
string_id!(
    /// A subscription of an account to a product.
    SubscriptionId
);
string_id!(
    /// A bill cycle (weekly, monthly, quarterly or annual, with its bill day).
    BillCycleId
);
string_id!(
    /// The code of a price list item (a recurring fee, one-off fee or rental).
    ItemCode
);
string_id!(
    /// A discount definition.
    DiscountId
);
