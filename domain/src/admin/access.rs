//! Permissions, roles, users and API tokens.
//!
//! A permission names one kind of operation (`catalogue.write`, `billing.run`); every API route
//! requires exactly one (or is public). Roles group permissions; users hold several roles.
//! Built-in roles are fixed in code; custom roles are stored.

use std::collections::BTreeSet;
use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use smol_str::SmolStr;

macro_rules! permissions {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// One kind of operation a route performs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Permission {
            $(#[doc = $doc] $variant,)*
        }

        impl Permission {
            /// Every permission, in a stable order.
            pub const ALL: &'static [Permission] = &[$(Permission::$variant,)*];

            /// The stable name, e.g. `catalogue.write`.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Permission::$variant => $name,)*
                }
            }

            /// What the permission allows.
            pub fn description(self) -> &'static str {
                match self {
                    $(Permission::$variant => $doc,)*
                }
            }

            /// Parses a stable name.
            pub fn parse(name: &str) -> Option<Permission> {
                match name {
                    $($name => Some(Permission::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

permissions! {
    OpsRead => "ops.read": "Read operational endpoints (metrics when they are not public).",
    UsageWrite => "usage.write": "Submit usage records (CDRs).",
    SessionsWrite => "sessions.write": "Reserve, update and terminate real-time sessions and charge events.",
    CustomerRead => "customer.read": "Read subscribers, customers, accounts, subscriptions, balances and usage.",
    CustomerWrite => "customer.write": "Create and change subscribers, customers, accounts and subscriptions.",
    BalanceAdjust => "balance.adjust": "Top up or adjust balances.",
    CatalogueRead => "catalogue.read": "Read catalogue drafts and versions.",
    CatalogueWrite => "catalogue.write": "Create and edit catalogue drafts.",
    CataloguePublish => "catalogue.publish": "Publish a catalogue draft as a new version.",
    AccessRead => "access.read": "Read users, roles and tokens (never secrets).",
    AccessWrite => "access.write": "Create and change users, roles and tokens.",
    AuditRead => "audit.read": "Read the audit trail.",
    MediationRead => "mediation.read": "Read suspense and mediation statistics.",
    MediationWrite => "mediation.write": "Recycle suspended records and start rerating.",
    BillingRead => "billing.read": "Read bill runs and invoices.",
    BillingRun => "billing.run": "Start bill runs.",
    BillingSetup => "billing.setup": "Change the billing setup: bill cycles, price list, discounts, taxes, invoice numbering.",
    PeriodClose => "period.close": "Close financial periods.",
    PeriodReopen => "period.reopen": "Reopen closed financial periods.",
    PaymentWrite => "payment.write": "Record payments and refunds.",
    CollectionRun => "collection.run": "Start collection (dunning) runs.",
    PartnerRead => "partner.read": "Read partners, agreements and settlements.",
    PartnerWrite => "partner.write": "Create and change partners and agreements; reconcile partner statements, open and comment disputes.",
    SettlementRun => "settlement.run": "Start settlement runs.",
    SettlementApprove => "settlement.approve": "Approve partner statements and release them for payment.",
    TestClock => "test.clock": "Set the node's clock (nodes with the test clock enabled only).",
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Permission {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Permission::parse(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown permission {name:?}")))
    }
}

/// A named set of permissions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Name (`admin`, `finance`, or a custom name).
    pub name: SmolStr,
    /// What the role is for.
    #[serde(default)]
    pub description: String,
    /// Permissions granted.
    pub permissions: BTreeSet<Permission>,
    /// Built-in roles are defined in code and cannot be changed.
    #[serde(default)]
    pub builtin: bool,
}

/// Built-in role names.
pub const BUILTIN_ROLE_NAMES: &[&str] = &[
    "admin",
    "finance",
    "care",
    "partner-manager",
    "product-manager",
    "network",
    "read-only",
];

/// The built-in roles.
pub fn builtin_roles() -> Vec<Role> {
    use Permission::*;
    let role = |name: &str, description: &str, permissions: &[Permission]| Role {
        name: name.into(),
        description: description.into(),
        permissions: permissions.iter().copied().collect(),
        builtin: true,
    };
    let reads: Vec<Permission> = Permission::ALL
        .iter()
        .copied()
        .filter(|p| p.as_str().ends_with(".read"))
        .collect();
    vec![
        role("admin", "Everything.", Permission::ALL),
        role(
            "finance",
            "Bill runs, billing setup, periods, payments, collections, settlements; reads the catalogue and the audit trail.",
            &[
                CustomerRead,
                BalanceAdjust,
                CatalogueRead,
                AuditRead,
                MediationRead,
                MediationWrite,
                BillingRead,
                BillingRun,
                BillingSetup,
                PeriodClose,
                PeriodReopen,
                PaymentWrite,
                CollectionRun,
                PartnerRead,
                SettlementRun,
                SettlementApprove,
            ],
        ),
        role(
            "care",
            "Customer care: looks up and changes subscribers, tops up balances.",
            &[
                CustomerRead,
                CustomerWrite,
                BalanceAdjust,
                CatalogueRead,
                BillingRead,
            ],
        ),
        role(
            "partner-manager",
            "Partners, agreements and settlements.",
            &[PartnerRead, PartnerWrite, SettlementRun, CatalogueRead],
        ),
        role(
            "product-manager",
            "Prices: edits and publishes the catalogue.",
            &[CatalogueRead, CatalogueWrite, CataloguePublish],
        ),
        role(
            "network",
            "Network elements and mediation systems: submit usage and sessions.",
            &[UsageWrite, SessionsWrite],
        ),
        role(
            "read-only",
            "Reads everything a permission covers, changes nothing.",
            &reads,
        ),
    ]
}

/// A person or a system that calls the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Unique name (login).
    pub name: SmolStr,
    /// Roles held.
    pub roles: BTreeSet<SmolStr>,
    /// A disabled user's tokens stop working.
    #[serde(default)]
    pub disabled: bool,
    /// When the user was created.
    pub created_at: Timestamp,
    /// Who created the user.
    pub created_by: SmolStr,
}

/// An API token (`tg_<id>.<secret>`). The token is never stored: only the SHA-256 of its whole
/// text, in hex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiToken {
    /// Public id (the part of the token before the secret).
    pub id: SmolStr,
    /// Owner.
    pub user: SmolStr,
    /// What the token is for.
    #[serde(default)]
    pub label: String,
    /// SHA-256 of the whole token text, lower-case hex.
    pub secret_sha256: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it stops working by itself.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// When it was revoked.
    #[serde(default)]
    pub revoked_at: Option<Timestamp>,
}

impl ApiToken {
    /// Whether the token may be used at `now`.
    pub fn usable_at(&self, now: Timestamp) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| now < e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_names_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for p in Permission::ALL {
            assert!(seen.insert(p.as_str()), "{p} twice");
            assert_eq!(Permission::parse(p.as_str()), Some(*p));
            let json = serde_json::to_string(p).unwrap();
            assert_eq!(serde_json::from_str::<Permission>(&json).unwrap(), *p);
        }
        assert!(serde_json::from_str::<Permission>("\"nope.read\"").is_err());
    }

    #[test]
    fn builtin_roles_match_their_names() {
        let roles = builtin_roles();
        let names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, BUILTIN_ROLE_NAMES);
        let admin = &roles[0];
        assert_eq!(admin.permissions.len(), Permission::ALL.len());
        let read_only = roles.iter().find(|r| r.name == "read-only").unwrap();
        assert!(
            read_only
                .permissions
                .iter()
                .all(|p| p.as_str().ends_with(".read"))
        );
        assert!(read_only.permissions.contains(&Permission::AuditRead));
    }
}
