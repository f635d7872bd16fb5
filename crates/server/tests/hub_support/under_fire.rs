//! Resume under fire, on one node or several: while a sender posts without pause, a
//! receiver is disconnected [`RECEIVER_CYCLES`] times at random moments (mid-welcome,
//! mid-backlog, between frames), each time coming back to a node picked at random, and
//! the sender itself is cut off now and then, resumes on a random node and re-sends what
//! was not acknowledged. Every message must arrive exactly once, in seq order, on the
//! receiver. Random choices come from a seed the caller prints.

use super::*;
use lucarne_protocol::*;
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub const RECEIVER_CYCLES: usize = 200;
pub const SENDER_CUT_EVERY: usize = 150;

/// Posts `m0, m1, ...` until told to stop (and at least `min` of them), reconnecting
/// abruptly every `SENDER_CUT_EVERY` messages to a node of `nodes` picked at random;
/// re-sends unacknowledged messages after each resume. Returns how many distinct
/// messages it posted (all acknowledged).
async fn sender(nodes: Vec<SocketAddr>, stop: Arc<AtomicBool>, seed: u64, min: usize) -> usize {
    let mut rng = Rng::new(seed);
    let (mut c, w) = Client::join(nodes[0], "room", named("Sender")).await;
    let (epoch, mut last_seq) = (w.epoch, w.seq);
    let welcome = w;
    let mut pending: BTreeSet<usize> = BTreeSet::new();
    let mut next = 0usize;
    let ack = |m: &ServerMessage, pending: &mut BTreeSet<usize>, last_seq: &mut u64| {
        if let ServerMessage::Chat(c) = m {
            assert!(
                c.seq > *last_seq,
                "sender saw seq {} after {}",
                c.seq,
                last_seq
            );
            *last_seq = c.seq;
            if let Some(id) = c.client_id.as_deref().and_then(|s| s.strip_prefix('m')) {
                pending.remove(&id.parse::<usize>().unwrap());
            }
        }
    };
    loop {
        let stopping = stop.load(Ordering::Acquire) && next >= min;
        if !stopping {
            c.chat(&format!("message {next}"), &format!("m{next}"))
                .await;
            pending.insert(next);
            next += 1;
        }
        // Read whatever echoes are already there.
        while let Some(seen) = c.next_within(Duration::ZERO).await {
            match seen {
                Seen::Frame(m) => ack(&m, &mut pending, &mut last_seq),
                Seen::Closed(code) => panic!("sender closed: {code:?}"),
            }
        }
        if stopping {
            // Wait for the last echoes, then we are done.
            while !pending.is_empty() {
                match c.next().await {
                    Seen::Frame(m) => ack(&m, &mut pending, &mut last_seq),
                    Seen::Closed(code) => panic!("sender closed: {code:?}"),
                }
            }
            return next;
        }
        if next.is_multiple_of(SENDER_CUT_EVERY) {
            // Cut off without a close frame, then resume and re-send what is unacked.
            drop(c);
            let node = nodes[rng.below(nodes.len() as u64) as usize];
            let mut again =
                Client::connect_only(node, "room", resume(&welcome, epoch, last_seq)).await;
            let w = again.welcome().await;
            assert!(w.recovered, "sender resume after seq {last_seq}");
            for e in &w.history {
                if let RoomEvent::Chat(m) = e {
                    ack(&ServerMessage::Chat(m.clone()), &mut pending, &mut last_seq);
                }
            }
            while last_seq < w.seq {
                match again.next().await {
                    Seen::Frame(m) => ack(&m, &mut pending, &mut last_seq),
                    Seen::Closed(code) => panic!("sender closed: {code:?}"),
                }
            }
            c = again;
            for &i in &pending {
                c.chat(&format!("message {i}"), &format!("m{i}")).await;
            }
        }
        if rng.below(4) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// What the receiver saw, checked as it goes.
struct Seen2 {
    counts: BTreeMap<usize, u32>,
    last_seq: u64,
}

impl Seen2 {
    fn take(&mut self, e: &ServerMessage) {
        if let ServerMessage::Chat(c) = e {
            assert!(
                c.seq > self.last_seq,
                "duplicate or out of order: seq {} after {}",
                c.seq,
                self.last_seq
            );
            self.last_seq = c.seq;
            let i: usize = c.client_id.as_deref().unwrap()[1..].parse().unwrap();
            *self.counts.entry(i).or_default() += 1;
        }
    }

    fn welcome(&mut self, w: &Welcome) {
        for e in &w.history {
            match e {
                RoomEvent::Chat(c) => self.take(&ServerMessage::Chat(c.clone())),
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

/// A seed from the clock, printed so a failing run can be replayed.
pub fn seed() -> u64 {
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    println!("seed {seed}");
    seed
}

/// What a run did.
pub struct Report {
    /// Messages posted (each acknowledged, each received once in order).
    pub messages: usize,
    /// Receiver disconnects cut right after `hello`.
    pub mid_welcome: usize,
}

/// Runs the scenario against `nodes` (one or more addresses of nodes sharing the room),
/// with at least `min_messages` posted; panics on any loss, duplicate or reordering.
pub async fn resume_under_fire(nodes: &[SocketAddr], seed: u64, min_messages: usize) -> Report {
    let mut rng = Rng::new(seed);
    let (mut rx, first) = Client::join(nodes[0], "room", named("Receiver")).await;
    let epoch = first.epoch;
    let mut seen = Seen2 {
        counts: BTreeMap::new(),
        last_seq: first.seq,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let sending = tokio::spawn(sender(
        nodes.to_vec(),
        stop.clone(),
        seed ^ 0x5eed,
        min_messages,
    ));
    let mut mid_welcome = 0;
    for cycle in 0..RECEIVER_CYCLES {
        match rng.below(3) {
            // Read a few frames, then vanish.
            0 => {
                for _ in 0..rng.below(30) {
                    match rx.next().await {
                        Seen::Frame(m) => seen.take(&m),
                        Seen::Closed(code) => panic!("receiver closed: {code:?}"),
                    }
                }
            }
            // Read for a random time, then vanish.
            1 => {
                let until = tokio::time::Instant::now() + Duration::from_micros(rng.below(15_000));
                while let Some(s) = rx
                    .next_within(until.saturating_duration_since(tokio::time::Instant::now()))
                    .await
                {
                    match s {
                        Seen::Frame(m) => seen.take(&m),
                        Seen::Closed(code) => panic!("receiver closed: {code:?}"),
                    }
                }
            }
            // Vanish at once (the welcome may be in flight).
            _ => {}
        }
        drop(rx);
        let hello = resume(&first, epoch, seen.last_seq);
        let addr = nodes[rng.below(nodes.len() as u64) as usize];
        let mut c = Client::connect_only(addr, "room", hello.clone()).await;
        if rng.below(5) == 0 {
            // Cut off right after hello: the welcome and backlog are lost with the socket.
            mid_welcome += 1;
            drop(c);
            c = Client::connect_only(addr, "room", hello).await;
        }
        let w = c.welcome().await;
        assert!(
            w.recovered,
            "cycle {cycle}: resume after {} not recovered",
            seen.last_seq
        );
        assert_eq!(w.epoch, epoch);
        seen.welcome(&w);
        rx = c;
    }
    stop.store(true, Ordering::Release);
    let total = sending.await.unwrap();
    // The receiver catches up to everything the sender got acknowledged.
    while seen.counts.len() < total {
        match rx.next().await {
            Seen::Frame(m) => seen.take(&m),
            Seen::Closed(code) => panic!("receiver closed: {code:?}"),
        }
    }
    assert_eq!(seen.counts.len(), total, "lost messages");
    assert!(
        seen.counts.iter().all(|(_, &n)| n == 1),
        "duplicated messages"
    );
    assert_eq!(*seen.counts.keys().last().unwrap(), total - 1);
    Report {
        messages: total,
        mid_welcome,
    }
}
