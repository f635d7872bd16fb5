//! The widget's MPEG-TS module: [`lucarne_ts`] behind the interface the player calls,
//! built by `cargo xtask dist` into its own WebAssembly file (`dist/lucarne_ts.js` and
//! `dist/lucarne_ts_bg.wasm`) so that an fMP4 embed downloads none of it; the player
//! imports it the first time a playlist's segments turn out to be MPEG-TS.
//!
//! # Interface
//! `new TsModule(rawMp3)`, then `push(bytes, start)` per segment, in playlist order:
//! `start` is NaN when the segment continues the previous one, else the presentation
//! time (seconds) where a new timeline begins (the first segment, or one after
//! `EXT-X-DISCONTINUITY`). It returns
//! `{video, audio, id3: [{time, data}], warnings: [string]}` where `video` and `audio`
//! are `null` or `{init: Uint8Array | null, mime: string, media: Uint8Array, start, end}`
//! (`start`/`end` NaN when the segment had no sample of that track), and throws an
//! `Error` whose message says why for a segment it cannot read; the module is then as
//! it was, so the next segment can be pushed.
//!
//! The shape is built here with `js_sys` rather than serde: serde and its JSON would
//! be most of this module's download. [`summary`] is the same walk as plain Rust, so
//! it is tested natively.

use lucarne_ts::{Output, StartTime, TrackOutput, Transmuxer, TsError};

/// What one pushed segment became, as plain values (the JavaScript object's fields).
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// The video track's share: `(init bytes and MIME when new, media bytes, start, end)`.
    pub video: Option<TrackSummary>,
    /// The audio track's share.
    pub audio: Option<TrackSummary>,
    /// ID3 tags: `(time in seconds, bytes)`.
    pub id3: Vec<(f64, Vec<u8>)>,
    /// What was repaired or dropped, in words.
    pub warnings: Vec<String>,
}

/// One track's share of a segment.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackSummary {
    /// A new init segment (empty for raw MP3), to append first.
    pub init: Option<Vec<u8>>,
    /// The SourceBuffer type for this track.
    pub mime: String,
    /// The fragment to append.
    pub media: Vec<u8>,
    /// Presentation span in seconds; NaN when the segment had no sample of this track.
    pub start: f64,
    /// See `start`.
    pub end: f64,
}

/// The MIME type last handed out per track, so a track's type is known when its init
/// does not change.
#[derive(Debug, Default)]
struct Types {
    video: String,
    audio: String,
}

fn track(t: TrackOutput, last_mime: &mut String) -> TrackSummary {
    if let Some(init) = &t.init {
        *last_mime = init.mime();
    }
    let (start, end) = t.span.map_or((f64::NAN, f64::NAN), |s| (s.start, s.end));
    TrackSummary {
        init: t.init.map(|i| i.bytes),
        mime: last_mime.clone(),
        media: t.media,
        start,
        end,
    }
}

/// A transmuxer and what the player was told so far.
#[derive(Debug)]
pub struct Session {
    tx: Transmuxer,
    types: Types,
}

impl Session {
    /// A session for a new stream (`raw_mp3`: see [`Transmuxer::raw_mp3`]).
    pub fn new(raw_mp3: bool) -> Session {
        Session {
            tx: Transmuxer::new().raw_mp3(raw_mp3),
            types: Types::default(),
        }
    }

    /// Transmuxes one segment (`start`: see the module doc).
    pub fn push(&mut self, bytes: &[u8], start: f64) -> Result<Summary, TsError> {
        let discontinuity = start.is_finite().then(|| StartTime::from_seconds(start));
        let out: Output = self.tx.push_segment(bytes, discontinuity)?;
        Ok(summary(out, &mut self.types))
    }
}

