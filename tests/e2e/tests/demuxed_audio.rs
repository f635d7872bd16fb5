//! Demuxed audio, as CMAF packagers publish it: a video-only variant whose `AUDIO` group
//! offers English (the default) and French renditions with their own playlists
//! (`ffmpeg -var_stream_map "v:0,agroup:aud a:0,agroup:aud,language:en a:1,…fr"`),
//! embedded on a French page with lucarne's one script tag. The widget plays the video
//! with the French audio beside it, in its own SourceBuffer: the picture moves, the
//! sound is decoded (per engine, as `lucarne_e2e::sound` can see it), and only the
//! French rendition was loaded. A replay of it (14 s of its segments, with
//! `EXT-X-ENDLIST`) plays with sound too, on an English page: the English audio beside
//! each video segment; so does one whose third video segment is an `EXT-X-GAP`, to
//! its end: what follows the gap keeps its place on the timeline, and so its sound.

use anyhow::{ensure, Context, Result};
use lucarne_e2e::sound::listen_while_playing;
use lucarne_e2e::{embed_page, run_scenario, serial, Browser, FfmpegHls, HlsSource, Origin, Probe};
use std::path::PathBuf;
use std::time::Duration;

/// What a failed test leaves behind: both servers' logs and every request the stream's
/// origin answered.
fn logs(origin: &Origin, stream: &FfmpegHls) -> Vec<(&'static str, String)> {
    vec![
        ("server.log", origin.log_tail(100)),
        ("ffmpeg.log", stream.log_tail(50)),
        (
            "requests.txt",
            format!("{:#?}", stream.server().faults().served()),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn demuxed_audio_plays_with_sound_in_the_pages_language() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let stream = FfmpegHls::start(HlsSource::DemuxedAudio).await?;
    let page = embed_page(
        "Un blog",
        &format!("{}/lucarne.js", origin.url()),
        &stream.url(),
        None,
    )
    .replace("<html lang=\"en\">", "<html lang=\"fr\">");
    ensure!(page.contains("lang=\"fr\""), "the page is not French");
    std::fs::write(stream.dir().join("embed.html"), page)?;
    let url = format!("{}/embed.html", stream.server().url());
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "demuxed_audio_plays_with_sound_in_the_pages_language",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let listened = listen_while_playing(browser, "the stream with demuxed audio").await?;
            let (watch, heard) = (&listened.watch, &listened.heard);
            ensure!(
                watch.last().error.is_none(),
                "the widget shows an error: {}",
                watch.describe()
            );
            listened.expect_audio_decoded(browser.engine())?;

            let served = stream.server().faults().served();
            let segments_of = |lang: &str| {
                let prefix = format!("/hls/{lang}/seg");
                served
                    .iter()
                    .filter(|s| s.path.starts_with(&prefix))
                    .count()
            };
            let (fr, en) = (segments_of("fr"), segments_of("en"));
            ensure!(
                fr >= 3 && en == 0,
                "the French page should play the French audio only: {fr} French segments, \
                 {en} English ones"
            );
            eprintln!(
                "demuxed_audio: {fr} French audio segments; heard {}; {}",
                heard.raw,
                watch.describe()
            );
            Ok(())
        },
        || logs(&origin, &stream),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_with_demuxed_audio_plays_with_sound() -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let stream = FfmpegHls::start(HlsSource::DemuxedAudio).await?;
    let replay = stream.record_replay(14).await?;
    let url = replay_page(&origin, &stream, "A replay", &replay, "replay.html")?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        "a_replay_with_demuxed_audio_plays_with_sound",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let listened = listen_while_playing(browser, "the replay with demuxed audio").await?;
            let watch = &listened.watch;
            ensure!(
                watch.last().error.is_none(),
                "the widget shows an error: {}",
                watch.describe()
            );
            listened.expect_audio_decoded(browser.engine())?;
            let served = stream.server().faults().served();
            let count = |prefix: &str| served.iter().filter(|s| s.path.starts_with(prefix)).count();
            let (en, fr, live) = (
                count("/hls/replay/en/seg"),
                count("/hls/replay/fr/seg"),
                count("/hls/en/"),
            );
            ensure!(
                en >= 2 && fr == 0 && live == 0,
                "the English page should load the replay's English audio only: {en} English \
                 segments, {fr} French ones, {live} requests for the live audio"
            );
            eprintln!(
                "demuxed_audio replay: {en} English audio segments; heard {}; {}",
                listened.heard.raw,
                watch.describe()
            );
            Ok(())
        },
        || logs(&origin, &stream),
    )
    .await
}

