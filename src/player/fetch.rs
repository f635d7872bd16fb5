//! `fetch` with a timeout and cancellation, returning typed errors; and a
//! [`Download`] whose progress its owner watches (time to the response's headers,
//! bytes received), for the ABR's samples and its abandon rule.

use gloo_timers::callback::Timeout;
use js_sys::{Promise, Uint8Array};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::Poll;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortController, ReadableStreamDefaultReader, RequestInit, RequestMode, Response};

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

/// A request on its way: the `fetch` promise, its controller (in `slot` too, so the
/// owner can abort it) and the timer that aborts it after `timeout_ms`.
struct Sent {
    promise: Promise,
    controller: AbortController,
    timed_out: Rc<Cell<bool>>,
    _timer: Timeout,
}

fn send(url: &str, timeout_ms: u32, slot: &AbortSlot) -> Result<Sent, FetchError> {
    let window = web_sys::window().ok_or_else(|| FetchError::Network("no window".into()))?;
    let controller =
        AbortController::new().map_err(|_| FetchError::Network("no AbortController".into()))?;
    let init = RequestInit::new();
    init.set_mode(RequestMode::Cors);
    init.set_signal(Some(&controller.signal()));
    let timed_out = Rc::new(Cell::new(false));
    let timer = {
        let (controller, timed_out) = (controller.clone(), timed_out.clone());
        Timeout::new(timeout_ms, move || {
            timed_out.set(true);
            controller.abort();
        })
    };
    *slot.borrow_mut() = Some(controller.clone());
    Ok(Sent {
        promise: window.fetch_with_str_and_init(url, &init),
        controller,
        timed_out,
        _timer: timer,
    })
}

/// What a rejected `fetch` (or body read) means.
fn failure(e: &JsValue, timed_out: bool) -> FetchError {
    if timed_out {
        FetchError::Timeout
    } else if e
        .dyn_ref::<web_sys::DomException>()
        .is_some_and(|d| d.name() == "AbortError")
    {
        FetchError::Aborted
    } else {
        FetchError::Network(js_message(e))
    }
}

/// The response, unless its status is an error.
fn ok(value: JsValue) -> Result<Response, FetchError> {
    let response: Response = value.unchecked_into();
    if !response.ok() {
        return Err(FetchError::Status(response.status()));
    }
    Ok(response)
}

