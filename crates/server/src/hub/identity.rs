//! Anonymous viewer identities: what "the same viewer" means for bans, mutes, slow mode
//! and message dedup.
//!
//! An identity is a random `viewerId` plus a token, `HMAC-SHA256(server secret,
//! viewerId)` truncated to 128 bits, both given in the `welcome`. The widget keeps them in
//! localStorage and sends them back in `hello`. Signing (rather than storing tokens)
//! costs no database write per visitor and survives restarts because the secret is
//! persisted. A viewer who clears storage becomes someone new: that is the limit of
//! anonymous chat, and why bans also close the sockets at once.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// Bytes of the HMAC kept in a token.
const TOKEN_BYTES: usize = 16;

/// Issues and checks viewer identities.
#[derive(Clone)]
pub struct Identities {
    secret: [u8; 32],
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identities(..)")
    }
}

impl Identities {
    /// Signs with `secret` (keep it: tokens die with it).
    pub fn new(secret: [u8; 32]) -> Self {
        Identities { secret }
    }

    fn mac(&self, viewer_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes any key");
        mac.update(viewer_id.as_bytes());
        mac
    }

    /// A new identity: `(viewerId, token)`.
    pub fn issue(&self) -> (String, String) {
        let id = format!("v{:016x}", rand::random::<u64>());
        let token = self.token(&id);
        (id, token)
    }

    /// The token of `viewer_id`.
    pub fn token(&self, viewer_id: &str) -> String {
        hex(&self.mac(viewer_id).finalize().into_bytes()[..TOKEN_BYTES])
    }

    /// True when `token` proves `viewer_id` (constant time).
    pub fn verify(&self, viewer_id: &str, token: &str) -> bool {
        if viewer_id.len() > 64 {
            return false;
        }
        match unhex(token) {
            Some(tag) if tag.len() == TOKEN_BYTES => {
                self.mac(viewer_id).verify_truncated_left(&tag).is_ok()
            }
            _ => false,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// Compares configured secrets without leaking where they differ.
pub fn secrets_equal(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_prove_identities_and_nothing_else() {
        let ids = Identities::new([7; 32]);
        let (id, token) = ids.issue();
        assert!(id.starts_with('v') && id.len() == 17);
        assert!(ids.verify(&id, &token));
        assert!(!ids.verify(&id, &ids.token("v0000000000000000")));
        assert!(!ids.verify("v0000000000000000", &token));
        assert!(!ids.verify(&id, "zz"));
        assert!(!ids.verify(&id, ""));
        assert!(!ids.verify(&id, &token[..30]));
        // Another secret (another server, or a lost database) knows nobody.
        assert!(!Identities::new([8; 32]).verify(&id, &token));
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
