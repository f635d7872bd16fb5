//! MPEG-TS segments to fragmented MP4, for playing TS-segmented HLS through
//! MediaSource.
//!
//! ```no_run
//! use lucarne_ts::{StartTime, TrackOutput, Transmuxer};
//! # struct SourceBuffer;
//! # impl SourceBuffer { fn append(&self, _: &[u8]) {} fn change_type(&self, _: &str) {} }
//! # let (video_buffer, audio_buffer) = (SourceBuffer, SourceBuffer);
//! # let segments: Vec<(Vec<u8>, bool, f64)> = Vec::new();
//! // Chromium takes MP3 only as `audio/mpeg`, Firefox only in MP4: ask isTypeSupported.
//! let mut tx = Transmuxer::new().raw_mp3(false);
//! for (bytes, discontinuity, playlist_time) in segments {
//!     let start = discontinuity.then(|| StartTime::from_seconds(playlist_time));
//!     let out = match tx.push_segment(&bytes, start) {
//!         Ok(out) => out,
//!         Err(e) => {
//!             eprintln!("segment skipped: {e}"); // e.g. "unsupported stream type 0x24 (HEVC) in PMT"
//!             continue;
//!         }
//!     };
//!     for (track, buffer) in [(&out.video, &video_buffer), (&out.audio, &audio_buffer)] {
//!         let Some(TrackOutput { init, media, .. }) = track else { continue };
//!         if let Some(init) = init {
//!             buffer.change_type(&init.mime()); // addSourceBuffer(init.mime()) the first time
//!             buffer.append(&init.bytes);
//!         }
//!         buffer.append(media);
//!     }
//!     for event in &out.id3 {
//!         println!("ID3 at {} s: {} bytes", event.pts_seconds, event.data.len());
//!     }
//! }
//! ```
//!
//! # Layout
//! - `packet`: 188-byte packets, sync recovery after garbage.
//! - `psi`: PAT and PMT sections (CRC-checked), `stream_type` → what can be played.
//! - `pes`: PES reassembly per PID (continuity counters, a size bound), PTS/DTS.
//! - `demux`: a segment's packets → the PES of the streams to play; which streams.
//! - `timeline`: the 33-bit clock unwrapped; [`StartTime`].
//! - `bits`: the Exp-Golomb bit reader the SPS needs.
//! - `h264`: Annex-B → length-prefixed samples, keyframes, SPS (size, profile), `avcC`.
//! - `aac`: ADTS headers → AudioSpecificConfig, `mp4a.40.x`.
//! - `mp3`: MPEG audio layer III frame headers → `mp3` in MP4, or raw frames.
//! - `id3`: ID3 timed metadata → [`Id3Frame`].
//! - `mp4`: the fMP4 writer (init segments, `moof` + `mdat`), hand-written boxes.
//! - `transmuxer`: [`Transmuxer`], the state across segments and the timing policies.
//! - `error`: [`TsError`], [`Warning`].
//!
//! # Design decisions
//! - **Whole segments in, whole fragments out.** HLS hands the player whole segments;
//!   taking one at a time keeps the API one call and lets a segment be demuxed fully
//!   before any state changes, so an error leaves the transmuxer as it was (skip the
//!   segment, or give up with the error's message). A streaming (chunked) interface
//!   would only matter for LL-HLS parts in TS, which are rare.
//! - **Video and audio apart, one SourceBuffer each**, as hls.js does with TS. Measured
//!   here with Chromium 156: one SourceBuffer holding both tracks, across an
//!   `EXT-X-DISCONTINUITY` whose audio overlapped the previous segment's by 24 ms,
//!   showed 31 of 50 frames. The audio's decode time going back triggers MSE's
//!   discontinuity rule ("need random access point" on *all* tracks of the buffer)
//!   after the new IDR was taken, so the video was dropped up to the next keyframe.
//!   Apart, the rule only touches audio, where every frame is a random access point
//!   (50 of 50 frames). MP3 needs it too: Chromium takes MP3 only as `audio/mpeg`.
//! - **Timescales**: video keeps the 90 kHz clock (no rounding of any timestamp);
//!   audio uses its sample rate, so every frame lasts a whole number of ticks.
//! - **One timeline.** Timestamps are unwrapped relative to the previous one (the
//!   33-bit clock wraps every 26.5 h) and shifted by one offset shared by audio and
//!   video, set at the first segment and at each discontinuity so the segment starts
//!   at the caller's [`StartTime`]. Sharing the offset keeps A/V sync: the relative
//!   timing in the TS is kept exactly. Decode times cannot be negative, so a start
//!   near 0 with B-frames places everything that much later (about 2 frames), for good.
//! - **Continuous output.** A segment's last video frame lasts as long as the one
//!   before (its true duration is only known from the next segment); the next
//!   segment's first decode time is moved onto the previous end when within a frame,
//!   so there are no decode gaps. Audio is laid frame after frame; PES timestamps
//!   only re-anchor it when they drift by a frame or more (a gap is followed, an
//!   overlap dropped), as hls.js does.
//! - **Every PES ends with its segment**: HLS segments start each stream with a new
//!   PES, so the last PES is flushed and the whole segment is output (no frame held
//!   back). Only a partial audio frame at the end of a PES is carried to the next.
//! - **Continuity errors drop the broken PES** and are reported as [`Warning`]s; the
//!   first packet of each PID in a segment is not checked, since consecutive segments
//!   may come from different muxer sessions.
//! - **Parameter sets stay in-band** in the samples (as hls.js leaves them) besides
//!   the `avcC`; a new init segment is handed out whenever the SPS/PPS or the audio
//!   configuration changes between segments.
//! - **Bounded everything**: a PES larger than [`MAX_PES_BYTES`] is an error, sections
//!   are at most 1 KB, every search moves forward, so no input can exhaust memory or
//!   loop; no `unsafe`, and parsing never indexes without a bounds check.
//! - **Size**: no dependency besides `thiserror` (compile time only), no float
//!   formatting (messages carry integers), no tables where a loop will do (the PSI
//!   CRC is computed bit by bit), hex and codec strings written by hand.
//!
//! # Not supported (yet)
//! - HEVC, MPEG-2 video, AC-3/E-AC-3, AAC in LATM, SAMPLE-AES: refused with
//!   [`TsError::Unsupported`] when nothing else is playable, else ignored with a
//!   [`Warning::IgnoredStream`]. MPEG audio layers I and II are dropped (browsers do
//!   not decode them).
//! - Several programs in one TS: the first program of the PAT is played. Several
//!   video or audio streams: the first of each kind.
//! - A codec configuration change in the middle of a segment: video keeps the
//!   segment's first init segment (the new parameter sets are in-band), audio frames
//!   of the new configuration are dropped.
//! - Silence is not inserted into audio gaps, nor are video frames duplicated into
//!   video gaps: a gap in the TS stays a gap (reported as a [`Warning`]). In raw MP3
//!   output a gap inside a segment closes up (`audio/mpeg` has no timestamps).
//! - 192-byte (M2TS/BDAV) packets, PES spanning two segments, several access units
//!   in one video PES, intra-refresh streams without keyframes.
//! - Captions (CEA-608/708 in SEI) are not extracted.
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::missing_docs_in_private_items)]

mod aac;
mod bits;
mod demux;
mod error;
mod h264;
mod id3;
mod mp3;
mod mp4;
mod packet;
mod pes;
mod psi;
mod timeline;
mod transmuxer;

pub use error::{Track, TsError, Warning};
pub use id3::Id3Frame;
pub use pes::MAX_PES_BYTES;
pub use timeline::StartTime;
pub use transmuxer::{Init, Output, Span, TrackOutput, Transmuxer};
