//! AES-128 segments (`EXT-X-KEY:METHOD=AES-128`) decrypted with the browser's
//! WebCrypto (`SubtleCrypto`, AES-CBC, which also strips the PKCS#7 padding), as
//! hls.js does. WebCrypto rather than an AES in Rust: it costs the download a few
//! bindings instead of an AES implementation, and runs natively off the wasm heap.
//!
//! Each key URI is fetched once and imported as a non-extractable `CryptoKey`; the
//! last [`KEYS`] are kept (a live stream rotating its key asks for each new one once,
//! and the cache does not grow with it). What the playlist says (URI, IV, which
//! segments) is `playlist::Key`'s; this module only fetches keys and decrypts.
//!
//! WebCrypto exists only in secure contexts (https, localhost): [`available`] says
//! whether this page has it, so the loader can say why it cannot play instead of
//! failing each segment.

use super::fetch::{self, AbortSlot, FetchError};
use js_sys::{Array, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AesCbcParams, CryptoKey, SubtleCrypto};

/// How many imported keys are kept.
const KEYS: usize = 4;
const KEY_TIMEOUT_MS: u32 = 5_000;

/// The page's `crypto.subtle`, if it has one (not in an insecure context).
fn subtle() -> Option<SubtleCrypto> {
    let s = web_sys::window()?.crypto().ok()?.subtle();
    (!s.is_undefined()).then_some(s)
}

/// True if this page can decrypt AES-128 segments.
pub(crate) fn available() -> bool {
    subtle().is_some()
}

/// Imported keys by their absolute URI, oldest first.
#[derive(Default)]
pub(crate) struct Keys {
    cache: Vec<(String, CryptoKey)>,
}

/// A WebCrypto failure as a failed load: the loader retries, then skips the segment.
fn failed(what: &str, e: &JsValue) -> FetchError {
    FetchError::Network(format!("{what}: {}", fetch::js_message(e)))
}

impl Keys {
    /// The key at `url`, fetched and imported on first use.
    async fn key(&mut self, url: &str, slot: &AbortSlot) -> Result<CryptoKey, FetchError> {
        if let Some((_, k)) = self.cache.iter().find(|(u, _)| u == url) {
            return Ok(k.clone());
        }
        let raw = fetch::bytes(url, KEY_TIMEOUT_MS, slot).await?;
        if raw.length() != 16 {
            return Err(FetchError::Network(format!(
                "the AES-128 key at {url} is {} bytes, not 16",
                raw.length()
            )));
        }
        let subtle = subtle().ok_or_else(|| FetchError::Network("no WebCrypto".into()))?;
        let usages = Array::of1(&"decrypt".into());
        let promise = subtle
            .import_key_with_str("raw", &raw, "AES-CBC", false, &usages)
            .map_err(|e| failed("importKey", &e))?;
        let key: CryptoKey = JsFuture::from(promise)
            .await
            .map_err(|e| failed("importKey", &e))?
            .unchecked_into();
        if self.cache.len() == KEYS {
            self.cache.remove(0);
        }
        self.cache.push((url.to_owned(), key.clone()));
        Ok(key)
    }

    /// `data` decrypted with the key at `key_url` and `iv`.
    pub(crate) async fn decrypt(
        &mut self,
        key_url: &str,
        iv: [u8; 16],
        data: &Uint8Array,
        slot: &AbortSlot,
    ) -> Result<Uint8Array, FetchError> {
        let key = self.key(key_url, slot).await?;
        let subtle = subtle().ok_or_else(|| FetchError::Network("no WebCrypto".into()))?;
        let params = AesCbcParams::new_with_u8_array("AES-CBC", &Uint8Array::from(&iv[..]));
        let promise = subtle
            .decrypt_with_object_and_buffer_source(&params, &key, data)
            .map_err(|e| failed("decrypt", &e))?;
        let clear = JsFuture::from(promise)
            .await
            .map_err(|e| failed("decrypt", &e))?;
        Ok(Uint8Array::new(&clear))
    }
}
