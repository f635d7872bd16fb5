//! MPEG-TS segments to fragmented MP4, for playing TS-segmented HLS through
//! MediaSource.
//!
//! ```no_run
//! use lucarne_ts::{StartTime, Transmuxer};
//! # fn append(_: &[u8]) {}
//! # let segments: Vec<(Vec<u8>, bool, f64)> = Vec::new();
//! let mut tx = Transmuxer::new();
//! for (bytes, discontinuity, playlist_time) in segments {
//!     let start = discontinuity.then(|| StartTime::from_seconds(playlist_time));
//!     match tx.push_segment(&bytes, start) {
//!         Ok(out) => {
//!             if let Some(init) = &out.init {
//!                 // addSourceBuffer(init.mime()) the first time, changeType after.
//!                 append(&init.bytes);
//!             }
//!             append(&out.media);
//!         }
//!         Err(e) => eprintln!("segment skipped: {e}"),
//!     }
//! }
//! ```
//!
//! # Layout
//! - `packet`: 188-byte packets, sync recovery after garbage.
//! - `psi`: PAT and PMT sections (CRC-checked), `stream_type` → what can be played.
//! - `pes`: PES reassembly per PID (continuity counters, a size bound), PTS/DTS.
//! - `timeline`: the 33-bit clock unwrapped; [`StartTime`].
//! - `bits`: the Exp-Golomb bit reader the SPS needs.
//! - `h264`: Annex-B → length-prefixed samples, keyframes, SPS (size, profile), `avcC`.
//! - `aac`: ADTS headers → AudioSpecificConfig, `mp4a.40.x`.
//! - `mp3`: MPEG audio layer III frame headers → `mp4a.6B` / `mp4a.69`.
//! - `id3`: ID3 timed metadata → [`Id3Frame`].
//! - `mp4`: the fMP4 writer (init segment, `moof` + `mdat`), hand-written boxes.
//! - `transmuxer`: [`Transmuxer`], the state across segments and the policies.
//! - `error`: [`TsError`], [`Warning`].
//!
//! # Design decisions
//! - **Whole segments in, whole fragments out.** HLS hands the player whole segments;
//!   taking one at a time keeps the API one call and lets a segment be demuxed fully
//!   before any state changes, so an error leaves the transmuxer as it was (skip the
//!   segment, or give up with the error's message). A streaming (chunked) interface
//!   would only matter for LL-HLS parts of TS, which are rare.
//! - **One fragment for both tracks**, a `moof` with a `traf` per track and one
//!   `mdat`, as the server's CMAF writer makes them, for one SourceBuffer (a muxed TS
//!   is one stream; two SourceBuffers would need two appends kept in step).
//! - **Timescales**: video keeps the 90 kHz clock (no rounding of any timestamp);
//!   audio uses its sample rate, so every frame lasts a whole number of ticks.
//! - **One timeline.** Timestamps are unwrapped relative to the previous one (the
//!   33-bit clock wraps every 26.5 h) and shifted by one offset shared by audio and
//!   video, set at the first segment and at each discontinuity so the segment starts
//!   at the caller's [`StartTime`]. Sharing the offset is what keeps A/V sync: the
//!   relative timing in the TS is kept exactly.
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
//! - Several programs in one TS: the first program of the PAT is played.
//! - Several video or audio streams: the first of each kind is played.
//! - A codec configuration change in the middle of a segment: video keeps the
//!   segment's first init segment (the new parameter sets are in-band), audio frames
//!   of the new configuration are dropped.
//! - Silence is not inserted into audio gaps, nor are video frames duplicated into
//!   video gaps: a gap in the TS stays a gap (reported as a [`Warning`]).
//! - 192-byte (M2TS/BDAV) packets, PES spanning two segments, several access units
//!   in one video PES, intra-refresh streams without keyframes.
//! - Captions (CEA-608/708 in SEI) are not extracted.
//! - For MP3, `audio/mp4; codecs="mp4a.6B"` is what Chromium accepts; a browser that
//!   only plays MP3 as `audio/mpeg` (raw frames) needs the caller to check
//!   `MediaSource.isTypeSupported` first.
#![forbid(unsafe_code)]
#![warn(missing_docs, clippy::missing_docs_in_private_items)]

mod aac;
mod bits;
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
pub use transmuxer::{Init, Output, Span, Transmuxer};
