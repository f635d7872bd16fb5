//! Demuxed audio, as CMAF packagers publish it: a video-only variant whose `AUDIO` group
//! offers English (the default) and French renditions with their own playlists
//! (`ffmpeg -var_stream_map "v:0,agroup:aud a:0,agroup:aud,language:en a:1,…fr"`),
//! embedded on a French page with lucarne's one script tag. The widget plays the video
//! with the French audio beside it, in its own SourceBuffer: the picture moves, the
//! sound is decoded (per engine, as `lucarne_e2e::sound` can see it), and only the
//! French rendition was loaded.

use std::time::Duration;

use anyhow::{ensure, Context, Result};
use lucarne_e2e::sound::{audio, expect_audio_decoded, LISTEN_JS};
use lucarne_e2e::{embed_page, run_scenario, serial, Browser, FfmpegHls, HlsSource, Origin, Probe};

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
            let widget = Probe::widget();
            widget
                .wait_playing(browser, Duration::from_secs(20))
                .await
                .context("the stream with demuxed audio never played")?;
            let before = audio(browser, false).await?;
            // The viewer unmutes with the widget's badge; the click also builds the
            // Web Audio graph that listens to the video.
            browser.execute(LISTEN_JS, vec![]).await?;
            browser
                .click_in_shadow(".lucarne-host", 0, ".unmute-badge")
                .await?;
            let heard = audio(browser, true).await?;
            let watch = widget.watch(browser, Duration::from_secs(5)).await?;
            let after = audio(browser, false).await?;
            watch.expect_smooth()?;
            ensure!(
                watch.frames_grown() > 30 && watch.advanced_s() > 3.0,
                "the stream does not play on: {}",
                watch.describe()
            );
            ensure!(
                watch.last().error.is_none(),
                "the widget shows an error: {}",
                watch.describe()
            );
            expect_audio_decoded(browser.engine(), &heard, &before, &after)?;

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
        || {
            vec![
                ("server.log", origin.log_tail(100)),
                ("ffmpeg.log", stream.log_tail(50)),
                (
                    "requests.txt",
                    format!("{:#?}", stream.server().faults().served()),
                ),
            ]
        },
    )
    .await
}
