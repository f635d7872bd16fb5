//! What a player sends on the low-latency push socket (`GET /live/{id}/ll`), which
//! otherwise only receives: a latency report, one text frame every
//! [`REPORT_EVERY_MS`] while it plays, `{"latencyMs":523}`.
//!
//! The server keeps each socket's latest report for the broadcaster console's
//! viewers' latency p50; it trusts none of it (see lucarne-server's `media::health`).

use serde::{Deserialize, Serialize};

/// How often a playing widget reports its latency.
pub const REPORT_EVERY_MS: u32 = 5_000;

/// Largest report the server reads; a longer text frame is ignored.
pub const MAX_REPORT_BYTES: usize = 64;

/// `{"latencyMs":523}`: the player is this far behind the newest media it received
/// (its playhead to its buffer's live edge, as its latency policy measures it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencyReport {
    /// Milliseconds.
    pub latency_ms: u32,
}

impl LatencyReport {
    /// The report as its text frame, written without serde_json (the widget has none).
    pub fn to_text(self) -> String {
        format!("{{\"latencyMs\":{}}}", self.latency_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_frame_is_what_serde_reads() {
        for ms in [0, 523, u32::MAX] {
            let r = LatencyReport { latency_ms: ms };
            let text = r.to_text();
            assert!(text.len() <= MAX_REPORT_BYTES);
            assert_eq!(serde_json::from_str::<LatencyReport>(&text).unwrap(), r);
            assert_eq!(text, serde_json::to_string(&r).unwrap());
        }
    }
}
