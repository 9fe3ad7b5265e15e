//! Registry tokens (Docker's token authentication, as Harbor issues them):
//! ES256-signed JWTs with `iss` `harbor-token-issuer`, `aud`
//! `harbor-registry`, the subject's name and an `access` list of
//! (type, name, actions). The signing key is generated on first start and
//! kept by the operator (the binary stores it in the data dir).
//!
//! Verification accepts only ES256 with Berth's own key: `alg: none`,
//! HMAC algorithms, keys embedded in the header (`jwk`, `x5c`), a wrong
//! audience or issuer and expired tokens are refused.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey, LineEnding};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::access::{self, Action, ProjectRef, Resource, Subject};
use crate::clock::Millis;
use crate::error::{CoreError, CoreResult};
use crate::ports::MetaStore;

pub const ISSUER: &str = "harbor-token-issuer";
/// The `service` clients ask tokens for, and the tokens' audience.
pub const SERVICE: &str = "harbor-registry";

/// One entry of a token's `access` claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClaimAccess {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

/// Which principal a token stands for, so that a deleted user or a
/// disabled or refreshed robot stops working at once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Who {
    pub kind: String,
    pub id: i64,
    #[serde(default)]
    pub version: i64,
}

impl Who {
    pub fn anonymous() -> Who {
        Who {
            kind: "anonymous".into(),
            id: 0,
            version: 0,
        }
    }
    pub fn user(id: i64) -> Who {
        Who {
            kind: "user".into(),
            id,
            version: 0,
        }
    }
    pub fn robot(id: i64, version: i64) -> Who {
        Who {
            kind: "robot".into(),
            id,
            version,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub nbf: i64,
    pub iat: i64,
    pub jti: String,
    pub access: Vec<ClaimAccess>,
    #[serde(rename = "berth")]
    pub who: Who,
}

/// A `scope` parameter: `repository:<name>:<actions>` or
/// `registry:catalog:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
}

impl Scope {
    /// Parses one scope. Repository names may not contain `:`; a tag-like
    /// suffix would make the scope ambiguous, so it is refused.
    pub fn parse(s: &str) -> CoreResult<Scope> {
        let bad =
            || CoreError::BadRequest(format!("invalid scope {s:?}: expected type:name:actions"));
        let (kind, rest) = s.split_once(':').ok_or_else(bad)?;
        let (name, actions) = rest.rsplit_once(':').ok_or_else(bad)?;
        if kind.is_empty() || name.is_empty() {
            return Err(bad());
        }
        Ok(Scope {
            kind: kind.to_owned(),
            name: name.to_owned(),
            actions: actions
                .split(',')
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_owned)
                .collect(),
        })
    }
}

/// The actions of `scope` that `subject` holds now.
pub async fn grant(
    meta: &dyn MetaStore,
    subject: &Subject,
    scope: &Scope,
) -> CoreResult<Vec<String>> {
    match scope.kind.as_str() {
        "repository" => {
            let Ok(repo) = berth_oci::RepoName::parse(&scope.name) else {
                return Ok(vec![]);
            };
            let Some(project) = meta.project_ref(repo.project()).await? else {
                return Ok(vec![]);
            };
            let wanted: Vec<&str> = if scope.actions.iter().any(|a| a == "*") {
                vec!["pull", "push", "delete"]
            } else {
                scope.actions.iter().map(String::as_str).collect()
            };
            Ok(wanted
                .into_iter()
                .filter(|a| {
                    Action::parse(a).is_some_and(|action| {
                        matches!(action, Action::Pull | Action::Push | Action::Delete)
                            && access::allowed(
                                subject,
                                Some(ProjectRef {
                                    id: project.id,
                                    public: project.public,
                                }),
                                Resource::Repository,
                                action,
                            )
                    })
                })
                .map(str::to_owned)
                .collect())
        }
        "registry" if scope.name == "catalog" => {
            if access::allowed(subject, None, Resource::Catalog, Action::Read) {
                Ok(vec!["*".to_owned()])
            } else {
                Ok(vec![])
            }
        }
        _ => Ok(vec![]),
    }
}

/// The signing key pair.
#[derive(Clone)]
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
}

impl TokenKeys {
    /// A new P-256 private key, as PKCS#8 PEM.
    pub fn generate_pem() -> CoreResult<String> {
        let key = p256::ecdsa::SigningKey::random(&mut argon2::password_hash::rand_core::OsRng);
        key.to_pkcs8_pem(LineEnding::LF)
            .map(|p| p.to_string())
            .map_err(CoreError::internal)
    }

