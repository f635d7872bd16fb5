//! Browser engines behind one WebDriver client: which engine to run
//! ([`Engine`], from `LUCARNE_E2E_ENGINE`), how to start its driver, and a
//! [`Browser`] session whose every request has a timeout.
//!
//! Owns the driver processes (and Xvfb for WebKit) and the fresh browser profile;
//! all of them go away when the [`Browser`] is dropped. Knows nothing of lucarne.
//!
//! # Phone-sized viewports
//! [`Browser::launch_at`] opens a session whose page sees a given [`Viewport`]
//! (`window.innerWidth` × `innerHeight`, CSS pixels), as a phone would show it:
//! - Chromium: chromedriver's mobile emulation (`deviceMetrics` with
//!   `pixelRatio` 3 and `touch`, a mobile user agent): a coarse pointer, touch
//!   events, and taps ([`Browser::tap_at`]) as touch pointer actions.
//! - Firefox and WebKit have no such emulation over WebDriver: the window is resized
//!   until the page's inner size is the viewport (the browser's own chrome, its
//!   toolbars, is measured and added), and the size reached is checked: an engine
//!   that cannot get there fails the launch, saying what it got. Their toolbars hold
//!   a window at least 500 px (Firefox) or 447 px (MiniBrowser) wide, so the fresh
//!   profile gets a stylesheet for the browser's own chrome that lets them shrink
//!   (Firefox's `userChrome.css`, a GTK `gtk.css` for MiniBrowser). Firefox is also
//!   told its primary pointer is coarse (`ui.primaryPointerCapabilities`), so
//!   `(pointer: coarse)` matches as on a phone, with overlay scrollbars; WebKitGTK has
//!   no such switch and keeps a fine pointer. Pixel ratio 1 in both.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use fantoccini::wd::{Capabilities, TimeoutConfiguration};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::process::{free_port, which, Output, Spawned};
use crate::workspace::env_path;

/// A browser engine the tests can run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// Chromium + chromedriver (apt `chromium chromium-driver`). The default.
    Chromium,
    /// Firefox ESR + geckodriver (`cargo install geckodriver`).
    Firefox,
    /// WebKitGTK MiniBrowser + WebKitWebDriver (apt `webkit2gtk-driver xvfb`), under Xvfb.
    Webkit,
}

impl Engine {
    /// The engine named by `LUCARNE_E2E_ENGINE` (chromium, firefox or webkit);
    /// Chromium when unset.
    pub fn from_env() -> Result<Self> {
        match std::env::var("LUCARNE_E2E_ENGINE") {
            Err(_) => Ok(Self::Chromium),
            Ok(name) => Self::parse(&name),
        }
    }

    /// Parses an engine name (case-insensitive; empty means Chromium).
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "" | "chromium" | "chrome" => Ok(Self::Chromium),
            "firefox" | "gecko" => Ok(Self::Firefox),
            "webkit" => Ok(Self::Webkit),
            other => bail!("LUCARNE_E2E_ENGINE={other:?}: expected chromium, firefox or webkit"),
        }
    }

    /// The engine has Safari's ManagedMediaSource (WebKitGTK does), which the widget
    /// must then prefer.
    pub fn has_managed_media_source(self) -> bool {
        self == Self::Webkit
    }

    /// `Ok` when this is `wanted`; otherwise an error saying the test applies to `wanted`
    /// only (`why`) and how to run it there. See [`only_on`].
    pub fn require(self, wanted: Engine, why: &str) -> Result<()> {
        self.require_any(&[wanted], why)
    }

    /// `Ok` when this is one of `wanted`; otherwise an error saying where the test runs
    /// (`why`) and how to run it there. See [`only_on_any`].
    pub fn require_any(self, wanted: &[Engine], why: &str) -> Result<()> {
        if wanted.contains(&self) {
            return Ok(());
        }
        let names: Vec<&str> = wanted.iter().map(|e| e.name()).collect();
        bail!(
            "SKIPPED on {this}, and so counted as failed, not passed: this test runs on {want} \
             only ({why}). Run it with LUCARNE_E2E_ENGINE={first}; `cargo xtask test` leaves \
             it out on the other engines and lists it as not run.",
            this = self.name(),
            want = names.join(" and "),
            first = names.first().copied().unwrap_or("chromium")
        )
    }

    /// Lower-case name, as accepted by [`Engine::parse`].
    pub fn name(self) -> &'static str {
        match self {
            Self::Chromium => "chromium",
            Self::Firefox => "firefox",
            Self::Webkit => "webkit",
        }
    }
}

