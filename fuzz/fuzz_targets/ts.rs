//! The MPEG-TS transmuxer (`lucarne-ts`): segments from any HLS origin the embedding
//! page points the widget at.
//!
//! Beyond "no panic": the input is fed as two segments to one transmuxer (the second
//! after a discontinuity when the first byte is odd), as a live stream feeds it; a
//! failed segment leaves the transmuxer as it was, so the next one is still handled;
//! every output's timeline runs forward (a span ends at or after its start).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lucarne_ts::{StartTime, Transmuxer};

fuzz_target!(|data: &[u8]| {
    let (first, second) = data.split_at(data.len() / 2);
    let mut tx = Transmuxer::new().raw_mp3(data.first().is_some_and(|b| b & 2 != 0));
    for (i, segment) in [first, second].into_iter().enumerate() {
        let discontinuity = (i == 1 && data.first().is_some_and(|b| b & 1 != 0))
            .then(|| StartTime::from_seconds(10.0));
        match tx.push_segment(segment, discontinuity) {
            Ok(out) => {
                for track in [&out.video, &out.audio].into_iter().flatten() {
                    if let Some(span) = &track.span {
                        assert!(span.end >= span.start, "{span:?}");
                    }
                }
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
