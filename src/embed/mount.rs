//! The only side-effecting mount code: reads options, attaches an open shadow root to
//! the host element, renders the widget in it, and returns a handle whose `destroy()`
//! (or drop) frees everything.

use super::options::{websocket_url, Options};
use crate::i18n::Lang;
use crate::player::Sources;
use crate::ui::{App, AppProps, Look};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use web_sys::{HtmlElement, ShadowRootInit, ShadowRootMode};

// Minified by build.rs from src/ui/widget.css (+ chat.css).
#[cfg(not(feature = "chat"))]
const CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/widget.css"));
#[cfg(feature = "chat")]
const CSS: &str = include_str!(concat!(env!("OUT_DIR"), "/widget_chat.css"));

/// A mounted widget, returned to JavaScript.
#[wasm_bindgen]
pub struct Widget {
    app: Option<yew::AppHandle<App>>,
    host: HtmlElement,
}

#[wasm_bindgen]
impl Widget {
    /// Stops playback, closes connections, releases the MediaSource and empties the
    /// host element's shadow root.
    pub fn destroy(&mut self) {
        if let Some(app) = self.app.take() {
            app.destroy();
        }
        if let Some(root) = self.host.shadow_root() {
            root.set_inner_html("");
        }
        let _ = self.host.set_attribute("data-status", "destroyed");
    }
}

fn absolute(url: &str) -> String {
    let base = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.base_uri().ok().flatten())
        .unwrap_or_default();
    web_sys::Url::new_with_base(url, &base)
        .map(|u| u.href())
        .unwrap_or_else(|_| url.to_owned())
}

fn show_error(host: &HtmlElement, message: &str) {
    web_sys::console::error_1(&format!("lucarne: {message}").into());
    let _ = host.set_attribute("data-status", "error");
    let root = host.shadow_root().or_else(|| {
        host.attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open))
            .ok()
    });
    if let Some(root) = root {
        root.set_inner_html(&format!(
            "<style>{CSS}</style><div class=\"lucarne error-box\" role=\"alert\"></div>"
        ));
        if let Some(el) = root.query_selector(".error-box").ok().flatten() {
            el.set_text_content(Some(message));
        }
    }
}

/// The page's language (`<html lang>`), else the browser's preferences.
fn page_lang() -> Lang {
    let languages = crate::player::audio::viewer_languages();
    Lang::pick(languages.iter().map(String::as_str))
}

/// Mounts a widget in `host` with `options` (a plain object or a `dataset`).
#[wasm_bindgen]
pub fn mount(host: HtmlElement, options: JsValue) -> Result<Widget, JsError> {
    let get = |key: &str| {
        js_sys::Reflect::get(&options, &key.into())
            .ok()
            .and_then(|v| v.as_string().or_else(|| v.as_bool().map(|b| b.to_string())))
    };
    let opts = match Options::read(get) {
        Ok(o) => o,
        Err(e) => {
            show_error(&host, &e.to_string());
            return Err(JsError::new(&e.to_string()));
        }
    };
    let root = match host.shadow_root() {
        Some(r) => r,
        None => host
            .attach_shadow(&ShadowRootInit::new(ShadowRootMode::Open))
            .map_err(|_| JsError::new("cannot attach a shadow root to this element"))?,
    };
    root.set_inner_html(&format!("<style>{CSS}</style>"));
    let document = web_sys::window()
        .and_then(|w| w.document())
        .ok_or_else(|| JsError::new("no document"))?;
    let container = document
        .create_element("div")
        .map_err(|_| JsError::new("cannot create element"))?;
    root.append_child(&container)
        .map_err(|_| JsError::new("cannot append to shadow root"))?;

    let sources = Sources {
        hls: opts.stream.as_deref().map(absolute),
        low_latency: opts
            .low_latency
            .as_deref()
            .map(|u| websocket_url(&absolute(u))),
        max_height: opts.max_height,
    };
    let look = Look {
        lang: opts.lang.unwrap_or_else(page_lang),
        light: opts.light,
        style: [
            ("accent", &opts.accent),
            ("radius", &opts.radius),
            ("font", &opts.font),
        ]
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("--lucarne-{k}:{v};")))
        .collect(),
        poster: opts.poster.as_deref().map(absolute),
        chat_only: opts.layout.without_video(),
        overlay: opts.layout == crate::embed::options::Layout::Overlay,
    };
    let early_socket = js_sys::Reflect::get(&options, &"socket".into())
        .ok()
        .filter(|s| s.is_object());
    let props = AppProps {
        chat: opts.chat.as_deref().map(|u| websocket_url(&absolute(u))),
        mod_token: opts.mod_token.clone(),
        early_socket,
        sources,
        muted: opts.muted,
        look,
        host: host.clone(),
    };
    let app = yew::Renderer::<App>::with_root_and_props(container.unchecked_into(), props).render();
    Ok(Widget {
        app: Some(app),
        host,
    })
}
