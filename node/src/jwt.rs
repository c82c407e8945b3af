//! Optional JWT bearer tokens from an operator's identity provider: signature, expiry, issuer
//! and audience are checked; the subject names the user and a claim lists the roles.

use std::collections::BTreeSet;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, errors::ErrorKind};
use smol_str::SmolStr;
use tollgate_config::{JwtAlgorithm, JwtConfig};

use crate::access::AuthError;

/// What a verified JWT says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtClaims {
    /// The user (subject claim).
    pub subject: SmolStr,
    /// Roles named by the roles claim.
    pub roles: BTreeSet<SmolStr>,
}

/// Checks JWTs against the configured key.
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
    roles_claim: String,
    subject_claim: String,
}

fn algorithm(a: JwtAlgorithm) -> Algorithm {
    match a {
        JwtAlgorithm::Hs256 => Algorithm::HS256,
        JwtAlgorithm::Hs384 => Algorithm::HS384,
        JwtAlgorithm::Hs512 => Algorithm::HS512,
        JwtAlgorithm::Rs256 => Algorithm::RS256,
        JwtAlgorithm::Rs384 => Algorithm::RS384,
        JwtAlgorithm::Rs512 => Algorithm::RS512,
        JwtAlgorithm::Es256 => Algorithm::ES256,
        JwtAlgorithm::Es384 => Algorithm::ES384,
    }
}

impl JwtVerifier {
    /// Reads the key (an environment variable for HMAC, a PEM file otherwise).
    pub fn new(config: &JwtConfig) -> Result<JwtVerifier, String> {
        let secret = match (&config.secret_env, config.algorithm.is_hmac()) {
            (Some(name), true) => Some(
                std::env::var(name)
                    .map_err(|_| format!("auth.jwt.secret_env: ${name} is not set"))?,
            ),
            (None, true) => {
                return Err("auth.jwt.secret_env is required for HMAC algorithms".into());
            }
            _ => None,
        };
        JwtVerifier::with_secret(config, secret.as_deref().map(str::as_bytes))
    }

    /// Builds the verifier with the HMAC secret given (for HS*), or the configured PEM file.
    pub fn with_secret(config: &JwtConfig, secret: Option<&[u8]>) -> Result<JwtVerifier, String> {
        let alg = algorithm(config.algorithm);
        let key = match alg {
            Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => {
                let secret = secret.ok_or("an HMAC algorithm needs a secret")?;
                if secret.len() < 32 {
                    return Err(
                        "auth.jwt.secret_env: the secret holds fewer than 32 bytes; use a longer one"
                            .into(),
                    );
                }
                DecodingKey::from_secret(secret)
            }
            _ => {
                let path = config
                    .public_key_path
                    .as_ref()
                    .ok_or("auth.jwt.public_key_path is required for RSA/EC algorithms")?;
                let pem = std::fs::read(path)
                    .map_err(|e| format!("auth.jwt.public_key_path {}: {e}", path.display()))?;
                let key = match alg {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(&pem),
                    _ => DecodingKey::from_rsa_pem(&pem),
                };
                key.map_err(|e| format!("auth.jwt.public_key_path {}: {e}", path.display()))?
            }
        };
        let mut validation = Validation::new(alg);
        validation.leeway = config.leeway_s;
        if let Some(issuer) = &config.issuer {
            validation.set_issuer(&[issuer]);
        }
        match &config.audience {
            Some(audience) => validation.set_audience(&[audience]),
            None => validation.validate_aud = false,
        }
        Ok(JwtVerifier {
            key,
            validation,
            roles_claim: config.roles_claim.clone(),
            subject_claim: config.subject_claim.clone(),
        })
    }

    /// Verifies `token` and reads its subject and roles.
    pub fn verify(&self, token: &str) -> Result<JwtClaims, AuthError> {
        let data = decode::<serde_json::Map<String, serde_json::Value>>(
            token,
            &self.key,
            &self.validation,
        )
        .map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => AuthError::Expired,
            _ => AuthError::Invalid,
        })?;
        let claims = data.claims;
        let subject = claims
            .get(&self.subject_claim)
            .and_then(|v| v.as_str())
            .filter(|s| crate::access::valid_name(s))
            .ok_or(AuthError::Invalid)?;
        let roles = match claims.get(&self.roles_claim) {
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|v| v.as_str())
                .map(SmolStr::new)
                .collect(),
            Some(serde_json::Value::String(s)) => s.split_whitespace().map(SmolStr::new).collect(),
            _ => BTreeSet::new(),
        };
        Ok(JwtClaims {
            subject: subject.into(),
            roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef-test";

    fn config() -> JwtConfig {
        let mut c = tollgate_config::NodeConfig::from_toml_str(
            "[auth.jwt]\nalgorithm = \"HS256\"\nsecret_env = \"TOLLGATE_JWT_SECRET\"\nissuer = \"https://idp.example\"\n",
            &|_: &str| None,
        )
        .unwrap()
        .auth
        .jwt
        .unwrap();
        c.leeway_s = 0;
        c
    }

    fn token(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    #[test]
    fn verifies_signature_expiry_issuer_and_reads_roles() {
        let v = JwtVerifier::with_secret(&config(), Some(SECRET)).unwrap();
        let exp = jiff::Timestamp::now().as_second() + 60;
        let good = token(
            json!({ "sub": "dana", "roles": ["finance", "care"], "exp": exp, "iss": "https://idp.example" }),
            SECRET,
        );
        let claims = v.verify(&good).unwrap();
        assert_eq!(claims.subject, "dana");
        assert_eq!(claims.roles.len(), 2);
        let spaced = token(
            json!({ "sub": "dana", "roles": "finance care", "exp": exp, "iss": "https://idp.example" }),
            SECRET,
        );
        assert_eq!(v.verify(&spaced).unwrap().roles, claims.roles);
        let forged = token(
            json!({ "sub": "dana", "roles": ["admin"], "exp": exp, "iss": "https://idp.example" }),
            b"another secret that is long enough!!",
        );
        assert_eq!(v.verify(&forged), Err(AuthError::Invalid));
        let expired = token(
            json!({ "sub": "dana", "exp": exp - 3600, "iss": "https://idp.example" }),
            SECRET,
        );
        assert_eq!(v.verify(&expired), Err(AuthError::Expired));
        let wrong_issuer = token(
            json!({ "sub": "dana", "exp": exp, "iss": "https://evil" }),
            SECRET,
        );
        assert_eq!(v.verify(&wrong_issuer), Err(AuthError::Invalid));
        assert!(JwtVerifier::with_secret(&config(), Some(b"short")).is_err());
    }
}
