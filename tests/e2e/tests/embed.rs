//! embed: lucarne as other people's pages use it (issue 4, item 7).
//! - third_party_page_plays_and_chats: one script tag on a page of another origin
//!   plays, and a message typed there reaches the chat.
//! - hostile_css_does_not_break_the_widget: `/agency.html`'s `* { all: unset }`,
//!   `video { display: none !important }`... change nothing a viewer sees.
//! - two_embeds_play_independently: pausing one widget leaves the other playing.
//! - destroy_stops_network_and_releases_media: after `handle.destroy()` the page
//!   fetches nothing more, the low-latency socket is closed on the server's side
//!   and the video element lets go of its MediaSource.
//! - controls_work_by_keyboard_alone: K, M, Tab, Enter and Space, as real key presses.
//! - csp_blocking_wasm_shows_the_message: a CSP without `'wasm-unsafe-eval'` gets
//!   a message saying so, never a blank box.
//! - french_page_shows_french_strings: `/blog/fr.html` speaks French.
//! - muted_false_starts_with_sound_where_allowed: `data-muted="false"` plays with sound
//!   where the engine allows unmuted autoplay (Chromium, Firefox), and muted with the
//!   "tap to unmute" badge where it refuses it (WebKit).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use fantoccini::key::Key;
use lucarne_e2e::wait::POLL;
use lucarne_e2e::{
    run_scenario, serial, wait_until, Browser, ChatView, Check, Engine, Origin, OriginConfig,
    PlaybackState, Probe, StaticServer, TcpProxy,
};
use serde_json::{json, Value};

/// Page load, widget download, first frame.
const READY: Duration = Duration::from_secs(20);
/// A click or key press to the state it asks for.
const REACT: Duration = Duration::from_secs(5);

/// The element the loader inserts.
const HOST: &str = ".lucarne-host";

/// A page written into a temporary directory served by a [`StaticServer`]: an
/// origin that is not the lucarne server's.
struct ThirdParty {
    server: StaticServer,
    _dir: tempfile::TempDir,
}

impl ThirdParty {
    async fn start() -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("lucarne-e2e-embed-")
            .tempdir()?;
        let server = StaticServer::start(dir.path()).await?;
        Ok(Self { server, _dir: dir })
    }

    /// `http://127.0.0.1:PORT`, the page's origin.
    fn origin(&self) -> String {
        self.server.url()
    }

    /// Writes `html` as `name` and returns its URL.
    fn page(&self, name: &str, html: &str) -> Result<String> {
        std::fs::write(self.server.root().join(name), html)?;
        Ok(format!("{}/{name}", self.server.url()))
    }
}

/// A plain HTML page around `body`, with `head` in its head.
fn html(title: &str, head: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">{head}\
         <title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n{body}\n</body>\n</html>\n"
    )
}

/// Waits for widget `index` to play; the error names which widget.
async fn wait_widget_playing(browser: &Browser, index: usize) -> Result<PlaybackState> {
    Probe::Widget { index }
        .wait_playing(browser, READY)
        .await
        .with_context(|| format!("widget #{index} never started playing"))
}

