//! Who is calling and what they may do: API tokens (stored only as SHA-256), optional JWTs from
//! an identity provider, users, built-in and custom roles.
//!
//! The node keeps users, tokens and roles in memory (a few thousand at most) and changes them
//! write-through: a change is durable in the admin store, with its audit record, before the
//! in-memory view changes and before the caller gets an answer. So a revoked token stops working
//! with the very next request.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use jiff::Timestamp;
use sha2::{Digest, Sha256};
use smol_str::SmolStr;
use tollgate_config::AuthConfig;
use tollgate_domain::admin::access::builtin_roles;
use tollgate_domain::admin::{
    AdminChange, AdminStore, AdminWrite, ApiToken, AuditRecord, Permission, Role, User,
};
use tollgate_domain::ledger::StoreError;

/// Prefix of every token Tollgate issues: `tg_<id>.<secret>`.
pub const TOKEN_PREFIX: &str = "tg_";

/// The authenticated caller of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User name (for a JWT: its subject).
    pub user: SmolStr,
    /// The credential used: a token id, or `jwt`.
    pub credential: SmolStr,
    /// Everything the caller's roles grant.
    pub permissions: BTreeSet<Permission>,
}

impl Principal {
    /// The node itself, with every permission (tests and tools).
    #[cfg(test)]
    pub fn system() -> Principal {
        Principal {
            user: "system".into(),
            credential: "node".into(),
            permissions: Permission::ALL.iter().copied().collect(),
        }
    }

    /// A caller of a public route.
    pub fn anonymous() -> Principal {
        Principal {
            user: "anonymous".into(),
            credential: "none".into(),
            permissions: BTreeSet::new(),
        }
    }

    /// Whether the caller holds `permission`.
    pub fn may(&self, permission: Permission) -> bool {
        self.permissions.contains(&permission)
    }
}

/// Why a request is not authenticated. Codes are stable; messages never echo the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No `Authorization: Bearer` header.
    #[error("this route needs a bearer token (Authorization: Bearer <token>)")]
    Missing,
    /// Not a token this node issued or accepts.
    #[error("the bearer token is not valid")]
    Invalid,
    /// Past its expiry.
    #[error("the bearer token has expired")]
    Expired,
    /// Revoked.
    #[error("the bearer token has been revoked")]
    Revoked,
    /// The user is disabled.
    #[error("the user of this token is disabled")]
    UserDisabled,
}

impl AuthError {
    /// Stable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing => "auth.missing_token",
            AuthError::Invalid => "auth.invalid_token",
            AuthError::Expired => "auth.expired_token",
            AuthError::Revoked => "auth.revoked_token",
            AuthError::UserDisabled => "auth.user_disabled",
        }
    }
}

/// Why an access change was refused.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Storage failed; nothing changed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request conflicts with what exists.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// Something named does not exist.
    #[error("{message}")]
    NotFound {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
    /// The request is invalid.
    #[error("{message}")]
    Invalid {
        /// Stable code.
        code: &'static str,
        /// Message.
        message: String,
    },
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Compares two strings in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// A fresh random token for `id`: `tg_<id>.<64 hex digits>`.
pub fn new_token(id: &str) -> Result<String, AccessError> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret).map_err(|e| StoreError::Io(format!("no randomness: {e}")))?;
    let mut text = format!("{TOKEN_PREFIX}{id}.");
    for b in secret {
        text.push_str(&format!("{b:02x}"));
    }
    Ok(text)
}

/// A fresh random id of `len` hex digits.
pub fn random_hex(len: usize) -> Result<String, AccessError> {
    let mut bytes = vec![0u8; len.div_ceil(2)];
    getrandom::fill(&mut bytes).map_err(|e| StoreError::Io(format!("no randomness: {e}")))?;
    let mut text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    text.truncate(len);
    Ok(text)
}

/// Whether `name` is a valid user, role or token id: 1-64 of `a-z A-Z 0-9 . _ -`, not starting
/// with `.`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

#[derive(Default)]
struct Cache {
    users: HashMap<SmolStr, User>,
    tokens: HashMap<SmolStr, ApiToken>,
    roles: HashMap<SmolStr, Role>,
}

impl Cache {
    fn permissions(&self, roles: &BTreeSet<SmolStr>) -> BTreeSet<Permission> {
        roles
            .iter()
            .filter_map(|r| self.roles.get(r))
            .flat_map(|r| r.permissions.iter().copied())
            .collect()
    }
}

