//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): each request carries
//! `webhook-id`, `webhook-timestamp` and `webhook-signature`, the last being `v1,` and the base64
//! HMAC-SHA256 of `id.timestamp.body` under each configured secret, space separated, so a receiver
//! keeps verifying while secrets rotate. `sink-echo --secret` verifies with the same code.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The most signatures of one request that are checked.
const MAX_SIGNATURES: usize = 8;

/// The prefix of a Standard Webhooks secret; what follows is the key, base64 encoded.
const PREFIX: &str = "whsec_";

/// A secret that cannot be used, and why.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    MissingEnv(String),
    #[error("a secret is `whsec_` followed by base64: {0}")]
    NotBase64(#[source] base64::DecodeError),
    #[error("a secret must not be empty")]
    Empty,
}

/// The keys requests are signed with; none means requests are not signed.
#[derive(Clone, Default)]
pub struct Signer {
    keys: Vec<Vec<u8>>,
}

/// Says how many keys there are, never what they are.
impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Signer {
    /// Reads each secret as configured: `env:NAME` from the environment (through `var`), then
    /// `whsec_BASE64` (the prefix is optional, as in the reference libraries).
    pub fn new(
        secrets: &[String],
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<Signer, SecretError> {
        let keys = secrets
            .iter()
            .map(|secret| {
                let secret = match secret.strip_prefix("env:") {
                    Some(name) => var(name).ok_or_else(|| SecretError::MissingEnv(name.into()))?,
                    None => secret.clone(),
                };
                key(&secret)
            })
            .collect::<Result<_, _>>()?;
        Ok(Signer { keys })
    }

    pub fn is_signing(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The `webhook-signature` value for a message: one `v1,SIGNATURE` per key.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let signatures: Vec<String> = self
            .keys
            .iter()
            .map(|key| format!("v1,{}", STANDARD.encode(digest(key, id, timestamp, body))))
            .collect();
        signatures.join(" ")
    }

    /// Whether any of the first 8 signatures in a `webhook-signature` header matches one of the keys.
    pub fn verify(&self, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
        header
            .split(' ')
            // A handful covers any rotation; checking thousands would make one request cost seconds.
            .take(MAX_SIGNATURES)
            .filter_map(|signature| signature.strip_prefix("v1,"))
            .filter_map(|signature| STANDARD.decode(signature).ok())
            .any(|signature| {
                self.keys.iter().any(|key| {
                    mac(key, id, timestamp, body)
                        .verify_slice(&signature)
                        .is_ok()
                })
            })
    }
}

fn key(secret: &str) -> Result<Vec<u8>, SecretError> {
    let encoded = secret.strip_prefix(PREFIX).unwrap_or(secret);
    if encoded.is_empty() {
        return Err(SecretError::Empty);
    }
    STANDARD.decode(encoded).map_err(SecretError::NotBase64)
}

fn mac(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac =
        <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

fn digest(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> Vec<u8> {
    mac(key, id, timestamp, body)
        .finalize()
        .into_bytes()
        .to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TIMESTAMP: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;

    fn signer(secrets: &[&str]) -> Signer {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        Signer::new(&secrets, |_| None).unwrap()
    }

    #[test]
    fn the_specifications_published_example_gives_its_published_signature() {
        assert_eq!(
            signer(&[SECRET]).sign(ID, TIMESTAMP, BODY),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn every_secret_of_a_rotation_signs_and_either_verifies() {
        let old = "whsec_c2VjcmV0LW9uZQ==";
        let header = signer(&[SECRET, old]).sign(ID, TIMESTAMP, BODY);
        assert_eq!(header.split(' ').count(), 2);
        assert!(signer(&[old]).verify(ID, TIMESTAMP, BODY, &header));
        assert!(signer(&[SECRET]).verify(ID, TIMESTAMP, BODY, &header));
        assert!(!signer(&[SECRET]).verify(ID, TIMESTAMP, b"{}", &header));
        assert!(!signer(&[SECRET]).verify(ID, TIMESTAMP + 1, BODY, &header));
    }

    #[test]
    fn a_secret_can_come_from_the_environment_and_bad_ones_are_refused() {
        let from_env = Signer::new(&["env:HOOK".into()], |name| {
            (name == "HOOK").then(|| SECRET.to_owned())
        })
        .unwrap();
        assert_eq!(
            from_env.sign(ID, TIMESTAMP, BODY),
            signer(&[SECRET]).sign(ID, TIMESTAMP, BODY)
        );
        assert!(matches!(
            Signer::new(&["env:NOPE".into()], |_| None),
            Err(SecretError::MissingEnv(_))
        ));
        assert!(Signer::new(&["whsec_not base64!".into()], |_| None).is_err());
        assert!(Signer::new(&["whsec_".into()], |_| None).is_err());
    }
}
