//! What `/metrics` reports (served by [`crate::http::ops`]), in the Prometheus text
//! exposition format (version 0.0.4).
//!
//! # Metrics
//! | name | type | labels | read from |
//! | --- | --- | --- | --- |
//! | `lucarne_chat_connections` | gauge | — | the hub's open chat sockets |
//! | `lucarne_chat_viewers` | gauge | `room` | each room's viewer count (what widgets show) |
//! | `lucarne_chat_messages_total` | counter | `room` | messages the room published since it was loaded (`rate()` gives messages/s) |
//! | `lucarne_hearts_total` | counter | `room` | the room's hearts total (kept across restarts; `rate()` gives hearts/s) |
//! | `lucarne_push_subscribers` | gauge | `stream` | open low-latency push sockets |
//! | `lucarne_stream_bitrate_bits_per_second` | gauge | `stream` | bytes of the complete segments in the playlist window over their media duration: the source's bitrate (an RTMP publisher's, or the demo loop's) plus CMAF framing (about 2 %) |
//! | `lucarne_stream_keyframe_interval_seconds` | gauge | `stream` | the median segment duration in the window: a segment opens at every keyframe (the remuxer cuts there), so this is the encoder's GOP |
//! | `lucarne_stream_segment_lag_seconds` | gauge | `stream` | wall clock minus the media time at the end of the newest complete segment: up to one keyframe interval when healthy |
//! | `lucarne_edge_upstream_connected` | gauge | `stream` | on an edge (`--origin`), each relayed stream: 1 while its upstream socket to the origin is open, 0 while it reconnects (see [`crate::edge`]) |
//! | `lucarne_edge_relays_started_total` | counter | — | on an edge, relays opened to the origin since the node started: one per stream while it is watched, so a rate above the number of streams watched means relays churn |
//! | `lucarne_stream_chunk_lag_seconds` | gauge | `stream` | wall clock minus the media time at the end of the newest chunk (what the push sends and LL-HLS parts are cut from): about a chunk plus the publisher's delay when healthy, growing when the source stalls |
//!
//! Media times are wall-clock based (an RTMP publisher's timeline starts at the
//! wall clock when it goes live; see [`crate::media::remux`]), so a lag is the
//! production delay. A publisher that returns within the grace period continues its
//! old timeline, and the lag then includes the time it was away.
//!
//! Labels are bounded: `stream` takes only configured stream ids (the demo, the
//! `--stream-key` ids; on an edge, the streams relayed now: the origin's ids, at most
//! [`crate::edge::MAX_RELAYS`]), `room` only rooms loaded: every stream's, and with
//! `--free-rooms` at most `--max-rooms` made-up ones. Stream metrics appear once the
//! stream has a complete segment.
//!
//! # Why prometheus-client
//! `prometheus-client` is the Prometheus organisation's Rust client; since 0.26 it
//! writes the 0.0.4 text format every scraper reads. Over `metrics` with
//! `metrics-exporter-prometheus` it has two things this server needs:
//! - a [`Registry`] per server rather than one global recorder per process: tests start
//!   many servers in one process, and each must report its own numbers;
//! - [`Collector`]s, called at each scrape. Nearly everything above already exists in
//!   the hub and the origin, so it is read when asked rather than mirrored into
//!   counters that could drift from it. Nothing runs between scrapes, and the only
//!   hook added for metrics is the room's count of published messages.
//!
//! Its dependencies are small (itoa, dtoa, parking_lot and its derive macro).
//!
//! Must not: report a metric nothing feeds, or label one with an unbounded value.

use crate::edge::Edge;
use crate::http::ops::Drain;
use crate::hub::Hub;
use crate::media::live::Production;
use crate::media::Origin;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;
use std::sync::Arc;

/// The `Content-Type` of what [`Metrics::encode`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A server's metrics registry.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    /// Metrics read from `hub`, `origin`, `drain` (push sockets) and an edge's relays
    /// at each scrape.
    pub fn new(
        hub: Arc<Hub>,
        origin: Arc<Origin>,
        drain: Arc<Drain>,
        edge: Option<Arc<Edge>>,
    ) -> Metrics {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(Chat(hub)));
        registry.register_collector(Box::new(Streams { origin, drain }));
        if let Some(edge) = edge {
            registry.register_collector(Box::new(Upstreams(edge)));
        }
        Metrics { registry }
    }

    /// Everything, in Prometheus text format.
    pub fn encode(&self) -> Result<String, fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

