//! The built-in `demo` stream: the committed clip looped forever as a live source.
//!
//! Decode times are wall-clock time: a sample's decode time, in seconds, is the unix
//! time at which it is "captured". Loop `k` of a clip lasting `L` seconds starts at unix
//! time `k·L`, so where the stream is at any instant follows from the clock alone: a
//! restarted server continues the exact same timeline, segment numbers included, and a
//! player reconnecting to it resumes without a discontinuity. Samples are released only
//! once their end time has passed, at real-time pace.
//!
//! This module is pure (time is an argument), so it is tested without waiting.

use super::clip::Clip;
use super::cmaf::{self, MuxError, Sample};
use super::live::PackagedChunk;
use std::sync::Arc;

/// Where one track is in the endless loop.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Loop number since the unix epoch.
    lap: u64,
    /// Next sample index within the clip track.
    index: usize,
}

/// Packager turning the clip into timed CMAF chunks.
#[derive(Debug)]
pub struct DemoLoop {
    clip: Arc<Clip>,
    /// One per track of `clip`, same order.
    cursors: Vec<Cursor>,
    /// Target chunk length in video ticks; chunks also end before every keyframe.
    chunk_ticks: u64,
}

impl DemoLoop {
    /// A loop whose first chunk starts at unix second `start_secs` (a segment boundary,
    /// since the clip has a keyframe every whole second).
    pub fn starting_at(clip: Arc<Clip>, start_secs: u64, chunk_ms: u32) -> DemoLoop {
        let lap = start_secs / clip.loop_secs;
        let offset_secs = start_secs % clip.loop_secs;
        let cursors = clip
            .tracks
            .iter()
            .map(|t| {
                let at = offset_secs * u64::from(t.track.timescale());
                // The first sample that ends after `at`: an audio frame straddling the
                // second belongs to the chunk in which it ends, as in a running loop.
                let index = t
                    .samples
                    .iter()
                    .position(|s| s.dts + u64::from(s.duration) > at)
                    .unwrap_or(0);
                Cursor { lap, index }
            })
            .collect();
        let video_ts = u64::from(clip.tracks[0].track.timescale());
        DemoLoop {
            chunk_ticks: (video_ts * u64::from(chunk_ms.max(1)) / 1000).max(1),
            cursors,
            clip,
        }
    }

    /// Absolute decode time (ticks) of the next sample of track `t`.
    fn next_dts(&self, t: usize) -> u64 {
        let track = &self.clip.tracks[t];
        let c = self.cursors[t];
        c.lap * self.loop_ticks(t) + track.samples[c.index].dts
    }

    fn loop_ticks(&self, t: usize) -> u64 {
        self.clip.loop_secs * u64::from(self.clip.tracks[t].track.timescale())
    }

    /// Takes the next sample of track `t`, with its absolute decode time.
    fn take(&mut self, t: usize) -> Sample {
        let mut s = self.clip.tracks[t].samples[self.cursors[t].index].clone();
        s.dts = self.next_dts(t);
        let c = &mut self.cursors[t];
        c.index += 1;
        if c.index == self.clip.tracks[t].samples.len() {
            c.index = 0;
            c.lap += 1;
        }
        s
    }

    /// Unix time, in nanoseconds, at which the next chunk will be complete.
    pub fn next_ready_ns(&self) -> u128 {
        let (_, end) = self.plan_video();
        let ts = u128::from(self.clip.tracks[0].track.timescale());
        (u128::from(end) * 1_000_000_000).div_ceil(ts)
    }

    /// How many video samples the next chunk takes, and its end time in video ticks.
    fn plan_video(&self) -> (usize, u64) {
        let track = &self.clip.tracks[0];
        let Cursor { lap, mut index } = self.cursors[0];
        let mut lap = lap;
        let start = self.next_dts(0);
        let mut end = start;
        let mut n = 0;
        loop {
            let s = &track.samples[index];
            if n > 0 && (s.keyframe || end - start >= self.chunk_ticks) {
                break;
            }
            end = lap * self.loop_ticks(0) + s.dts + u64::from(s.duration);
            n += 1;
            index += 1;
            if index == track.samples.len() {
                index = 0;
                lap += 1;
            }
        }
        (n, end)
    }

