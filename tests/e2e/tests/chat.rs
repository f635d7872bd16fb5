//! chat: two viewers on the demo page of one origin, each in their own browser (own
//! profile, so own identity and name). What one does in the chat layer, the other
//! sees: a message, hearts, the viewer count (which drops when one of them
//! navigates away); and messages made of HTML show as text and run nothing. The page's
//! `lucarne:chat` events go on after the room restarts in a new epoch.
//!
//! Typing is real WebDriver key input into the widget's shadow root, so keyboard
//! handling between the send box and the player is part of what is tested.

use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use lucarne_e2e::chat::ChatEvent;
use lucarne_e2e::{
    finish_viewers, serial, Browser, ChatLine, ChatSnapshot, ChatView, Origin, OriginConfig,
};

/// Page load, widget download, chat socket welcomed.
const READY: Duration = Duration::from_secs(20);
/// A dropped chat socket back and welcomed (backoff from 0.5 s, doubling, with jitter).
const RECONNECT: Duration = Duration::from_secs(30);
/// From one viewer's click to the other viewer's screen, on one machine.
const DELIVERY: Duration = Duration::from_secs(5);
/// The viewer count is pushed at most once a second.
const COUNT: Duration = Duration::from_secs(10);

/// Opens the demo page of a fresh origin in two fresh browsers ("a" and "b"), runs
/// `scenario`, and saves both viewers' screens and the server log on failure.
async fn two_viewers<F>(name: &str, scenario: F) -> Result<()>
where
    F: AsyncFnOnce(&Browser, &Browser) -> Result<()>,
{
    let _one_at_a_time = serial().await;
    let origin = Origin::start().await?;
    let a = Browser::launch_from_env().await?;
    let b = match Browser::launch_from_env().await {
        Ok(b) => b,
        Err(e) => {
            let _ = a.close().await;
            return Err(e);
        }
    };
    let url = format!("{}/", origin.url());
    let result = async {
        a.goto(&url).await.context("viewer A")?;
        b.goto(&url).await.context("viewer B")?;
        scenario(&a, &b).await
    }
    .await;
    let logs = vec![("server.log", origin.log_tail(300))];
    finish_viewers(name, vec![("a", a), ("b", b)], result, logs).await
}

/// Both viewers answer the name prompt: A is "Ada", B is "Bruno".
async fn pick_names(chat: ChatView, a: &Browser, b: &Browser) -> Result<()> {
    chat.pick_name(a, "Ada", READY).await.context("viewer A")?;
    chat.pick_name(b, "Bruno", READY)
        .await
        .context("viewer B")?;
    Ok(())
}