fn summary(out: Output, types: &mut Types) -> Summary {
    Summary {
        video: out.video.map(|t| track(t, &mut types.video)),
        audio: out.audio.map(|t| track(t, &mut types.audio)),
        id3: out
            .id3
            .into_iter()
            .map(|f| (f.pts_seconds, f.data))
            .collect(),
        warnings: out.warnings.iter().map(ToString::to_string).collect(),
    }
}

#[cfg(target_arch = "wasm32")]
mod js {
    //! The JavaScript face of [`Session`](super::Session).
    use super::{Session, TrackSummary};
    use js_sys::{Array, Object, Reflect, Uint8Array};
    use wasm_bindgen::prelude::*;

    fn set(o: &Object, k: &str, v: &JsValue) {
        let _ = Reflect::set(o, &k.into(), v);
    }

    fn array(b: &[u8]) -> JsValue {
        Uint8Array::from(b).into()
    }

    fn track(t: Option<TrackSummary>) -> JsValue {
        let Some(t) = t else {
            return JsValue::NULL;
        };
        let o = Object::new();
        set(&o, "init", &t.init.as_deref().map_or(JsValue::NULL, array));
        set(&o, "mime", &t.mime.into());
        set(&o, "media", &array(&t.media));
        set(&o, "start", &t.start.into());
        set(&o, "end", &t.end.into());
        o.into()
    }

    /// See the crate documentation.
    #[wasm_bindgen]
    pub struct TsModule(Session);

    #[wasm_bindgen]
    impl TsModule {
        /// A module for a new stream.
        #[wasm_bindgen(constructor)]
        pub fn new(raw_mp3: bool) -> TsModule {
            TsModule(Session::new(raw_mp3))
        }

        /// Transmuxes one segment; throws an `Error` saying why it cannot.
        pub fn push(&mut self, bytes: &[u8], start: f64) -> Result<JsValue, JsError> {
            let s = self
                .0
                .push(bytes, start)
                .map_err(|e| JsError::new(&e.to_string()))?;
            let o = Object::new();
            set(&o, "video", &track(s.video));
            set(&o, "audio", &track(s.audio));
            let id3 = Array::new();
            for (time, data) in s.id3 {
                let f = Object::new();
                set(&f, "time", &time.into());
                set(&f, "data", &array(&data));
                id3.push(&f);
            }
            set(&o, "id3", &id3);
            let warnings = Array::new();
            for w in s.warnings {
                warnings.push(&w.into());
            }
            set(&o, "warnings", &warnings);
            Ok(o.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../ts/tests/fixtures");
        std::fs::read(dir.join(name)).unwrap()
    }

    #[test]
    fn the_first_segment_hands_out_both_inits_and_the_next_only_media() {
        let mut s = Session::new(false);
        let first = s.push(&fixture("avc_aac_0.ts"), 0.0).unwrap();
        let video = first.video.unwrap();
        let audio = first.audio.unwrap();
        assert!(video.init.is_some() && audio.init.is_some());
        assert!(
            video.mime.starts_with("video/mp4; codecs=\"avc1."),
            "{}",
            video.mime
        );
        assert_eq!(audio.mime, "audio/mp4; codecs=\"mp4a.40.2\"");
        assert!(!video.media.is_empty() && video.end > video.start);
        let second = s.push(&fixture("avc_aac_1.ts"), f64::NAN).unwrap();
        let v2 = second.video.unwrap();
        assert_eq!(v2.init, None, "no new init without a new configuration");
        assert_eq!(v2.mime, video.mime, "the type is still known");
        assert!(
            (v2.start - video.end).abs() < 0.05,
            "continues: {} after {}",
            v2.start,
            video.end
        );
    }

    #[test]
    fn a_segment_that_is_not_ts_is_an_error_and_the_session_goes_on() {
        let mut s = Session::new(false);
        let e = s.push(b"<html>not found</html>", f64::NAN).unwrap_err();
        assert!(!e.to_string().is_empty());
        assert!(s
            .push(&fixture("avc_aac_0.ts"), 0.0)
            .unwrap()
            .video
            .is_some());
    }
}