async fn response(url: &str, timeout_ms: u32, slot: &AbortSlot) -> Result<Response, FetchError> {
    let sent = send(url, timeout_ms, slot)?;
    let result = JsFuture::from(sent.promise).await;
    slot.borrow_mut().take();
    ok(result.map_err(|e| failure(&e, sent.timed_out.get()))?)
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

/// Whether anything answers at `url`: a `no-cors` GET resolves (with an opaque
/// response) whatever the CORS headers, and rejects only when no server answered. A
/// `fetch` that failed while this succeeds was refused by CORS, not by the network.
pub(crate) async fn reachable(url: &str) -> bool {
    let Some(window) = web_sys::window() else {
        return false;
    };
    let init = RequestInit::new();
    init.set_mode(RequestMode::NoCors);
    let mut probe = JsFuture::from(window.fetch_with_str_and_init(url, &init));
    matches!(within(&mut probe, 5_000.0).await, Some(Ok(_)))
}

/// Waits `ms` milliseconds. A timer and the engine's channel rather than gloo's
/// `TimeoutFuture`, which brings a futures oneshot channel into the download for this
/// alone. Dropping the future clears the timer.
pub(crate) async fn sleep_ms(ms: f64) {
    let (tx, mut rx) = super::channel::unbounded::<()>();
    let _timer = Timeout::new(ms.max(0.0) as u32, move || {
        let _ = tx.unbounded_send(());
    });
    rx.next().await;
}

/// `fut`'s output, or `None` once `ms` milliseconds passed first (`fut` goes on and
/// can be awaited again).
async fn within<F: Future + Unpin>(fut: &mut F, ms: f64) -> Option<F::Output> {
    let mut timer = std::pin::pin!(sleep_ms(ms));
    std::future::poll_fn(|cx| {
        if let Poll::Ready(v) = Pin::new(&mut *fut).poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// Where a [`Download`] is.
enum Stage {
    /// Waiting for the response's headers.
    Headers(JsFuture),
    /// Reading the body, one chunk read under way.
    Body(ReadableStreamDefaultReader, JsFuture),
    Done,
}

/// A GET of a media segment whose progress the owner watches between
/// [`Download::step`]s. The body is read with a `ReadableStream` reader, so the
/// bytes received are known as they come; its chunks stay in JS until the end.
/// Dropping it aborts the request.
pub(crate) struct Download {
    sent: Sent,
    slot: AbortSlot,
    stage: Stage,
    /// `Date.now()` when the request was sent.
    started: f64,
    /// Milliseconds from the request to the response's headers, once they came.
    pub(crate) ttfb_ms: Option<f64>,
    /// Body bytes received so far.
    pub(crate) loaded: u64,
    /// The body's size, when the response says (`Content-Length`).
    pub(crate) expected: Option<u64>,
    chunks: Vec<Uint8Array>,
}

impl Download {
    /// Sends the request; its time limit covers the whole body.
    pub(crate) fn start(url: &str, timeout_ms: u32, slot: &AbortSlot) -> Result<Self, FetchError> {
        let sent = send(url, timeout_ms, slot)?;
        Ok(Download {
            stage: Stage::Headers(JsFuture::from(sent.promise.clone())),
            sent,
            slot: slot.clone(),
            started: js_sys::Date::now(),
            ttfb_ms: None,
            loaded: 0,
            expected: None,
            chunks: Vec::new(),
        })
    }

    /// Milliseconds since the request was sent.
    pub(crate) fn elapsed_ms(&self) -> f64 {
        js_sys::Date::now() - self.started
    }

    /// Waits for the headers or the next chunk, at most `ms` milliseconds. `Some` with
    /// the whole body once it has all come.
    pub(crate) async fn step(&mut self, ms: f64) -> Result<Option<Uint8Array>, FetchError> {
        let timed_out = self.sent.timed_out.clone();
        let failed = move |e: JsValue| failure(&e, timed_out.get());
        match &mut self.stage {
            Stage::Headers(fut) => {
                let Some(r) = within(fut, ms).await else {
                    return Ok(None);
                };
                let response = ok(r.map_err(failed)?)?;
                self.ttfb_ms = Some(self.elapsed_ms());
                self.expected = response
                    .headers()
                    .get("content-length")
                    .ok()
                    .flatten()
                    .and_then(|v| super::playlist::decimal(&v))
                    .map(|v| v as u64);
                let body = response
                    .body()
                    .ok_or_else(|| FetchError::Network("no body".into()))?;
                let reader = ReadableStreamDefaultReader::new(&body)
                    .map_err(|e| FetchError::Network(js_message(&e)))?;
                let read = JsFuture::from(reader.read());
                self.stage = Stage::Body(reader, read);
                Ok(None)
            }
            Stage::Body(reader, fut) => {
                let Some(r) = within(fut, ms).await else {
                    return Ok(None);
                };
                let r = r.map_err(failed)?;
                let field = |k: &str| js_sys::Reflect::get(&r, &k.into()).unwrap_or_default();
                if !field("done").is_truthy() {
                    let chunk: Uint8Array = field("value").unchecked_into();
                    self.loaded += u64::from(chunk.length());
                    self.chunks.push(chunk);
                    *fut = JsFuture::from(reader.read());
                    return Ok(None);
                }
                self.stage = Stage::Done;
                self.slot.borrow_mut().take();
                let whole = Uint8Array::new_with_length(self.loaded as u32);
                let mut at = 0;
                for c in self.chunks.drain(..) {
                    whole.set(&c, at);
                    at += c.length();
                }
                Ok(Some(whole))
            }
            Stage::Done => Err(FetchError::Aborted),
        }
    }
}

impl Drop for Download {
    fn drop(&mut self) {
        if !matches!(self.stage, Stage::Done) {
            self.sent.controller.abort();
            self.slot.borrow_mut().take();
        }
    }
}

/// The message of a JS error value, without Rust's Debug machinery. Not
/// `String::from(JsString::from(e))`: that cast is unchecked, and turning an `Error`
/// object (what a refused `fetch` rejects with) into a `String` throws, which
/// stopped the loader for good on the first network error.
pub(crate) fn js_message(e: &wasm_bindgen::JsValue) -> String {
    if let Some(s) = e.as_string() {
        return s;
    }
    match e.dyn_ref::<js_sys::Error>() {
        Some(err) => {
            let mut m = String::from(err.name());
            m.push_str(": ");
            m.push_str(&String::from(err.message()));
            m
        }
        None => "unknown error".into(),
    }
}

/// Resolves `uri` against `base`.
pub(crate) fn resolve(uri: &str, base: &str) -> Option<String> {
    web_sys::Url::new_with_base(uri, base)
        .ok()
        .map(|u| u.href())
}