/// For a test that applies to one engine only: the engine chosen by
/// `LUCARNE_E2E_ENGINE` when it is `wanted`, else an error. There is no way for a test
/// to mark itself skipped at run time, and a test that returned early would count as
/// passed where nothing ran; so it fails, saying why and where it runs. `cargo xtask
/// test` filters such tests out on the other engines (`ENGINE_ONLY` in
/// `xtask/src/test.rs`) and lists them as not run.
pub fn only_on(wanted: Engine, why: &str) -> Result<Engine> {
    let engine = Engine::from_env()?;
    engine.require(wanted, why)?;
    Ok(engine)
}

/// [`only_on`] for a test that runs on several engines but not all (listed in xtask's
/// `ENGINE_ONLY` with the same engines).
pub fn only_on_any(wanted: &[Engine], why: &str) -> Result<Engine> {
    let engine = Engine::from_env()?;
    engine.require_any(wanted, why)?;
    Ok(engine)
}

/// How long one WebDriver request may take before the test fails
/// (a hung browser must fail the test, not hang it).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// How much longer than [`REQUEST_TIMEOUT`] the driver itself waits for a script or a
/// page load.
const DRIVER_GRACE: Duration = Duration::from_secs(15);
/// How long a page that did not answer is watched to tell a busy page from a blocked
/// engine ([`crate::hang`]).
const HANG_WATCH: Duration = Duration::from_secs(3);
/// How long a driver gets to start listening.
const DRIVER_START: Duration = Duration::from_secs(15);

/// The page's viewport a test wants: `window.innerWidth` × `window.innerHeight`, in
/// CSS pixels. See the module doc for how each engine gets there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Viewport {
    /// CSS pixels across.
    pub width: u32,
    /// CSS pixels down.
    pub height: u32,
}

impl Viewport {
    /// A small Android phone (360 × 640).
    pub const SMALL_PHONE: Self = Self {
        width: 360,
        height: 640,
    };
    /// A current iPhone (390 × 844).
    pub const PHONE: Self = Self {
        width: 390,
        height: 844,
    };

    /// `390x844`, for file names and messages.
    pub fn label(self) -> String {
        format!("{}x{}", self.width, self.height)
    }
}

/// The user agent Chromium's phone emulation sends (an Android phone's Chrome).
const MOBILE_USER_AGENT: &str = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 \
                                 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36";

/// A WebDriver session on a driver process this harness started.
#[derive(Debug)]
pub struct Browser {
    /// The session; `None` once closed.
    client: Option<Client>,
    /// Which engine this is, for messages.
    engine: Engine,
    /// Taps are touch pointer actions (Chromium's phone emulation); otherwise mouse.
    touch: bool,
    /// The driver (and through its process group, the browser).
    _driver: Spawned,
    /// WebKit only: the X server MiniBrowser draws into.
    _xvfb: Option<Spawned>,
    /// A fresh profile per session, so no state leaks between tests.
    _profile: TempDir,
}

impl Browser {
    /// Starts the engine chosen by `LUCARNE_E2E_ENGINE`.
    pub async fn launch_from_env() -> Result<Self> {
        Self::launch(Engine::from_env()?).await
    }

    /// Starts `engine`'s driver on a free port and opens a session.
    pub async fn launch(engine: Engine) -> Result<Self> {
        Self::launch_with(engine, None, false).await
    }

    /// Starts `engine` with a fake camera and microphone that pages may use without a
    /// permission prompt (a broadcaster console under test): Chromium's
    /// `--use-fake-device-for-media-stream` (a test pattern and a beep),
    /// Firefox's `media.navigator.streams.fake`, WebKitGTK's mock capture devices.
    pub async fn launch_with_fake_media(engine: Engine) -> Result<Self> {
        Self::launch_with(engine, None, true).await
    }

