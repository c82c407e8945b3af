//! Customer notifications written to the durable outbox (by dunning); delivery adapters send
//! them and mark them delivered.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

use crate::ids::{AccountId, CustomerId};

/// How a notification reaches the customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// Text message.
    Sms,
    /// E-mail.
    Email,
}

impl Channel {
    /// As text.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Sms => "sms",
            Channel::Email => "email",
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Id: the idempotency key of what wrote it (`dunning:<account>:<invoice>:<step>`).
    pub id: SmolStr,
    /// Account.
    pub account: AccountId,
    /// Customer.
    pub customer: CustomerId,
    /// Channel.
    pub channel: Channel,
    /// Address: phone number or e-mail (absent when the customer has none: delivery fails with a
    /// reason and the notification stays in the outbox).
    pub to: Option<String>,
    /// Rendered text.
    pub body: String,
    /// When written.
    pub created_at: Timestamp,
    /// When delivered.
    pub delivered_at: Option<Timestamp>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Last delivery failure.
    pub last_error: Option<String>,
}