/// One metric family with a single label, one sample per `(label value, metric)`.
fn family<'a, M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    (name, help, kind): (&str, &str, MetricType),
    label: &str,
    samples: impl IntoIterator<Item = (&'a str, M)>,
) -> fmt::Result {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (value, m) in samples {
        m.encode(metric.encode_family(&[(label, value)])?)?;
    }
    Ok(())
}

/// The hub: connections, and per room viewers, messages and hearts.
#[derive(Debug)]
struct Chat(Arc<Hub>);

impl Collector for Chat {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let mut rooms: Vec<_> = self
            .0
            .rooms()
            .into_iter()
            .map(|r| (r.id.clone(), r.info(), r.chats_posted()))
            .collect();
        rooms.sort_by(|a, b| a.0.cmp(&b.0));
        let connections = ConstGauge::new(self.0.connections());
        connections.encode(encoder.encode_descriptor(
            "lucarne_chat_connections",
            "Open chat WebSockets.",
            None,
            MetricType::Gauge,
        )?)?;
        family(
            &mut encoder,
            (
                "lucarne_chat_viewers",
                "Viewers in the chat room (the count widgets show).",
                MetricType::Gauge,
            ),
            "room",
            rooms
                .iter()
                .map(|(id, info, _)| (&**id, ConstGauge::new(info.viewer_count))),
        )?;
        family(
            &mut encoder,
            (
                "lucarne_chat_messages",
                "Chat messages published in the room since it was loaded.",
                MetricType::Counter,
            ),
            "room",
            rooms
                .iter()
                .map(|(id, _, n)| (&**id, ConstCounter::new(*n))),
        )?;
        family(
            &mut encoder,
            (
                "lucarne_hearts",
                "Hearts sent in the room, ever (its saved total).",
                MetricType::Counter,
            ),
            "room",
            rooms
                .iter()
                .map(|(id, info, _)| (&**id, ConstCounter::new(info.hearts_total))),
        )
    }
}

/// An edge's relays: whether each is connected to the origin.
#[derive(Debug)]
struct Upstreams(Arc<Edge>);

impl Collector for Upstreams {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let upstreams = self.0.upstreams();
        ConstCounter::new(self.0.relays_started()).encode(encoder.encode_descriptor(
            "lucarne_edge_relays_started",
            "Relays opened to the origin since the node started.",
            None,
            MetricType::Counter,
        )?)?;
        family(
            &mut encoder,
            (
                "lucarne_edge_upstream_connected",
                "1 while the stream's relay socket to the origin is open, 0 while it reconnects.",
                MetricType::Gauge,
            ),
            "stream",
            upstreams
                .iter()
                .map(|u| (u.stream.as_str(), ConstGauge::new(i64::from(u.connected)))),
        )
    }
}

/// The origin's streams: push subscribers and what their sources produce.
#[derive(Debug)]
struct Streams {
    origin: Arc<Origin>,
    drain: Arc<Drain>,
}

impl Collector for Streams {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let now = crate::media::now_ns() as f64 / 1e9;
        let mut ids = self.origin.ids();
        ids.sort();
        ids.dedup();
        family(
            &mut encoder,
            (
                "lucarne_push_subscribers",
                "Open low-latency push sockets on the stream.",
                MetricType::Gauge,
            ),
            "stream",
            ids.iter().map(|id| {
                (
                    id.as_str(),
                    ConstGauge::new(self.drain.push_subscribers(id)),
                )
            }),
        )?;
        let measured: Vec<(&str, Measured)> = ids
            .iter()
            .filter_map(|id| Some((id.as_str(), self.origin.stream(id)?)))
            .filter_map(|(id, s)| Some((id, Measured::of(&s.production(), now)?)))
            .collect();
        for (name, help, value) in STREAM_GAUGES {
            family(
                &mut encoder,
                (name, help, MetricType::Gauge),
                "stream",
                measured
                    .iter()
                    .map(|(id, m)| (*id, ConstGauge::new(value(m)))),
            )?;
        }
        Ok(())
    }
}

/// A gauge per stream read from [`Measured`]: name, help, value.
type StreamGauge = (&'static str, &'static str, fn(&Measured) -> f64);