    /// Starts `engine` with its page showing `viewport` (see the module doc): phone
    /// emulation in Chromium, a window resized to fit elsewhere. Fails, saying the size
    /// reached, when the page's inner size is not exactly `viewport`.
    pub async fn launch_at(engine: Engine, viewport: Viewport) -> Result<Self> {
        let browser = Self::launch_with(engine, Some(viewport), false).await?;
        let fitted = match engine {
            // The emulated device sets the viewport; only check it.
            Engine::Chromium => browser.expect_viewport(viewport).await,
            Engine::Firefox | Engine::Webkit => browser.fit_window(viewport).await,
        };
        match fitted {
            Ok(()) => Ok(browser),
            Err(e) => {
                let _ = browser.close().await;
                Err(e)
            }
        }
    }

    /// [`Browser::launch_once`], and once more when the browser opened no session in
    /// time: on a loaded machine a browser's start (WebKitGTK's, in a full run) now and
    /// then takes longer than [`REQUEST_TIMEOUT`]. The first attempt's driver, browser
    /// and display are gone with it; a second failure is the test's.
    async fn launch_with(
        engine: Engine,
        phone: Option<Viewport>,
        fake_media: bool,
    ) -> Result<Self> {
        match Self::launch_once(engine, phone, fake_media).await {
            Err(e) if e.to_string().contains("new session timed out") => {
                eprintln!("{e}; starting {} once more", engine.name());
                Self::launch_once(engine, phone, fake_media).await
            }
            other => other,
        }
    }

    async fn launch_once(
        engine: Engine,
        phone: Option<Viewport>,
        fake_media: bool,
    ) -> Result<Self> {
        let profile = tempfile::Builder::new()
            .prefix("lucarne-e2e-profile-")
            .tempdir()?;
        let port = free_port()?;
        let mut xvfb = None;
        let (driver, caps) = match engine {
            Engine::Chromium => {
                let driver = find_tool(
                    "CHROMEDRIVER",
                    "chromedriver",
                    "apt-get install chromium-driver",
                )?;
                let binary = env_path("LUCARNE_CHROMIUM", || PathBuf::from("/usr/bin/chromium"));
                if !binary.is_file() {
                    bail!("Chromium not found at {} (apt-get install chromium, or set LUCARNE_CHROMIUM)", binary.display());
                }
                let args = [format!("--port={port}")];
                let (driver, _) =
                    Spawned::start("chromedriver", &driver, args, &[], Output::Discard)?;
                (
                    driver,
                    chromium_caps(&binary, profile.path(), phone, fake_media),
                )
            }
            Engine::Firefox => {
                let driver = find_tool(
                    "GECKODRIVER",
                    "geckodriver",
                    "cargo install geckodriver --locked",
                )?;
                let args = ["--port".to_owned(), port.to_string()];
                let (driver, _) =
                    Spawned::start("geckodriver", &driver, args, &[], Output::Discard)?;
                (
                    driver,
                    firefox_caps(profile.path(), phone.is_some(), fake_media)?,
                )
            }
            Engine::Webkit => {
                let driver = find_tool(
                    "WEBKIT_WEBDRIVER",
                    "WebKitWebDriver",
                    "apt-get install webkit2gtk-driver",
                )?;
                let xvfb_bin = find_tool("XVFB", "Xvfb", "apt-get install xvfb")?;
                let (server, display) = start_xvfb(&xvfb_bin).await?;
                xvfb = Some(server);
                let args = [format!("--port={port}")];
                let mut env = vec![("DISPLAY", display)];
                if phone.is_some() {
                    // MiniBrowser's toolbar holds its window 447 px wide at least; a GTK
                    // stylesheet of the session's own lets it shrink
                    // (WEBKIT_NARROW_CHROME).
                    let gtk = profile.path().join("gtk-3.0");
                    std::fs::create_dir_all(&gtk)?;
                    std::fs::write(gtk.join("gtk.css"), WEBKIT_NARROW_CHROME)?;
                    env.push(("XDG_CONFIG_HOME", profile.path().display().to_string()));
                }
                // Captured (bounded): MiniBrowser's web process reports its crashes
                // here, the only trace of a page WebKitWebDriver says it lost.
                let (driver, _) =
                    Spawned::start("WebKitWebDriver", &driver, args, &env, Output::Capture)?;
                (driver, webkit_caps(fake_media))
            }
        };
        wait_for_port(port, DRIVER_START)
            .await
            .with_context(|| format!("{} driver did not listen on port {port}", engine.name()))?;

        let mut builder = ClientBuilder::rustls().context("TLS setup for the WebDriver client")?;
        builder.capabilities(caps);
        let url = format!("http://127.0.0.1:{port}");
        let client = tokio::time::timeout(REQUEST_TIMEOUT, builder.connect(&url))
            .await
            .map_err(|_| {
                anyhow!(
                    "{}: new session timed out after {REQUEST_TIMEOUT:?}",
                    engine.name()
                )
            })?
            .with_context(|| format!("{}: could not open a WebDriver session", engine.name()))?;
        // The driver's own limits are longer than the harness's, so a page that does not
        // answer ends in the harness's timeout, which says why (`hang`).
        let timeouts = TimeoutConfiguration::new(
            Some(REQUEST_TIMEOUT + DRIVER_GRACE),
            Some(REQUEST_TIMEOUT + DRIVER_GRACE),
            Some(Duration::ZERO),
        );
        let browser = Self {
            client: Some(client),
            engine,
            touch: engine == Engine::Chromium && phone.is_some(),
            _driver: driver,
            _xvfb: xvfb,
            _profile: profile,
        };
        browser
            .timed("set timeouts", browser.client()?.update_timeouts(timeouts))
            .await?;
        Ok(browser)
    }

