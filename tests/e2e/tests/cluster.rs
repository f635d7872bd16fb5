//! A broadcast bigger than one machine: two lucarne-server nodes on one real Redis,
//! behind the real nginx with `deploy/nginx.conf`, and a viewer's widget opened through
//! nginx.
//! - a_node_killed_mid_broadcast_loses_the_viewer_nothing: nodes are killed with SIGKILL
//!   under the widget. First the node holding its low-latency push: the video plays
//!   again within 3 s. That node comes back; then the other one, which by then holds
//!   both the push and the chat socket, is killed: the video is back within 3 s again,
//!   and the chat resumes on the restarted node from Redis with every acknowledged
//!   message (those posted while it was away included), each once and in order.
//! - redis_stopped_for_10_s_keeps_the_video_and_the_chat_comes_back: Redis (keeping its
//!   data, as the deployment runs it) is stopped for 10 s under the widget: the video
//!   plays on without a freeze, the chat says it is reconnecting instead of taking
//!   messages it cannot post, and once Redis is back it resumes with every message
//!   acknowledged before, once, and takes new ones.

use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use lucarne_e2e::cluster::{Cluster, Redis};
use lucarne_e2e::phone::say_once;
use lucarne_e2e::{run_scenario, serial, Browser, ChatSnapshot, ChatView, PlaybackState, Probe};

/// Page load, widget download, first frame, chat welcomed.
const READY: Duration = Duration::from_secs(30);
/// The bar: video plays again within 3 s of the node's death.
const VIDEO_BACK: f64 = 3.0;
/// A dropped chat socket back and resumed (backoff from 0.5 s, with jitter).
const CHAT_BACK: Duration = Duration::from_secs(20);

/// The texts of `s`'s lines that start with `prefix`, in screen order.
fn texts<'a>(s: &'a ChatSnapshot, prefix: &str) -> Vec<&'a str> {
    s.lines
        .iter()
        .filter_map(|l| l.text.as_deref())
        .filter(|t| t.starts_with(prefix))
        .collect()
}

/// The widget's sockets per node: (chat connections, push subscribers).
async fn sockets(cluster: &Cluster, nodes: &[usize]) -> Result<Vec<(usize, f64, f64)>> {
    let mut out = vec![];
    for &i in nodes {
        out.push((
            i,
            cluster.metric(i, "lucarne_chat_connections").await?,
            cluster.metric(i, "lucarne_push_subscribers").await?,
        ));
    }
    Ok(out)
}

