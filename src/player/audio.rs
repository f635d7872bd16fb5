//! Demuxed audio (`EXT-X-MEDIA:TYPE=AUDIO` with a `URI`, as CMAF packagers publish it:
//! the variants carry video only): the audio rendition's own media playlist, followed
//! beside the video's by a loader of its own.
//!
//! `hls` picks the rendition (`playlist::choose_audio`, for the page's language, then
//! the browser's), loads its init segment before the video's media, declares both
//! tracks (`Tracks`: video first, audio second, one SourceBuffer each), and starts this
//! follower, which sends the audio media as `Track(1, …)`. The two are kept in step by
//! time, not by sequence number: both start the same hold back from their own live
//! edge and follow it, and the `<video>` plays what both SourceBuffers hold (its
//! `buffered` is their intersection), so audio arriving late delays the picture rather
//! than playing it silent. A variant switch changes the video track only; the audio
//! goes on.
//!
//! A replay's demuxed audio does not come through here: `hls` loads, beside each video
//! segment, the audio segments that cover the same seconds (its `VodAudio`).
//!
//! Not handled: parts (a stream with demuxed audio is followed by whole segments), a
//! variant switch to another audio group (the first group's rendition goes on).

use super::events::{Event, SourceEvent, Tx};
use super::fetch::{self, sleep_ms, AbortSlot, FetchError};
use super::latency::LatencyPolicy;
use super::playlist::{self, Playlist};
use crate::net::backoff::Backoff;
use std::cell::Cell;
use std::rc::Rc;

const TIMEOUT_MS: u32 = 10_000;

/// The viewer's languages, in order: the page's (`<html lang>`), then the browser's.
pub(crate) fn viewer_languages() -> Vec<String> {
    let Some(window) = web_sys::window() else {
        return Vec::new();
    };
    let page = window
        .document()
        .and_then(|d| d.document_element())
        .and_then(|e| e.get_attribute("lang"));
    page.into_iter()
        .chain(
            window
                .navigator()
                .languages()
                .iter()
                .filter_map(|l| l.as_string()),
        )
        .collect()
}

/// Starts following the audio media playlist at `url`: its media go out as
/// `Track(1, …)` tagged with `generation` while `alive`, requests through `slot`.
/// `wanted`: the browser wants media (see `Mse::wanted`).
pub(crate) fn follow(
    url: String,
    generation: u32,
    tx: Tx,
    alive: Rc<Cell<bool>>,
    wanted: Rc<Cell<bool>>,
    slot: AbortSlot,
) {
    let send = move |e: SourceEvent| {
        let _ = tx.unbounded_send(Event::Source(generation, e));
    };
    wasm_bindgen_futures::spawn_local(async move {
        let mut cursor: Option<u64> = None;
        let mut backoff = Backoff::new(500.0, 8_000.0);
        while alive.get() {
            if !wanted.get() {
                sleep_ms(250.0).await;
                continue;
            }
            let began = js_sys::Date::now();
            let media = match fetch::text(&url, TIMEOUT_MS, &slot).await {
                Err(FetchError::Aborted) => return,
                Ok(text) => match playlist::parse(&text) {
                    Ok(Playlist::Media(m)) => Ok(m),
                    Ok(Playlist::Multivariant(_)) => Err("not a media playlist".to_owned()),
                    Err(e) => Err(e.to_string()),
                },
                Err(e) => Err(e.to_string()),
            };
            let media = match media {
                Ok(m) => m,
                Err(e) => {
                    send(SourceEvent::Warning(format!("audio playlist {url}: {e}")));
                    sleep_ms(backoff.next_delay(js_sys::Math::random())).await;
                    continue;
                }
            };
            backoff.reset();
            // The same hold back as the video's, from this playlist's own edge.
            let policy = LatencyPolicy::hls(media.target_duration);
            let within = cursor.is_some_and(|c| {
                c >= media.media_sequence
                    && media.duration_from(c) <= policy.target + policy.jump_after
            });
            if !within {
                cursor = media.live_start(policy.target);
            }
            let mut loaded = false;
            while let Some(seg) = cursor.and_then(|c| media.get(c)) {
                if !alive.get() || !wanted.get() {
                    break;
                }
                cursor = Some(seg.msn + 1);
                if seg.gap {
                    continue;
                }
                let Some(seg_url) = fetch::resolve(&seg.uri, &url) else {
                    continue;
                };
                match fetch::bytes(&seg_url, TIMEOUT_MS, &slot).await {
                    Ok(data) if alive.get() => {
                        send(SourceEvent::Track(1, data));
                        loaded = true;
                    }
                    Ok(_) | Err(FetchError::Aborted) => return,
                    Err(e) => send(SourceEvent::Warning(format!(
                        "audio segment {}: {e}; skipped",
                        seg.msn
                    ))),
                }
            }
            if media.ended {
                return;
            }
            // As the video's loader: once per target duration from when this load
            // began, sooner when nothing new came.
            let wait = if loaded { 1.0 } else { 0.5 } * media.target_duration * 1000.0;
            sleep_ms((wait - (js_sys::Date::now() - began)).clamp(100.0, 10_000.0)).await;
        }
    });
}
