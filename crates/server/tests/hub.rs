//! The chat hub over real WebSockets on 127.0.0.1:0: chatting, hearts, viewer count,
//! names, moderation over the socket and over HTTP, the Origin allowlist.

mod hub_support;

use hub_support::*;
use lucarne_protocol::*;
use std::time::Duration;

#[tokio::test]
async fn two_viewers_chat_and_see_each_other() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();

    let (mut ana, wa) = Client::join(addr, "demo", named("Ana")).await;
    assert_eq!(wa.protocol_version, PROTOCOL_VERSION);
    assert_eq!(wa.name.as_deref(), Some("Ana"));
    assert_eq!(wa.role, Role::Viewer);
    assert!(!wa.recovered);
    assert!(wa.history.is_empty());
    assert_eq!(wa.viewer_count, 1);
    assert!(wa.colour.starts_with('#') && wa.colour.len() == 7);
    assert_eq!(wa.limits.chat_max_chars, 500);

    let (mut bob, wb) = Client::join(addr, "demo", named("Bob")).await;
    assert_eq!(wb.viewer_count, 2);
    assert_eq!(wb.epoch, wa.epoch);
    assert_ne!(wb.viewer_id, wa.viewer_id);
    // Ana is told there are two of them (debounced push).
    ana.next_where(|m| matches!(m, ServerMessage::ViewerCount(ViewerCount { count: 2 })))
        .await;

    ana.chat("<script>alert(1)</script> hello Bob", "a1").await;
    let ServerMessage::Chat(got) = bob
        .next_where(|m| matches!(m, ServerMessage::Chat(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(got.text, "<script>alert(1)</script> hello Bob");
    assert_eq!(got.name, "Ana");
    assert_eq!(got.viewer_id, wa.viewer_id);
    assert_eq!(got.colour, wa.colour);
    assert_eq!(got.seq, wa.seq + 1);
    // The author gets its own message back, with its clientId: that is its ack.
    let ServerMessage::Chat(echo) = ana
        .next_where(|m| matches!(m, ServerMessage::Chat(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(echo.client_id.as_deref(), Some("a1"));
    assert_eq!(echo.id, got.id);

    bob.chat("hi Ana", "b1").await;
    ana.next_where(|m| matches!(m, ServerMessage::Chat(c) if c.text == "hi Ana"))
        .await;

    // A third viewer joins later and gets the history.
    let (_carl, wc) = Client::join(addr, "demo", hello()).await;
    let texts: Vec<_> = wc
        .history
        .iter()
        .map(|e| match e {
            RoomEvent::Chat(c) => c.text.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(texts, ["<script>alert(1)</script> hello Bob", "hi Ana"]);

    // Another room is another conversation.
    let (_dora, wd) = Client::join(addr, "other", hello()).await;
    assert!(wd.history.is_empty());
    assert_eq!(wd.viewer_count, 1);

    // Leaving lowers the count.
    ana.next_where(|m| matches!(m, ServerMessage::ViewerCount(ViewerCount { count: 3 })))
        .await;
    drop(bob);
    ana.next_where(|m| matches!(m, ServerMessage::ViewerCount(ViewerCount { count: 2 })))
        .await;
    server.shutdown().await;
}

#[tokio::test]
async fn names_are_checked_and_needed_to_post() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();

    // The broadcaster's name is taken; the viewer joins without a name.
    let mut c = Client::connect_only(addr, "r", named("broad caster")).await;
    let ServerMessage::Error(e) = c.next_where(|_| true).await else {
        panic!("expected an error first")
    };
    assert_eq!(e.code, ErrorCode::NameReserved);
    let w = c.welcome().await;
    assert_eq!(w.name, None);

    c.chat("hello", "x1").await;
    let ServerMessage::Error(e) = c.next_where(|m| matches!(m, ServerMessage::Error(_))).await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::NameRequired);
    assert_eq!(e.client_id.as_deref(), Some("x1"));

    for bad in ["", "a\u{7}b", "x\u{202e}y", &"n".repeat(25)] {
        c.send(&ClientMessage::SetName(SetName { name: bad.into() }))
            .await;
        let ServerMessage::Error(e) = c.next_where(|m| matches!(m, ServerMessage::Error(_))).await
        else {
            unreachable!()
        };
        assert_eq!(e.code, ErrorCode::InvalidName, "{bad:?}");
    }
    c.send(&ClientMessage::SetName(SetName {
        name: " Zoé ".into(),
    }))
    .await;
    let ServerMessage::Profile(p) = c
        .next_where(|m| matches!(m, ServerMessage::Profile(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(p.name.as_deref(), Some("Zoé"));

    c.chat(&"é".repeat(501), "x2").await;
    let ServerMessage::Error(e) = c.next_where(|m| matches!(m, ServerMessage::Error(_))).await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::TextTooLong);
    c.chat(&"é".repeat(500), "x3").await;
    c.next_where(|m| matches!(m, ServerMessage::Chat(m) if m.client_id.as_deref() == Some("x3")))
        .await;

    // The broadcaster posts under the configured name, with its role.
    let (mut b, wb) = Client::join(addr, "r", staff(BROADCASTER_TOKEN, "ignored")).await;
    assert_eq!(wb.role, Role::Broadcaster);
    assert_eq!(wb.name.as_deref(), Some("Broadcaster"));
    b.chat("on air", "b1").await;
    let ServerMessage::Chat(m) = c
        .next_where(|m| matches!(m, ServerMessage::Chat(m) if m.text == "on air"))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (m.name.as_str(), m.role),
        ("Broadcaster", Role::Broadcaster)
    );

    // A wrong token is said so, and gives no power.
    let mut m = Client::connect_only(addr, "r", staff("guess", "Mallory")).await;
    let ServerMessage::Error(e) = m.next_where(|_| true).await else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::BadToken);
    assert_eq!(m.welcome().await.role, Role::Viewer);
    m.send(&ClientMessage::SlowMode(SlowMode { seconds: 5 }))
        .await;
    let ServerMessage::Error(e) = m.next_where(|m| matches!(m, ServerMessage::Error(_))).await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Forbidden);
    server.shutdown().await;
}

#[tokio::test]
async fn hearts_are_aggregated_at_most_five_frames_a_second_and_limited_per_viewer() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let (mut tapper, wt) = Client::join(addr, "r", hello()).await;
    let (mut watcher, _) = Client::join(addr, "r", hello()).await;

    // 100 taps at once: 10 count (the per-viewer burst), the rest are ignored.
    tapper
        .send(&ClientMessage::Hearts(SendHearts {
            count: 100,
            colour: None,
        }))
        .await;
    let ServerMessage::Hearts(h) = watcher
        .next_where(|m| matches!(m, ServerMessage::Hearts(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(h.total, 10);
    assert_eq!(h.counts.get(&wt.colour), Some(&10));

    // Taps every 10 ms for 2 s, from two viewers, one in a chosen colour: the watcher
    // gets at most 5 frames a second, and the counts add up.
    let started = tokio::time::Instant::now();
    let period = Duration::from_secs(2);
    let watch = tokio::spawn(async move {
        let mut frames = Vec::new();
        let until = tokio::time::Instant::now() + period + Duration::from_millis(600);
        while let Some(seen) = watcher
            .next_within(until.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            if let Seen::Frame(ServerMessage::Hearts(h)) = seen {
                frames.push((tokio::time::Instant::now(), h));
            }
        }
        frames
    });
    let (mut other, _) = Client::join(addr, "r", hello()).await;
    while started.elapsed() < period {
        tapper
            .send(&ClientMessage::Hearts(SendHearts {
                count: 1,
                colour: None,
            }))
            .await;
        other
            .send(&ClientMessage::Hearts(SendHearts {
                count: 1,
                colour: Some("#48dbfb".into()),
            }))
            .await;
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let frames = watch.await.unwrap();
    let watched = period + Duration::from_millis(600);
    assert!(frames.len() >= 5, "hearts keep flowing: {}", frames.len());
    // At most 5 frames a second (receipt times can bunch, so count over the whole watch).
    assert!(
        frames.len() as f64 <= 5.0 * watched.as_secs_f64() + 1.0,
        "{} heart frames in {watched:?}",
        frames.len()
    );
    let counted: u64 = frames
        .iter()
        .map(|(_, h)| h.counts.values().map(|&n| u64::from(n)).sum::<u64>())
        .sum();
    let last = &frames.last().unwrap().1;
    assert_eq!(last.total, 10 + counted, "total = earlier + every count");
    assert!(frames.iter().any(|(_, h)| h.counts.contains_key("#48dbfb")));
    // ~200 taps per viewer in 2 s, at most 10/s (+ burst) counted each.
    assert!(counted <= 2 * (10 + 10 * 3), "{counted} hearts counted");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_input_gets_a_clear_answer_and_others_are_still_served() {
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::Message;

    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let (mut bystander, _) = Client::join(addr, "r", named("Bystander")).await;
    let (mut friend, _) = Client::join(addr, "r", named("Friend")).await;

    // Anything before hello is refused, the socket stays.
    let ws = open(addr, "r", None).await.unwrap();
    let mut early = Client { ws };
    early.chat("hi", "c").await;
    let ServerMessage::Error(e) = early.next_where(|_| true).await else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::HelloRequired);

    let (mut troll, _) = Client::join(addr, "r", named("Troll")).await;
    // Malformed JSON, wrong shapes, unknown types, binary: an error frame, still open.
    for (raw, code) in [
        ("{not json", ErrorCode::BadJson),
        (r#"{"type":"chat"}"#, ErrorCode::BadJson),
        (r#"{"type":"hearts","count":"many"}"#, ErrorCode::BadJson),
        (r#"{"type":"teleport","to":"mars"}"#, ErrorCode::UnknownType),
    ] {
        troll.send_raw(Message::text(raw)).await;
        let ServerMessage::Error(e) = troll
            .next_where(|m| matches!(m, ServerMessage::Error(_)))
            .await
        else {
            unreachable!()
        };
        assert_eq!(e.code, code, "{raw}");
    }
    troll.send_raw(Message::binary(vec![1u8, 2, 3])).await;
    let ServerMessage::Error(e) = troll
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::BinaryUnsupported);
    troll.alive().await;

    // Flood: three messages pass, the fourth mutes with a notice.
    for i in 0..3 {
        troll.chat(&format!("spam {i}"), &format!("t{i}")).await;
    }
    troll.chat("spam 3", "t3").await;
    let ServerMessage::Error(e) = troll
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::RateLimited);
    assert_eq!(e.client_id.as_deref(), Some("t3"));
    let ServerMessage::Notice(n) = troll
        .next_where(|m| matches!(m, ServerMessage::Notice(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(n.code, NoticeCode::Muted);
    assert!(n.until.unwrap() > hub_now() + 25_000);
    troll.chat("still here", "t4").await;
    let ServerMessage::Error(e) = troll
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Muted);
    assert!(e.retry_after_ms.unwrap() > 25_000);

    // A frame over 4 KB closes with 1009.
    let (mut big, _) = Client::join(addr, "r", hello()).await;
    big.chat(&"x".repeat(MAX_FRAME_BYTES), "big").await;
    assert_eq!(big.closed().await, Some(close::FRAME_TOO_LARGE));
    // Even a very large one.
    let (mut huge, _) = Client::join(addr, "r", hello()).await;
    huge.send_raw(Message::text("y".repeat(200_000))).await;
    assert_eq!(huge.closed().await, Some(close::FRAME_TOO_LARGE));

    // Invalid UTF-8 in a text frame closes with 1007.
    let (mut garbled, _) = Client::join(addr, "r", hello()).await;
    garbled
        .send_raw(Message::Frame(Frame::message(
            vec![b'{', 0xff, 0xfe, b'}'],
            OpCode::Data(Data::Text),
            true,
        )))
        .await;
    assert_eq!(garbled.closed().await, Some(close::INVALID_UTF8));

    // Everyone else was served all along and still is.
    let mut seen = Vec::new();
    friend.chat("are you still there?", "f1").await;
    while seen.len() < 4 {
        if let ServerMessage::Chat(c) = bystander
            .next_where(|m| matches!(m, ServerMessage::Chat(_)))
            .await
        {
            seen.push(c.text);
        }
    }
    assert_eq!(seen, ["spam 0", "spam 1", "spam 2", "are you still there?"]);
    bystander.alive().await;
    server.shutdown().await;
}

fn hub_now() -> u64 {
    lucarne_server::hub::now_ms()
}

#[tokio::test]
async fn a_foreign_origin_is_refused_with_403() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.hub.embed_origins = vec!["https://blog.example".into()];
    let server = start(cfg).await;
    let addr = server.local_addr();

    match open(addr, "r", Some("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    // The server's own origin and the configured embed are welcome.
    for origin in [format!("http://{addr}"), "https://blog.example".to_owned()] {
        let ws = open(addr, "r", Some(&origin))
            .await
            .expect("allowed origin");
        let mut c = Client { ws };
        c.send(&ClientMessage::Hello(hello())).await;
        c.welcome().await;
    }
    // Video stays open to every page.
    let r = reqwest::Client::new()
        .get(format!("http://{addr}/api/rooms/r"))
        .header("Origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await;
}

/// Regression (a page on a foreign origin retried its chat socket forever, showing
/// "reconnecting"): a failed handshake tells a page nothing, so a plain GET of the same
/// URL says whether it is refused for good and why, readable by that page (CORS).
#[tokio::test]
async fn a_plain_get_of_the_chat_url_says_why_a_page_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.hub.embed_origins = vec!["https://blog.example".into()];
    cfg.hub.free_rooms = false;
    cfg.no_demo = false;
    let server = start(cfg).await;
    let addr = server.local_addr();
    let door = async |room: &str, origin: &str| {
        let r = reqwest::Client::new()
            .get(format!("http://{addr}/chat/{room}"))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let cors = r
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned());
        let body: ChatDoor = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        (status, cors, body)
    };
    let (status, cors, body) = door("demo", "https://evil.example").await;
    assert_eq!((status, cors.as_deref()), (403, Some("*")));
    assert_eq!(
        body,
        ChatDoor {
            refused: Some(Refusal::Origin),
            origin: Some("https://evil.example".into()),
        }
    );
    let (status, _, body) = door("demo", "https://blog.example").await;
    assert_eq!((status, body.refused), (200, None));
    let (status, _, body) = door("no-such-room", "https://blog.example").await;
    assert_eq!((status, body.refused), (404, Some(Refusal::Room)));
    // The handshakes themselves are answered as before.
    match open(addr, "demo", Some("https://evil.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403)
        }
        other => panic!("expected 403, got {other:?}"),
    }
    match open(addr, "no-such-room", Some("https://blog.example")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 404)
        }
        other => panic!("expected 404, got {other:?}"),
    }
    open(addr, "demo", Some("https://blog.example"))
        .await
        .expect("an allowed page joins");
    server.shutdown().await;
}

#[tokio::test]
async fn a_ban_closes_the_socket_and_the_identity_cannot_rejoin() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let (mut moderator, wm) = Client::join(addr, "r", staff(MODERATOR_TOKEN, "Mod")).await;
    assert_eq!(wm.role, Role::Moderator);
    assert_eq!(wm.settings.blocked_words, Some(vec![]));
    let (mut troll, wt) = Client::join(addr, "r", named("Troll")).await;
    let (mut viewer, wv) = Client::join(addr, "r", named("Nice")).await;
    assert_eq!(
        wv.settings.blocked_words, None,
        "viewers do not see the list"
    );

    // A viewer cannot moderate.
    viewer
        .send(&ClientMessage::Ban(BanViewer {
            viewer_id: wt.viewer_id.clone(),
            duration_secs: None,
            reason: None,
        }))
        .await;
    let ServerMessage::Error(e) = viewer
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Forbidden);

    moderator
        .send(&ClientMessage::Ban(BanViewer {
            viewer_id: wt.viewer_id.clone(),
            duration_secs: None,
            reason: Some("trolling".into()),
        }))
        .await;
    let ServerMessage::Notice(n) = moderator
        .next_where(|m| matches!(m, ServerMessage::Notice(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(n.code, NoticeCode::Banned);
    let ServerMessage::Error(e) = troll
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::Banned);
    assert_eq!(troll.closed().await, Some(close::BANNED));

    // Same identity: refused at once.
    let mut again = Client::connect_only(addr, "r", resume(&wt, wt.epoch, wt.seq)).await;
    let ServerMessage::Error(e) = again.next_where(|_| true).await else {
        panic!()
    };
    assert_eq!(e.code, ErrorCode::Banned);
    assert_eq!(again.closed().await, Some(close::BANNED));
    // The others are untouched.
    viewer.alive().await;

    // Over HTTP: a bearer token is required.
    let http = reqwest::Client::new();
    let (mut second, w2) = Client::join(addr, "r", named("Second")).await;
    let body = format!(r#"{{"viewerId":"{}","durationSecs":600}}"#, w2.viewer_id);
    let url = format!("http://{addr}/api/rooms/r/bans");
    let r = http
        .post(&url)
        .body(body.clone())
        .header("content-type", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .post(&url)
        .bearer_auth("wrong")
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let text = r.text().await.unwrap();
    assert!(text.contains("\"code\":\"bad_token\""), "{text}");
    let r = http
        .post(&url)
        .bearer_auth(BROADCASTER_TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(second.closed().await, Some(close::BANNED));

    // Lifting the ban lets the identity back in.
    let r = http
        .delete(format!("http://{addr}/api/rooms/r/bans/{}", w2.viewer_id))
        .bearer_auth(MODERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_back, wb) = Client::join(addr, "r", resume(&w2, w2.epoch, w2.seq)).await;
    assert_eq!(wb.viewer_id, w2.viewer_id);
    server.shutdown().await;
}

#[tokio::test]
async fn deleted_messages_vanish_for_everyone_and_from_history() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let (mut moderator, _) = Client::join(addr, "r", staff(MODERATOR_TOKEN, "Mod")).await;
    let (mut ana, _) = Client::join(addr, "r", named("Ana")).await;
    ana.chat("keep me", "k").await;
    ana.chat("bad words", "b").await;
    let ServerMessage::Chat(bad) = moderator
        .next_where(|m| matches!(m, ServerMessage::Chat(c) if c.text == "bad words"))
        .await
    else {
        unreachable!()
    };

    // Over HTTP.
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/rooms/r/messages/{}/delete", bad.id);
    assert_eq!(http.post(&url).send().await.unwrap().status(), 401);
    let r = http
        .post(&url)
        .bearer_auth(MODERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for c in [&mut moderator, &mut ana] {
        let ServerMessage::Deleted(d) = c
            .next_where(|m| matches!(m, ServerMessage::Deleted(_)))
            .await
        else {
            unreachable!()
        };
        assert_eq!(d.id, bad.id);
        assert!(d.seq > bad.seq);
    }
    let (_late, wl) = Client::join(addr, "r", hello()).await;
    let texts: Vec<_> = wl
        .history
        .iter()
        .filter_map(|e| match e {
            RoomEvent::Chat(c) => Some(c.text.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(texts, ["keep me"]);
    // Unknown ids are 404; over the socket, not_found.
    let r = http
        .post(format!("http://{addr}/api/rooms/r/messages/nope/delete"))
        .bearer_auth(MODERATOR_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    moderator
        .send(&ClientMessage::Delete(DeleteMessage { id: bad.id.clone() }))
        .await;
    let ServerMessage::Error(e) = moderator
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::NotFound);
    server.shutdown().await;
}

#[tokio::test]
async fn slow_mode_and_blocked_words_apply_to_viewers_not_staff() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let (mut broadcaster, _) = Client::join(addr, "r", staff(BROADCASTER_TOKEN, "")).await;
    let (mut ana, _) = Client::join(addr, "r", named("Ana")).await;

    let http = reqwest::Client::new();
    let r = http
        .put(format!("http://{addr}/api/rooms/r/blocked-words"))
        .bearer_auth(BROADCASTER_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"words":["Spam","buy now"]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    // Staff learn the list; viewers do not.
    let ServerMessage::Settings(s) = broadcaster
        .next_where(|m| matches!(m, ServerMessage::Settings(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(s.blocked_words, Some(vec!["spam".into(), "buy now".into()]));
    ana.chat("BUY NOW cheap", "a1").await;
    let ServerMessage::Error(e) = ana
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::BlockedWord);

    broadcaster
        .send(&ClientMessage::SlowMode(SlowMode { seconds: 30 }))
        .await;
    let ServerMessage::Settings(s) = ana
        .next_where(|m| matches!(m, ServerMessage::Settings(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!((s.slow_mode_secs, s.blocked_words), (30, None));
    ana.chat("first", "a2").await;
    ana.next_where(|m| matches!(m, ServerMessage::Chat(_)))
        .await;
    ana.chat("second", "a3").await;
    let ServerMessage::Error(e) = ana
        .next_where(|m| matches!(m, ServerMessage::Error(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(e.code, ErrorCode::SlowMode);
    assert!(e.retry_after_ms.unwrap() > 25_000);
    for i in 0..3 {
        broadcaster
            .chat(&format!("spam is fine for me {i}"), &format!("b{i}"))
            .await;
    }
    ana.next_where(|m| matches!(m, ServerMessage::Chat(c) if c.text == "spam is fine for me 2"))
        .await;
    let info = room_info_until(addr, "r", |v| v["slowModeSecs"] == 30).await;
    assert_eq!(info["viewerCount"], 2);
    let r = http
        .post(format!("http://{addr}/api/rooms/r/slow-mode"))
        .bearer_auth(BROADCASTER_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"seconds":99999}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    server.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.hub.chat_idle_timeout_secs = 1;
    let server = start(cfg).await;
    let (mut pinging, _) = Client::join(server.local_addr(), "r", hello()).await;
    let (mut silent, w) = Client::join(server.local_addr(), "r", hello()).await;
    assert_eq!(w.limits.idle_timeout_ms, 1000);
    let started = tokio::time::Instant::now();
    // The pinging one stays while the silent one goes.
    let keep = tokio::spawn(async move {
        for _ in 0..8 {
            pinging.alive().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        pinging
    });
    assert_eq!(silent.closed().await, Some(close::IDLE_TIMEOUT));
    assert!(started.elapsed() >= Duration::from_millis(900));
    keep.await.unwrap().alive().await;
    server.shutdown().await;
}

/// The broadcast's own connections (the console, an overlay for OBS) say `backstage`:
/// they get the room, messages and count included, and are not counted as viewers.
#[tokio::test]
async fn backstage_connections_see_the_room_and_are_not_counted() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(config(dir.path())).await;
    let addr = server.local_addr();
    let (mut ana, wa) = Client::join(addr, "demo", named("Ana")).await;
    assert_eq!(wa.viewer_count, 1);
    let backstage = Hello {
        backstage: true,
        ..staff(BROADCASTER_TOKEN, "Host")
    };
    let (mut console, wc) = Client::join(addr, "demo", backstage).await;
    assert_eq!(wc.viewer_count, 1, "the console sees one viewer: Ana");
    let (_bob, wb) = Client::join(addr, "demo", named("Bob")).await;
    assert_eq!(wb.viewer_count, 2, "Ana and Bob, not the console");
    console
        .next_where(|m| matches!(m, ServerMessage::ViewerCount(ViewerCount { count: 2 })))
        .await;
    ana.chat("hello", "a1").await;
    console
        .next_where(|m| matches!(m, ServerMessage::Chat(c) if c.text == "hello"))
        .await;
    // The console leaving changes nothing; Bob leaving does.
    drop(console);
    drop(_bob);
    ana.next_where(|m| matches!(m, ServerMessage::ViewerCount(ViewerCount { count: 1 })))
        .await;
    assert!(
        ana.next_within(Duration::from_millis(1500))
            .await
            .is_none_or(|s| !matches!(s, Seen::Frame(ServerMessage::ViewerCount(_)))),
        "no count below one for a room Ana is in"
    );
}