/// Users, tokens and roles: authentication, and their changes (each audited).
pub struct AccessControl {
    store: Arc<dyn AdminStore>,
    cache: RwLock<Cache>,
    jwt: Option<crate::jwt::JwtVerifier>,
    writes: Mutex<()>,
}

impl AccessControl {
    /// Loads users, tokens and custom roles from `store`; registers the configured bootstrap
    /// token if it is not there yet.
    pub fn open(store: Arc<dyn AdminStore>, config: &AuthConfig) -> Result<AccessControl, String> {
        let jwt = match &config.jwt {
            Some(j) => Some(crate::jwt::JwtVerifier::new(j)?),
            None => None,
        };
        let access = AccessControl {
            store,
            cache: RwLock::new(Cache::default()),
            jwt,
            writes: Mutex::new(()),
        };
        access
            .reload()
            .map_err(|e| format!("loading users and tokens: {e}"))?;
        if let Some(hash) = &config.bootstrap_token_sha256 {
            access
                .bootstrap(&config.bootstrap_token_id, hash)
                .map_err(|e| format!("registering the bootstrap token: {e}"))?;
        }
        Ok(access)
    }

    /// Uses `jwt` to verify JWT bearers (tests; the node reads it from the configuration).
    #[cfg(test)]
    pub fn set_jwt(&mut self, jwt: crate::jwt::JwtVerifier) {
        self.jwt = Some(jwt);
    }

    /// The store behind it.
    pub fn store(&self) -> &Arc<dyn AdminStore> {
        &self.store
    }

    fn reload(&self) -> Result<(), StoreError> {
        let mut cache = Cache::default();
        for role in builtin_roles() {
            cache.roles.insert(role.name.clone(), role);
        }
        for role in self.store.roles()? {
            cache.roles.insert(role.name.clone(), role);
        }
        for user in self.store.users()? {
            cache.users.insert(user.name.clone(), user);
        }
        for token in self.store.tokens()? {
            cache.tokens.insert(token.id.clone(), token);
        }
        *self.write_cache() = cache;
        Ok(())
    }

