//! `/overlay/{stream}`: the broadcast's overlay, for OBS's Browser Source (or any
//! encoder that composites a web page): the stream's chat messages and the hearts
//! viewers tap, on a transparent page, so the audience shows in the broadcast itself.
//!
//! The page is the widget in its `overlay` layout (`data-layout="overlay"`): the same
//! chat connection and hearts as a viewer's widget, read-only (nothing to type, no
//! taps), no video. `?lang=fr` or `?lang=en` picks its language (default: English).
//! Size it in OBS (e.g. 1920×1080); messages sit at the bottom left and fade after
//! 12 s, hearts rise on the right.
//!
//! Not yet: the overlay of a private stream (its chat needs a playback token, which
//! this page does not take).

use super::AppError;
use crate::AppState;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

/// `?lang=`.
#[derive(Debug, serde::Deserialize)]
pub(super) struct OverlayQuery {
    lang: Option<String>,
}

/// The overlay page of a stream the origin knows; 404 for any other id.
pub(super) async fn page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(q): Query<OverlayQuery>,
) -> Result<Response, AppError> {
    if state.origin.channel(&id).is_none() && state.origin.stream(&id).is_none() {
        return Err(AppError::NoStream(id));
    }
    let lang = match q.lang.as_deref() {
        Some("fr") => "fr",
        _ => "en",
    };
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        render(&id, lang),
    )
        .into_response())
}

/// The page for stream `id` (one the origin knows: its characters are the stream id
/// rules', nothing HTML would read as markup) in `lang`.
fn render(id: &str, lang: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>lucarne overlay: {id}</title>\n\
         <style>html, body {{ margin: 0; background: transparent; overflow: hidden; }}</style>\n\
         </head>\n<body>\n\
         <script src=\"/lucarne.js\" data-layout=\"overlay\" data-chat=\"/chat/{id}\" \
         data-lang=\"{lang}\"></script>\n</body>\n</html>\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_the_widget_as_an_overlay_of_the_streams_chat() {
        let html = render("demo", "fr");
        assert!(html.contains("<html lang=\"fr\">"));
        assert!(html.contains("data-layout=\"overlay\" data-chat=\"/chat/demo\""));
        assert!(html.contains("background: transparent"));
    }
}
