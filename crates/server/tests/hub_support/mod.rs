//! Shared by the `hub*` integration tests: a real server on 127.0.0.1:0 and a chat
//! client over a real WebSocket, with deadlines on every wait.

#![allow(dead_code, unreachable_pub)]

pub mod under_fire;

use futures_util::{SinkExt, StreamExt};
use lucarne_protocol::{ClientMessage, Hello, Resume, ServerMessage, Welcome, PROTOCOL_VERSION};
use lucarne_server::{Config, Server};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any single expected event may take.
pub const DEADLINE: Duration = Duration::from_secs(10);

pub const BROADCASTER_TOKEN: &str = "broadcaster-secret";
pub const MODERATOR_TOKEN: &str = "moderator-secret";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A configuration for tests: no demo stream (saves CPU), data in `dir`.
pub fn config(dir: &Path) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dist: dir.join("dist"),
        pages: workspace().join("static"),
        media: workspace().join("media"),
        no_demo: true,
        hls_window: 6,
        chunk_ms: 100,
        data_dir: dir.join("data"),
        hub: Default::default(),
        ingest: Default::default(),
        serve: Default::default(),
        access: Default::default(),
        edge: Default::default(),
    };
    c.hub.broadcaster_token = Some(BROADCASTER_TOKEN.into());
    c.hub.moderator_tokens = vec![MODERATOR_TOKEN.into()];
    // The hub tests chat in made-up rooms ("r", "room").
    c.hub.free_rooms = true;
    c
}

pub async fn start(config: Config) -> Server {
    Server::start(config).await.expect("server starts")
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What a client saw next.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)] // short-lived values in tests
pub enum Seen {
    Frame(ServerMessage),
    /// The server closed, with this code.
    Closed(Option<u16>),
}

pub struct Client {
    pub ws: Ws,
}

pub fn hello() -> Hello {
    Hello {
        protocol_version: PROTOCOL_VERSION,
        ..Hello::default()
    }
}

pub fn named(name: &str) -> Hello {
    Hello {
        name: Some(name.into()),
        ..hello()
    }
}

pub fn staff(token: &str, name: &str) -> Hello {
    Hello {
        auth_token: Some(token.into()),
        ..named(name)
    }
}

/// Same identity, resuming after `last_seq`.
pub fn resume(w: &Welcome, epoch: u64, last_seq: u64) -> Hello {
    Hello {
        viewer_id: Some(w.viewer_id.clone()),
        viewer_token: Some(w.viewer_token.clone()),
        name: w.name.clone(),
        resume: Some(Resume { epoch, last_seq }),
        ..hello()
    }
}

pub async fn open(
    addr: SocketAddr,
    room: &str,
    origin: Option<&str>,
) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
    let mut req = format!("ws://{addr}/chat/{room}")
        .into_client_request()
        .unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("Origin", o.parse().unwrap());
    }
    let (ws, _) = tokio::time::timeout(DEADLINE, tokio_tungstenite::connect_async(req))
        .await
        .expect("handshake in time")?;
    Ok(ws)
}

impl Client {
    /// Connects and says `hello`, without waiting for the welcome.
    pub async fn connect_only(addr: SocketAddr, room: &str, hello: Hello) -> Client {
        let ws = open(addr, room, None).await.expect("connects");
        let mut c = Client { ws };
        c.send(&ClientMessage::Hello(hello)).await;
        c
    }

    /// Connects, says `hello` and returns the welcome (and the client).
    pub async fn join(addr: SocketAddr, room: &str, hello: Hello) -> (Client, Welcome) {
        let mut c = Client::connect_only(addr, room, hello).await;
        let w = c.welcome().await;
        (c, w)
    }

    pub async fn welcome(&mut self) -> Welcome {
        match self
            .next_where(|m| matches!(m, ServerMessage::Welcome(_)))
            .await
        {
            ServerMessage::Welcome(w) => w,
            _ => unreachable!(),
        }
    }

    pub async fn send(&mut self, msg: &ClientMessage) {
        let text = serde_json::to_string(msg).unwrap();
        self.ws.send(Message::text(text)).await.expect("send");
    }

    pub async fn send_raw(&mut self, msg: Message) {
        self.ws.send(msg).await.expect("send");
    }

    pub async fn chat(&mut self, text: &str, client_id: &str) {
        self.send(&ClientMessage::Chat(lucarne_protocol::SendChat {
            text: text.into(),
            client_id: Some(client_id.into()),
            question: false,
        }))
        .await;
    }

    /// The next frame or close, within `limit`; `None` on timeout.
    pub async fn next_within(&mut self, limit: Duration) -> Option<Seen> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let next = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .ok()?;
            return Some(match next {
                Some(Ok(Message::Text(t))) => Seen::Frame(
                    serde_json::from_str(t.as_str())
                        .unwrap_or_else(|e| panic!("server sent undecodable {t}: {e}")),
                ),
                Some(Ok(Message::Close(frame))) => Seen::Closed(frame.map(|f| u16::from(f.code))),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(other)) => panic!("unexpected {other:?}"),
                Some(Err(_)) | None => Seen::Closed(None),
            });
        }
    }

    pub async fn next(&mut self) -> Seen {
        self.next_within(DEADLINE)
            .await
            .expect("an event within the deadline")
    }

    /// The next frame matching `pred` (others are skipped); panics on close or timeout.
    pub async fn next_where(&mut self, pred: impl Fn(&ServerMessage) -> bool) -> ServerMessage {
        loop {
            match self.next().await {
                Seen::Frame(m) if pred(&m) => return m,
                Seen::Frame(_) => {}
                Seen::Closed(code) => panic!("closed ({code:?}) while waiting"),
            }
        }
    }

    /// The close code, skipping frames before it.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            if let Seen::Closed(code) = self.next().await {
                return code;
            }
        }
    }

    /// A ping answered: the connection is alive and served.
    pub async fn alive(&mut self) {
        self.send(&ClientMessage::Ping(lucarne_protocol::Ping { t: Some(99) }))
            .await;
        self.next_where(|m| matches!(m, ServerMessage::Pong(p) if p.t == Some(99)))
            .await;
    }
}

/// Polls `GET /api/rooms/{room}` until `pred` holds on the JSON, within the deadline.
pub async fn room_info_until(
    addr: SocketAddr,
    room: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        let text = client
            .get(format!("http://{addr}/api/rooms/{room}"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        if pred(&v) {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "room never reached the state: {v}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A small deterministic generator (xorshift64*): random moments that can be replayed
/// from the printed seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}