/// Runs `body` with `host` (the `index`-th `.lucarne-host`) and `root` (its
/// shadow root) bound, and returns what it returns.
async fn in_widget(browser: &Browser, index: usize, body: &str) -> Result<Value> {
    let script = format!(
        "const host = document.querySelectorAll('.lucarne-host')[arguments[0]] || null;\n\
         const root = host ? host.shadowRoot : null;\n{body}"
    );
    browser.execute(&script, vec![json!(index)]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn third_party_page_plays_and_chats() -> Result<()> {
    let _one_at_a_time = serial().await;
    let site = ThirdParty::start().await?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec!["--embed-origin".into(), site.origin()];
    let origin = Origin::start_with(config).await?;
    let s = origin.url();
    let url = site.page(
        "post.html",
        &html(
            "A blog on another origin",
            "",
            &format!(
                "<p>Our launch, live:</p>\n\
                 <script async src=\"{s}/lucarne.js\" data-src=\"{s}/s/demo\"></script>\n\
                 <p>Say hello in the chat.</p>"
            ),
        ),
    )?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "third_party_page_plays_and_chats",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            wait_widget_playing(browser, 0).await?;
            let watch = widget.watch(browser, Duration::from_secs(4)).await?;
            watch.expect_smooth()?;
            ensure!(
                watch.last().status.as_deref() == Some("playing"),
                "the embed on {url} plays but shows status {:?}; {}",
                watch.last().status,
                watch.describe()
            );

            let chat = ChatView::widget();
            chat.pick_name(browser, "Ada", READY)
                .await
                .context("the chat of an embed on another origin")?;
            let text = "Hello from a blog on another origin";
            chat.type_and_send(browser, text).await?;
            let seen = chat
                .wait_for(
                    browser,
                    &format!("the server to confirm {text:?} (line no longer pending)"),
                    REACT,
                    |s| s.lines_with_text(text).any(|l| !l.pending),
                )
                .await?;
            let lines: Vec<_> = seen.lines_with_text(text).collect();
            ensure!(
                lines.len() == 1 && lines[0].name.as_deref() == Some("Ada"),
                "the message shows as {:?}, expected once under Ada's name; {}",
                lines.iter().map(|l| l.describe()).collect::<Vec<_>>(),
                seen.describe()
            );
            eprintln!(
                "third_party_page_plays_and_chats: {}; chat: {}",
                watch.describe(),
                seen.describe()
            );
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

/// For each widget on the page: how its video and controls are styled and laid out.
const LOOK_JS: &str = r#"
const out = [];
for (const host of document.querySelectorAll('.lucarne-host')) {
  const root = host.shadowRoot;
  const q = (s) => (root ? root.querySelector(s) : null);
  const v = q('video');
  const rect = (el) => { const r = el.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  const box = q('.lucarne');
  out.push({
    status: host.getAttribute('data-status'),
    video: v ? { display: getComputedStyle(v).display, visibility: getComputedStyle(v).visibility,
                 opacity: getComputedStyle(v).opacity, rect: rect(v) } : null,
    rootFont: box ? getComputedStyle(box).fontSize : null,
    rootColor: box ? getComputedStyle(box).color : null,
    buttons: root ? Array.from(root.querySelectorAll('button.play, button.mute')).map((b) => {
      const cs = getComputedStyle(b);
      return { class: b.className, fontSize: cs.fontSize, background: cs.backgroundColor,
               display: cs.display, rect: rect(b) };
    }) : [],
  });
}
return { widgets: out, dpr: window.devicePixelRatio };
"#;

#[tokio::test(flavor = "multi_thread")]
async fn hostile_css_does_not_break_the_widget() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/agency.html", origin.url());

    run_scenario(
        "hostile_css_does_not_break_the_widget",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            wait_widget_playing(browser, 0).await?;
            wait_widget_playing(browser, 1).await?;

            let look = browser.execute(LOOK_JS, vec![]).await?;
            let widgets = look["widgets"].as_array().cloned().unwrap_or_default();
            ensure!(
                widgets.len() == 2,
                "/agency.html should show two widgets, found {}: {look}",
                widgets.len()
            );
            for (i, w) in widgets.iter().enumerate() {
                let video = &w["video"];
                ensure!(!video.is_null(), "widget #{i} has no <video>: {w}");
                ensure!(
                    video["display"] != "none"
                        && video["visibility"] == "visible"
                        && video["opacity"] != "0",
                    "widget #{i}'s video is hidden by the page's stylesheet: {video}"
                );
                let (vw, vh) = (
                    video["rect"]["w"].as_f64().unwrap_or(0.0),
                    video["rect"]["h"].as_f64().unwrap_or(0.0),
                );
                ensure!(
                    vw >= 200.0 && vh >= 100.0,
                    "widget #{i}'s video is {vw:.0}x{vh:.0} px on screen: {video}"
                );
                let aspect = vw / vh;
                ensure!(
                    (aspect - 16.0 / 9.0).abs() < 0.16,
                    "widget #{i}'s video is {vw:.0}x{vh:.0} px, aspect {aspect:.2}, not 16:9"
                );
                ensure!(
                    px(&w["rootFont"]).is_some_and(|f| (f - 14.0).abs() < 0.5),
                    "widget #{i}'s text is {} (the page sets div {{ font-size: 40px }}), \
                     expected the widget's 14px: {w}",
                    w["rootFont"]
                );
                let buttons = w["buttons"].as_array().cloned().unwrap_or_default();
                ensure!(
                    buttons.len() == 2,
                    "widget #{i} should have a play and a mute button: {w}"
                );
                for b in &buttons {
                    ensure!(
                        px(&b["fontSize"]).is_some_and(|f| (f - 14.0).abs() < 0.5),
                        "widget #{i}'s {} button has font-size {} (the page sets \
                         button {{ font-size: 30px }}), expected 14px: {b}",
                        b["class"],
                        b["fontSize"]
                    );
                    let bg = b["background"].as_str().unwrap_or("");
                    ensure!(
                        !bg.starts_with("rgb(255, 255, 0"),
                        "widget #{i}'s {} button has the page's yellow background {bg}: {b}",
                        b["class"]
                    );
                    ensure!(
                        b["display"] != "none"
                            && b["rect"]["w"].as_f64().unwrap_or(0.0) > 10.0
                            && b["rect"]["h"].as_f64().unwrap_or(0.0) > 10.0,
                        "widget #{i}'s {} button is not laid out: {b}",
                        b["class"]
                    );
                }
            }

            // The picture itself, as captured from the screen.
            let png = browser.screenshot().await?;
            let dir =
                lucarne_e2e::workspace::artifacts_dir("hostile_css_does_not_break_the_widget");
            std::fs::create_dir_all(&dir)?;
            let path = dir.join("agency.png");
            std::fs::write(&path, &png)?;
            let dpr = look["dpr"].as_f64().unwrap_or(1.0);
            for (i, w) in widgets.iter().enumerate() {
                let r = &w["video"]["rect"];
                let area = Area {
                    x: r["x"].as_f64().unwrap_or(0.0) * dpr,
                    y: r["y"].as_f64().unwrap_or(0.0) * dpr,
                    w: r["w"].as_f64().unwrap_or(0.0) * dpr,
                    h: r["h"].as_f64().unwrap_or(0.0) * dpr,
                };
                let colours = colours_in(&png, &area)
                    .with_context(|| format!("reading the screenshot {}", path.display()))?;
                ensure!(
                    colours.distinct >= 200 && colours.page_colours < 0.05,
                    "in the screenshot {}, widget #{i}'s video area {area:?} has {} distinct \
                     colours and {:.0} % of the page's yellow/lime: it looks blank or \
                     restyled, not like video",
                    path.display(),
                    colours.distinct,
                    colours.page_colours * 100.0
                );
                eprintln!(
                    "hostile_css_does_not_break_the_widget: widget #{i}: {} colours in {area:?}",
                    colours.distinct
                );
            }
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

/// `"14px"` -> 14.0.
fn px(v: &Value) -> Option<f64> {
    v.as_str()?.strip_suffix("px")?.parse().ok()
}

/// A rectangle of the screenshot, in device pixels.
#[derive(Debug)]
struct Area {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
}

/// What a rectangle of a screenshot holds.
struct Colours {
    /// Distinct RGB values.
    distinct: usize,
    /// Share of pixels in the hostile page's yellow or lime.
    page_colours: f64,
}

fn colours_in(png_bytes: &[u8], area: &Area) -> Result<Colours> {
    let mut decoder = png::Decoder::new(png_bytes);
    decoder.set_transformations(png::Transformations::normalize_to_color8());
    let mut reader = decoder.read_info()?;
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf)?;
    let channels = info.color_type.samples();
    ensure!(
        channels >= 3,
        "screenshot is not in colour: {:?}",
        info.color_type
    );
    let (width, height) = (info.width as usize, info.height as usize);
    let x0 = (area.x.max(0.0) as usize).min(width);
    let y0 = (area.y.max(0.0) as usize).min(height);
    let x1 = ((area.x + area.w) as usize).min(width);
    let y1 = ((area.y + area.h) as usize).min(height);
    if x1 <= x0 || y1 <= y0 {
        bail!("the area {area:?} is outside the {width}x{height} screenshot");
    }
    let mut seen = HashSet::new();
    let mut page = 0usize;
    for y in y0..y1 {
        for x in x0..x1 {
            let p = (y * width + x) * channels;
            let rgb = (buf[p], buf[p + 1], buf[p + 2]);
            if rgb == (255, 255, 0) || rgb == (0, 255, 0) {
                page += 1;
            }
            seen.insert(rgb);
        }
    }
    Ok(Colours {
        distinct: seen.len(),
        page_colours: page as f64 / ((x1 - x0) * (y1 - y0)) as f64,
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn two_embeds_play_independently() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/agency.html", origin.url());

    run_scenario(
        "two_embeds_play_independently",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            wait_widget_playing(browser, 0).await?;
            wait_widget_playing(browser, 1).await?;
            let (first, second) = (Probe::Widget { index: 0 }, Probe::Widget { index: 1 });

            browser.click_in_shadow(HOST, 0, "button.play").await?;
            first
                .wait_status(browser, "paused", REACT)
                .await
                .context("clicking widget #0's play/pause button")?;

            // Both observed over the same stretch: #0 holds still, #1 plays on.
            let start = Instant::now();
            let (a0, b0) = (first.state(browser).await?, second.state(browser).await?);
            let mut a1 = a0.clone();
            let mut b1 = b0.clone();
            let mut b_statuses = vec![];
            while start.elapsed() < Duration::from_secs(4) {
                tokio::time::sleep(POLL).await;
                a1 = first.state(browser).await?;
                b1 = second.state(browser).await?;
                if let Some(s) = &b1.status {
                    if b_statuses.last() != Some(s) {
                        b_statuses.push(s.clone());
                    }
                }
            }
            // Held still: no frame decoded while paused (one in flight at the pause may
            // land). The time may move a little without one: WebKitGTK re-reports the
            // position of its prerolled frame when more media arrives (0.08 s seen, with
            // the same 5 frames decoded); a clock that runs moves ~4 s here.
            ensure!(
                a1.paused
                    && a1.status.as_deref() == Some("paused")
                    && a1.frames <= a0.frames + 1
                    && (a1.current_time - a0.current_time).abs() < 0.25,
                "widget #0 was paused but did not stay so: before {}; after {}",
                a0.describe(),
                a1.describe()
            );
            let advanced = b1.current_time - b0.current_time;
            let wall = b1.wall - b0.wall;
            ensure!(
                advanced >= 0.8 * wall
                    && b1.frames > b0.frames + (10.0 * wall) as u64
                    && !b1.paused
                    && b_statuses.iter().all(|s| s == "playing"),
                "pausing widget #0 disturbed widget #1: over {wall:.1} s it advanced \
                 {advanced:.2} s, statuses {b_statuses:?}; before {}; after {}",
                b0.describe(),
                b1.describe()
            );

            // And back: #0 resumes, #1 is still playing.
            browser.click_in_shadow(HOST, 0, "button.play").await?;
            first
                .wait_playing(browser, REACT)
                .await
                .context("widget #0 did not resume after a second click on play/pause")?;
            let b2 = second.state(browser).await?;
            ensure!(
                !b2.paused && b2.status.as_deref() == Some("playing"),
                "resuming widget #0 disturbed widget #1: {}",
                b2.describe()
            );
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

/// Records every resource the page fetches (the buffer is made big enough never
/// to fill up, or a full buffer would look like silence), then mounts the widget.
const MOUNT_PAGE_JS: &str = r#"
performance.setResourceTimingBufferSize(100000);
window.__e2e = { entries: [] };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) window.__e2e.entries.push({ name: e.name, start: e.startTime });
}).observe({ type: 'resource', buffered: true });
lucarne.mount(document.getElementById('player'), { stream: STREAM, ll: LL })
  .then((h) => { window.__e2e.handle = h; }, (e) => { window.__e2e.error = String(e); });
"#;

#[tokio::test(flavor = "multi_thread")]
async fn destroy_stops_network_and_releases_media() -> Result<()> {
    let _one_at_a_time = serial().await;
    let site = ThirdParty::start().await?;
    let origin = Origin::start().await?;
    // The low-latency socket goes through a relay: its connections are the
    // server side's view of that socket.
    let relay = TcpProxy::start(([127, 0, 0, 1], origin.port()).into()).await?;
    let s = origin.url();
    let stream = format!("{s}/live/demo/index.m3u8");
    let ll = format!("ws://127.0.0.1:{}/live/demo/ll", relay.port());
    let script = MOUNT_PAGE_JS
        .replace("STREAM", &json!(stream).to_string())
        .replace("LL", &json!(ll).to_string());
    let url = site.page(
        "mount.html",
        &html(
            "A page that mounts and destroys",
            "",
            &format!(
                "<div id=\"player\" class=\"lucarne-host\"></div>\n\
                 <script src=\"{s}/lucarne.js\"></script>\n<script>{script}</script>"
            ),
        ),
    )?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "destroy_stops_network_and_releases_media",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            wait_widget_playing(browser, 0).await?;
            ensure!(
                relay.open() >= 1,
                "the widget plays but its low-latency socket {ll} is not open \
                 ({} connections made to it, {} open)",
                relay.accepted(),
                relay.open()
            );
            let before = in_widget(
                browser,
                0,
                "window.__e2e.video = root.querySelector('video');\n\
                 const v = window.__e2e.video;\n\
                 return { handle: !!window.__e2e.handle, error: window.__e2e.error || null,\n\
                          src: v.src, readyState: v.readyState };",
            )
            .await?;
            ensure!(
                before["handle"] == true,
                "lucarne.mount() has not resolved to a handle while the video plays: {before}"
            );

            let destroyed_at = browser
                .execute(
                    "window.__e2e.handle.destroy(); return performance.now();",
                    vec![],
                )
                .await?
                .as_f64()
                .unwrap_or(0.0);
            Probe::widget()
                .wait_status(browser, "destroyed", REACT)
                .await
                .context("after handle.destroy()")?;
            let after = in_widget(
                browser,
                0,
                "const v = window.__e2e.video;\n\
                 return { videosInRoot: root ? root.querySelectorAll('video').length : 0,\n\
                          videosInPage: document.querySelectorAll('video').length,\n\
                          src: v.src, srcAttr: v.getAttribute('src'), srcObject: !!v.srcObject,\n\
                          readyState: v.readyState, networkState: v.networkState,\n\
                          rootHtml: root ? root.innerHTML.slice(0, 300) : null };",
            )
            .await?;
            ensure!(
                after["videosInRoot"] == 0 && after["videosInPage"] == 0,
                "after destroy() a <video> is still in the page: {after}"
            );
            ensure!(
                after["src"] == "" && after["srcObject"] == false && after["readyState"] == 0,
                "after destroy() the old <video> still holds its media (src {}, srcObject {}, \
                 readyState {}; before destroy: {before}): the MediaSource was not released",
                after["src"],
                after["srcObject"],
                after["readyState"]
            );

            wait_until(
                "the low-latency socket to be closed on the server's side",
                REACT,
                || async {
                    Ok(match relay.open() {
                        0 => Check::Done(()),
                        n => Check::NotYet(format!("{n} connection(s) still open")),
                    })
                },
            )
            .await
            .context("after handle.destroy()")?;

            let count = "return performance.getEntriesByType('resource').length;";
            let settled = browser.execute(count, vec![]).await?;
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(3) {
                tokio::time::sleep(POLL).await;
                let now = browser.execute(count, vec![]).await?;
                let late = browser
                    .execute(
                        "return window.__e2e.entries.filter((e) => e.start > arguments[0]);",
                        vec![json!(destroyed_at)],
                    )
                    .await?;
                ensure!(
                    now == settled && late.as_array().is_none_or(Vec::is_empty),
                    "{:.1} s after destroy() the page is still fetching: resource entries \
                     {settled} -> {now}; started after destroy(): {late}",
                    start.elapsed().as_secs_f64()
                );
            }
            ensure!(
                relay.open() == 0,
                "the low-latency socket was reopened after destroy(): {} open, {} made in all",
                relay.open(),
                relay.accepted()
            );
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

/// Where the focus is: the element focused inside the first widget's shadow root.
const FOCUS_JS: &str = r#"
const host = document.querySelector('.lucarne-host');
const root = host ? host.shadowRoot : null;
const a = root ? root.activeElement : null;
return {
  pageFocus: document.activeElement ? document.activeElement.className || document.activeElement.localName : null,
  hostFocused: document.activeElement === host,
  tag: a ? a.localName : null,
  classes: a ? Array.from(a.classList) : [],
  label: a ? a.getAttribute('aria-label') : null,
};
"#;

/// The focused element (from [`FOCUS_JS`]) is a `tag` with the class `class`.
fn is(focus: &Value, tag: &str, class: &str) -> bool {
    focus["tag"] == tag
        && focus["classes"]
            .as_array()
            .is_some_and(|c| c.iter().any(|x| x == class))
}

/// A live stream resumed after a pause plays at live ("playing") or, when the pause was
/// longer than about a second and a half and the media is still buffered, from where
/// the viewer paused ("behind", with a button to go live). How long the pause lasted
/// depends on how fast the browser answers WebDriver: a loaded machine takes seconds
/// between two key presses.
fn resumed(status: Option<&str>) -> bool {
    matches!(status, Some("playing" | "behind"))
}

/// Waits until the first widget says it plays again after a pause ([`resumed`]).
async fn wait_resumed(browser: &Browser, after: &str) -> Result<()> {
    let widget = Probe::widget();
    wait_until(
        &format!("playback to resume after {after}"),
        REACT,
        || async {
            let now = widget.state(browser).await?;
            Ok(if resumed(now.status.as_deref()) && !now.paused {
                Check::Done(())
            } else {
                Check::NotYet(now.describe())
            })
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn controls_work_by_keyboard_alone() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/", origin.url());

    run_scenario(
        "controls_work_by_keyboard_alone",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let widget = Probe::widget();
            wait_widget_playing(browser, 0).await?;

            in_widget(browser, 0, "root.querySelector('.lucarne').focus();").await?;
            let focus = browser.execute(FOCUS_JS, vec![]).await?;
            ensure!(
                focus["hostFocused"] == true && is(&focus, "div", "lucarne"),
                "focusing the widget's .lucarne root did not put the focus there: {focus}"
            );

            browser.press_keys(&['k']).await?;
            let paused = widget
                .wait_status(browser, "paused", REACT)
                .await
                .context("pressing K on the focused widget")?;
            ensure!(
                paused.paused,
                "status says paused but the video plays: {}",
                paused.describe()
            );
            browser.press_keys(&['k']).await?;
            widget
                .wait_playing(browser, REACT)
                .await
                .context("pressing K a second time")?;
            wait_resumed(browser, "pressing K a second time").await?;

            let muted = "return root.querySelector('video').muted;";
            ensure!(
                in_widget(browser, 0, muted).await? == true,
                "the demo should start muted (autoplay); it is not"
            );
            browser.press_keys(&['m']).await?;
            wait_until("M to unmute the video", REACT, || async {
                let m = in_widget(browser, 0, muted).await?;
                Ok(if m == false {
                    Check::Done(())
                } else {
                    Check::NotYet(format!("video.muted = {m}"))
                })
            })
            .await?;

            // Tab through the controls to play/pause.
            let mut path = vec![];
            let mut reached = false;
            for _ in 0..12 {
                browser.press_keys(&[Key::Tab.into()]).await?;
                let focus = browser.execute(FOCUS_JS, vec![]).await?;
                path.push(format!(
                    "{} {} {}",
                    focus["tag"], focus["classes"], focus["label"]
                ));
                if is(&focus, "button", "play") {
                    reached = true;
                    break;
                }
            }
            ensure!(
                reached,
                "Tab from the widget never reached the play button; focus went {path:?}"
            );

            browser.press_keys(&[Key::Enter.into()]).await?;
            widget
                .wait_status(browser, "paused", REACT)
                .await
                .context("pressing Enter on the focused play button")?;
            let focus = browser.execute(FOCUS_JS, vec![]).await?;
            ensure!(
                focus["label"] == "Play",
                "paused, the focused play button should be labelled \"Play\": {focus}"
            );
            browser.press_keys(&[' ']).await?;
            widget
                .wait_playing(browser, REACT)
                .await
                .context("pressing Space on the focused play button")?;
            wait_resumed(browser, "pressing Space on the focused play button").await?;
            // Space must toggle once, not twice (button and widget shortcut both).
            let settled = widget.watch(browser, Duration::from_secs(1)).await?;
            ensure!(
                settled
                    .samples
                    .iter()
                    .all(|s| resumed(s.status.as_deref()) && !s.paused),
                "Space on the play button should resume playback and stay so: {}",
                settled.describe()
            );
            eprintln!("controls_work_by_keyboard_alone: Tab path {path:?}");
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn csp_blocking_wasm_shows_the_message() -> Result<()> {
    let _one_at_a_time = serial().await;
    let site = ThirdParty::start().await?;
    let origin = Origin::start().await?;
    let s = origin.url();
    let csp = format!(
        "<meta http-equiv=\"Content-Security-Policy\" \
         content=\"script-src 'self' {s} 'unsafe-inline'\">"
    );
    let url = site.page(
        "strict.html",
        &html(
            "A page with a strict CSP",
            &csp,
            &format!("<script src=\"{s}/lucarne.js\" data-src=\"{s}/s/demo\"></script>"),
        ),
    )?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "csp_blocking_wasm_shows_the_message",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let message = wait_until("the widget to show an error", READY, || async {
                let v = in_widget(
                    browser,
                    0,
                    "const alert = root ? root.querySelector('[role=alert]') : null;\n\
                     const r = alert ? alert.getBoundingClientRect() : null;\n\
                     const h = host ? host.getBoundingClientRect() : null;\n\
                     return { host: !!host, status: host ? host.getAttribute('data-status') : null,\n\
                              text: root ? root.textContent : null,\n\
                              alert: alert ? alert.textContent : null,\n\
                              alertW: r ? r.width : 0, alertH: r ? r.height : 0,\n\
                              color: alert ? getComputedStyle(alert).color : null,\n\
                              background: alert ? getComputedStyle(alert).backgroundColor : null,\n\
                              hostH: h ? h.height : 0 };",
                )
                .await?;
                Ok(if v["status"] == "error" {
                    Check::Done(v)
                } else {
                    Check::NotYet(v.to_string())
                })
            })
            .await?;
            let alert = message["alert"].as_str().unwrap_or("");
            ensure!(
                alert.contains("'wasm-unsafe-eval'"),
                "the widget shows status error but not the CSP advice: alert {alert:?}, \
                 shadow root text {:?}",
                message["text"]
            );
            ensure!(
                message["alertW"].as_f64().unwrap_or(0.0) > 100.0
                    && message["alertH"].as_f64().unwrap_or(0.0) > 30.0
                    && message["color"] != message["background"],
                "the CSP message is there but not visible: {message}"
            );
            let statuses = Probe::widget().state(browser).await?;
            ensure!(
                statuses.status.as_deref() == Some("error"),
                "the status left 'error': {}",
                statuses.describe()
            );
            eprintln!("csp_blocking_wasm_shows_the_message: {alert:?}");
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn french_page_shows_french_strings() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/blog/fr.html", origin.url());
    const TEXTS_JS: &str = "const t = (s) => { const e = root.querySelector(s); \
        return e ? { text: e.textContent.trim(), label: e.getAttribute('aria-label') } : null; };\n\
        return { live: t('.badge.live'), unmute: t('.unmute-badge'), play: t('button.play'),\n\
                 mute: t('button.mute'), viewers: t('.counts .viewers') };";

    run_scenario(
        "french_page_shows_french_strings",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            wait_widget_playing(browser, 0).await?;
            let texts = wait_until(
                "the French strings (DIRECT, \"1 spectateur\" / \"N spectateurs\")",
                READY,
                || async {
                    let t = in_widget(browser, 0, TEXTS_JS).await?;
                    let viewers = t["viewers"]["text"].as_str().unwrap_or("");
                    // One viewer reads "1 spectateur", more "N spectateurs".
                    let agrees = match viewers.split_once(' ') {
                        Some(("1", word)) => word == "spectateur",
                        Some((_, word)) => word == "spectateurs",
                        None => false,
                    };
                    Ok(if t["live"]["text"] == "DIRECT" && agrees {
                        Check::Done(t)
                    } else {
                        Check::NotYet(t.to_string())
                    })
                },
            )
            .await?;
            ensure!(
                texts["play"]["label"] == "Pause",
                "playing, the play button should be labelled \"Pause\": {texts}"
            );
            let mute = texts["mute"]["label"].as_str().unwrap_or("");
            ensure!(
                mute == "Activer le son" || mute == "Couper le son",
                "the mute button is labelled {mute:?}, not in French: {texts}"
            );
            if let Some(badge) = texts["unmute"]["text"].as_str() {
                ensure!(
                    badge == "Touchez pour le son",
                    "the unmute badge says {badge:?}, not in French: {texts}"
                );
            }

            browser.click_in_shadow(HOST, 0, "button.play").await?;
            Probe::widget()
                .wait_status(browser, "paused", REACT)
                .await
                .context("clicking Pause on the French page")?;
            let paused = in_widget(browser, 0, TEXTS_JS).await?;
            ensure!(
                paused["play"]["label"] == "Lecture",
                "paused, the play button should be labelled \"Lecture\": {paused}"
            );
            eprintln!("french_page_shows_french_strings: {texts}");
            Ok(())
        },
        || vec![("server.log", origin.log_tail(300))],
    )
    .await
}

/// What an engine does with `play()` on an unmuted video without a user gesture, as the
/// harness runs it (headless, fresh profile).
#[derive(Debug, PartialEq, Eq)]
enum UnmutedAutoplay {
    Allowed,
    /// `play()` rejects with NotAllowedError; muted playback is allowed.
    Refused,
}

fn unmuted_autoplay(engine: Engine) -> UnmutedAutoplay {
    match engine {
        // `--autoplay-policy=no-user-gesture-required` (engine.rs's Chromium flags).
        Engine::Chromium => UnmutedAutoplay::Allowed,
        // `media.autoplay.default = 0` in the profile's prefs (engine.rs).
        Engine::Firefox => UnmutedAutoplay::Allowed,
        // WebKitGTK's default website policy allows autoplay without sound only, as
        // Safari's does (the harness leaves it as it is).
        Engine::Webkit => UnmutedAutoplay::Refused,
    }
}

/// The first widget's video: muted, playing, and whether the unmute badge shows.
const SOUND_JS: &str = "const v = root.querySelector('video');\n\
    return { muted: v.muted, paused: v.paused, badge: !!root.querySelector('.unmute-badge') };";

/// `data-muted="false"`: the widget starts with sound where the engine allows unmuted
/// autoplay (Chromium and Firefox as the harness runs them), with no unmute badge.
/// Where the engine refuses it (WebKit), the widget falls back to playing muted and shows
/// the "tap to unmute" badge; a tap on it brings the sound.
#[tokio::test(flavor = "multi_thread")]
async fn muted_false_starts_with_sound_where_allowed() -> Result<()> {
    let _one_at_a_time = serial().await;
    let site = ThirdParty::start().await?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec!["--embed-origin".into(), site.origin()];
    let origin = Origin::start_with(config).await?;
    let s = origin.url();
    let url = site.page(
        "sound.html",
        &html(
            "Sound on",
            "",
            &format!(
                "<script async src=\"{s}/lucarne.js\" data-src=\"{s}/s/demo\" \
                 data-muted=\"false\"></script>"
            ),
        ),
    )?;
    let browser = Browser::launch_from_env().await?;
    let engine = browser.engine();
    let policy = unmuted_autoplay(engine);

    run_scenario(
        "muted_false_starts_with_sound_where_allowed",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            wait_widget_playing(browser, 0).await?;
            let expect_muted = policy == UnmutedAutoplay::Refused;
            let what = if expect_muted {
                "the muted fallback with the unmute badge"
            } else {
                "sound, with no unmute badge"
            };
            let state = wait_until(
                &format!("{} ({policy:?} unmuted autoplay): {what}", engine.name()),
                REACT,
                || async {
                    let s = in_widget(browser, 0, SOUND_JS).await?;
                    Ok(
                        if s["muted"] == expect_muted
                            && s["badge"] == expect_muted
                            && s["paused"] == false
                        {
                            Check::Done(s)
                        } else {
                            Check::NotYet(s.to_string())
                        },
                    )
                },
            )
            .await?;
            if policy == UnmutedAutoplay::Refused {
                // The badge is the viewer's way to the sound: a tap is the gesture the
                // engine waited for.
                browser
                    .click_in_shadow(HOST, 0, ".unmute-badge")
                    .await
                    .context("tapping the unmute badge")?;
                wait_until(
                    "the tap on the unmute badge to bring the sound",
                    REACT,
                    || async {
                        let s = in_widget(browser, 0, SOUND_JS).await?;
                        Ok(
                            if s["muted"] == false && s["badge"] == false && s["paused"] == false {
                                Check::Done(())
                            } else {
                                Check::NotYet(s.to_string())
                            },
                        )
                    },
                )
                .await?;
            }
            eprintln!(
                "muted_false_starts_with_sound_where_allowed: {} {policy:?}: {state}",
                engine.name()
            );
            Ok(())
        },
        || vec![("server.log", origin.log_tail(100))],
    )
    .await
}