/// Watches the widget for 10 s after a node's death: it must play on, with no stretch
/// longer than [`VIDEO_BACK`] without a new frame.
async fn video_comes_back(browser: &Browser, before: &PlaybackState, what: &str) -> Result<()> {
    let watch = Probe::widget()
        .watch(browser, Duration::from_secs(10))
        .await?;
    let frozen = watch.longest_freeze_s();
    eprintln!(
        "cluster: after {what} the video froze at most {frozen:.2} s; {}",
        watch.describe()
    );
    ensure!(
        watch.last().frames > before.frames && !watch.ends_paused(),
        "the video did not play on after {what}: before {}; {}",
        before.describe(),
        watch.describe()
    );
    ensure!(
        frozen <= VIDEO_BACK,
        "the video stalled {frozen:.2} s after {what} (bar: {VIDEO_BACK} s): {}",
        watch.describe()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_killed_mid_broadcast_loses_the_viewer_nothing() -> Result<()> {
    let _one_at_a_time = serial().await;
    let mut cluster = Cluster::start(2).await?;
    let browser = Browser::launch_from_env().await?;
    let page = format!("{}/", cluster.nginx.url());
    let chat_of = |port: u16| format!("ws://127.0.0.1:{port}/chat/demo");
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port()).collect();

    let result = async {
        browser.goto(&page).await?;
        let widget = Probe::widget();
        let chat = ChatView::widget();
        widget
            .wait_playing(&browser, READY)
            .await
            .context("the demo through nginx never played")?;
        chat.wait_online(&browser, READY).await?;

        // 1. The node holding the widget's push dies.
        let seen = sockets(&cluster, &[0, 1]).await?;
        let first = seen
            .iter()
            .find(|s| s.2 >= 1.0)
            .map(|s| s.0)
            .with_context(|| format!("no node counts the widget's push socket: {seen:?}"))?;
        let other = 1 - first;
        let before = widget.state(&browser).await?;
        cluster.nodes[first].stop().await;
        eprintln!(
            "cluster: node {first} killed (SIGKILL); sockets (node, chat, push) were {seen:?}"
        );
        video_comes_back(&browser, &before, "the push node's death").await?;
        chat.wait_online(&browser, CHAT_BACK).await?;

        // 2. It comes back; the other node now holds both of the widget's sockets.
        cluster.nodes[first].restart().await?;
        let seen = sockets(&cluster, &[other]).await?;
        ensure!(
            seen[0].1 >= 1.0 && seen[0].2 >= 1.0,
            "the widget's chat and push should both be on node {other} now: {seen:?}"
        );
        say_once(&chat_of(ports[other]), "Avant", "before-1").await?;
        say_once(&chat_of(ports[first]), "Avant", "before-2").await?;
        chat.wait_for(&browser, "the messages posted before", CHAT_BACK, |s| {
            texts(s, "before-") == ["before-1", "before-2"]
        })
        .await?;

        let before = widget.state(&browser).await?;
        let killed_at = Instant::now();
        cluster.nodes[other].stop().await;
        eprintln!("cluster: node {other} killed (SIGKILL) with the widget's chat and push");
        // Acknowledged by the remaining node while the widget is away.
        for n in 1..=3 {
            say_once(&chat_of(ports[first]), "Pendant", &format!("during-{n}")).await?;
        }
        video_comes_back(&browser, &before, "the chat and push node's death").await?;

        // Chat: back online, everything acknowledged shown once, in order.
        let back = chat
            .wait_for(
                &browser,
                "the chat back, with the messages posted while it was away",
                CHAT_BACK,
                |s| s.online() && texts(s, "during-").len() >= 3,
            )
            .await?;
        ensure!(
            texts(&back, "before-") == ["before-1", "before-2"]
                && texts(&back, "during-") == ["during-1", "during-2", "during-3"],
            "after the resume the widget shows {:?} then {:?}: each message once, in order, \
             was expected",
            texts(&back, "before-"),
            texts(&back, "during-")
        );
        eprintln!(
            "cluster: chat back {:.1} s after the kill with every message once",
            killed_at.elapsed().as_secs_f64()
        );

        // And it goes on: a new message through the balancer reaches the widget.
        say_once(
            &format!("ws://127.0.0.1:{}/chat/demo", cluster.nginx.port()),
            "Après",
            "after-1",
        )
        .await?;
        chat.wait_for(&browser, "a message posted after", CHAT_BACK, |s| {
            texts(s, "after-") == ["after-1"]
        })
        .await?;
        Ok(())
    }
    .await;
    let logs = cluster.logs();
    run_scenario(
        "a_node_killed_mid_broadcast_loses_the_viewer_nothing",
        browser,
        async |_| result,
        || logs,
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_stopped_for_10_s_keeps_the_video_and_the_chat_comes_back() -> Result<()> {
    let _one_at_a_time = serial().await;
    let mut cluster = Cluster::start_on(2, Redis::start_persistent().await?).await?;
    let browser = Browser::launch_from_env().await?;
    let page = format!("{}/", cluster.nginx.url());
    let through_nginx = format!("ws://127.0.0.1:{}/chat/demo", cluster.nginx.port());

    let result = async {
        browser.goto(&page).await?;
        let widget = Probe::widget();
        let chat = ChatView::widget();
        widget
            .wait_playing(&browser, READY)
            .await
            .context("the demo through nginx never played")?;
        chat.wait_online(&browser, READY).await?;
        say_once(&through_nginx, "Avant", "before-1").await?;
        chat.wait_for(&browser, "the message posted before", CHAT_BACK, |s| {
            texts(s, "before-") == ["before-1"]
        })
        .await?;

        let before = widget.state(&browser).await?;
        cluster.redis.stop().await;
        let stopped = Instant::now();
        eprintln!("cluster: redis stopped (SIGTERM)");
        // The chat owns up to it, within seconds.
        let away = chat
            .wait_for(
                &browser,
                "the chat to say it is reconnecting",
                CHAT_BACK,
                |s| !s.online(),
            )
            .await?;
        eprintln!(
            "cluster: the chat said {:?} {:.1} s after the stop",
            away.notes,
            stopped.elapsed().as_secs_f64()
        );
        // The video never needed Redis: it plays on, smoothly, for the rest of the 10 s.
        let rest = Duration::from_secs(10).saturating_sub(stopped.elapsed());
        let watch = widget
            .watch(&browser, rest.max(Duration::from_secs(2)))
            .await?;
        ensure!(
            watch.longest_freeze_s() <= 1.0 && !watch.ends_paused(),
            "the video stalled while Redis was away: {}",
            watch.describe()
        );
        let during = watch.last().clone();
        ensure!(
            during.frames as f64 - before.frames as f64 >= 10.0 * stopped.elapsed().as_secs_f64(),
            "too few frames while Redis was away: {} then {}",
            before.describe(),
            during.describe()
        );

        cluster.redis.restart().await?;
        eprintln!(
            "cluster: redis back after {:.1} s",
            stopped.elapsed().as_secs_f64()
        );
        let back = chat
            .wait_for(
                &browser,
                "the chat back online after Redis",
                CHAT_BACK,
                |s| s.online(),
            )
            .await?;
        ensure!(
            texts(&back, "before-") == ["before-1"],
            "after Redis came back the widget shows {:?}: the message acknowledged before, \
             once, was expected",
            texts(&back, "before-")
        );
        eprintln!(
            "cluster: chat back {:.1} s after the stop",
            stopped.elapsed().as_secs_f64()
        );
        say_once(&through_nginx, "Après", "after-1").await?;
        chat.wait_for(&browser, "a message posted after", CHAT_BACK, |s| {
            texts(s, "after-") == ["after-1"] && texts(s, "before-") == ["before-1"]
        })
        .await?;
        Ok(())
    }
    .await;
    let logs = cluster.logs();
    run_scenario(
        "redis_stopped_for_10_s_keeps_the_video_and_the_chat_comes_back",
        browser,
        async |_| result,
        || logs,
    )
    .await
}