    /// The engine of this session.
    pub fn engine(&self) -> Engine {
        self.engine
    }

    /// The last `n` lines the driver and its browser wrote (WebKit only: the other
    /// drivers' output is discarded, so this is empty for them).
    pub fn driver_log(&self, n: usize) -> String {
        self._driver.log().tail(n)
    }

    /// The driver's process id, which is also the process group of the browser it
    /// started (to measure what the browser costs).
    pub fn driver_pid(&self) -> Option<u32> {
        self._driver.pid()
    }

    fn client(&self) -> Result<&Client> {
        self.client
            .as_ref()
            .ok_or_else(|| anyhow!("browser session already closed"))
    }

    async fn timed<T, E>(
        &self,
        what: &str,
        fut: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        match tokio::time::timeout(REQUEST_TIMEOUT, fut).await {
            Ok(r) => r.with_context(|| format!("{}: {what}", self.engine.name())),
            Err(_) => {
                // Busy page or blocked engine: the CPU its page processes use now says.
                // The driver leads the browser's process group (`Spawned`).
                let why = match self.driver_pid() {
                    Some(pid) => crate::hang::diagnose(pid, HANG_WATCH).await,
                    None => "the driver's process is gone".into(),
                };
                bail!(
                    "{}: {what} timed out after {REQUEST_TIMEOUT:?}; {why}",
                    self.engine.name()
                )
            }
        }
    }

