//! abr: adaptive bitrate in the widget (issue 13, items 1 and 6). A live stream of three
//! renditions made by ffmpeg with `-var_stream_map` (960×540 at 2.5 Mbit/s, 640×360 at
//! 800 kbit/s, 320×180 at 250 kbit/s; fMP4, 2 s segments) on another origin, reached
//! through a [`Throttle`]: a link whose rate the test changes while the page plays.
//! The playing height is what the page is told: `detail.height` of the widget's
//! `lucarne:status` events (checked against the `<video>`'s `data-height`); which
//! rendition each segment came from is in the stream server's request log.
//! - a_link_falling_from_4_to_1_mbits_steps_down_without_a_stall_and_back_up_when_it_recovers:
//!   on 4 Mbit/s the widget climbs to 540; at 1 Mbit/s it loads a lower rendition within
//!   three segments of the drop and plays it without freezing more than 1 s; back at
//!   4 Mbit/s it returns to 540.
//! - max_height_360_keeps_a_fast_link_on_640x360: `data-max-height="360"` on a link that
//!   carries 540: 360 plays, and not one segment of 540 is loaded.
//! - the_quality_menu_offers_each_height_and_plays_the_one_picked: the controls' menu
//!   (a `<select>`, reached by Tab) offers Auto and 540p, 360p, 180p; 180p picked plays
//!   180 on a fast link, and Auto climbs back to 540.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lucarne_e2e::ffmpeg::LADDER;
use lucarne_e2e::wait::POLL;
use lucarne_e2e::{
    run_scenario, serial, wait_until, Browser, Check, FfmpegHls, HlsSource, Origin, PlaybackState,
    Probe, Throttle, Watch,
};
use serde_json::Value;

const MBIT: u64 = 1_000_000;
/// Page load, widget download, first frame (ffmpeg encodes three renditions meanwhile).
const READY: Duration = Duration::from_secs(30);

/// The lucarne origin (for the loader), ffmpeg's ladder, the slow link in front of it
/// and the page, served by the stream's origin but fetching the stream through the link.
struct Setup {
    origin: Origin,
    stream: FfmpegHls,
    link: Throttle,
    page: String,
}

impl Setup {
    /// `attributes`: more `data-*` on the script tag.
    async fn start(bps: u64, attributes: &str) -> Result<Self> {
        let origin = Origin::start().await?;
        let mut stream = FfmpegHls::start(HlsSource::Ladder).await?;
        // A window as long as the hold-back and more: the widget starts three segments
        // behind the edge, as on a stream that has been live for a while.
        stream.wait_for_segments(5, Duration::from_secs(30)).await?;
        let upstream = SocketAddr::from(([127, 0, 0, 1], stream.server().port()));
        let link = Throttle::start(upstream, bps).await?;
        // The listener goes before the loader, so no event is missed.
        let html = format!(
            "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\"><title>ABR</title>\n\
             <script>performance.setResourceTimingBufferSize(5000); window.__heights = []; window.__at = []; \
             document.addEventListener('lucarne:status', e => {{ window.__heights.push(e.detail.height); \
             const h = document.querySelector('.lucarne-host'); \
             const v = h && h.shadowRoot ? h.shadowRoot.querySelector('video') : null; \
             window.__at.push(e.detail.height + ' px, data-height ' + (v ? v.getAttribute('data-height') : '-') + \
             ' at ' + performance.now().toFixed(0) + ' ms'); }}); window.__console = []; \
             for (const k of ['log', 'warn']) {{ const f = console[k]; console[k] = (...a) => \
             {{ window.__console.push((Date.now() / 1000).toFixed(1) + ' ' + a.join(' ')); \
             f.apply(console, a); }}; }}</script></head>\n<body>\n\
             <h1>A live stream of three renditions</h1>\n\
             <script src=\"{}/lucarne.js\" data-stream=\"{}{}\"{attributes}></script>\n</body>\n</html>\n",
            origin.url(),
            link.url(),
            stream.path()
        );
        std::fs::write(stream.dir().join("abr.html"), html)?;
        let page = format!("{}/abr.html", stream.server().url());
        Ok(Self {
            origin,
            stream,
            link,
            page,
        })
    }

