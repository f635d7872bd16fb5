//! Questions, end to end: a viewer's widget sends a message as a question and +1s it;
//! the broadcaster's console lists it with its votes and pins it; the widget shows the
//! pinned question over the picture, and so does the OBS overlay; "Answered" in the
//! console takes it off both. No camera is needed (the console of a stream that is not
//! live yet), so it runs on every engine.

use std::time::Duration;

use anyhow::Result;
use lucarne_e2e::studio::{start_origin, type_secret, TOKEN};
use lucarne_e2e::{finish_viewers, serial, wait_until, Browser, ChatView, Check};
use serde_json::Value;

/// Page loads, sockets welcomed.
const READY: Duration = Duration::from_secs(20);
/// From a click in one browser to the other's screen, on one machine.
const DELIVERY: Duration = Duration::from_secs(5);

/// The first widget's pinned question (`null` when none), and its question lines'
/// vote buttons, from inside its shadow root.
const WIDGET_JS: &str = r#"
const host = document.querySelector('.lucarne-host');
const root = host && host.shadowRoot;
const pinned = root && root.querySelector('.pinned');
return {
  pinned: pinned ? pinned.textContent : null,
  pinnedTop: pinned ? pinned.getBoundingClientRect().top : null,
  votes: root ? [...root.querySelectorAll('li.line.question button.vote')].map((b) => b.textContent) : [],
};
"#;

/// The console's questions list and pinned line.
const CONSOLE_JS: &str = r#"
const $ = (id) => document.getElementById(id);
return {
  chatOpen: $('chat-state').dataset.state === 'open',
  questions: [...document.querySelectorAll('#questions li')].map((li) => li.textContent),
  pinned: $('pinned').classList.contains('hidden') ? null : $('pinned').textContent,
};
"#;

async fn wait_js(
    browser: &Browser,
    js: &str,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> Result<Value> {
    let check = &check;
    wait_until(what, DELIVERY.max(READY), move || async move {
        let now = browser.execute(js, vec![]).await?;
        Ok(if check(&now) {
            Check::Done(now)
        } else {
            Check::NotYet(now.to_string())
        })
    })
    .await
}

/// Clicks the console's `button.{class}` on the question that says `text`.
async fn console_click(browser: &Browser, text: &str, class: &str) -> Result<()> {
    browser
        .execute(
            "const li = [...document.querySelectorAll('#questions li')]\n\
               .find((l) => l.textContent.includes(arguments[0]));\n\
             if (!li) throw new Error('no question ' + arguments[0]);\n\
             const b = li.querySelector('button.' + arguments[1]);\n\
             if (!b) throw new Error('no ' + arguments[1] + ' button on ' + arguments[0]);\n\
             b.click();",
            vec![Value::from(text), Value::from(class)],
        )
        .await
        .map(|_| ())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_viewers_question_is_voted_pinned_over_the_widget_and_the_overlay_then_answered(
) -> Result<()> {
    let _one_at_a_time = serial().await;
    let (_dir, site, origin, _rtmp_port) = start_origin().await?;
    let s = origin.url();
    let console = Browser::launch_from_env().await?;
    let viewer = match Browser::launch_from_env().await {
        Ok(b) => b,
        Err(e) => {
            let _ = console.close().await;
            return Err(e);
        }
    };
    let question = "Which lens is that?";
    let result = async {
        console.goto(&format!("{s}/studio/studio")).await?;
        type_secret(&console, TOKEN).await?;
        wait_js(&console, CONSOLE_JS, "the console's chat", |c| {
            c["chatOpen"] == true
        })
        .await?;

        viewer.goto(&format!("{}/live.html", site.url())).await?;
        let chat = ChatView::widget();
        chat.pick_name(&viewer, "Ben", READY).await?;
        viewer
            .click_in_shadow(".lucarne-host", 0, "form.composer button.ask")
            .await?;
        chat.type_and_send(&viewer, question).await?;
        wait_js(&viewer, WIDGET_JS, "the question with its +0 button", |w| {
            w["votes"] == serde_json::json!(["+0"])
        })
        .await?;
        viewer
            .click_in_shadow(".lucarne-host", 0, "li.line.question button.vote")
            .await?;
        wait_js(&viewer, WIDGET_JS, "the viewer's own +1 counted", |w| {
            w["votes"] == serde_json::json!(["+1"])
        })
        .await?;
        wait_js(
            &console,
            CONSOLE_JS,
            "the question in the console with +1",
            |c| {
                c["questions"].as_array().is_some_and(|q| {
                    q.iter().any(|t| {
                        let t = t.as_str().unwrap_or("");
                        t.contains(question) && t.starts_with("+1")
                    })
                })
            },
        )
        .await?;

        console_click(&console, question, "pin").await?;
        let shown = wait_js(
            &viewer,
            WIDGET_JS,
            "the pinned question over the widget",
            |w| {
                w["pinned"]
                    .as_str()
                    .is_some_and(|p| p.contains(question) && p.contains("Ben"))
            },
        )
        .await?;
        anyhow::ensure!(
            shown["pinnedTop"].as_f64().unwrap_or(-1.0) >= 0.0,
            "the pinned question is on screen: {shown}"
        );
        wait_js(&console, CONSOLE_JS, "the console's pinned line", |c| {
            c["pinned"].as_str().is_some_and(|p| p.contains(question))
        })
        .await?;

        // The overlay OBS shows: the same pinned question, read from its welcome.
        viewer.goto(&format!("{s}/overlay/studio")).await?;
        wait_js(
            &viewer,
            WIDGET_JS,
            "the pinned question on the overlay",
            |w| w["pinned"].as_str().is_some_and(|p| p.contains(question)),
        )
        .await?;

        console_click(&console, question, "answer").await?;
        wait_js(
            &viewer,
            WIDGET_JS,
            "the answered question unpinned on the overlay",
            |w| w["pinned"].is_null(),
        )
        .await?;
        wait_js(
            &console,
            CONSOLE_JS,
            "the answered question off the console's list",
            |c| c["pinned"].is_null() && c["questions"].as_array().is_some_and(|q| q.is_empty()),
        )
        .await?;
        Ok(())
    }
    .await;
    finish_viewers(
        "a_viewers_question_is_voted_pinned_over_the_widget_and_the_overlay_then_answered",
        vec![("console", console), ("viewer", viewer)],
        result,
        vec![("server.log", origin.log_tail(200))],
    )
    .await
}