    /// Navigates the current tab to `url` (waits for the load event).
    pub async fn goto(&self, url: &str) -> Result<()> {
        self.timed(&format!("open {url}"), self.client()?.goto(url))
            .await
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) in the page and
    /// returns what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.timed("execute script", self.client()?.execute(script, args))
            .await
    }

    /// Runs `script` asynchronously: it must call `arguments[arguments.length - 1]`
    /// with its result (within [`REQUEST_TIMEOUT`]).
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.timed(
            "execute async script",
            self.client()?.execute_async(script, args),
        )
        .await
    }

    /// Opens a fresh tab, closes the current one and switches to the new one.
    pub async fn fresh_tab(&self) -> Result<()> {
        let client = self.client()?;
        let new = self.timed("new tab", client.new_window(true)).await?;
        self.timed("close old tab", client.close_window()).await?;
        self.timed("switch tab", client.switch_to_window(new.handle))
            .await
    }

    /// The first element matching `css` inside the open shadow root of the
    /// `index`-th element matching `host` (0 = first).
    async fn shadow_element(
        &self,
        host: &str,
        index: usize,
        css: &str,
    ) -> Result<fantoccini::elements::Element> {
        let client = self.client()?;
        let hosts = self
            .timed(&format!("find {host}"), client.find_all(Locator::Css(host)))
            .await?;
        let Some(host_el) = hosts.into_iter().nth(index) else {
            bail!(
                "{}: no {host} number {index} on the page",
                self.engine.name()
            );
        };
        let root = self
            .timed(&format!("shadow root of {host}"), host_el.shadow_root())
            .await?;
        self.timed(
            &format!("find {css} in the shadow root of {host}"),
            root.find(Locator::Css(css)),
        )
        .await
    }

    /// Types `text` into the element matching `css` in the shadow root of the
    /// `index`-th `host`, as a user would (key by key: focus, keydown, input...).
    pub async fn type_in_shadow(
        &self,
        host: &str,
        index: usize,
        css: &str,
        text: &str,
    ) -> Result<()> {
        let el = self.shadow_element(host, index, css).await?;
        self.timed(&format!("type into {css}"), el.send_keys(text))
            .await
    }

    /// Clicks the element matching `css` in the shadow root of the `index`-th
    /// `host`, as a user with a mouse would: the pointer moves onto it first (which
    /// shows the widget's controls when they have faded), then it clicks, which fails
    /// if something else covers its centre.
    pub async fn click_in_shadow(&self, host: &str, index: usize, css: &str) -> Result<()> {
        use fantoccini::actions::{InputSource, MouseActions, PointerAction};
        let el = self.shadow_element(host, index, css).await?;
        let hover = MouseActions::new("mouse".to_owned()).then(PointerAction::MoveToElement {
            element: el.clone(),
            duration: None,
            x: 0.0,
            y: 0.0,
        });
        let client = self.client()?;
        // Pointer moves, unlike clicks, do not scroll (Firefox refuses a target
        // outside the viewport): bring it into view first, as a user scrolls to it.
        let el_ref = serde_json::to_value(&el)?;
        self.timed(
            &format!("scroll {css} into view"),
            client.execute(
                "arguments[0].scrollIntoView({block: 'center', inline: 'center'});",
                vec![el_ref],
            ),
        )
        .await?;
        self.timed(&format!("move onto {css}"), client.perform_actions(hover))
            .await?;
        self.timed("release the pointer", client.release_actions())
            .await?;
        // The widget shows its controls on the next frame.
        tokio::time::sleep(Duration::from_millis(100)).await;
        self.timed(&format!("click {css}"), el.click()).await
    }

    /// Presses and releases each key of `keys` in turn (a `char`, or a
    /// [`fantoccini::key::Key`] converted to one), as a user at the keyboard
    /// would: the keys go to whatever has focus, shadow roots included.
    pub async fn press_keys(&self, keys: &[char]) -> Result<()> {
        use fantoccini::actions::{InputSource, KeyAction, KeyActions};
        let mut actions = KeyActions::new("keyboard".to_owned());
        for &value in keys {
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        let client = self.client()?;
        self.timed(
            &format!("press keys {keys:?}"),
            client.perform_actions(actions),
        )
        .await?;
        self.timed("release keys", client.release_actions()).await
    }

    /// A PNG screenshot of the current tab.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        self.timed("screenshot", self.client()?.screenshot()).await
    }

    /// Reloads the current page (waits for the load event), as the browser's reload
    /// button does.
    pub async fn reload(&self) -> Result<()> {
        self.timed("reload", self.client()?.refresh()).await
    }

    /// The page's `window.innerWidth` × `innerHeight` now.
    pub async fn viewport(&self) -> Result<Viewport> {
        let v = self
            .execute("return [window.innerWidth, window.innerHeight];", vec![])
            .await?;
        let side = |i: usize| v[i].as_u64().and_then(|n| u32::try_from(n).ok());
        match (side(0), side(1)) {
            (Some(width), Some(height)) => Ok(Viewport { width, height }),
            _ => bail!("{}: window inner size unreadable: {v}", self.engine.name()),
        }
    }

    /// The viewport a phone-ready page (`<meta name="viewport"
    /// content="width=device-width">`) sees in the current tab: without that tag a
    /// phone lays pages out 980 px wide, as Chromium's emulation does on `about:blank`.
    async fn phone_page_viewport(&self) -> Result<Viewport> {
        self.execute_async(
            "const done = arguments[arguments.length - 1];\
             const m = document.createElement('meta');\
             m.name = 'viewport'; m.content = 'width=device-width, initial-scale=1';\
             (document.head || document.documentElement).appendChild(m);\
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            vec![],
        )
        .await?;
        self.viewport().await
    }

    async fn expect_viewport(&self, want: Viewport) -> Result<()> {
        let got = self.phone_page_viewport().await?;
        if got != want {
            bail!(
                "{}: asked for a {} viewport, the page sees {}",
                self.engine.name(),
                want.label(),
                got.label()
            );
        }
        Ok(())
    }

    /// Resizes the window until the page's inner size is `want`: the window's chrome
    /// (outer minus inner size) is measured after each resize and added, as it can
    /// change with the size (a toolbar that wraps).
    async fn fit_window(&self, want: Viewport) -> Result<()> {
        let client = self.client()?;
        let (mut width, mut height) = (want.width, want.height);
        let mut tried = Vec::new();
        for _ in 0..4 {
            self.timed(
                &format!("resize the window to {width}x{height}"),
                client.set_window_rect(0, 0, width, height),
            )
            .await?;
            let got = self.phone_page_viewport().await?;
            tried.push(format!("window {width}x{height} -> page {}", got.label()));
            if got == want {
                return Ok(());
            }
            let grow = |window: u32, got: u32, want: u32| {
                (i64::from(window) + i64::from(want) - i64::from(got)).clamp(1, 10_000) as u32
            };
            width = grow(width, got.width, want.width);
            height = grow(height, got.height, want.height);
        }
        bail!(
            "{}: cannot give the page a {} viewport by resizing the window ({}): the engine \
             keeps a different size (a minimum window size?)",
            self.engine.name(),
            want.label(),
            tried.join("; ")
        )
    }

    /// Taps (presses and releases) the point `x`, `y` of the viewport, in CSS pixels,
    /// as a finger would on a phone (a touch pointer in Chromium's phone emulation) or
    /// a mouse click elsewhere. Whatever is at that point gets the tap.
    pub async fn tap_at(&self, x: f64, y: f64) -> Result<()> {
        use fantoccini::actions::{
            ActionSequence, InputSource, MouseActions, PointerAction, TouchActions,
            MOUSE_BUTTON_LEFT,
        };
        let steps = [
            PointerAction::MoveTo {
                duration: None,
                x: x.round(),
                y: y.round(),
            },
            PointerAction::Down {
                button: MOUSE_BUTTON_LEFT,
            },
            PointerAction::Pause {
                duration: Duration::from_millis(50),
            },
            PointerAction::Up {
                button: MOUSE_BUTTON_LEFT,
            },
        ];
        let sequence: ActionSequence = if self.touch {
            steps
                .into_iter()
                .fold(TouchActions::new("finger".to_owned()), |a, s| a.then(s))
                .into()
        } else {
            steps
                .into_iter()
                .fold(MouseActions::new("mouse".to_owned()), |a, s| a.then(s))
                .into()
        };
        let client = self.client()?;
        self.timed(
            &format!("tap at ({x:.0}, {y:.0})"),
            client.perform_actions(sequence),
        )
        .await?;
        self.timed("release the pointer", client.release_actions())
            .await
    }

    /// Ends the session politely (the driver closes the browser); dropping the
    /// [`Browser`] afterwards kills the driver.
    pub async fn close(mut self) -> Result<()> {
        if let Some(client) = self.client.take() {
            match tokio::time::timeout(REQUEST_TIMEOUT, client.close()).await {
                Ok(r) => r.context("closing the browser session")?,
                Err(_) => bail!("closing the browser session timed out"),
            }
        }
        Ok(())
    }
}

