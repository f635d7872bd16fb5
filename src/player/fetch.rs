//! `fetch` with a timeout and cancellation, returning typed errors.

use js_sys::Uint8Array;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, RequestInit, RequestMode, Response};

/// Why a request failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FetchError {
    /// The server answered with this HTTP status.
    Status(u16),
    /// No answer: refused, reset, DNS, CORS.
    Network(String),
    /// No answer within the time limit.
    Timeout,
    /// Cancelled because its owner went away.
    Aborted,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Status(s) => write!(f, "HTTP {s}"),
            FetchError::Network(m) => write!(f, "network error: {m}"),
            FetchError::Timeout => f.write_str("timed out"),
            FetchError::Aborted => f.write_str("aborted"),
        }
    }
}

/// Holds the in-flight request's controller so its owner can abort it on drop.
pub(crate) type AbortSlot = Rc<RefCell<Option<AbortController>>>;

async fn response(url: &str, timeout_ms: u32, slot: &AbortSlot) -> Result<Response, FetchError> {
    let window = web_sys::window().ok_or_else(|| FetchError::Network("no window".into()))?;
    let controller =
        AbortController::new().map_err(|_| FetchError::Network("no AbortController".into()))?;
    let init = RequestInit::new();
    init.set_mode(RequestMode::Cors);
    init.set_signal(Some(&controller.signal()));
    let timed_out = Rc::new(Cell::new(false));
    let _timer = {
        let (controller, timed_out) = (controller.clone(), timed_out.clone());
        gloo_timers::callback::Timeout::new(timeout_ms, move || {
            timed_out.set(true);
            controller.abort();
        })
    };
    *slot.borrow_mut() = Some(controller);
    let result = JsFuture::from(window.fetch_with_str_and_init(url, &init)).await;
    slot.borrow_mut().take();
    let value = result.map_err(|e| {
        if timed_out.get() {
            FetchError::Timeout
        } else if e
            .dyn_ref::<web_sys::DomException>()
            .is_some_and(|d| d.name() == "AbortError")
        {
            FetchError::Aborted
        } else {
            FetchError::Network(js_message(&e))
        }
    })?;
    let response: Response = value.unchecked_into();
    if !response.ok() {
        return Err(FetchError::Status(response.status()));
    }
    Ok(response)
}

/// GETs `url` as bytes.
pub(crate) async fn bytes(
    url: &str,
    timeout_ms: u32,
    slot: &AbortSlot,
) -> Result<Uint8Array, FetchError> {
    let r = response(url, timeout_ms, slot).await?;
    let promise = r
        .array_buffer()
        .map_err(|e| FetchError::Network(js_message(&e)))?;
    let buf = JsFuture::from(promise)
        .await
        .map_err(|e| FetchError::Network(js_message(&e)))?;
    Ok(Uint8Array::new(&buf))
}

/// GETs `url` as text.
pub(crate) async fn text(
    url: &str,
    timeout_ms: u32,
    slot: &AbortSlot,
) -> Result<String, FetchError> {
    let r = response(url, timeout_ms, slot).await?;
    let promise = r.text().map_err(|e| FetchError::Network(js_message(&e)))?;
    let text = JsFuture::from(promise)
        .await
        .map_err(|e| FetchError::Network(js_message(&e)))?;
    Ok(text.as_string().unwrap_or_default())
}

/// The message of a JS error value (`String(e)`), without Rust's Debug machinery.
pub(crate) fn js_message(e: &wasm_bindgen::JsValue) -> String {
    js_sys::JsString::from(e.clone()).into()
}

/// Resolves `uri` against `base`.
pub(crate) fn resolve(uri: &str, base: &str) -> Option<String> {
    web_sys::Url::new_with_base(uri, base)
        .ok()
        .map(|u| u.href())
}