    fn artifacts(&self) -> Vec<(&'static str, String)> {
        vec![
            ("server.log", self.origin.log_tail(200)),
            ("ffmpeg.log", self.stream.log_tail(100)),
            ("segments.txt", format!("{:?}", self.segment_loads(0))),
        ]
    }

    /// Requests for media segments from the `from`-th request the stream's origin
    /// answered on: (rendition, sequence number), in order (0 is 960×540).
    fn segment_loads(&self, from: usize) -> Vec<(usize, u64)> {
        self.stream
            .server()
            .faults()
            .served()
            .iter()
            .skip(from)
            .filter_map(|s| segment(&s.path))
            .collect()
    }

    /// How many requests the stream's origin has answered.
    fn requests(&self) -> usize {
        self.stream.server().faults().served().len()
    }
}

/// `/hls/v1/seg23.m4s` → (1, 23).
fn segment(path: &str) -> Option<(usize, u64)> {
    let rest = path.strip_prefix("/hls/v")?;
    let (rendition, file) = rest.split_once('/')?;
    let msn = file.strip_prefix("seg")?.strip_suffix(".m4s")?;
    Some((rendition.parse().ok()?, msn.parse().ok()?))
}

/// What the page says the picture's height is.
#[derive(Debug, Clone)]
struct Height {
    /// `detail.height` of the last `lucarne:status` event (0 before any).
    event: u64,
    /// The `<video>`'s `data-height` (0 without).
    attribute: u64,
    /// Every `detail.height` announced, in order.
    announced: Vec<u64>,
    /// The last events as the page's listener saw them, with the attribute at that
    /// moment (for a failure's message).
    at: Vec<String>,
}

const HEIGHT_JS: &str = r#"
const host = document.querySelector('.lucarne-host');
const v = host && host.shadowRoot ? host.shadowRoot.querySelector('video') : null;
return { attribute: v ? v.getAttribute('data-height') : null, announced: window.__heights || [],
         at: (window.__at || []).slice(-8) };
"#;