/// The flags TOOLCHAIN.md settled on: headless, root-friendly, autoplay allowed,
/// no background traffic that could disturb timing, a fresh profile.
/// With `phone`, chromedriver's mobile emulation of a touch phone of that size.
fn chromium_caps(
    binary: &std::path::Path,
    profile: &std::path::Path,
    phone: Option<Viewport>,
    fake_media: bool,
) -> Capabilities {
    let mut args = vec![
        "--headless=new".to_owned(),
        "--no-sandbox".to_owned(),
        "--autoplay-policy=no-user-gesture-required".to_owned(),
        "--disable-background-networking".to_owned(),
        "--disable-component-update".to_owned(),
        "--disable-sync".to_owned(),
        "--disable-quic".to_owned(),
        "--no-first-run".to_owned(),
        "--window-size=1280,800".to_owned(),
        format!("--user-data-dir={}", profile.display()),
    ];
    if fake_media {
        args.extend([
            "--use-fake-device-for-media-stream".to_owned(),
            "--use-fake-ui-for-media-stream".to_owned(),
        ]);
    }
    let mut options = json!({ "binary": binary, "args": args });
    if let Some(v) = phone {
        options["mobileEmulation"] = json!({
            "deviceMetrics": {
                "width": v.width,
                "height": v.height,
                "pixelRatio": 3.0,
                "touch": true,
                "mobile": true,
            },
            "userAgent": MOBILE_USER_AGENT,
        });
    }
    caps(json!({ "browserName": "chrome", "goog:chromeOptions": options }))
}

