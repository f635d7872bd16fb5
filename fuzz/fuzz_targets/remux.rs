//! The RTMP ingest's remuxer (lucarne-server `media::remux`): FLV tags from a publisher,
//! CMAF out.
//!
//! Input: FLV tags as an FLV file lays them out (type, 24-bit size, timestamp with its
//! extension byte, stream id, body, previous-tag size), after an optional FLV header; a
//! last tag cut short keeps the bytes there are. Tags are fed as the ingest does: a
//! `Malformed` tag is dropped, any other error ends the publish.
//!
//! Beyond "no panic": the first thing out is an init segment; the widget's own MP4
//! reader understands every init segment and fragment the server emits; chunk times
//! are finite and segment numbers never go back.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use lucarne::player::mp4;
use lucarne_server::media::remux::{Output, RemuxError, Remuxer};

const FIRST_MSN: u64 = 7;

fuzz_target!(|data: &[u8]| {
    let mut rest = data.strip_prefix(b"FLV").map_or(data, |d| d.get(10..).unwrap_or(&[]));
    let mut remuxer = Remuxer::new(1_000_000, FIRST_MSN, 100);
    let mut check = Check::default();
    while rest.len() >= 11 {
        let kind = rest[0] & 0x1f;
        let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
        let ts = u32::from_be_bytes([rest[7], rest[4], rest[5], rest[6]]);
        let end = (11 + size).min(rest.len());
        let body = Bytes::copy_from_slice(&rest[11..end]);
        rest = rest.get(end + 4..).unwrap_or(&[]);
        let result = match kind {
            8 => remuxer.audio(ts, body),
            9 => remuxer.video(ts, body),
            _ => continue,
        };
        match result {
            Ok(out) => check.outputs(out),
            Err(RemuxError::Malformed { .. }) => {}
            Err(_) => break,
        }
    }
    check.outputs(remuxer.flush().expect("flush after accepted tags"));
    assert!(remuxer.next_msn() >= FIRST_MSN);
});

#[derive(Default)]
struct Check {
    init: Option<mp4::InitInfo>,
    msn: u64,
}

impl Check {
    fn outputs(&mut self, out: Vec<Output>) {
        for o in out {
            match o {
                Output::Init(bytes) => {
                    assert!(mp4::is_init_segment(&bytes));
                    let info = mp4::parse_init(&bytes).expect("the widget reads the init segment");
                    assert!(info.has_video);
                    self.init = Some(info);
                }
                Output::Chunk(c) => {
                    let info = self.init.as_ref().expect("a chunk before any init segment");
                    assert!(c.start.is_finite() && c.start >= 0.0, "start {}", c.start);
                    assert!(c.duration.is_finite() && c.duration >= 0.0, "duration {}", c.duration);
                    assert!(c.segment_msn >= FIRST_MSN && c.segment_msn >= self.msn);
                    self.msn = c.segment_msn;
                    let t = mp4::fragment_start(&c.bytes, info).expect("the widget reads the fragment");
                    assert!(t.is_finite());
                }
                Output::Warning(w) => assert!(!w.is_empty()),
                Output::Frame(_) => assert!(self.init.is_some(), "a frame before any init segment"),
            }
        }
    }
}
