//! Demuxed audio, as CMAF packagers publish it: a video-only variant whose `AUDIO` group
//! offers English (the default) and French renditions with their own playlists
//! (`ffmpeg -var_stream_map "v:0,agroup:aud a:0,agroup:aud,language:en a:1,…fr"`),
//! embedded on a French page with lucarne's one script tag. The widget plays the video
//! with the French audio beside it, in its own SourceBuffer: the picture moves, the
//! sound is decoded (per engine, as `lucarne_e2e::sound` can see it), and only the
//! French rendition was loaded. A replay of it (14 s of its segments, with
//! `EXT-X-ENDLIST`) plays with sound too, on an English page: the English audio beside
//! each video segment.

use anyhow::{ensure, Result};
use lucarne_e2e::sound::listen_while_playing;
use lucarne_e2e::{embed_page, run_scenario, serial, Browser, FfmpegHls, HlsSource, Origin};

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
    let page = embed_page(
        "A replay",
        &format!("{}/lucarne.js", origin.url()),
        &replay,
        None,
    );
    std::fs::write(stream.dir().join("replay.html"), page)?;
    let url = format!("{}/replay.html", stream.server().url());
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
