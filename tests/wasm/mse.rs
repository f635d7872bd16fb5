//! The MSE glue in a real browser (headless Chromium through wasm-bindgen-test): the
//! serial append queue, removal, codec refusal, bad data, a full buffer (the browser's
//! `QuotaExceededError`) and release on drop.
//! Fixtures: an init segment and two one-second segments recorded from the demo origin.
#![cfg(target_arch = "wasm32")]

use js_sys::Uint8Array;
use lucarne::player::channel;
use lucarne::player::events::Event;
use lucarne::player::mp4;
use lucarne::player::mse::Mse;
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;
use web_sys::HtmlVideoElement;

wasm_bindgen_test_configure!(run_in_browser);

const INIT: &[u8] = include_bytes!("../fixtures/demo-init.mp4");
const SEG_A: &[u8] = include_bytes!("../fixtures/demo-0.m4s");
const SEG_B: &[u8] = include_bytes!("../fixtures/demo-1.m4s");

fn video() -> HtmlVideoElement {
    let doc = web_sys::window().unwrap().document().unwrap();
    let v: HtmlVideoElement = doc.create_element("video").unwrap().unchecked_into();
    v.set_muted(true);
    doc.body().unwrap().append_child(&v).unwrap();
    v
}

fn bytes(b: &[u8]) -> Uint8Array {
    Uint8Array::from(b)
}

/// Polls `f` every 20 ms until it holds or `ms` pass.
async fn until(ms: u32, mut f: impl FnMut() -> bool) -> bool {
    for _ in 0..ms / 20 {
        if f() {
            return true;
        }
        gloo_timers::future::TimeoutFuture::new(20).await;
    }
    f()
}

async fn open() -> (HtmlVideoElement, Mse, channel::Receiver<Event>) {
    let v = video();
    let (tx, rx) = channel::unbounded();
    let mut mse = Mse::open(&v, tx, None).await.expect("MediaSource opens");
    let info = mp4::parse_init(INIT).expect("fixture init parses");
    mse.set_tracks(&[info.mime()])
        .expect("H.264 + AAC is supported");
    (v, mse, rx)
}

#[wasm_bindgen_test]
async fn appends_issued_back_to_back_are_serialised_and_all_land() {
    let (_v, mse, _rx) = open().await;
    // No waiting between appends: the queue must wait for each updateend.
    mse.append(bytes(INIT));
    mse.append(bytes(SEG_A));
    mse.append(bytes(SEG_B));
    assert!(until(5_000, || mse.pending() == 0).await, "queue drained");
    let ranges = mse.buffered();
    assert_eq!(ranges.len(), 1, "one contiguous range: {ranges:?}");
    let len = ranges[0].end - ranges[0].start;
    assert!(
        (1.9..2.1).contains(&len),
        "two one-second segments buffered, got {len} s"
    );
    let info = mp4::parse_init(INIT).unwrap();
    let start = mp4::fragment_start(SEG_A, &info).unwrap();
    assert!(
        (ranges[0].start - start).abs() < 0.05,
        "timestamps kept: {} vs {start}",
        ranges[0].start
    );
}

#[wasm_bindgen_test]
async fn remove_trims_the_back_buffer() {
    let (_v, mse, _rx) = open().await;
    mse.append(bytes(INIT));
    mse.append(bytes(SEG_A));
    mse.append(bytes(SEG_B));
    assert!(until(5_000, || mse.pending() == 0).await);
    let before = mse.buffered()[0];
    mse.remove(before.start, before.start + 1.0);
    assert!(until(5_000, || mse.pending() == 0).await);
    let after = mse.buffered();
    assert!(
        after[0].start >= before.start + 0.9,
        "start moved: {before:?} -> {after:?}"
    );
    assert!((after[0].end - before.end).abs() < 0.01, "end kept");
}

#[wasm_bindgen_test]
async fn an_unknown_codec_is_refused_with_a_clear_error() {
    let v = video();
    let (tx, _rx) = channel::unbounded();
    let mut mse = Mse::open(&v, tx, None).await.unwrap();
    let err = mse
        .set_tracks(&["video/mp4; codecs=\"bogus.42\"".to_owned()])
        .unwrap_err();
    assert!(
        err.contains("cannot play") && err.contains("bogus.42"),
        "{err}"
    );
}

#[wasm_bindgen_test]
async fn garbage_media_is_reported_not_swallowed() {
    let (v, mse, mut rx) = open().await;
    mse.append(bytes(INIT));
    // A complete box that claims to be a movie fragment but holds nonsense.
    let mut junk = vec![0, 0, 0, 64, b'm', b'o', b'o', b'f'];
    junk.extend_from_slice(&[0xff; 56]);
    mse.append(bytes(&junk));
    let saw = failure_within(&mut rx, 5_000).await.is_some();
    assert!(
        saw || v.error().is_some(),
        "a parse error must reach the engine or the element"
    );
}

