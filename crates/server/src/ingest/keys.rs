//! Who may publish to which stream: the stream keys the operator configured
//! (`--stream-key KEY=STREAM`) and one-time passes the server hands its own ffmpeg.
//!
//! # Why passes
//! A broadcast from the browser console reaches the ingest through an ffmpeg child that
//! publishes to `rtmp://127.0.0.1:PORT/live/KEY`, and a child's command line is visible
//! to every local user (`ps`, `/proc/*/cmdline`). With the stream's own key there, anyone
//! on the host could read it and go live on the stream later. A pass is a random
//! 128-bit key minted for one console session, mapped to that stream only, and removed
//! when the session's [`Pass`] is dropped: what `ps` shows is worthless once the
//! broadcast is over.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// See the module doc.
#[derive(Debug, Default)]
pub struct Keys {
    /// `--stream-key`: key → stream id.
    fixed: HashMap<String, String>,
    /// Passes in use: key → stream id.
    passes: Mutex<HashMap<String, String>>,
}

impl Keys {
    /// The configured keys (key → stream id), no pass yet.
    pub fn new(fixed: HashMap<String, String>) -> Arc<Keys> {
        Arc::new(Keys {
            fixed,
            passes: Mutex::default(),
        })
    }

    /// The configured keys (key → stream id).
    pub fn fixed(&self) -> &HashMap<String, String> {
        &self.fixed
    }

    /// The stream `key` publishes to: a configured key's, or a pass's while it lives.
    pub fn stream_for(&self, key: &str) -> Option<String> {
        self.fixed.get(key).cloned().or_else(|| {
            self.passes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(key)
                .cloned()
        })
    }

    /// A one-time key for `stream`, valid until the returned [`Pass`] is dropped.
    pub fn pass(self: &Arc<Self>, stream: &str) -> Pass {
        let key = format!("pass-{:032x}", rand::random::<u128>());
        self.passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), stream.to_owned());
        Pass {
            keys: self.clone(),
            key,
        }
    }
}

/// A one-time key (see the module doc); dropping it revokes the key.
#[derive(Debug)]
pub struct Pass {
    keys: Arc<Keys>,
    key: String,
}

impl Pass {
    /// The key to publish with.
    pub fn key(&self) -> &str {
        &self.key
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        self.keys
            .passes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_opens_its_stream_until_dropped_and_configured_keys_stay() {
        let keys = Keys::new(HashMap::from([("k".into(), "studio".into())]));
        let pass = keys.pass("studio");
        assert!(pass.key().starts_with("pass-") && pass.key().len() == 37);
        assert_eq!(keys.stream_for(pass.key()).as_deref(), Some("studio"));
        assert_ne!(keys.pass("studio").key(), pass.key(), "each pass is new");
        let key = pass.key().to_owned();
        drop(pass);
        assert_eq!(keys.stream_for(&key), None, "revoked with its session");
        assert_eq!(keys.stream_for("k").as_deref(), Some("studio"));
        assert_eq!(keys.stream_for("nope"), None);
    }
}