    /// Loads a PKCS#8 PEM P-256 private key.
    pub fn from_pem(pem: &str) -> CoreResult<TokenKeys> {
        let key = p256::ecdsa::SigningKey::from_pkcs8_pem(pem).map_err(|e| {
            CoreError::Internal(format!(
                "the token signing key is not a PKCS#8 P-256 key: {e}"
            ))
        })?;
        let public = key
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .map_err(CoreError::internal)?;
        let der = key
            .verifying_key()
            .to_public_key_der()
            .map_err(CoreError::internal)?;
        let kid = hex::encode(&Sha256::digest(der.as_bytes())[..16]);
        Ok(TokenKeys {
            encoding: EncodingKey::from_ec_pem(pem.as_bytes()).map_err(CoreError::internal)?,
            decoding: DecodingKey::from_ec_pem(public.as_bytes()).map_err(CoreError::internal)?,
            kid,
        })
    }

    pub fn sign(
        &self,
        sub: &str,
        who: Who,
        access: Vec<ClaimAccess>,
        now: Millis,
        ttl_secs: i64,
    ) -> CoreResult<String> {
        let iat = now / 1000;
        let claims = Claims {
            iss: ISSUER.into(),
            sub: if who.kind == "anonymous" {
                String::new()
            } else {
                sub.to_owned()
            },
            aud: SERVICE.into(),
            exp: iat + ttl_secs,
            nbf: iat - 10,
            iat,
            jti: hex::encode(rand::random::<[u8; 16]>()),
            access,
            who,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.encoding).map_err(CoreError::internal)
    }

    /// Verifies a token and returns its claims; any failure is
    /// `Unauthenticated`.
    pub fn verify(&self, token: &str) -> CoreResult<Claims> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| CoreError::Unauthenticated)?;
        if header.alg != Algorithm::ES256
            || header.jwk.is_some()
            || header.x5c.is_some()
            || header.jku.is_some()
        {
            return Err(CoreError::Unauthenticated);
        }
        if header.kid.as_deref().is_some_and(|k| k != self.kid) {
            return Err(CoreError::Unauthenticated);
        }
        let mut v = Validation::new(Algorithm::ES256);
        v.set_audience(&[SERVICE]);
        v.set_issuer(&[ISSUER]);
        v.validate_nbf = true;
        v.leeway = 30;
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &v)
            .map(|d| d.claims)
            .map_err(|_| CoreError::Unauthenticated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    fn keys() -> TokenKeys {
        TokenKeys::from_pem(&TokenKeys::generate_pem().unwrap()).unwrap()
    }

    #[test]
    fn scopes() {
        let s = Scope::parse("repository:library/busybox:pull,push").unwrap();
        assert_eq!(
            (s.kind.as_str(), s.name.as_str()),
            ("repository", "library/busybox")
        );
        assert_eq!(s.actions, ["pull", "push"]);
        assert_eq!(Scope::parse("registry:catalog:*").unwrap().actions, ["*"]);
        assert!(Scope::parse("nonsense").is_err());
        assert!(Scope::parse(":x:pull").is_err());
    }

    #[test]
    fn round_trip_and_refusals() {
        let k = keys();
        let now = crate::clock::now();
        let t = k.sign("admin", Who::user(1), vec![], now, 60).unwrap();
        let c = k.verify(&t).unwrap();
        assert_eq!(
            (c.sub.as_str(), c.who.id, c.aud.as_str()),
            ("admin", 1, SERVICE)
        );
        // another key's token
        assert!(keys().verify(&t).is_err());
        // expired
        let old = k
            .sign("admin", Who::user(1), vec![], now - 3_600_000, 60)
            .unwrap();
        assert!(k.verify(&old).is_err());
        // alg none with the same claims
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = t.split('.').nth(1).unwrap();
        let none = format!(
            "{}.{}.",
            b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
            payload
        );
        assert!(k.verify(&none).is_err());
        // HS256 "signed" with the public key text
        let hs = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &c,
            &EncodingKey::from_secret(b"-----BEGIN PUBLIC KEY-----"),
        )
        .unwrap();
        assert!(k.verify(&hs).is_err());
        // wrong audience
        let mut wrong = c.clone();
        wrong.aud = "other".into();
        let t2 = jsonwebtoken::encode(&Header::new(Algorithm::ES256), &wrong, &k.encoding).unwrap();
        assert!(k.verify(&t2).is_err());
        assert!(k.verify("garbage").is_err());
    }
}