    /// The next chunk if it is complete at unix time `now_ns`, else `None`.
    pub fn next_chunk(&mut self, now_ns: u128) -> Result<Option<PackagedChunk>, MuxError> {
        let video_ts = u64::from(self.clip.tracks[0].track.timescale());
        let (n, end) = self.plan_video();
        if u128::from(end) * 1_000_000_000 > now_ns * u128::from(video_ts) {
            return Ok(None);
        }
        let video: Vec<Sample> = (0..n).map(|_| self.take(0)).collect();
        let start = video[0].dts;
        let mut runs = vec![(self.clip.tracks[0].track.id(), video)];
        for t in 1..self.clip.tracks.len() {
            let ts = u128::from(self.clip.tracks[t].track.timescale());
            let mut samples = Vec::new();
            // Audio goes with the chunk in which it ends, so chunks never overlap.
            loop {
                let s = &self.clip.tracks[t].samples[self.cursors[t].index];
                let s_end = u128::from(self.next_dts(t) + u64::from(s.duration));
                if s_end * u128::from(video_ts) > u128::from(end) * ts {
                    break;
                }
                samples.push(self.take(t));
            }
            runs.push((self.clip.tracks[t].track.id(), samples));
        }
        let refs: Vec<(u32, &[Sample])> = runs.iter().map(|(id, s)| (*id, s.as_slice())).collect();
        // Increasing with time and the same after a restart (chunks start at the same
        // instants): the start in chunk units, wrapped to 32 bits.
        let sequence = (start / self.chunk_ticks) as u32;
        let bytes = cmaf::fragment(sequence, &refs)?;
        let starts_segment = runs[0].1[0].keyframe;
        Ok(Some(PackagedChunk {
            bytes,
            starts_segment,
            segment_msn: start / video_ts,
            start: start as f64 / video_ts as f64,
            duration: (end - start) as f64 / video_ts as f64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, DecodeMaybe, Moof};
    use std::path::Path;

    fn clip() -> Arc<Clip> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../media/demo.mp4");
        Arc::new(Clip::load(&path).unwrap())
    }

    fn moof(bytes: &[u8]) -> Moof {
        let mut buf = bytes;
        match Any::decode_maybe(&mut buf).unwrap() {
            Some(Any::Moof(m)) => m,
            other => panic!("expected moof, got {other:?}"),
        }
    }

    const SEC: u128 = 1_000_000_000;

    #[test]
    fn nothing_is_released_before_its_time() {
        let start = 1_800_000_000;
        let mut demo = DemoLoop::starting_at(clip(), start, 100);
        assert!(demo.next_chunk(u128::from(start) * SEC).unwrap().is_none());
        let ready = demo.next_ready_ns();
        assert!(ready > u128::from(start) * SEC);
        assert!(demo.next_chunk(ready - 1).unwrap().is_none());
        assert!(demo.next_chunk(ready).unwrap().is_some());
    }

    #[test]
    fn decode_times_are_continuous_across_the_loop_point() {
        let clip = clip();
        let loop_secs = clip.loop_secs;
        // Start two seconds before a loop boundary and run past it.
        let start = 1_800_000_000 / loop_secs * loop_secs + loop_secs - 2;
        let mut demo = DemoLoop::starting_at(clip.clone(), start, 100);
        let mut next_dts = [None::<u64>; 2];
        let mut segments = Vec::new();
        let now = u128::from(start + 4) * SEC;
        while let Some(chunk) = demo.next_chunk(now).unwrap() {
            if chunk.starts_segment {
                segments.push(chunk.segment_msn);
            }
            let m = moof(&chunk.bytes);
            for (i, traf) in m.traf.iter().enumerate() {
                let base = traf.tfdt.as_ref().unwrap().base_media_decode_time;
                if let Some(expected) = next_dts[i] {
                    assert_eq!(base, expected, "track {i} has a gap or overlap");
                }
                let dur: u64 = traf.trun[0]
                    .samples
                    .iter()
                    .map(|e| u64::from(e.duration.unwrap()))
                    .sum();
                next_dts[i] = Some(base + dur);
            }
        }
        assert_eq!(segments, vec![start, start + 1, start + 2, start + 3]);
        // Media time is unix time.
        let video_ts = u64::from(clip.tracks[0].track.timescale());
        assert_eq!(next_dts[0], Some((start + 4) * video_ts));
    }

    /// Regression: the `mfhd` sequence number once depended on when the origin started,
    /// so a restarted origin served different bytes for the same segment.
    #[test]
    fn an_origin_started_later_produces_the_same_bytes() {
        let clip = clip();
        let mut early = DemoLoop::starting_at(clip.clone(), 1_800_000_000, 100);
        let mut late = DemoLoop::starting_at(clip, 1_800_000_003, 100);
        let now = 1_800_000_005 * SEC;
        let early: Vec<_> = std::iter::from_fn(|| early.next_chunk(now).unwrap()).collect();
        let late: Vec<_> = std::iter::from_fn(|| late.next_chunk(now).unwrap()).collect();
        let tail = &early[early.len() - late.len()..];
        assert!(!late.is_empty());
        for (a, b) in tail.iter().zip(&late) {
            assert_eq!(a.bytes, b.bytes, "chunk at {}", a.start);
        }
    }

    #[test]
    fn chunks_are_short_and_segments_start_on_keyframes() {
        let start = 1_800_000_003;
        let mut demo = DemoLoop::starting_at(clip(), start, 100);
        let mut count = 0;
        while let Some(chunk) = demo.next_chunk(u128::from(start + 2) * SEC).unwrap() {
            assert!(chunk.duration <= 0.101, "chunk of {} s", chunk.duration);
            let whole = (chunk.start.fract() < 1e-9) || (1.0 - chunk.start.fract() < 1e-9);
            assert_eq!(chunk.starts_segment, whole, "chunk at {}", chunk.start);
            count += 1;
        }
        assert!(count >= 20, "{count} chunks in 2 s");
    }
}