/// The single line showing exactly `text`; fails if there is none or several.
fn only_line<'a>(s: &'a ChatSnapshot, who: &str, text: &'a str) -> Result<&'a ChatLine> {
    let lines: Vec<_> = s.lines_with_text(text).collect();
    match lines.as_slice() {
        [line] => Ok(line),
        [] => bail!("{who} does not show {text:?}; {}", s.describe()),
        _ => bail!(
            "{who} shows {text:?} {} times; {}",
            lines.len(),
            s.describe()
        ),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn message_typed_in_one_viewer_shows_in_the_other() -> Result<()> {
    two_viewers(
        "message_typed_in_one_viewer_shows_in_the_other",
        async |a, b| {
            let chat = ChatView::widget();
            pick_names(chat, a, b).await?;
            let text = "Hello from Ada: is this live?";
            chat.type_and_send(a, text).await?;

            let seen_by_b = chat
                .wait_for(
                    b,
                    &format!("viewer B to show Ada's message {text:?}"),
                    DELIVERY,
                    |s| s.lines_with_text(text).next().is_some(),
                )
                .await?;
            let line = only_line(&seen_by_b, "viewer B", text)?;
            ensure!(
                line.name.as_deref() == Some("Ada") && !line.pending,
                "viewer B shows the message as {}, expected it under Ada's name and not pending",
                line.describe()
            );
            let event = ChatEvent {
                name: "Ada".into(),
                text: text.into(),
            };
            ensure!(
                seen_by_b.chat_events.contains(&event),
                "viewer B shows Ada's message but its page got no lucarne:chat event \
                 {{name: \"Ada\", text: {text:?}}}; events: {:?}",
                seen_by_b.chat_events
            );

            let seen_by_a = chat
                .wait_for(
                    a,
                    "viewer A's own line to be confirmed (no longer pending)",
                    DELIVERY,
                    |s| s.lines_with_text(text).any(|l| !l.pending),
                )
                .await?;
            let own = only_line(&seen_by_a, "viewer A", text)?;
            ensure!(
                own.name.as_deref() == Some("Ada"),
                "viewer A shows its own message as {}",
                own.describe()
            );
            ensure!(
                seen_by_a.input_value.as_deref() == Some(""),
                "viewer A's send box still holds {:?} after sending",
                seen_by_a.input_value
            );
            // Still one line each a moment later: the confirmation replaced the
            // pending line instead of adding a second one.
            only_line(&chat.snapshot(a).await?, "viewer A", text)?;
            only_line(&chat.snapshot(b).await?, "viewer B", text)?;
            Ok(())
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn heart_tapped_in_one_floats_in_the_other() -> Result<()> {
    two_viewers("heart_tapped_in_one_floats_in_the_other", async |a, b| {
        let chat = ChatView::widget();
        chat.wait_online(a, READY).await.context("viewer A")?;
        let before = chat.wait_online(b, READY).await.context("viewer B")?;
        let base = before
            .hearts_total()
            .with_context(|| format!("viewer B shows no hearts total; {}", before.describe()))?;
        ensure!(
            before.floating_hearts == 0,
            "hearts float in viewer B before anyone tapped; {}",
            before.describe()
        );

        const ON_VIDEO: u64 = 3;
        const ON_BUTTON: u64 = 2;
        for _ in 0..ON_VIDEO {
            chat.tap_video(a).await.context("tapping the video")?;
        }
        for _ in 0..ON_BUTTON {
            chat.tap_heart_button(a)
                .await
                .context("clicking the heart button")?;
        }
        let taps = ON_VIDEO + ON_BUTTON;
        // Counted as they appear: a heart that floated away between two looks (a
        // heart lives about 3 s; on a loaded machine each look can take a second)
        // still floated.
        chat.wait_for(a, "viewer A's own hearts to float", DELIVERY, |s| {
            s.hearts_drawn > 0
        })
        .await?;

        chat.wait_for(
            b,
            "hearts tapped in viewer A to float in viewer B",
            DELIVERY,
            |s| s.hearts_drawn > 0,
        )
        .await?;
        let want = base + taps;
        let b_total = chat
            .wait_for(
                b,
                &format!("viewer B's hearts total to go from {base} to {want}"),
                DELIVERY,
                |s| s.hearts_total().is_some_and(|t| t >= want),
            )
            .await?;
        ensure!(
            b_total.hearts_total() == Some(want),
            "viewer A tapped {taps} hearts, viewer B's total went from {base} to {:?}",
            b_total.hearts_total_text
        );
        let a_total = chat
            .wait_for(
                a,
                &format!("viewer A's hearts total to reach {want}"),
                DELIVERY,
                |s| s.hearts_total().is_some_and(|t| t >= want),
            )
            .await?;
        ensure!(
            a_total.hearts_total() == Some(want) && a_total.heart_events == taps,
            "viewer A tapped {taps} hearts: its total reads {:?} (from {base}) and its page got \
             {} lucarne:heart events",
            a_total.hearts_total_text,
            a_total.heart_events
        );
        Ok(())
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn viewer_count_reads_two() -> Result<()> {
    two_viewers("viewer_count_reads_two", async |a, b| {
        let chat = ChatView::widget();
        let two = |s: &ChatSnapshot| s.viewers.as_deref() == Some("2 watching");
        chat.wait_for(a, "viewer A to read \"2 watching\"", COUNT, two)
            .await?;
        chat.wait_for(b, "viewer B to read \"2 watching\"", COUNT, two)
            .await?;
        Ok(())
    })
    .await
}

/// A viewer who follows a link away from the page is no longer watching, even
/// though the browser may keep the page (frozen, in its back/forward cache) to
/// show it again on Back.
#[tokio::test(flavor = "multi_thread")]
async fn viewer_who_navigates_away_stops_counting() -> Result<()> {
    two_viewers("viewer_who_navigates_away_stops_counting", async |a, b| {
        let chat = ChatView::widget();
        let two = |s: &ChatSnapshot| s.viewers.as_deref() == Some("2 watching");
        chat.wait_for(a, "viewer A to read \"2 watching\"", COUNT, two)
            .await?;
        chat.wait_for(b, "viewer B to read \"2 watching\"", COUNT, two)
            .await?;

        b.goto("about:blank").await.context("viewer B leaving")?;
        chat.wait_for(
            a,
            "viewer A to read \"1 watching\" after viewer B navigated away",
            COUNT,
            |s| s.viewers.as_deref() == Some("1 watching"),
        )
        .await?;
        Ok(())
    })
    .await
}

/// Messages a careless renderer would turn into running script.
const PAYLOADS: [&str; 5] = [
    "<script>window.__xss=1</script>",
    "<img src=x onerror=\"window.__xss=2\">",
    "<iframe src=\"javascript:window.top.__xss=3\"></iframe>",
    "<svg onload=\"window.__xss=4\">",
    "<a href=\"javascript:window.__xss=5\">click</a>",
];

/// The server allows 3 messages per 2 s (one every 667 ms sustained); posting
/// faster mutes the viewer for 30 s.
const PACE: Duration = Duration::from_millis(800);

/// `window.__xss`, if anything set it.
async fn xss_marker(browser: &Browser) -> Result<Option<String>> {
    let v = browser
        .execute(
            "return window.__xss === undefined ? null : String(window.__xss);",
            vec![],
        )
        .await?;
    Ok(v.as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread")]
async fn xss_payloads_show_as_text_and_run_nothing() -> Result<()> {
    two_viewers("xss_payloads_show_as_text_and_run_nothing", async |a, b| {
        let chat = ChatView::widget();
        pick_names(chat, a, b).await?;
        let baseline_a = chat.snapshot(a).await?;
        let baseline_b = chat.snapshot(b).await?;

        let mut pace = tokio::time::interval(PACE);
        pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        for payload in PAYLOADS {
            pace.tick().await;
            chat.type_and_send(a, payload)
                .await
                .with_context(|| format!("sending {payload:?}"))?;
        }

        let all_shown = |s: &ChatSnapshot, confirmed: bool| {
            PAYLOADS.iter().all(|p| {
                s.lines_with_text(p)
                    .any(|l| l.name.as_deref() == Some("Ada") && !(confirmed && l.pending))
            })
        };
        let seen_by_b = chat
            .wait_for(
                b,
                "viewer B to show the five payloads as Ada's text",
                DELIVERY,
                |s| all_shown(s, false),
            )
            .await?;
        let seen_by_a = chat
            .wait_for(
                a,
                "viewer A's five payloads to be shown and confirmed",
                DELIVERY,
                |s| all_shown(s, true),
            )
            .await?;

        for (who, browser, seen, baseline) in [
            ("viewer A", a, seen_by_a, baseline_a),
            ("viewer B", b, seen_by_b, baseline_b),
        ] {
            for payload in PAYLOADS {
                let line = only_line(&seen, who, payload)?;
                ensure!(
                    line.text_elements.is_empty(),
                    "{who} shows {payload:?} with elements {:?} inside span.text: the message \
                     was parsed as HTML",
                    line.text_elements
                );
            }
            ensure!(
                seen.active_in_widget == baseline.active_in_widget,
                "{who}: elements in the widget changed while the payloads were shown: \
                 before {:?}, after {:?}",
                baseline.active_in_widget,
                seen.active_in_widget
            );
            ensure!(
                seen.active_in_page == baseline.active_in_page,
                "{who}: elements in the page changed while the payloads were shown: \
                 before {:?}, after {:?}",
                baseline.active_in_page,
                seen.active_in_page
            );
            if let Some(v) = xss_marker(browser).await? {
                bail!(
                    "{who}: a payload ran: window.__xss is {v:?}; {}",
                    seen.describe()
                );
            }
        }
        Ok(())
    })
    .await
}

/// Regression (issue 12): the page's `lucarne:chat` events stopped after the room's epoch
/// changed, until the new epoch's seqs passed the old one's. A server on an in-memory chat
/// store starts every run in a new epoch, with seqs from 1 again.
#[tokio::test(flavor = "multi_thread")]
async fn chat_events_go_on_after_the_room_restarts_in_a_new_epoch() -> Result<()> {
    let _one_at_a_time = serial().await;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec!["--chat-db".into(), ":memory:".into()];
    let mut origin = Origin::start_with(config).await?;
    let browser = Browser::launch_from_env().await?;
    let url = format!("{}/", origin.url());
    let chat = ChatView::widget();
    let result = async {
        browser.goto(&url).await?;
        chat.pick_name(&browser, "Ada", READY).await?;
        // Two messages: the old epoch's high mark (2) is above the new epoch's first seq.
        for text in ["first of the old epoch", "second of the old epoch"] {
            chat.type_and_send(&browser, text).await?;
            chat.wait_for(
                &browser,
                &format!("a lucarne:chat event for {text:?}"),
                DELIVERY,
                |s| s.chat_events.iter().any(|e| e.text == text),
            )
            .await?;
        }
        origin.restart().await?;
        let back = chat
            .wait_for(
                &browser,
                "the chat back online after the restart",
                RECONNECT,
                |s| s.online() && s.lines_with_text("first of the old epoch").next().is_none(),
            )
            .await?;
        // The fresh store may not know the viewer's name any more.
        if back.placeholder.as_deref() != Some(lucarne_e2e::chat::CHAT_PLACEHOLDER) {
            chat.pick_name(&browser, "Ada", READY).await?;
        }
        let text = "first of the new epoch";
        chat.type_and_send(&browser, text).await?;
        let seen = chat
            .wait_for(
                &browser,
                &format!("the line {text:?} confirmed"),
                DELIVERY,
                |s| s.lines_with_text(text).any(|l| !l.pending),
            )
            .await?;
        // The event goes out with the confirmation; give it the same deadline.
        chat.wait_for(
            &browser,
            &format!("a lucarne:chat event for {text:?} in the new epoch"),
            DELIVERY,
            |s| s.chat_events.iter().any(|e| e.text == text),
        )
        .await
        .with_context(|| format!("events so far: {:?}", seen.chat_events))?;
        Ok(())
    }
    .await;
    let logs = vec![("server.log", origin.log_tail(300))];
    finish_viewers(
        "chat_events_go_on_after_the_room_restarts_in_a_new_epoch",
        vec![("a", browser)],
        result,
        logs,
    )
    .await
}