/// Records, in `window.seeksBeforePlay`, each time a script moves a media element's
/// playhead before it has played anything: where to, and its readyState then.
const SEEK_RECORDER: &str = r#"<script>
window.seeksBeforePlay = [];
(() => {
  const d = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'currentTime');
  Object.defineProperty(HTMLMediaElement.prototype, 'currentTime', {
    configurable: true, enumerable: d.enumerable, get: d.get,
    set(t) {
      if (this.played.length === 0) {
        window.seeksBeforePlay.push({ to: t, readyState: this.readyState });
      }
      d.set.call(this, t);
    },
  });
})();
</script>"#;

/// Writes an English page `file` embedding `replay` beside the stream, with
/// [`SEEK_RECORDER`], and returns its URL.
fn replay_page(
    origin: &Origin,
    stream: &FfmpegHls,
    title: &str,
    replay: &str,
    file: &str,
) -> Result<String> {
    let page = embed_page(title, &format!("{}/lucarne.js", origin.url()), replay, None).replacen(
        "<head>",
        &format!("<head>{SEEK_RECORDER}"),
        1,
    );
    std::fs::write(stream.dir().join(file), page)?;
    Ok(format!("{}/{file}", stream.server().url()))
}

/// The folder of the replay's `rendition` (`video`, `en`, `fr`) on disk.
fn rendition_dir(stream: &FfmpegHls, replay: &str, rendition: &str) -> Result<PathBuf> {
    let path = replay
        .strip_prefix(&stream.server().url())
        .and_then(|p| p.strip_suffix("master.m3u8"))
        .context("the replay's URL")?;
    Ok(stream
        .dir()
        .join(path.trim_start_matches('/'))
        .join(rendition))
}

/// The segments of the replay's `rendition` playlist: (start in seconds from the
/// replay's start, URI).
fn segments(stream: &FfmpegHls, replay: &str, rendition: &str) -> Result<Vec<(f64, String)>> {
    let dir = rendition_dir(stream, replay, rendition)?;
    let text = std::fs::read_to_string(dir.join("index.m3u8"))?;
    let (mut out, mut start, mut duration) = (Vec::new(), 0.0, 0.0);
    for line in text.lines() {
        if let Some(d) = line.strip_prefix("#EXTINF:") {
            duration = d.split(',').next().unwrap_or("").parse()?;
        } else if !line.is_empty() && !line.starts_with('#') {
            out.push((start, line.to_owned()));
            start += duration;
        }
    }
    Ok(out)
}

