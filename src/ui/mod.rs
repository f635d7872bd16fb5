//! The widget's view: the video, the state overlay, the LIVE badge and the controls.
//! It only renders and forwards clicks as [`Control`]s; the player decides.

use crate::player::engine::PlayerHandle;
use crate::player::{Control, Sources, Status};
use std::rc::Rc;
use web_sys::{HtmlElement, HtmlVideoElement};
use yew::prelude::*;

/// Properties of the root component.
#[derive(Properties, Clone, PartialEq)]
pub(crate) struct AppProps {
    /// What to play.
    pub(crate) sources: Sources,
    /// Start muted.
    pub(crate) muted: bool,
    /// The light-DOM element hosting the shadow root; carries `data-status`.
    pub(crate) host: HtmlElement,
}

fn status_text(status: &Status) -> Option<String> {
    match status {
        Status::Connecting => Some("Connecting…".into()),
        Status::Buffering => Some("Buffering…".into()),
        Status::Reconnecting => Some("Connection lost — reconnecting…".into()),
        Status::Offline => Some("The broadcast has not started yet.".into()),
        Status::Ended => Some("The broadcast has ended.".into()),
        Status::Error { message, .. } => Some(format!("Cannot play: {message}")),
        Status::Playing | Status::Paused => None,
    }
}

/// The widget.
#[function_component(App)]
pub(crate) fn app(props: &AppProps) -> Html {
    let video = use_node_ref();
    let status = use_state(|| Status::Connecting);
    let muted = use_state(|| props.muted);
    let player = use_mut_ref(|| None::<PlayerHandle>);

    {
        let (video, status, player, host) = (
            video.clone(),
            status.clone(),
            player.clone(),
            props.host.clone(),
        );
        let (sources, start_muted) = (props.sources.clone(), props.muted);
        use_effect_with(sources.clone(), move |_| {
            if let Some(v) = video.cast::<HtmlVideoElement>() {
                v.set_muted(start_muted);
                let on_status: Rc<dyn Fn(Status)> = Rc::new(move |s: Status| {
                    let _ = host.set_attribute("data-status", s.name());
                    status.set(s);
                });
                *player.borrow_mut() = Some(PlayerHandle::new(v, sources, on_status));
            }
            move || {
                player.borrow_mut().take();
            }
        });
    }

    let send = {
        let player = player.clone();
        move |c: Control| {
            if let Some(p) = player.borrow().as_ref() {
                p.send(c);
            }
        }
    };
    let toggle_mute = {
        let (muted, send) = (muted.clone(), send.clone());
        Callback::from(move |_: MouseEvent| {
            let m = !*muted;
            send(Control::Mute(m));
            muted.set(m);
        })
    };
    let toggle_play = {
        let (status, send) = (status.clone(), send.clone());
        Callback::from(move |_: MouseEvent| {
            send(if matches!(*status, Status::Paused) {
                Control::Play
            } else {
                Control::Pause
            })
        })
    };
    let retry = Callback::from(|_: MouseEvent| {
        if let Some(w) = web_sys::window() {
            let _ = w.location().reload();
        }
    });

    let paused = matches!(*status, Status::Paused);
    let fatal = matches!(*status, Status::Error { fatal: true, .. });
    html! {
        <div class={classes!("lucarne", status.name())}>
            <video ref={video} playsinline=true muted={props.muted} aria-label="Live video"></video>
            if matches!(*status, Status::Playing) {
                <span class="badge live">{"LIVE"}</span>
            }
            if let Some(text) = status_text(&status) {
                <div class="overlay" role="status" aria-live="polite">
                    <span>{text}</span>
                    if fatal { <button class="retry" onclick={retry}>{"Retry"}</button> }
                </div>
            }
            <div class="controls">
                <button class="play" onclick={toggle_play} aria-label={if paused { "Play" } else { "Pause" }}>
                    {if paused { "▶" } else { "❚❚" }}
                </button>
                <button class={classes!("mute", (*muted).then_some("muted"))} onclick={toggle_mute}
                    aria-label={if *muted { "Unmute" } else { "Mute" }}>
                    {if *muted { "🔇 Tap to unmute" } else { "🔊" }}
                </button>
            </div>
        </div>
    }
}
