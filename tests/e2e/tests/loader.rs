//! loader: what `lucarne.js` does when the widget's WebAssembly traps after it mounted.
//! - a_trap_shows_retry_and_retry_plays_again: a `WebAssembly.RuntimeError` out of the
//!   widget's glue turns the frozen widget into an error with "retry" (in the page's
//!   language), and "retry" plays again in a fresh instance, twice in a row (the second
//!   trap is in the copy the first retry made). A trap of the page's own WebAssembly
//!   leaves the widget alone.
//!
//! The trap is forced by a script of the page: the glue's `Widget.prototype.destroy`
//! called on a pointer past the end of the instance's memory, inside a timer, so it
//! surfaces as the page's `error` event the way a trap in one of the widget's callbacks
//! does. Nothing in the widget exists for the test.

use std::time::Duration;

use anyhow::{ensure, Result};
use lucarne_e2e::{
    only_on_any, run_scenario, serial, wait_until, Browser, Check, Engine, Origin, OriginConfig,
    Probe, StaticServer,
};
use serde_json::{json, Value};

/// Page load, widget download, first frame.
const READY: Duration = Duration::from_secs(20);
/// From the trap to the error state.
const REACT: Duration = Duration::from_secs(5);

/// Runs `arguments[0]` as a module script of the page. Not in the WebDriver script
/// itself: Firefox runs those apart, with a module map of their own (an `import()` there
/// gets an uninitialised copy of the glue) and errors the page never sees.
const IN_PAGE_JS: &str = r#"
const s = document.createElement('script');
s.type = 'module';
s.textContent = arguments[0];
document.body.appendChild(s);
"#;

/// Makes the widget instance whose glue is at `URL` trap inside a timer: its `destroy`
/// on a pointer past the end of the instance's memory, whose first load traps.
const TRAP: &str = "import('URL').then(m => setTimeout(() => \
                    m.Widget.prototype.destroy.call({ __wbg_ptr: 0xfffffff0 })));";

/// A WebAssembly module of the page itself, whose `f` is `unreachable`, run in a timer.
const PAGE_TRAP: &str = "const bytes = new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0, 1, 4, \
                         1, 96, 0, 0, 3, 2, 1, 0, 7, 5, 1, 1, 102, 0, 0, 10, 5, 1, 3, 0, 0, 11]); \
                         const f = new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports.f; \
                         setTimeout(f);";

/// The error box: `{status, text, retry}` (the retry button's label, if any).
const ERROR_BOX_JS: &str = r#"
const host = document.querySelector('.lucarne-host');
const root = host && host.shadowRoot;
const box = root && root.querySelector('[role=alert]');
const button = root && root.querySelector('button.retry');
return {
  status: host ? host.getAttribute('data-status') : null,
  text: box ? box.textContent : null,
  retry: button ? button.textContent : null,
};
"#;

async fn wait_error_with_retry(browser: &Browser) -> Result<Value> {
    wait_until("the error state with retry", REACT, || async {
        let v = browser.execute(ERROR_BOX_JS, vec![]).await?;
        Ok(if v["status"] == "error" && v["retry"].is_string() {
            Check::Done(v)
        } else {
            Check::NotYet(v.to_string())
        })
    })
    .await
}

async fn in_page(browser: &Browser, code: &str) -> Result<()> {
    browser.execute(IN_PAGE_JS, vec![json!(code)]).await?;
    Ok(())
}

async fn click_retry(browser: &Browser) -> Result<()> {
    browser
        .execute(
            "document.querySelector('.lucarne-host').shadowRoot.querySelector('button.retry').click();",
            vec![],
        )
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trap_shows_retry_and_retry_plays_again() -> Result<()> {
    only_on_any(
        &[Engine::Chromium, Engine::Firefox],
        "WebKitGTK mutes the cross-origin trap into 'Script error.', which the loader cannot attribute",
    )?;
    let _one_at_a_time = serial().await;
    let dir = tempfile::Builder::new()
        .prefix("lucarne-e2e-loader-")
        .tempdir()?;
    let site = StaticServer::start(dir.path()).await?;
    let mut config = OriginConfig::from_env()?;
    config.extra_args = vec!["--embed-origin".into(), site.url()];
    let origin = Origin::start_with(config).await?;
    let s = origin.url();
    std::fs::write(
        dir.path().join("trap.html"),
        format!(
            "<!doctype html>\n<html lang=\"fr\"><head><meta charset=\"utf-8\">\
             <title>Un piège</title></head><body>\n\
             <script async src=\"{s}/lucarne.js\" data-src=\"{s}/s/demo\"></script>\n\
             </body></html>\n"
        ),
    )?;
    let url = format!("{}/trap.html", site.url());
    let browser = Browser::launch_from_env().await?;
    let widget = Probe::widget();

    run_scenario(
        "a_trap_shows_retry_and_retry_plays_again",
        browser,
        async |browser| {
            browser.goto(&url).await?;
            widget.wait_playing(browser, READY).await?;

            // The page's own trap is none of the widget's business.
            in_page(browser, PAGE_TRAP).await?;
            let after = widget.wait_playing(browser, REACT).await?;
            ensure!(
                after.status.as_deref() != Some("error"),
                "the page's own trap changed the widget: {}",
                after.describe()
            );

            // First trap, on a French page.
            in_page(browser, &TRAP.replace("URL", &format!("{s}/lucarne_widget.js"))).await?;
            let shown = wait_error_with_retry(browser).await?;
            ensure!(
                shown["retry"] == "Réessayer",
                "French page, not French: {shown}"
            );
            let video = browser
                .execute(
                    "return !!document.querySelector('.lucarne-host').shadowRoot.querySelector('video');",
                    vec![],
                )
                .await?;
            ensure!(video == json!(false), "the frozen video is still shown");
            click_retry(browser).await?;
            widget
                .wait_playing(browser, READY)
                .await
                .map_err(|e| e.context("after the first retry"))?;

            // Second trap, in the instance the retry made; the page now says English.
            browser
                .execute("document.documentElement.lang = 'en';", vec![])
                .await?;
            in_page(
                browser,
                &TRAP.replace("URL", &format!("{s}/lucarne_widget.js?copy=1")),
            )
            .await?;
            let shown = wait_error_with_retry(browser).await?;
            ensure!(
                shown["retry"] == "Retry" && shown["text"].as_str().is_some_and(|t| t.contains("error")),
                "English page, not English: {shown}"
            );
            click_retry(browser).await?;
            let back = widget
                .wait_playing(browser, READY)
                .await
                .map_err(|e| e.context("after the second retry"))?;
            let watch = widget.watch(browser, Duration::from_secs(3)).await?;
            ensure!(
                watch.frames_grown() > 0,
                "played then stopped after the retry: {} ({})",
                watch.describe(),
                back.describe()
            );
            Ok(())
        },
        || vec![("server.log", origin.log_tail(200))],
    )
    .await
}