async fn height(browser: &Browser) -> Result<Height> {
    let v: Value = browser.execute(HEIGHT_JS, vec![]).await?;
    let announced: Vec<u64> = v["announced"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_u64).collect())
        .unwrap_or_default();
    Ok(Height {
        event: announced.last().copied().unwrap_or(0),
        attribute: v["attribute"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        announced,
        at: v["at"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default(),
    })
}

/// Samples playback and the height every [`POLL`] for `duration`, or until `stop`
/// says so. The height is what the events announced; the attribute must agree.
async fn observe(
    browser: &Browser,
    duration: Duration,
    stop: impl Fn(&Height) -> bool,
) -> Result<(Watch, Vec<(f64, u64)>)> {
    let widget = Probe::widget();
    let start = Instant::now();
    let mut samples: Vec<PlaybackState> = Vec::new();
    let mut heights = Vec::new();
    let mut disagreed = false;
    loop {
        let state = widget.state(browser).await?;
        let h = height(browser).await?;
        heights.push((start.elapsed().as_secs_f64(), h.event));
        samples.push(state);
        // Both are written in the same call; one sample that disagrees is logged (seen
        // once on WebKit in CI), two in a row fail.
        let agree = h.attribute == 0 || h.event == 0 || h.attribute == h.event;
        ensure!(
            agree || !disagreed,
            "the status event says {} px, the <video>'s data-height {} px, {POLL:?} apart \
             too; the last events: {:?}",
            h.event,
            h.attribute,
            h.at
        );
        if !agree {
            eprintln!(
                "abr: the status event said {} px, data-height {} px; the last events: {:?}",
                h.event, h.attribute, h.at
            );
        }
        disagreed = !agree;
        if stop(&h) || start.elapsed() >= duration {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    Ok((Watch { samples }, heights))
}

/// When each height was first seen, as (seconds, height) at each change.
fn changes(heights: &[(f64, u64)]) -> Vec<(f64, u64)> {
    let mut out: Vec<(f64, u64)> = Vec::new();
    for &(t, h) in heights {
        if out.last().is_none_or(|&(_, last)| last != h) {
            out.push((t, h));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_link_falling_from_4_to_1_mbits_steps_down_without_a_stall_and_back_up_when_it_recovers(
) -> Result<()> {
    let _one_at_a_time = serial().await;
    let setup = Setup::start(4 * MBIT, "").await?;
    let browser = Browser::launch_from_env().await?;
    let top = u64::from(LADDER[0].1);
    let name =
        "a_link_falling_from_4_to_1_mbits_steps_down_without_a_stall_and_back_up_when_it_recovers";
    run_scenario(
        name,
        browser,
        async |browser| {
            let result = drop_and_recover(browser, &setup, top).await;
            save_console(browser, name).await;
            result
        },
        || setup.artifacts(),
    )
    .await
}

/// The 4 → 1 → 4 Mbit/s schedule, with `top` the highest rendition's height.
async fn drop_and_recover(browser: &Browser, setup: &Setup, top: u64) -> Result<()> {
    browser.goto(&setup.page).await?;
    Probe::widget()
        .wait_playing(browser, READY)
        .await
        .context("the three-rendition stream never played")?;
    let (_, climb) = observe(browser, Duration::from_secs(60), |h| h.event == top).await?;
    ensure!(
        climb.last().is_some_and(|&(_, h)| h == top),
        "on a 4 Mbit/s link the widget never played 960×540 in 60 s: heights {:?}, \
         segments {:?}",
        changes(&climb),
        setup.segment_loads(0)
    );
    eprintln!("abr: 4 Mbit/s: heights {:?}", changes(&climb));
    // And stays there: the link carries it.
    let (steady, held) = observe(browser, Duration::from_secs(8), |_| false).await?;
    steady.expect_smooth()?;
    ensure!(
        held.iter().all(|&(_, h)| h == top),
        "on a 4 Mbit/s link 960×540 did not last: heights {:?}; renditions loaded {}",
        changes(&held),
        rendition_trace(&setup.segment_loads(0))
    );

    // The drop.
    let edge = setup
        .stream
        .playlist()?
        .last_sequence()
        .context("empty playlist")?;
    let before = setup.requests();
    setup.link.set_bps(MBIT);
    let (low, heights) = observe(browser, Duration::from_secs(40), |_| false).await?;
    let loads = setup.segment_loads(before);
    let first_lower = loads
        .iter()
        .find(|&&(r, _)| r != 0)
        .copied()
        .with_context(|| format!("at 1 Mbit/s no lower rendition was loaded in 40 s: {loads:?}"))?;
    ensure!(
        first_lower.1 <= edge + 3,
        "the first lower segment was {first_lower:?}, more than three segments after \
         the drop (the edge was {edge}): {loads:?}"
    );
    let down = changes(&heights);
    let down_at = down
        .iter()
        .find(|&&(_, h)| h != 0 && h < top)
        .map(|&(t, _)| t)
        .with_context(|| format!("at 1 Mbit/s 540 kept playing: heights {down:?}"))?;
    ensure!(
        low.longest_freeze_s() <= 1.0,
        "the picture froze {:.1} s after the drop: {}; heights {down:?}; segments {loads:?}",
        low.longest_freeze_s(),
        low.describe()
    );
    ensure!(
        low.frames_grown() as f64 >= 10.0 * low.wall_s(),
        "too few frames at 1 Mbit/s: {}",
        low.describe()
    );
    let settled = heights.last().map_or(0, |&(_, h)| h);
    ensure!(
        settled != 0 && settled < top,
        "40 s into 1 Mbit/s the widget plays {settled} px: heights {down:?}"
    );
    eprintln!(
        "abr: 1 Mbit/s: first lower segment {first_lower:?} (edge at the drop {edge}), \
         playing {:.1} s after the drop; heights {down:?}; longest freeze {:.2} s",
        down_at,
        low.longest_freeze_s()
    );

    // The recovery.
    setup.link.set_bps(4 * MBIT);
    let (high, heights) = observe(browser, Duration::from_secs(90), |h| h.event == top).await?;
    let up = changes(&heights);
    ensure!(
        heights.last().is_some_and(|&(_, h)| h == top),
        "back on 4 Mbit/s the widget did not return to 960×540 in 90 s: heights {up:?}; \
         segments {:?}",
        setup.segment_loads(before)
    );
    ensure!(
        high.longest_freeze_s() <= 1.0,
        "the picture froze {:.1} s after the link recovered: {}",
        high.longest_freeze_s(),
        high.describe()
    );
    eprintln!(
        "abr: 4 Mbit/s again: 960×540 after {:.1} s; heights {up:?}",
        up.last().map_or(0.0, |&(t, _)| t)
    );
    eprintln!(
        "abr: renditions loaded, segment by segment from the start (0 = 960×540, * = \
         abandoned and loaded again lower): {}",
        rendition_trace(&setup.segment_loads(0))
    );
    Ok(())
}

/// The rendition of each segment loaded, as digits: "2 2 0 0 0*1 1" (an abandoned
/// request followed by the same segment from another rendition shows as `0*1`).
fn rendition_trace(loads: &[(usize, u64)]) -> String {
    let mut out = String::new();
    for (i, &(r, msn)) in loads.iter().enumerate() {
        let again = i > 0 && loads[i - 1].1 == msn;
        if i > 0 {
            out.push(if again { '*' } else { ' ' });
        }
        out.push_str(&r.to_string());
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn max_height_360_keeps_a_fast_link_on_640x360() -> Result<()> {
    let _one_at_a_time = serial().await;
    let setup = Setup::start(8 * MBIT, " data-max-height=\"360\"").await?;
    let browser = Browser::launch_from_env().await?;
    let cap = u64::from(LADDER[1].1);
    let name = "max_height_360_keeps_a_fast_link_on_640x360";
    run_scenario(
        name,
        browser,
        async |browser| {
            let result = capped(browser, &setup, cap).await;
            save_console(browser, name).await;
            result
        },
        || setup.artifacts(),
    )
    .await
}

/// `data-max-height` at `cap` on a fast link.
async fn capped(browser: &Browser, setup: &Setup, cap: u64) -> Result<()> {
    browser.goto(&setup.page).await?;
    Probe::widget()
        .wait_playing(browser, READY)
        .await
        .context("the three-rendition stream never played")?;
    let reached = wait_until(
        "the widget to play 640×360",
        Duration::from_secs(60),
        || async {
            let h = height(browser).await?;
            Ok(if h.event == cap {
                Check::Done(h)
            } else {
                Check::NotYet(format!("{h:?}"))
            })
        },
    )
    .await?;
    let (watch, heights) = observe(browser, Duration::from_secs(20), |_| false).await?;
    watch.expect_smooth()?;
    let h = height(browser).await?;
    ensure!(
        h.announced.iter().all(|&x| x <= cap) && heights.iter().all(|&(_, x)| x == cap),
        "data-max-height=360 and yet: announced {:?} (first at 360: {:?})",
        h.announced,
        reached.announced
    );
    let loads = setup.segment_loads(0);
    ensure!(
        !loads.is_empty() && loads.iter().all(|&(r, _)| r != 0),
        "a 960×540 segment was loaded despite data-max-height=360: {loads:?}"
    );
    eprintln!(
        "abr: max-height 360 on 8 Mbit/s: heights {:?}, {} segments, none of 540",
        h.announced,
        loads.len()
    );
    Ok(())
}

/// Writes what the page logged (the widget's console warnings included) to the test's
/// artifacts, `page-console.txt`, and the browser's own timing of each segment request
/// (`segments-timing.txt`: start, first byte and end in ms, bytes, URL; what the link
/// really gave the page), whatever the outcome.
async fn save_console(browser: &Browser, name: &str) {
    const TIMING: &str = "return performance.getEntriesByType('resource')\
        .filter(e => /\\.m4s/.test(e.name))\
        .map(e => [e.startTime, e.responseStart, e.responseEnd]\
        .map(t => t.toFixed(0)).concat([e.encodedBodySize, e.name]).join(' ')).join('\\n');";
    let dir = lucarne_e2e::workspace::artifacts_dir(name);
    let _ = std::fs::create_dir_all(&dir);
    for (file, script) in [
        (
            "page-console.txt",
            "return (window.__console || []).join('\\n');",
        ),
        ("segments-timing.txt", TIMING),
    ] {
        if let Ok(v) = browser.execute(script, vec![]).await {
            let _ = std::fs::write(dir.join(file), v.as_str().unwrap_or_default());
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_quality_menu_offers_each_height_and_plays_the_one_picked() -> Result<()> {
    let _one_at_a_time = serial().await;
    let setup = Setup::start(8 * MBIT, "").await?;
    let browser = Browser::launch_from_env().await?;
    let name = "the_quality_menu_offers_each_height_and_plays_the_one_picked";
    run_scenario(
        name,
        browser,
        async |browser| {
            let result = pick_a_height(browser, &setup).await;
            save_console(browser, name).await;
            result
        },
        || setup.artifacts(),
    )
    .await
}

/// The menu as the page shows it: its options' labels, the selected one's value,
/// whether Tab reaches it and its accessible name.
const MENU_JS: &str = r#"
const host = document.querySelector('.lucarne-host');
const s = host && host.shadowRoot ? host.shadowRoot.querySelector('select.quality') : null;
if (!s) return null;
if (arguments[0] !== null) {
  s.value = arguments[0];
  s.dispatchEvent(new Event('change', { bubbles: true }));
}
return { labels: Array.from(s.options, o => o.textContent), value: s.value,
         tabbable: s.tabIndex >= 0 && !s.disabled, name: s.getAttribute('aria-label') };
"#;

/// The viewer picks 180p in the menu, then Auto again.
async fn pick_a_height(browser: &Browser, setup: &Setup) -> Result<()> {
    let menu = |pick: Option<&'static str>| async move {
        browser
            .execute(MENU_JS, vec![pick.map_or(Value::Null, Value::from)])
            .await
    };
    browser.goto(&setup.page).await?;
    Probe::widget()
        .wait_playing(browser, READY)
        .await
        .context("the three-rendition stream never played")?;
    let shown = menu(None).await?;
    let labels: Vec<&str> = shown["labels"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    ensure!(
        labels == ["Auto", "540p", "360p", "180p"] && shown["value"] == "0",
        "the quality menu should offer Auto (selected) and each height, tallest first: {shown}"
    );
    ensure!(
        shown["tabbable"] == true && shown["name"] == "Quality",
        "the quality menu must be reachable by Tab and named: {shown}"
    );
    let lowest = u64::from(LADDER[2].1);
    menu(Some("180")).await?;
    let (watch, heights) = observe(browser, Duration::from_secs(40), |h| h.event == lowest).await?;
    ensure!(
        heights.last().is_some_and(|&(_, h)| h == lowest),
        "180p picked on an 8 Mbit/s link, and yet: heights {:?}",
        changes(&heights)
    );
    ensure!(
        watch.longest_freeze_s() <= 1.0,
        "the switch froze the picture: {}",
        watch.describe()
    );
    let top = u64::from(LADDER[0].1);
    menu(Some("0")).await?;
    let (_, heights) = observe(browser, Duration::from_secs(60), |h| h.event == top).await?;
    ensure!(
        heights.last().is_some_and(|&(_, h)| h == top),
        "back on Auto on an 8 Mbit/s link, 960×540 did not come back: heights {:?}",
        changes(&heights)
    );
    eprintln!(
        "abr: the menu's 180p, then Auto: heights {:?}",
        changes(&heights)
    );
    Ok(())
}