#[wasm_bindgen_test]
async fn dropping_releases_the_media_source() {
    let (v, mse, _rx) = open().await;
    mse.append(bytes(INIT));
    mse.append(bytes(SEG_A));
    assert!(until(5_000, || mse.pending() == 0).await);
    assert!(v
        .get_attribute("src")
        .is_some_and(|s| s.starts_with("blob:")));
    drop(mse);
    assert!(v.get_attribute("src").is_none(), "src detached");
    assert!(
        until(2_000, || v.buffered().length() == 0).await,
        "nothing buffered any more"
    );
}

/// Makes the next `n` `SourceBuffer.appendBuffer` calls throw `QuotaExceededError`, as a
/// browser does when the media it holds reaches its memory limit; the calls after go
/// through. Returns a guard that puts the real method back.
fn quota_exceeded_for_next(n: u32) -> impl Drop {
    let patch = js_sys::Function::new_with_args(
        "n",
        "const proto = SourceBuffer.prototype, real = proto.appendBuffer;
         proto.appendBuffer = function (data) {
           if (n > 0) { n--; throw new DOMException('buffer full', 'QuotaExceededError'); }
           return real.call(this, data);
         };
         return () => { proto.appendBuffer = real; };",
    );
    let restore: js_sys::Function = patch
        .call1(&wasm_bindgen::JsValue::NULL, &n.into())
        .expect("patch appendBuffer")
        .unchecked_into();
    struct Restore(js_sys::Function);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = self.0.call0(&wasm_bindgen::JsValue::NULL);
        }
    }
    Restore(restore)
}

/// Buffers `seconds` (even) of media from 0: the two fixture segments again and again,
/// each pair placed two seconds later by the timestamp offset. Returns the fixture's own
/// start time (media time `t` is at offset `t - start`).
async fn buffer_from_zero(mse: &Mse, seconds: u32) -> f64 {
    let info = mp4::parse_init(INIT).unwrap();
    let base = mp4::fragment_start(SEG_A, &info).unwrap();
    mse.append(bytes(INIT));
    for pair in 0..seconds / 2 {
        mse.set_timestamp_offset(f64::from(pair * 2) - base);
        mse.append(bytes(SEG_A));
        mse.append(bytes(SEG_B));
    }
    assert!(until(10_000, || mse.pending() == 0).await, "queue drained");
    let ranges = mse.buffered();
    assert!(
        ranges.len() == 1 && ranges[0].start < 0.1 && ranges[0].end > f64::from(seconds) - 0.1,
        "{seconds} s buffered from 0: {ranges:?}"
    );
    base
}

/// The first `MseFailed` the engine would hear within `ms`.
async fn failure_within(rx: &mut channel::Receiver<Event>, ms: u32) -> Option<String> {
    let failed = async {
        while let Some(e) = rx.next().await {
            if let Event::MseFailed(m) = e {
                return Some(m);
            }
        }
        None
    };
    let timeout = gloo_timers::future::TimeoutFuture::new(ms);
    futures_util::pin_mut!(failed);
    match futures_util::future::select(failed, timeout).await {
        futures_util::future::Either::Left((m, _)) => m,
        futures_util::future::Either::Right(_) => None,
    }
}

#[wasm_bindgen_test]
async fn a_full_buffer_evicts_behind_the_playhead_and_the_append_lands() {
    let (v, mse, mut rx) = open().await;
    let base = buffer_from_zero(&mse, 14).await;
    v.set_current_time(13.5);
    let _quota = quota_exceeded_for_next(1);
    mse.set_timestamp_offset(14.0 - base);
    mse.append(bytes(SEG_A));
    assert!(until(5_000, || mse.pending() == 0).await, "queue drained");
    let ranges = mse.buffered();
    assert_eq!(ranges.len(), 1, "still one range: {ranges:?}");
    // The first retry keeps 10 s behind the playhead: [0, 3.5) goes.
    assert!(
        (3.0..=4.1).contains(&ranges[0].start),
        "media behind the playhead evicted: {ranges:?}"
    );
    assert!(
        (ranges[0].end - 15.0).abs() < 0.1,
        "the refused append landed after the eviction: {ranges:?}"
    );
    assert_eq!(
        failure_within(&mut rx, 500).await,
        None,
        "no failure reported"
    );
}

#[wasm_bindgen_test]
async fn a_buffer_that_stays_full_is_reported_not_retried_forever() {
    let (v, mse, mut rx) = open().await;
    buffer_from_zero(&mse, 14).await;
    v.set_current_time(13.5);
    let _quota = quota_exceeded_for_next(u32::MAX);
    mse.append(bytes(SEG_B));
    let failure = failure_within(&mut rx, 5_000).await;
    assert!(
        failure
            .as_deref()
            .is_some_and(|m| m.contains("QuotaExceeded") || m.contains("buffer full")),
        "the engine hears why: {failure:?}"
    );
    // Each retry evicted more (10, 5, then 3.3 s kept behind the playhead).
    let ranges = mse.buffered();
    assert!(
        ranges[0].start > 10.0 - 0.5,
        "evicted down to the last few seconds: {ranges:?}"
    );
}
