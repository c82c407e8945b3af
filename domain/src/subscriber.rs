//! What rating needs to know about a subscriber.

use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::attrs::Attributes;
use crate::ids::SubscriberId;
use crate::money::Currency;

/// A subscriber as rating sees it: its products and bundles in priority order (the first whose
/// plan has a matching rule rates a record), its account currency and its attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriberProfile {
    /// Subscriber id.
    pub id: SubscriberId,
    /// Product or bundle ids, in priority order.
    pub products: Vec<SmolStr>,
    /// Account currency; plans in other currencies are skipped. `None`: the first plan.
    #[serde(default)]
    pub currency: Option<Currency>,
    /// Customer attributes for `customer.*` conditions (type, segment, location...).
    #[serde(default)]
    pub attributes: Attributes,
    /// Prepaid or postpaid (postpaid by default).
    #[serde(default)]
    pub mode: crate::ledger::Mode,
}