/// With `phone`, the primary pointer is coarse (a finger), so `(pointer: coarse)`
/// matches as on a phone.
fn firefox_caps(profile: &std::path::Path, phone: bool, fake_media: bool) -> Result<Capabilities> {
    if phone {
        let chrome = profile.join("chrome");
        std::fs::create_dir_all(&chrome)?;
        std::fs::write(chrome.join("userChrome.css"), FIREFOX_NARROW_CHROME)?;
    }
    let mut options = json!({
        "args": ["-headless", "-profile", profile],
        "prefs": {
            // Allow autoplay, muted or not, like Chromium's --autoplay-policy flag.
            "media.autoplay.default": 0,
            "media.autoplay.blocking_policy": 0,
        },
    });
    if phone {
        // LookAndFeel bits: 1 coarse, 2 fine, 4 hover.
        options["prefs"]["ui.primaryPointerCapabilities"] = json!(1);
        options["prefs"]["ui.allPointerCapabilities"] = json!(1);
        // The browser's own toolbars hold its window at least 500 px wide; the
        // profile's userChrome.css lets them shrink (FIREFOX_NARROW_CHROME).
        options["prefs"]["toolkit.legacyUserProfileCustomizations.stylesheets"] = json!(true);
        // As on a phone: scrollbars over the page, not beside it (which would take
        // 12 px of a 360 px viewport), and no "pop out this video" toggle on hover.
        options["prefs"]["ui.useOverlayScrollbars"] = json!(1);
        options["prefs"]["media.videocontrols.picture-in-picture.video-toggle.enabled"] =
            json!(false);
    }
    if fake_media {
        options["prefs"]["media.navigator.streams.fake"] = json!(true);
        options["prefs"]["media.navigator.permission.disabled"] = json!(true);
    }
    if let Some(bin) = std::env::var_os("LUCARNE_FIREFOX") {
        options["binary"] = json!(PathBuf::from(bin));
    }
    Ok(caps(
        json!({ "browserName": "firefox", "moz:firefoxOptions": options }),
    ))
}

/// Firefox's chrome stylesheet for a phone-sized window: nothing in the browser's own
/// window may hold it wider than the page.
const FIREFOX_NARROW_CHROME: &str = "* { min-width: 0 !important; }\n";