const STREAM_GAUGES: [StreamGauge; 4] = [
    (
        "lucarne_stream_bitrate_bits_per_second",
        "Bitrate of the stream's source: bytes of the segments in the playlist window over their duration.",
        |m| m.bitrate,
    ),
    (
        "lucarne_stream_keyframe_interval_seconds",
        "Median duration of the segments in the playlist window; each opens at a keyframe.",
        |m| m.keyframe_interval,
    ),
    (
        "lucarne_stream_segment_lag_seconds",
        "Wall clock minus the media time at the end of the newest complete segment.",
        |m| m.segment_lag,
    ),
    (
        "lucarne_stream_chunk_lag_seconds",
        "Wall clock minus the media time at the end of the newest low-latency chunk.",
        |m| m.chunk_lag,
    ),
];

/// What a stream's [`Production`] says about its source at time `now`: also the
/// bitrate and keyframe interval of the broadcaster console's health panel
/// ([`crate::studio`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Measured {
    /// Bits per second.
    pub(crate) bitrate: f64,
    /// Seconds.
    pub(crate) keyframe_interval: f64,
    /// Seconds.
    segment_lag: f64,
    /// Seconds.
    chunk_lag: f64,
}

impl Measured {
    /// `None` until the stream has a complete segment with a duration.
    pub(crate) fn of(p: &Production, now: f64) -> Option<Measured> {
        let newest = p.segments.last()?;
        let seconds: f64 = p.segments.iter().map(|s| s.duration).sum();
        if seconds <= 0.0 {
            return None;
        }
        let bytes: usize = p.segments.iter().map(|s| s.bytes).sum();
        let mut durations: Vec<f64> = p.segments.iter().map(|s| s.duration).collect();
        durations.sort_by(f64::total_cmp);
        let segment_end = newest.start + newest.duration;
        Some(Measured {
            bitrate: bytes as f64 * 8.0 / seconds,
            keyframe_interval: durations[durations.len() / 2],
            segment_lag: now - segment_end,
            chunk_lag: now - p.newest_chunk_end.unwrap_or(segment_end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::live::{LiveStream, PackagedChunk};
    use bytes::Bytes;

    /// A source with a keyframe every `gop` seconds and 0.5 s chunks of `chunk_bytes`.
    fn feed(stream: &LiveStream, from: f64, gops: u32, gop: f64, chunk_bytes: usize) {
        let chunks = (gop / 0.5) as u32;
        for g in 0..gops {
            for c in 0..chunks {
                let start = from + f64::from(g) * gop + f64::from(c) * 0.5;
                stream.push_chunk(PackagedChunk {
                    bytes: Bytes::from(vec![0; chunk_bytes]),
                    starts_segment: c == 0,
                    segment_msn: u64::from(g),
                    start,
                    duration: 0.5,
                });
            }
        }
    }

    #[test]
    fn bitrate_keyframe_interval_and_lags_come_from_the_window_and_the_newest_chunk() {
        let stream = LiveStream::new("s", Bytes::from_static(b"init"), 3);
        // 2 s GOPs of four 0.5 s chunks of 25 kB: 400 kbit/s.
        feed(&stream, 1000.0, 10, 2.0, 25_000);
        let p = stream.production();
        assert_eq!(p.segments.len(), 3, "the playlist window");
        // Nine complete GOPs end at 1018 s; the open one has all its chunks, to 1020 s.
        let m = Measured::of(&p, 1020.5).unwrap();
        assert_eq!(m.bitrate, 400_000.0);
        assert_eq!(m.keyframe_interval, 2.0);
        assert_eq!(m.segment_lag, 2.5);
        assert_eq!(m.chunk_lag, 0.5);
    }

    #[test]
    fn one_odd_segment_does_not_move_the_keyframe_interval() {
        let stream = LiveStream::new("s", Bytes::from_static(b"init"), 6);
        feed(&stream, 1000.0, 3, 1.0, 1000);
        // A publisher that dropped mid-GOP and came back: one short segment.
        feed(&stream, 1003.0, 1, 0.5, 1000);
        feed(&stream, 1003.5, 4, 1.0, 1000);
        let m = Measured::of(&stream.production(), 1008.0).unwrap();
        assert_eq!(m.keyframe_interval, 1.0);
    }

    #[test]
    fn nothing_is_measured_before_the_first_complete_segment() {
        let stream = LiveStream::new("s", Bytes::from_static(b"init"), 3);
        assert!(Measured::of(&stream.production(), 0.0).is_none());
        feed(&stream, 1000.0, 1, 1.0, 1000);
        assert!(Measured::of(&stream.production(), 1001.0).is_none());
    }
}