    fn read_cache(&self) -> std::sync::RwLockReadGuard<'_, Cache> {
        self.cache.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_cache(&self) -> std::sync::RwLockWriteGuard<'_, Cache> {
        self.cache.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Serializes read-modify-write changes of access data.
    fn lock(&self) -> MutexGuard<'_, ()> {
        self.writes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn bootstrap(&self, token_id: &str, hash: &str) -> Result<(), AccessError> {
        let _guard = self.lock();
        if self.read_cache().tokens.contains_key(token_id) {
            return Ok(());
        }
        let now = Timestamp::now();
        let mut write = AdminWrite::default();
        let user_name: SmolStr = "bootstrap".into();
        if !self.read_cache().users.contains_key(&user_name) {
            let user = User {
                name: user_name.clone(),
                roles: BTreeSet::from([SmolStr::new("admin")]),
                disabled: false,
                created_at: now,
                created_by: "system".into(),
            };
            write.audit.push(AuditRecord::new(
                now,
                "system",
                "user.create",
                format!("user/{}", user.name),
                "startup",
                None,
                serde_json::to_value(&user).ok(),
            ));
            write.changes.push(AdminChange::PutUser(user));
        }
        let token = ApiToken {
            id: token_id.into(),
            user: user_name,
            label: "bootstrap token from the configuration".into(),
            secret_sha256: hash.to_ascii_lowercase(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        };
        write.audit.push(AuditRecord::new(
            now,
            "system",
            "token.create",
            format!("token/{}", token.id),
            "startup",
            None,
            serde_json::to_value(&token).ok(),
        ));
        write.changes.push(AdminChange::PutToken(token));
        self.apply(write)
    }

    /// Commits `write` and applies its changes to the in-memory view.
    fn apply(&self, write: AdminWrite) -> Result<(), AccessError> {
        let changes = write.changes.clone();
        self.store.commit(write)?;
        let mut cache = self.write_cache();
        for change in changes {
            match change {
                AdminChange::PutUser(u) => {
                    cache.users.insert(u.name.clone(), u);
                }
                AdminChange::PutToken(t) => {
                    cache.tokens.insert(t.id.clone(), t);
                }
                AdminChange::PutRole(r) => {
                    cache.roles.insert(r.name.clone(), r);
                }
                AdminChange::DeleteRole(name) => {
                    cache.roles.remove(&name);
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Checks a bearer credential at `now`.
    pub fn authenticate(&self, bearer: &str, now: Timestamp) -> Result<Principal, AuthError> {
        if let Some(rest) = bearer.strip_prefix(TOKEN_PREFIX) {
            let (id, _) = rest.split_once('.').ok_or(AuthError::Invalid)?;
            let cache = self.read_cache();
            let token = cache.tokens.get(id).ok_or(AuthError::Invalid)?;
            if !same(&sha256_hex(bearer.as_bytes()), &token.secret_sha256) {
                return Err(AuthError::Invalid);
            }
            if token.revoked_at.is_some() {
                return Err(AuthError::Revoked);
            }
            if !token.usable_at(now) {
                return Err(AuthError::Expired);
            }
            let user = cache.users.get(&token.user).ok_or(AuthError::Invalid)?;
            if user.disabled {
                return Err(AuthError::UserDisabled);
            }
            return Ok(Principal {
                user: user.name.clone(),
                credential: token.id.clone(),
                permissions: cache.permissions(&user.roles),
            });
        }
        let Some(jwt) = &self.jwt else {
            return Err(AuthError::Invalid);
        };
        let claims = jwt.verify(bearer)?;
        let cache = self.read_cache();
        if cache
            .users
            .get(claims.subject.as_str())
            .is_some_and(|u| u.disabled)
        {
            return Err(AuthError::UserDisabled);
        }
        Ok(Principal {
            user: claims.subject,
            credential: "jwt".into(),
            permissions: cache.permissions(&claims.roles),
        })
    }

    /// Every user, by name.
    pub fn users(&self) -> Vec<User> {
        let mut users: Vec<User> = self.read_cache().users.values().cloned().collect();
        users.sort_by(|a, b| a.name.cmp(&b.name));
        users
    }

    /// One user.
    pub fn user(&self, name: &str) -> Option<User> {
        self.read_cache().users.get(name).cloned()
    }

    /// Every role (built-in and custom), by name.
    pub fn roles(&self) -> Vec<Role> {
        let mut roles: Vec<Role> = self.read_cache().roles.values().cloned().collect();
        roles.sort_by(|a, b| a.name.cmp(&b.name));
        roles
    }

    /// Every token of `user` (or of everyone), by id. Secrets are never held.
    pub fn tokens(&self, user: Option<&str>) -> Vec<ApiToken> {
        let mut tokens: Vec<ApiToken> = self
            .read_cache()
            .tokens
            .values()
            .filter(|t| user.is_none_or(|u| t.user == u))
            .cloned()
            .collect();
        tokens.sort_by(|a, b| a.id.cmp(&b.id));
        tokens
    }

    fn check_roles(&self, roles: &BTreeSet<SmolStr>) -> Result<(), AccessError> {
        let cache = self.read_cache();
        if let Some(unknown) = roles.iter().find(|r| !cache.roles.contains_key(*r)) {
            return Err(AccessError::Invalid {
                code: "access.unknown_role",
                message: format!("unknown role {unknown:?}"),
            });
        }
        Ok(())
    }

    /// Creates a user.
    pub fn create_user(
        &self,
        by: &Attribution<'_>,
        name: &str,
        roles: BTreeSet<SmolStr>,
    ) -> Result<User, AccessError> {
        if !valid_name(name) {
            return Err(AccessError::Invalid {
                code: "access.invalid_name",
                message: "a user name is 1-64 of a-z A-Z 0-9 . _ - (not starting with .)".into(),
            });
        }
        let _guard = self.lock();
        if self.read_cache().users.contains_key(name) {
            return Err(AccessError::Conflict {
                code: "access.user_exists",
                message: format!("user {name:?} exists"),
            });
        }
        self.check_roles(&roles)?;
        let user = User {
            name: name.into(),
            roles,
            disabled: false,
            created_at: by.at,
            created_by: by.principal.user.clone(),
        };
        let write = AdminWrite {
            audit: vec![by.record(
                "user.create",
                format!("user/{name}"),
                None,
                serde_json::to_value(&user).ok(),
            )],
            changes: vec![AdminChange::PutUser(user.clone())],
        };
        self.apply(write)?;
        Ok(user)
    }

    /// Changes a user's roles and/or disabled flag.
    pub fn update_user(
        &self,
        by: &Attribution<'_>,
        name: &str,
        roles: Option<BTreeSet<SmolStr>>,
        disabled: Option<bool>,
    ) -> Result<User, AccessError> {
        let _guard = self.lock();
        let before = self.user(name).ok_or_else(|| AccessError::NotFound {
            code: "access.unknown_user",
            message: format!("no user {name:?}"),
        })?;
        let mut after = before.clone();
        if let Some(roles) = roles {
            self.check_roles(&roles)?;
            after.roles = roles;
        }
        if let Some(disabled) = disabled {
            after.disabled = disabled;
        }
        let is_admin = |u: &User| !u.disabled && u.roles.contains("admin");
        if is_admin(&before) && !is_admin(&after) {
            let others = self
                .read_cache()
                .users
                .values()
                .filter(|u| u.name != before.name && is_admin(u))
                .count();
            if others == 0 {
                return Err(AccessError::Conflict {
                    code: "access.last_admin",
                    message: format!(
                        "{name:?} is the last enabled admin; give another user the admin role first"
                    ),
                });
            }
        }
        let write = AdminWrite {
            audit: vec![by.record(
                "user.update",
                format!("user/{name}"),
                serde_json::to_value(&before).ok(),
                serde_json::to_value(&after).ok(),
            )],
            changes: vec![AdminChange::PutUser(after.clone())],
        };
        self.apply(write)?;
        Ok(after)
    }

    /// Issues a token for `user`; returns the record and the token text (shown once).
    pub fn create_token(
        &self,
        by: &Attribution<'_>,
        user: &str,
        label: &str,
        expires_at: Option<Timestamp>,
    ) -> Result<(ApiToken, String), AccessError> {
        let _guard = self.lock();
        if self.user(user).is_none() {
            return Err(AccessError::NotFound {
                code: "access.unknown_user",
                message: format!("no user {user:?}"),
            });
        }
        if expires_at.is_some_and(|e| e <= by.at) {
            return Err(AccessError::Invalid {
                code: "access.expiry_in_past",
                message: "expires_at must be in the future".into(),
            });
        }
        let id = random_hex(16)?;
        let text = new_token(&id)?;
        let token = ApiToken {
            id: id.into(),
            user: user.into(),
            label: label.to_string(),
            secret_sha256: sha256_hex(text.as_bytes()),
            created_at: by.at,
            expires_at,
            revoked_at: None,
        };
        let write = AdminWrite {
            audit: vec![by.record(
                "token.create",
                format!("token/{}", token.id),
                None,
                serde_json::to_value(&token).ok(),
            )],
            changes: vec![AdminChange::PutToken(token.clone())],
        };
        self.apply(write)?;
        Ok((token, text))
    }

    /// Revokes a token; it stops working with the next request.
    pub fn revoke_token(&self, by: &Attribution<'_>, id: &str) -> Result<ApiToken, AccessError> {
        let _guard = self.lock();
        let before =
            self.read_cache()
                .tokens
                .get(id)
                .cloned()
                .ok_or_else(|| AccessError::NotFound {
                    code: "access.unknown_token",
                    message: format!("no token {id:?}"),
                })?;
        if before.revoked_at.is_some() {
            return Ok(before);
        }
        let mut after = before.clone();
        after.revoked_at = Some(by.at);
        let write = AdminWrite {
            audit: vec![by.record(
                "token.revoke",
                format!("token/{id}"),
                serde_json::to_value(&before).ok(),
                serde_json::to_value(&after).ok(),
            )],
            changes: vec![AdminChange::PutToken(after.clone())],
        };
        self.apply(write)?;
        Ok(after)
    }

    /// Creates or replaces a custom role.
    pub fn put_role(
        &self,
        by: &Attribution<'_>,
        name: &str,
        description: String,
        permissions: BTreeSet<Permission>,
    ) -> Result<(Role, bool), AccessError> {
        if !valid_name(name) {
            return Err(AccessError::Invalid {
                code: "access.invalid_name",
                message: "a role name is 1-64 of a-z A-Z 0-9 . _ - (not starting with .)".into(),
            });
        }
        let _guard = self.lock();
        let before = self.read_cache().roles.get(name).cloned();
        if before.as_ref().is_some_and(|r| r.builtin) {
            return Err(AccessError::Conflict {
                code: "access.builtin_role",
                message: format!("{name:?} is a built-in role and cannot be changed"),
            });
        }
        let role = Role {
            name: name.into(),
            description,
            permissions,
            builtin: false,
        };
        let created = before.is_none();
        let write = AdminWrite {
            audit: vec![by.record(
                if created {
                    "role.create"
                } else {
                    "role.update"
                },
                format!("role/{name}"),
                before.and_then(|b| serde_json::to_value(b).ok()),
                serde_json::to_value(&role).ok(),
            )],
            changes: vec![AdminChange::PutRole(role.clone())],
        };
        self.apply(write)?;
        Ok((role, created))
    }

    /// Deletes a custom role that no user holds.
    pub fn delete_role(&self, by: &Attribution<'_>, name: &str) -> Result<(), AccessError> {
        let _guard = self.lock();
        let before =
            self.read_cache()
                .roles
                .get(name)
                .cloned()
                .ok_or_else(|| AccessError::NotFound {
                    code: "access.unknown_role",
                    message: format!("no role {name:?}"),
                })?;
        if before.builtin {
            return Err(AccessError::Conflict {
                code: "access.builtin_role",
                message: format!("{name:?} is a built-in role and cannot be deleted"),
            });
        }
        if let Some(holder) = self
            .read_cache()
            .users
            .values()
            .find(|u| u.roles.contains(name))
        {
            return Err(AccessError::Conflict {
                code: "access.role_in_use",
                message: format!("user {:?} holds role {name:?}", holder.name),
            });
        }
        let write = AdminWrite {
            audit: vec![by.record(
                "role.delete",
                format!("role/{name}"),
                serde_json::to_value(&before).ok(),
                None,
            )],
            changes: vec![AdminChange::DeleteRole(name.into())],
        };
        self.apply(write)
    }
}

/// Who makes a change, when, and through which request: turned into audit records.
pub struct Attribution<'a> {
    /// The caller.
    pub principal: &'a Principal,
    /// The request id.
    pub request_id: &'a str,
    /// When.
    pub at: Timestamp,
}

impl Attribution<'_> {
    /// An audit record of `operation` on `target`.
    pub fn record(
        &self,
        operation: &str,
        target: String,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> AuditRecord {
        let mut record = AuditRecord::new(
            self.at,
            &self.principal.user,
            operation,
            target,
            self.request_id,
            before,
            after,
        );
        record.credential = Some(self.principal.credential.clone());
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tollgate_domain::admin::MemoryAdminStore;

    fn config(hash: Option<String>) -> AuthConfig {
        AuthConfig {
            bootstrap_token_sha256: hash,
            ..tollgate_config::NodeConfig::default().auth
        }
    }

    #[test]
    fn bootstrap_token_authenticates_as_admin_and_is_audited_once() {
        let token = "tg_bootstrap.s3cret";
        let store: Arc<dyn AdminStore> = Arc::new(MemoryAdminStore::new());
        let access =
            AccessControl::open(store.clone(), &config(Some(sha256_hex(token.as_bytes()))))
                .unwrap();
        let p = access.authenticate(token, Timestamp::now()).unwrap();
        assert_eq!(p.user, "bootstrap");
        assert!(p.may(Permission::CataloguePublish));
        assert_eq!(
            access.authenticate("tg_bootstrap.wrong", Timestamp::now()),
            Err(AuthError::Invalid)
        );
        // Reopening does not register it twice.
        let again = AccessControl::open(store.clone(), &config(Some(sha256_hex(token.as_bytes()))))
            .unwrap();
        assert!(again.authenticate(token, Timestamp::now()).is_ok());
        let records = store.audit(&Default::default(), None, 100).unwrap();
        assert_eq!(records.len(), 2, "user.create + token.create");
        assert!(records.iter().all(|r| r.principal == "system"));
        let text = serde_json::to_string(&records).unwrap();
        assert!(
            !text.contains(&sha256_hex(token.as_bytes())),
            "hash leaked: {text}"
        );
    }

    #[test]
    fn tokens_expire_revoke_and_follow_roles() {
        let store: Arc<dyn AdminStore> = Arc::new(MemoryAdminStore::new());
        let access = AccessControl::open(store.clone(), &config(None)).unwrap();
        let admin = Principal::system();
        let by = Attribution {
            principal: &admin,
            request_id: "r1",
            at: Timestamp::now(),
        };
        access
            .create_user(&by, "carol", BTreeSet::from([SmolStr::new("care")]))
            .unwrap();
        let (record, text) = access.create_token(&by, "carol", "desk", None).unwrap();
        let p = access.authenticate(&text, Timestamp::now()).unwrap();
        assert!(p.may(Permission::CustomerRead));
        assert!(!p.may(Permission::CataloguePublish));
        access.revoke_token(&by, &record.id).unwrap();
        assert_eq!(
            access.authenticate(&text, Timestamp::now()),
            Err(AuthError::Revoked)
        );
        let soon = Timestamp::now() + jiff::SignedDuration::from_secs(60);
        let (_, short) = access
            .create_token(&by, "carol", "short", Some(soon))
            .unwrap();
        assert!(access.authenticate(&short, Timestamp::now()).is_ok());
        let later = soon + jiff::SignedDuration::from_secs(1);
        assert_eq!(access.authenticate(&short, later), Err(AuthError::Expired));
        access.update_user(&by, "carol", None, Some(true)).unwrap();
        assert_eq!(
            access.authenticate(&short, Timestamp::now()),
            Err(AuthError::UserDisabled)
        );
        assert_eq!(
            access.authenticate("garbage", Timestamp::now()),
            Err(AuthError::Invalid)
        );
    }

    #[test]
    fn a_jwt_maps_to_its_roles_and_a_disabled_local_user_stays_out() {
        let store: Arc<dyn AdminStore> = Arc::new(MemoryAdminStore::new());
        let mut access = AccessControl::open(store, &config(None)).unwrap();
        let jwt_config = tollgate_config::NodeConfig::from_toml_str(
            "[auth.jwt]\nalgorithm = \"HS256\"\nsecret_env = \"TOLLGATE_JWT_SECRET\"\n",
            &|_: &str| None,
        )
        .unwrap()
        .auth
        .jwt
        .unwrap();
        let secret = b"0123456789abcdef0123456789abcdef-test";
        access.set_jwt(crate::jwt::JwtVerifier::with_secret(&jwt_config, Some(secret)).unwrap());
        let exp = Timestamp::now().as_second() + 60;
        let token = jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &serde_json::json!({ "sub": "erin", "roles": ["product-manager", "no-such-role"], "exp": exp }),
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        let p = access.authenticate(&token, Timestamp::now()).unwrap();
        assert_eq!((p.user.as_str(), p.credential.as_str()), ("erin", "jwt"));
        assert!(p.may(Permission::CataloguePublish));
        assert!(
            !p.may(Permission::AccessWrite),
            "unknown roles grant nothing"
        );
        let admin = Principal::system();
        let by = Attribution {
            principal: &admin,
            request_id: "r1",
            at: Timestamp::now(),
        };
        access.create_user(&by, "erin", BTreeSet::new()).unwrap();
        access.update_user(&by, "erin", None, Some(true)).unwrap();
        assert_eq!(
            access.authenticate(&token, Timestamp::now()),
            Err(AuthError::UserDisabled)
        );
    }

    #[test]
    fn the_last_admin_cannot_be_demoted_or_disabled() {
        let store: Arc<dyn AdminStore> = Arc::new(MemoryAdminStore::new());
        let access = AccessControl::open(store, &config(None)).unwrap();
        let admin = Principal::system();
        let by = Attribution {
            principal: &admin,
            request_id: "r1",
            at: Timestamp::now(),
        };
        let admins = BTreeSet::from([SmolStr::new("admin")]);
        access.create_user(&by, "root", admins.clone()).unwrap();
        assert!(matches!(
            access.update_user(&by, "root", Some(BTreeSet::new()), None),
            Err(AccessError::Conflict {
                code: "access.last_admin",
                ..
            })
        ));
        assert!(matches!(
            access.update_user(&by, "root", None, Some(true)),
            Err(AccessError::Conflict {
                code: "access.last_admin",
                ..
            })
        ));
        access.create_user(&by, "root2", admins).unwrap();
        access.update_user(&by, "root", None, Some(true)).unwrap();
    }

    #[test]
    fn custom_roles_cannot_shadow_builtins_or_vanish_while_held() {
        let store: Arc<dyn AdminStore> = Arc::new(MemoryAdminStore::new());
        let access = AccessControl::open(store, &config(None)).unwrap();
        let admin = Principal::system();
        let by = Attribution {
            principal: &admin,
            request_id: "r1",
            at: Timestamp::now(),
        };
        assert!(matches!(
            access.put_role(&by, "admin", String::new(), BTreeSet::new()),
            Err(AccessError::Conflict { .. })
        ));
        access
            .put_role(
                &by,
                "auditor",
                "reads the trail".into(),
                BTreeSet::from([Permission::AuditRead]),
            )
            .unwrap();
        access
            .create_user(&by, "ann", BTreeSet::from([SmolStr::new("auditor")]))
            .unwrap();
        assert!(matches!(
            access.delete_role(&by, "auditor"),
            Err(AccessError::Conflict { .. })
        ));
        assert!(matches!(
            access.create_user(&by, "bob", BTreeSet::from([SmolStr::new("nope")])),
            Err(AccessError::Invalid { .. })
        ));
    }
}