/// Marks the `n`th segment (from 0) of the replay's video playlist `EXT-X-GAP` and
/// deletes its file, as a packager does for a segment the encoder never made; returns
/// its URI.
fn make_a_gap(stream: &FfmpegHls, replay: &str, n: usize) -> Result<String> {
    let dir = rendition_dir(stream, replay, "video")?;
    let playlist = dir.join("index.m3u8");
    let text = std::fs::read_to_string(&playlist)?;
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let at = (lines.iter().enumerate())
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
        .nth(n)
        .map(|(i, _)| i)
        .context("the replay has too few video segments")?;
    let uri = lines[at].clone();
    lines.insert(at, "#EXT-X-GAP".into());
    std::fs::write(&playlist, lines.join("\n") + "\n")?;
    std::fs::remove_file(dir.join(&uri))?;
    Ok(uri)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replay_with_a_gap_plays_past_it_to_its_end_with_sound() -> Result<()> {
    replay_with_a_gap("a_replay_with_a_gap_plays_past_it_to_its_end_with_sound", 2).await
}

/// The gap first: the replay begins at its first segment (its time 0), with no hole to
/// seek past before the first frame. Such a seek hung WebKitGTK's page: after `play()`,
/// its main thread waited on the media pipeline for good, and the harness said "the engine
/// hung its page, not a script".
#[tokio::test(flavor = "multi_thread")]
async fn a_replay_that_opens_on_a_gap_plays_from_its_first_segment_to_its_end() -> Result<()> {
    replay_with_a_gap(
        "a_replay_that_opens_on_a_gap_plays_from_its_first_segment_to_its_end",
        0,
    )
    .await
}

/// Records a replay of the demuxed-audio stream, makes its video segment `n` a gap, and
/// checks that it is heard, plays to its end, never asks for the gap, and loads all of
/// its sound but what starts in the gap.
async fn replay_with_a_gap(name: &str, n: usize) -> Result<()> {
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let stream = FfmpegHls::start(HlsSource::DemuxedAudio).await?;
    let replay = stream.record_replay(14).await?;
    let video = segments(&stream, &replay, "video")?;
    let gap = make_a_gap(&stream, &replay, n)?;
    let gap_span = (video[n].0, video[n + 1].0);
    let english = segments(&stream, &replay, "en")?;
    let url = replay_page(&origin, &stream, "A replay with a gap", &replay, "gap.html")?;
    let browser = Browser::launch_from_env().await?;

    run_scenario(
        name,
        browser,
        async |browser| {
            browser.goto(&url).await?;
            let listened = listen_while_playing(browser, "the replay with a gap").await?;
            listened.expect_audio_decoded(browser.engine())?;
            // Its media is there from time 0 (the audio from 2.7 ms when it opens on the
            // gap): no seek before the first frame. A seek of those 2.7 ms, then play(),
            // hung WebKitGTK's page in CI.
            let seeks = browser
                .execute("return window.seeksBeforePlay;", vec![])
                .await?;
            ensure!(
                seeks.as_array().is_some_and(Vec::is_empty),
                "the replay sought before its first frame: {seeks}"
            );
            let end = Probe::widget()
                .wait_status(browser, "ended", Duration::from_secs(30))
                .await
                .context("the replay with a gap never reached its end")?;
            ensure!(
                end.error.is_none(),
                "the widget shows an error: {}",
                end.describe()
            );
            let duration: f64 = browser
                .execute(
                    "const h = document.querySelector('.lucarne-host'); \
                     return h.shadowRoot.querySelector('video').duration;",
                    vec![],
                )
                .await?
                .as_f64()
                .context("the video's duration")?;
            ensure!(
                end.current_time >= duration - 0.5,
                "ended at {:.2} s of {duration:.2} s: {}",
                end.current_time,
                end.describe()
            );
            let served = stream.server().faults().served();
            ensure!(
                !served
                    .iter()
                    .any(|s| s.path.ends_with(&format!("/video/{gap}"))),
                "the gap's segment {gap} was requested"
            );
            // The sound goes on to the end: every English audio segment was loaded but
            // those that start in the gap (before the fix, what followed the gap was
            // placed a segment early and the last one never loaded).
            let loaded =
                |uri: &str| (served.iter()).any(|s| s.path.ends_with(&format!("/en/{uri}")));
            let missing: Vec<&String> = (english.iter())
                .filter(|(start, _)| !(gap_span.0 <= *start && *start < gap_span.1))
                .map(|(_, uri)| uri)
                .filter(|uri| !loaded(uri))
                .collect();
            ensure!(
                missing.is_empty(),
                "the sound stops before the replay's end: English audio {missing:?} never \
                 loaded"
            );
            eprintln!(
                "demuxed_audio gap at segment {n}: ended at {:.2} s of {duration:.2}; heard {}",
                end.current_time, listened.heard.raw
            );
            Ok(())
        },
        || logs(&origin, &stream),
    )
    .await
}
