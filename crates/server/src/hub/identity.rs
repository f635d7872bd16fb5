//! Anonymous viewer identities: what "the same viewer" means for bans, mutes, slow mode
//! and message dedup.
//!
//! An identity is a random `viewerId` plus a token, `HMAC-SHA256(server secret,
//! viewerId)` truncated to 128 bits, both given in the `welcome`. The widget keeps them in
//! localStorage and sends them back in `hello`. Signing (rather than storing tokens)
//! costs no database write per visitor and survives restarts because the secret is
//! persisted. A viewer who clears storage becomes someone new: that is the limit of
//! anonymous chat, and why bans also close the sockets at once.
//!
//! Where the secret comes from: `--identity-secret-file` when given (it wins over
//! everything), else the chat store (one node) or Redis (`--redis`, see `cluster`). A
//! node on Redis may have to change its secret while it runs (nodes converge on one,
//! see `cluster`): it then signs with the new one and still accepts tokens signed with
//! the few it had before ([`MAX_ACCEPTED`]), so nobody it already knew becomes a
//! stranger.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::sync::RwLock;

/// Bytes of the HMAC kept in a token.
const TOKEN_BYTES: usize = 16;

/// Earlier secrets whose tokens are still accepted after a change, at most.
pub(crate) const MAX_ACCEPTED: usize = 4;

/// Issues and checks viewer identities.
pub struct Identities {
    keys: RwLock<Keys>,
}

struct Keys {
    /// Signs new identities.
    current: [u8; 32],
    /// Earlier secrets (newest first): their tokens are still good.
    accepted: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Identities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Identities(..)")
    }
}

impl Identities {
    /// Signs with `secret` (keep it: tokens die with it).
    pub fn new(secret: [u8; 32]) -> Self {
        Identities {
            keys: RwLock::new(Keys {
                current: secret,
                accepted: Vec::new(),
            }),
        }
    }

    fn keys(&self) -> std::sync::RwLockReadGuard<'_, Keys> {
        self.keys.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The secret new identities are signed with.
    pub fn current(&self) -> [u8; 32] {
        self.keys().current
    }

    /// Signs new identities with `secret` from now on; tokens of the secret it replaces
    /// stay good (up to [`MAX_ACCEPTED`] earlier secrets).
    pub fn adopt(&self, secret: [u8; 32]) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.current != secret {
            let old = std::mem::replace(&mut keys.current, secret);
            keys.accepted.retain(|k| *k != secret);
            remember(&mut keys.accepted, old);
        }
    }

    /// Also accepts tokens signed with `secret` (another node's, replaced by this one's).
    pub fn accept(&self, secret: [u8; 32]) {
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        if keys.current != secret {
            remember(&mut keys.accepted, secret);
        }
    }

    fn mac(secret: &[u8; 32], viewer_id: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key");
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
        let mac = Identities::mac(&self.keys().current, viewer_id);
        hex(&mac.finalize().into_bytes()[..TOKEN_BYTES])
    }

    /// True when `token` proves `viewer_id` (constant time).
    pub fn verify(&self, viewer_id: &str, token: &str) -> bool {
        if viewer_id.len() > 64 {
            return false;
        }
        match unhex(token) {
            Some(tag) if tag.len() == TOKEN_BYTES => {
                let keys = self.keys();
                std::iter::once(&keys.current)
                    .chain(&keys.accepted)
                    .any(|k| {
                        Identities::mac(k, viewer_id)
                            .verify_truncated_left(&tag)
                            .is_ok()
                    })
            }
            _ => false,
        }
    }
}

/// Puts `secret` first among the accepted ones, keeping at most [`MAX_ACCEPTED`].
fn remember(accepted: &mut Vec<[u8; 32]>, secret: [u8; 32]) {
    accepted.retain(|k| *k != secret);
    accepted.insert(0, secret);
    accepted.truncate(MAX_ACCEPTED);
}

/// The identity secret in `--identity-secret-file`: its content (surrounding
/// whitespace ignored), at least [`MIN_SECRET_FILE_BYTES`] bytes, hashed to 32 bytes
/// (SHA-256), so any long random string will do (`openssl rand -hex 32`).
pub fn secret_from_file(path: &std::path::Path) -> Result<[u8; 32], SecretFileError> {
    use sha2::Digest;
    let read = |source| SecretFileError::Read {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(read)?;
    if meta.len() > MAX_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooLong(path.to_owned()));
    }
    let text = std::fs::read(path).map_err(read)?;
    let text = text.trim_ascii();
    if text.len() < MIN_SECRET_FILE_BYTES {
        return Err(SecretFileError::TooShort(path.to_owned()));
    }
    Ok(Sha256::digest(text).into())
}

/// Shortest identity secret file accepted, in bytes (past whitespace).
pub const MIN_SECRET_FILE_BYTES: usize = 32;
/// Longest identity secret file read, in bytes.
const MAX_SECRET_FILE_BYTES: u64 = 4096;

/// Why `--identity-secret-file` is unusable.
#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    /// It could not be read.
    #[error("identity secret file {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// Too short to be a secret.
    #[error("identity secret file {}: needs at least {MIN_SECRET_FILE_BYTES} bytes (e.g. `openssl rand -hex 32`)", .0.display())]
    TooShort(std::path::PathBuf),
    /// Too long to be a secret.
    #[error("identity secret file {}: longer than {MAX_SECRET_FILE_BYTES} bytes", .0.display())]
    TooLong(std::path::PathBuf),
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
    fn after_a_change_of_secret_earlier_tokens_stay_good_and_new_ones_use_the_new_secret() {
        let ids = Identities::new([1; 32]);
        let (old, old_token) = ids.issue();
        ids.adopt([2; 32]);
        ids.accept([3; 32]);
        let (new, new_token) = ids.issue();
        assert!(ids.verify(&old, &old_token));
        assert!(ids.verify(&new, &new_token));
        assert!(Identities::new([2; 32]).verify(&new, &new_token));
        assert!(Identities::new([3; 32]).verify(&new, &Identities::new([3; 32]).token(&new)));
        assert!(ids.verify(&new, &Identities::new([3; 32]).token(&new)));
        // Bounded: the oldest secrets are forgotten.
        for k in 4..(4 + MAX_ACCEPTED as u8) {
            ids.accept([k; 32]);
        }
        assert!(!ids.verify(&old, &old_token));
        assert_eq!(ids.current(), [2; 32]);
    }

    #[test]
    fn secret_comparison() {
        assert!(secrets_equal("abc", "abc"));
        assert!(!secrets_equal("abc", "abd"));
        assert!(!secrets_equal("abc", "abcd"));
    }
}
