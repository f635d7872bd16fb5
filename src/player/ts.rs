//! The widget's side of the MPEG-TS module (`crates/ts-module`, shipped as
//! `lucarne_ts.js` + `lucarne_ts_bg.wasm` next to the widget's own files): loads it the
//! first time a segment turns out to be MPEG-TS, and turns its JavaScript answers into
//! plain values for `hls`. An fMP4 stream never calls [`Transmuxer::load`], so its
//! viewers download none of the module (24 KB brotli).
//!
//! The module is found where the widget's glue came from (`import.meta.url` of the glue,
//! the same base the loader `lucarne.js` fetched it from, copies after a trap
//! included) and imported with the browser's own `import()`: no `eval`, so a page whose
//! Content-Security-Policy allows the widget allows the module.
//!
//! Also here: [`announce_metadata`], the `lucarne:metadata` event that carries the ID3
//! timed metadata the module finds to the host page.

use js_sys::{Array, Function, Promise, Reflect, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    type ImportMeta;
    /// The glue module's `import.meta`.
    #[wasm_bindgen(thread_local_v2, js_namespace = import, js_name = meta)]
    static META: ImportMeta;
    #[wasm_bindgen(method, getter)]
    fn url(this: &ImportMeta) -> String;
    /// The browser's dynamic `import(url)`.
    #[wasm_bindgen(js_name = import)]
    fn dynamic_import(url: &str) -> Promise;
}

/// One track's share of a transmuxed segment.
pub(crate) struct TrackOut {
    /// A new init segment, to append before `media`.
    pub(crate) init: Option<Uint8Array>,
    /// The SourceBuffer type, e.g. `video/mp4; codecs="avc1.64001f"`.
    pub(crate) mime: String,
    /// The fragment.
    pub(crate) media: Uint8Array,
    /// Presentation span, seconds (NaN: no sample of this track in the segment).
    pub(crate) start: f64,
    pub(crate) end: f64,
}

/// What one segment became.
pub(crate) struct Out {
    pub(crate) video: Option<TrackOut>,
    pub(crate) audio: Option<TrackOut>,
    /// ID3 tags: media time, bytes.
    pub(crate) id3: Vec<(f64, Uint8Array)>,
    /// What the module repaired or dropped, in words.
    pub(crate) warnings: Vec<String>,
}

/// A loaded module with one stream's transmuxer (`TsModule`).
pub(crate) struct Transmuxer {
    instance: JsValue,
    push: Function,
}

fn get(o: &JsValue, key: &str) -> JsValue {
    Reflect::get(o, &key.into()).unwrap_or(JsValue::UNDEFINED)
}

/// A thrown value in words: an `Error`'s message, or the value if it is a string.
fn describe(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| get(e, "message").as_string())
        .unwrap_or_else(|| "unknown error".into())
}

fn number(o: &JsValue, key: &str) -> f64 {
    get(o, key).as_f64().unwrap_or(f64::NAN)
}

fn track(o: &JsValue) -> Option<TrackOut> {
    if o.is_null() || o.is_undefined() {
        return None;
    }
    let init = get(o, "init").dyn_into::<Uint8Array>().ok();
    Some(TrackOut {
        init: init.filter(|i| i.length() > 0),
        mime: get(o, "mime").as_string().unwrap_or_default(),
        media: get(o, "media").dyn_into().ok()?,
        start: number(o, "start"),
        end: number(o, "end"),
    })
}

impl Transmuxer {
    /// Imports the module from beside the widget's files and starts a transmuxer. The
    /// error says what failed, for the viewer.
    pub(crate) async fn load() -> Result<Transmuxer, String> {
        let why = describe;
        let url = web_sys::Url::new_with_base("lucarne_ts.js", &META.with(ImportMeta::url))
            .map_err(|e| why(&e))?
            .href();
        let module = JsFuture::from(dynamic_import(&url))
            .await
            .map_err(|e| format!("{url}: {}", why(&e)))?;
        let init: Function = get(&module, "default")
            .dyn_into()
            .map_err(|_| format!("{url} is not the MPEG-TS module"))?;
        let ready = init.call0(&module).map_err(|e| why(&e))?;
        JsFuture::from(Promise::resolve(&ready))
            .await
            .map_err(|e| format!("{url}: {}", why(&e)))?;
        let class: Function = get(&module, "TsModule")
            .dyn_into()
            .map_err(|_| format!("{url} is not the MPEG-TS module"))?;
        // MP3 comes out in MP4 (what MediaSource takes in every engine tested).
        let instance =
            Reflect::construct(&class, &Array::of1(&false.into())).map_err(|e| why(&e))?;
        let push = get(&instance, "push")
            .dyn_into()
            .map_err(|_| format!("{url} is not the MPEG-TS module"))?;
        Ok(Transmuxer { instance, push })
    }

    /// Transmuxes one segment; `start` is NaN when it continues the previous one, else
    /// the time where a new timeline begins (the first segment, a discontinuity). The
    /// error is the module's: why the segment cannot be read.
    pub(crate) fn push(&self, segment: &Uint8Array, start: f64) -> Result<Out, String> {
        let o = self
            .push
            .call2(&self.instance, segment, &start.into())
            .map_err(|e| describe(&e))?;
        let id3 = Array::from(&get(&o, "id3"))
            .iter()
            .filter_map(|t| Some((number(&t, "time"), get(&t, "data").dyn_into().ok()?)))
            .collect();
        let warnings = Array::from(&get(&o, "warnings"))
            .iter()
            .filter_map(|w| w.as_string())
            .collect();
        Ok(Out {
            video: track(&get(&o, "video")),
            audio: track(&get(&o, "audio")),
            id3,
            warnings,
        })
    }
}

/// Tells the host page about ID3 timed metadata: a `lucarne:metadata` event on the
/// widget's host element (bubbling, composed), `detail.time` the media time it belongs
/// to (comparable with the `<video>`'s `currentTime`), `detail.data` the ID3 tag's
/// bytes (a `Uint8Array`). Sent when the segment carrying it is loaded, ahead of the
/// playhead by the buffer.
pub(crate) fn announce_metadata(video: &web_sys::HtmlVideoElement, time: f64, data: &Uint8Array) {
    let Ok(root) = video.get_root_node().dyn_into::<web_sys::ShadowRoot>() else {
        return;
    };
    let detail = js_sys::Object::new();
    let _ = Reflect::set(&detail, &"time".into(), &time.into());
    let _ = Reflect::set(&detail, &"data".into(), data);
    let init = web_sys::CustomEventInit::new();
    init.set_detail(&detail);
    init.set_bubbles(true);
    init.set_composed(true);
    if let Ok(e) = web_sys::CustomEvent::new_with_event_init_dict("lucarne:metadata", &init) {
        let _ = root.host().dispatch_event(&e);
    }
}