/// GTK's stylesheet for MiniBrowser in a phone-sized window: nothing in its toolbar may
/// hold the window wider than the page.
const WEBKIT_NARROW_CHROME: &str =
    "* { min-width: 0; min-height: 0; }\nentry { min-width: 0; }\nbutton { padding: 0; }\n";

fn webkit_caps(fake_media: bool) -> Capabilities {
    let binary = env_path("LUCARNE_MINIBROWSER", || {
        PathBuf::from("/usr/lib/x86_64-linux-gnu/webkit2gtk-4.1/MiniBrowser")
    });
    let mut args = vec!["--automation"];
    if fake_media {
        // MiniBrowser takes WebKitSettings properties as options.
        args.extend([
            "--enable-media-stream=true",
            "--enable-mock-capture-devices=true",
        ]);
    }
    caps(json!({
        "browserName": "MiniBrowser",
        "webkitgtk:browserOptions": { "binary": binary, "args": args },
    }))
}

fn caps(v: Value) -> Capabilities {
    match v {
        Value::Object(map) => map,
        _ => Capabilities::new(),
    }
}

/// `$var` if set, else `program` on PATH; a clear error (with how to install it)
/// when neither exists.
fn find_tool(var: &str, program: &str, install: &str) -> Result<PathBuf> {
    if let Some(p) = std::env::var_os(var).filter(|v| !v.is_empty()) {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            bail!("{var}={} does not exist", p.display())
        };
    }
    which(program).ok_or_else(|| {
        anyhow!("{program} not found on PATH (install: {install}; or set {var}=/path/to/{program})")
    })
}

/// Starts Xvfb on the first free display number from :90. Xvfb itself decides what
/// is free: it reclaims the lock of a server that died (a killed test leaves one behind)
/// and exits at once when a live server holds the display, and then the next is tried.
async fn start_xvfb(xvfb: &std::path::Path) -> Result<(Spawned, String)> {
    let mut last_error = String::new();
    'displays: for n in 90..140 {
        let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
        let display = format!(":{n}");
        let args = [
            display.as_str(),
            "-screen",
            "0",
            "1280x800x24",
            "-nolisten",
            "tcp",
        ];
        let started = std::time::SystemTime::now() - Duration::from_secs(1);
        let (mut server, _) = Spawned::start("Xvfb", xvfb, args, &[], Output::Capture)?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < deadline {
            if let Some(status) = server.exited() {
                last_error = format!("Xvfb {display} exited ({status}): {}", server.log().tail(5));
                continue 'displays;
            }
            // Ours once the socket is new (a dead server's socket is replaced).
            let fresh = std::fs::metadata(&socket)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t >= started);
            if fresh {
                return Ok((server, display));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("Xvfb {display} did not create {}", socket.display());
    }
    bail!("no free X display number in :90..:139 (last: {last_error})")
}

async fn wait_for_port(port: u16, deadline: Duration) -> Result<()> {
    let start = std::time::Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        if start.elapsed() > deadline {
            bail!("nothing listening after {deadline:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_names_round_trip() {
        for e in [Engine::Chromium, Engine::Firefox, Engine::Webkit] {
            assert_eq!(Engine::parse(e.name()).unwrap(), e);
        }
        assert_eq!(Engine::parse("").unwrap(), Engine::Chromium);
        assert!(Engine::parse("netscape").is_err());
    }

    #[test]
    fn a_test_for_another_engine_fails_and_says_where_it_runs() {
        assert!(Engine::Webkit
            .require(Engine::Webkit, "needs ManagedMediaSource")
            .is_ok());
        let err = Engine::Firefox
            .require(Engine::Webkit, "needs ManagedMediaSource")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SKIPPED on firefox")
                && err.contains("needs ManagedMediaSource")
                && err.contains("LUCARNE_E2E_ENGINE=webkit"),
            "{err}"
        );
    }

    #[test]
    fn missing_driver_says_how_to_install_it() {
        let err = find_tool(
            "LUCARNE_E2E_NO_SUCH_VAR",
            "no-such-driver-xyz",
            "apt-get install it",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("no-such-driver-xyz") && err.contains("apt-get install it"),
            "{err}"
        );
    }
}
