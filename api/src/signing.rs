//! Signed download links: an HMAC-SHA256 over the user, the object key and the expiry,
//! with the installation's signing key. A link works without a session (download managers,
//! a second device) but only until it expires, only for that file, and only while its user
//! may still see the job.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

/// Signs and checks download links.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
    lifetime_secs: u64,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("lifetime_secs", &self.lifetime_secs).finish()
    }
}

/// Why a signed link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The signature does not match what it claims (altered, or another key).
    #[error("the download link is not valid")]
    Tampered,
    /// It was valid until its expiry, which has passed.
    #[error("the download link has expired; open the job page for a new one")]
    Expired,
}

impl Signer {
    /// A signer with `key` whose links last `lifetime_secs`.
    pub fn new(key: Vec<u8>, lifetime_secs: u64) -> Self {
        Signer { key, lifetime_secs }
    }

    fn mac(&self, user: Uuid, object_key: &str, expires: i64) -> Hmac<Sha256> {
        // An HMAC takes a key of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(format!("{user}\n{object_key}\n{expires}").as_bytes());
        mac
    }

    /// The query string (`user=..&expires=..&sig=..`) that lets `user` fetch `object_key`
    /// until `now + lifetime`.
    pub fn sign(&self, user: Uuid, object_key: &str, now: i64) -> String {
        let expires = now.saturating_add(i64::try_from(self.lifetime_secs).unwrap_or(i64::MAX));
        self.sign_until(user, object_key, expires)
    }

    /// The query string of a link valid until `expires` (Unix seconds).
    pub fn sign_until(&self, user: Uuid, object_key: &str, expires: i64) -> String {
        let sig =
            URL_SAFE_NO_PAD.encode(self.mac(user, object_key, expires).finalize().into_bytes());
        format!("user={user}&expires={expires}&sig={sig}")
    }

    /// Checks a link's parts at time `now`; the signature first, so an altered expiry
    /// reads as tampered, not expired.
    pub fn verify(
        &self,
        user: Uuid,
        object_key: &str,
        expires: i64,
        sig: &str,
        now: i64,
    ) -> Result<(), LinkError> {
        let given = URL_SAFE_NO_PAD.decode(sig).map_err(|_| LinkError::Tampered)?;
        self.mac(user, object_key, expires)
            .verify_slice(&given)
            .map_err(|_| LinkError::Tampered)?;
        if expires < now {
            return Err(LinkError::Expired);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(query: &str) -> (Uuid, i64, String) {
        let mut user = Uuid::nil();
        let mut expires = 0;
        let mut sig = String::new();
        for pair in query.split('&') {
            match pair.split_once('=') {
                Some(("user", v)) => user = Uuid::parse_str(v).unwrap_or_default(),
                Some(("expires", v)) => expires = v.parse().unwrap_or_default(),
                Some(("sig", v)) => sig = v.to_string(),
                _ => {}
            }
        }
        (user, expires, sig)
    }

    #[test]
    fn links_verify_until_they_expire_and_not_after_any_change() {
        let signer = Signer::new(b"k".repeat(32), 900);
        let user = Uuid::new_v4();
        let (u, expires, sig) = parts(&signer.sign(user, "jobs/1/minutes.pdf", 1000));
        assert_eq!((u, expires), (user, 1900));
        assert_eq!(signer.verify(user, "jobs/1/minutes.pdf", expires, &sig, 1000), Ok(()));
        assert_eq!(
            signer.verify(user, "jobs/1/minutes.pdf", expires, &sig, 1901),
            Err(LinkError::Expired)
        );
        for (who, key, when) in [
            (Uuid::new_v4(), "jobs/1/minutes.pdf", expires),
            (user, "jobs/1/transcript.txt", expires),
            (user, "jobs/1/minutes.pdf", expires + 1),
        ] {
            assert_eq!(signer.verify(who, key, when, &sig, 1000), Err(LinkError::Tampered));
        }
        let other = Signer::new(b"x".repeat(32), 900);
        assert_eq!(
            other.verify(user, "jobs/1/minutes.pdf", expires, &sig, 1000),
            Err(LinkError::Tampered)
        );
        assert_eq!(
            signer.verify(user, "jobs/1/minutes.pdf", expires, "!!", 1000),
            Err(LinkError::Tampered)
        );
    }
}
