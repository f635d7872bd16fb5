//! The transmuxer: one MPEG-TS segment in, fMP4 out, with the state that makes
//! consecutive segments one continuous presentation.
//!
//! Owns the per-stream state across segments (codec configurations, the timeline
//! offset, the next expected decode times, a partial audio frame) and the policies:
//! which frames are dropped, how timestamps are placed and repaired, when a new init
//! segment is due. Which streams play is `demux`'s choice; byte layouts are the other
//! modules'.
//!
//! A call first demuxes the whole segment without touching that state (so an error
//! leaves the transmuxer as it was), then remuxes, which cannot fail.

use crate::aac::{self, CodecName};
use crate::demux::{demux, Demuxed, Program};
use crate::error::{Track, TsError, Warning};
use crate::h264::{self, AccessUnit, AvcConfig};
use crate::id3::{self, Id3Frame};
use crate::mp3;
use crate::mp4::{self, AudioConfig, Run, Sample};
use crate::pes::Pes;
use crate::timeline::{rescale, StartTime, Unwrapper, CLOCK};

/// A video decode time within a frame (and this many 90 kHz ticks, 1/6 s) of where the
/// previous segment ended is moved there, so decode times have no gap or overlap at
/// segment boundaries (the last frame's duration is a guess). Further is a real jump.
const VIDEO_SNAP: u64 = 15_000;
/// An audio frame of a new segment that starts more than this before where audio
/// ended (90 kHz ticks) is a jump back, followed; less is an overlap, dropped.
const AUDIO_JUMP_BACK: u64 = 90_000;
/// Frame duration assumed before two frames have been seen: 30 fps.
const DEFAULT_FRAME: u32 = 3000;

/// Video state kept across segments.
#[derive(Debug, Default)]
struct VideoState {
    /// The configuration of the current init segment.
    config: Option<AvcConfig>,
    /// Decode time where the last segment's video ended (output timeline, 90 kHz).
    next_dts: Option<u64>,
    /// The last frame's duration: the guess for the duration of a segment's last frame.
    frame_duration: Option<u32>,
    /// Frames are dropped until a keyframe: at the start and after a discontinuity,
    /// where the decoder has nothing to predict from.
    need_key: bool,
}

/// Audio state kept across segments.
#[derive(Debug, Default)]
struct AudioState {
    /// The configuration of the current init segment.
    config: Option<AudioConfig>,
    /// Where the last frame ended (output timeline, in samples).
    next: Option<u64>,
    /// The start of a frame cut at the end of the last PES, completed by the next.
    leftover: Vec<u8>,
}

/// An access unit and its timestamps (unwrapped, 90 kHz, before the offset).
struct Au {
    /// Presentation timestamp.
    pts: u64,
    /// Decode timestamp.
    dts: u64,
    /// The converted bytes and what they hold.
    unit: AccessUnit,
}

/// An audio frame and where its time comes from.
struct AudioFrame {
    /// Unwrapped PTS of its PES and the frame's index among those starting in it;
    /// `None` for a frame that started in the previous PES.
    pts: Option<(u64, u64)>,
    /// The raw frame (ADTS header stripped; MP3 frames keep theirs).
    data: Vec<u8>,
}

/// A span of presentation time covered by one track's fragment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    /// Earliest presentation time, seconds.
    pub start: f64,
    /// Latest presentation end (time + duration), seconds.
    pub end: f64,
    /// Number of samples (frames).
    pub samples: u32,
}

/// An init segment and what it declares, for one SourceBuffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Init {
    /// `ftyp` + `moov`, to append before the fragments that follow it. Empty for raw
    /// MP3 (`audio/mpeg` has no init segment).
    pub bytes: Vec<u8>,
    /// RFC 6381 codec: `avc1.64001f`, `mp4a.40.2`, `mp3`.
    pub codec: String,
    /// Picture size `(width, height)` after cropping, from the SPS, for video (a
    /// non-square sample aspect ratio is in the init segment's `pasp`).
    pub size: Option<(u16, u16)>,
}

impl Init {
    /// The type for `MediaSource.addSourceBuffer` (or `SourceBuffer.changeType`), e.g.
    /// `video/mp4; codecs="avc1.64001f"`, `audio/mp4; codecs="mp4a.40.2"`,
    /// `audio/mpeg`.
    pub fn mime(&self) -> String {
        if self.bytes.is_empty() {
            return "audio/mpeg".into();
        }
        let kind = if self.size.is_some() {
            "video"
        } else {
            "audio"
        };
        let mut s = String::from(kind);
        s.push_str("/mp4; codecs=\"");
        s.push_str(&self.codec);
        s.push('"');
        s
    }
}

/// One track's share of a segment: what to append to that track's SourceBuffer.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TrackOutput {
    /// A new init segment: the first output of the track, or its codec configuration
    /// changed. Append it first (after `changeType` if its MIME type changed).
    pub init: Option<Init>,
    /// One `moof` + `mdat` (or, for raw MP3, the frames back to back); empty when the
    /// segment had no sample of this track that can be decoded yet.
    pub media: Vec<u8>,
    /// The samples' presentation span, when there are samples. For raw MP3, set the
    /// SourceBuffer's `timestampOffset` to `span.start` before appending (`audio/mpeg`
    /// carries no timestamps and needs `mode = "sequence"`).
    pub span: Option<Span>,
}

/// What one segment became. Video and audio come apart, for one SourceBuffer each, as
/// hls.js appends them: see the crate documentation for why.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Output {
    /// The video track, when the program has one and it can be decoded.
    pub video: Option<TrackOutput>,
    /// The audio track, when the program has one and it can be decoded.
    pub audio: Option<TrackOutput>,
    /// ID3 timed metadata, in stream order.
    pub id3: Vec<Id3Frame>,
    /// What was dropped or repaired.
    pub warnings: Vec<Warning>,
}

impl Output {
    /// The spans of the tracks that have samples.
    fn spans(&self) -> impl Iterator<Item = Span> + '_ {
        [&self.video, &self.audio]
            .into_iter()
            .flatten()
            .filter_map(|t| t.span)
    }

    /// The earliest presentation time over both tracks, seconds.
    pub fn start(&self) -> Option<f64> {
        self.spans().map(|s| s.start).reduce(f64::min)
    }

    /// The latest presentation end over both tracks, seconds.
    pub fn end(&self) -> Option<f64> {
        self.spans().map(|s| s.end).reduce(f64::max)
    }
}

/// MPEG-TS segments in, fMP4 out. See the [crate documentation](crate) for the design.
#[derive(Debug)]
pub struct Transmuxer {
    /// MP3 is output as raw frames for `audio/mpeg` instead of fMP4.
    raw_mp3: bool,
    /// The program of the last segment, for segments that carry no PAT/PMT.
    program: Option<Program>,
    /// Unwraps the 33-bit clock, relative to the previous timestamp.
    unwrapper: Unwrapper,
    /// Added to unwrapped timestamps to place them on the output timeline; `None`
    /// until the first segment with timestamps (and after a discontinuity).
    offset: Option<i64>,
    /// Where the next timestamps should start, given with a discontinuity.
    pending_start: Option<StartTime>,
    /// How much later than the caller's start times the output is placed (90 kHz):
    /// non-zero only when a start near 0 would have needed negative decode times.
    shift: u64,
    /// Video state.
    video: VideoState,
    /// Audio state.
    audio: AudioState,
    /// The video init segment last handed out, to hand out a new one only on change.
    video_init: Option<Vec<u8>>,
    /// The audio init segment (or raw MP3 configuration) last handed out.
    audio_init: Option<AudioConfig>,
    /// `mfhd` sequence number of the last fragment.
    sequence: u32,
}

impl Default for Transmuxer {
    fn default() -> Self {
        Self::new()
    }
}

impl Transmuxer {
    /// A transmuxer for a new stream.
    pub fn new() -> Self {
        Self {
            raw_mp3: false,
            program: None,
            unwrapper: Unwrapper::default(),
            offset: None,
            pending_start: None,
            shift: 0,
            video: VideoState {
                need_key: true,
                ..VideoState::default()
            },
            audio: AudioState::default(),
            video_init: None,
            audio_init: None,
            sequence: 0,
        }
    }

    /// Outputs MP3 audio as raw MPEG audio frames (`audio/mpeg`) rather than fMP4
    /// (`audio/mp4; codecs="mp3"`). In MediaSource, Chromium 156 takes only the first
    /// and Firefox 153 only the second (both checked here; hls.js counts Safari with
    /// Chromium): choose with `MediaSource.isTypeSupported`.
    pub fn raw_mp3(mut self, raw: bool) -> Self {
        self.raw_mp3 = raw;
        self
    }

    /// Transmuxes one whole segment.
    ///
    /// `discontinuity`: `Some(start)` when this segment starts a new timeline (the first
    /// segment pushed, or one after `EXT-X-DISCONTINUITY`): its earliest presentation
    /// time is placed at `start`, and audio and video keep their relative offset. With
    /// `None`, the segment continues the previous one's timeline (the first segment
    /// ever pushed with `None` keeps the stream's own timestamps).
    ///
    /// Decode times cannot be negative: if a start near 0 would need them (B-frames
    /// decode before they are shown), the whole output is placed later by the
    /// difference, a fraction of a second, and stays so for later discontinuities.
    /// The spans in the [`Output`] say where things went.
    ///
    /// On error nothing changes: the segment can be skipped.
    pub fn push_segment(
        &mut self,
        bytes: &[u8],
        discontinuity: Option<StartTime>,
    ) -> Result<Output, TsError> {
        let mut warnings = Vec::new();
        let demuxed = demux(bytes, self.program.as_ref(), &mut warnings)?;

        if let Some(start) = discontinuity {
            self.unwrapper.reset();
            self.offset = None;
            self.pending_start = Some(start);
            self.video.next_dts = None;
            self.video.need_key = true;
            self.audio.next = None;
            self.audio.leftover.clear();
        }
        let Demuxed {
            program,
            video,
            audio,
            id3,
        } = demuxed;
        let has_video = program.video.is_some();
        let audio_is_adts = program.audio.map(|a| a.1);
        let id3_pid = program.id3.unwrap_or(0);
        self.program = Some(program);

        let aus = self.video_units(video, &mut warnings);
        let (audio_config, frames) = match audio_is_adts {
            Some(adts) => self.audio_frames(adts, audio, &mut warnings),
            None => (None, Vec::new()),
        };
        // The timestamps of ID3 PES, unwrapped with the rest.
        let id3: Vec<(Option<u64>, Vec<u8>)> = id3
            .into_iter()
            .map(|p| (p.pts.map(|t| self.unwrapper.unwrap(t)), p.data))
            .collect();

        if self.offset.is_none() {
            let pts = aus
                .iter()
                .map(|a| a.pts)
                .chain(frames.iter().filter_map(|f| f.pts.map(|p| p.0)));
            let dts = aus
                .iter()
                .map(|a| a.dts)
                .chain(frames.iter().filter_map(|f| f.pts.map(|p| p.0)));
            if let (Some(min_pts), Some(min_dts)) = (pts.min(), dts.min()) {
                let target = self.pending_start.take().map_or(min_pts, StartTime::ticks);
                // In i128: hostile input can unwrap timestamps arbitrarily far.
                let (min_pts, min_dts) = (i128::from(min_pts), i128::from(min_dts));
                let mut offset = i128::from(target) - min_pts + i128::from(self.shift);
                // Decode times cannot be negative: when a start near 0 would need it
                // (a first frame decoded before it is shown, with B-frames), the
                // timeline moves later by the difference, for good, so that later
                // discontinuities stay continuous with what was already output.
                if offset < -min_dts {
                    let more = u64::try_from(-min_dts - offset).unwrap_or(u64::MAX);
                    self.shift = self.shift.saturating_add(more);
                    offset = -min_dts;
                }
                self.offset = Some(offset.clamp(i64::MIN.into(), i64::MAX.into()) as i64);
            }
        }
        let offset = self.offset.unwrap_or(0);
        // Output times stay within [0, i64::MAX], so differences of two never overflow.
        let map = |t: u64| (i128::from(t) + i128::from(offset)).clamp(0, i64::MAX.into()) as u64;

        let mut out = Output::default();
        if has_video {
            out.video = self.video_output(&aus, map, &mut warnings);
        }
        if let Some(config) = audio_config {
            out.audio = Some(self.audio_output(config, frames, map, &mut warnings));
        }
        let fallback = out.start().unwrap_or(0.0);
        for (pts, data) in id3 {
            if id3::is_id3(&data) {
                out.id3.push(Id3Frame {
                    pts_seconds: pts.map_or(fallback, |t| map(t) as f64 / CLOCK as f64),
                    data,
                });
            } else {
                warnings.push(Warning::NotId3 { pid: id3_pid });
            }
        }
        out.warnings = warnings;
        Ok(out)
    }

    /// The next `mfhd` sequence number.
    fn next_sequence(&mut self) -> u32 {
        self.sequence = self.sequence.wrapping_add(1);
        self.sequence
    }

    /// The video track's output: an init segment if the configuration is new, the
    /// fragment. `None` before the first decodable configuration.
    fn video_output(
        &mut self,
        aus: &[Au],
        map: impl Fn(u64) -> u64,
        warnings: &mut Vec<Warning>,
    ) -> Option<TrackOutput> {
        let config = self.video.config.as_ref()?;
        let mut out = TrackOutput::default();
        let init = mp4::video_init(config);
        if self.video_init.as_ref() != Some(&init) {
            out.init = Some(Init {
                codec: config.codec(),
                size: Some((config.info.width, config.info.height)),
                bytes: init.clone(),
            });
            self.video_init = Some(init);
        }
        if let Some((samples, data, base, span)) = self.video_samples(aus, map, warnings) {
            let sequence = self.next_sequence();
            out.media = mp4::fragment(
                sequence,
                &Run {
                    track_id: mp4::VIDEO_TRACK,
                    base_decode_time: base,
                    samples: &samples,
                    data: &data,
                },
            );
            out.span = Some(span);
        }
        Some(out)
    }

    /// The audio track's output: an init segment if the configuration is new, the
    /// fragment (or raw MP3 frames).
    fn audio_output(
        &mut self,
        config: AudioConfig,
        frames: Vec<AudioFrame>,
        map: impl Fn(u64) -> u64,
        warnings: &mut Vec<Warning>,
    ) -> TrackOutput {
        let raw = self.raw_mp3 && config.codec == CodecName::Mp3;
        let mut out = TrackOutput::default();
        if self.audio_init != Some(config) {
            out.init = Some(Init {
                bytes: if raw {
                    Vec::new()
                } else {
                    mp4::audio_init(&config)
                },
                codec: config.codec.string(),
                size: None,
            });
            self.audio_init = Some(config);
        }
        if let Some((samples, data, base, span)) = self.audio_samples(config, frames, map, warnings)
        {
            out.media = if raw {
                data
            } else {
                let sequence = self.next_sequence();
                mp4::fragment(
                    sequence,
                    &Run {
                        track_id: mp4::AUDIO_TRACK,
                        base_decode_time: base,
                        samples: &samples,
                        data: &data,
                    },
                )
            };
            out.span = Some(span);
        }
        out
    }

    /// Groups video PES into access units (a PES with a PTS starts one, one without
    /// continues it), unwraps their timestamps, keeps the configuration current and
    /// drops what cannot be decoded yet.
    fn video_units(&mut self, pes: Vec<Pes>, warnings: &mut Vec<Warning>) -> Vec<Au> {
        let mut aus: Vec<Au> = Vec::new();
        let mut current: Option<Au> = None;
        let mut dropped = 0u32;
        for p in pes {
            match (p.pts, current.as_mut()) {
                (Some(pts), cur) => {
                    let dts = self.unwrapper.unwrap(p.dts.unwrap_or(pts));
                    let pts = self.unwrapper.unwrap(pts);
                    match cur {
                        // Parameter sets or SEI alone: they belong to the next picture.
                        Some(c) if !c.unit.has_picture => {
                            c.pts = pts;
                            c.dts = dts;
                        }
                        _ => {
                            aus.extend(current.take());
                            current = Some(Au {
                                pts,
                                dts,
                                unit: AccessUnit::default(),
                            });
                        }
                    }
                }
                (None, Some(_)) => {}
                (None, None) => {
                    dropped += 1;
                    continue;
                }
            }
            if let Some(c) = current.as_mut() {
                c.unit.append(&p.data);
            }
        }
        aus.extend(current.filter(|c| c.unit.has_picture));

        let mut kept = Vec::with_capacity(aus.len());
        let mut sps = self.video.config.as_ref().map(|c| (c.sps.clone(), c.info));
        let mut pps = self.video.config.as_ref().map(|c| c.pps.clone());
        let mut warned = false;
        for mut au in aus {
            let new_sps = au.unit.sps.take();
            let new_pps = au.unit.pps.take();
            if new_sps.is_some() || new_pps.is_some() {
                if let Some(s) = new_sps {
                    match h264::parse_sps(&s) {
                        Some(info) => sps = Some((s, info)),
                        None => warnings.push(Warning::BadSps),
                    }
                }
                if new_pps.is_some() {
                    pps = new_pps;
                }
                if let (Some((s, info)), Some(p)) = (&sps, &pps) {
                    let candidate = AvcConfig {
                        sps: s.clone(),
                        pps: p.clone(),
                        info: *info,
                    };
                    if self.video.config.as_ref() != Some(&candidate) {
                        if kept.is_empty() {
                            self.video.config = Some(candidate);
                            self.video.need_key = true;
                        } else if !warned {
                            warned = true;
                            warnings.push(Warning::ConfigChangedMidSegment {
                                track: Track::Video,
                                frames: 0,
                            });
                        }
                    }
                }
            }
            if self.video.config.is_none() || (self.video.need_key && !au.unit.key) {
                dropped += 1;
                continue;
            }
            self.video.need_key = false;
            kept.push(au);
        }
        if dropped > 0 {
            warnings.push(Warning::NotDecodableYet {
                track: Track::Video,
                frames: dropped,
            });
        }
        kept
    }

    /// Splits audio PES into frames (completing a frame cut across PES), checks they
    /// share one configuration and unwraps their timestamps.
    fn audio_frames(
        &mut self,
        adts: bool,
        pes: Vec<Pes>,
        warnings: &mut Vec<Warning>,
    ) -> (Option<AudioConfig>, Vec<AudioFrame>) {
        let mut config: Option<AudioConfig> = None;
        let mut frames = Vec::new();
        let (mut garbage, mut other_config, mut unsupported) = (0usize, 0u32, (0u32, ""));
        let min_header = if adts {
            aac::HEADER_LEN
        } else {
            mp3::HEADER_LEN
        };
        for p in pes {
            let pts = p.pts.map(|t| self.unwrapper.unwrap(t));
            let mut buf = std::mem::take(&mut self.audio.leftover);
            let carried = buf.len();
            buf.extend_from_slice(&p.data);
            let (mut at, mut index) = (0usize, 0u64);
            // A PES (or a carried partial frame) starts on a frame, and each frame is
            // followed by the next: those headers are trusted. After garbage, a header
            // found by scanning is only believed if another follows it.
            let mut chained = true;
            // Each turn moves `at` forward by at least one byte.
            while at < buf.len() {
                let rest = &buf[at..];
                if rest.len() < min_header {
                    self.audio.leftover = rest.to_vec();
                    break;
                }
                // (frame length, header bytes to strip, configuration, why unsupported)
                let frame = if adts {
                    aac::parse(rest).map(|h| {
                        let why = if h.channels == 0 {
                            "AAC with a program config element"
                        } else if h.blocks > 1 {
                            "ADTS with several raw data blocks"
                        } else {
                            ""
                        };
                        (h.frame_len, h.header_len, h.config(), why)
                    })
                } else {
                    mp3::parse(rest).map(|h| match h.layer {
                        3 => (h.frame_len, 0, h.config(), ""),
                        // Unframed: give up on the rest of this PES.
                        _ => (rest.len(), 0, h.config(), "MPEG audio layer I/II"),
                    })
                };
                let Some((len, header, cfg, why)) = frame else {
                    at += 1;
                    garbage += 1;
                    chained = false;
                    continue;
                };
                if len > rest.len() {
                    self.audio.leftover = rest.to_vec();
                    break;
                }
                let next = &rest[len..];
                let follows = chained
                    || next.len() < min_header
                    || if adts {
                        aac::parse(next).is_some()
                    } else {
                        mp3::parse(next).is_some()
                    };
                if !follows {
                    at += 1;
                    garbage += 1;
                    continue;
                }
                chained = true;
                let frame_pts = if at >= carried {
                    index += 1;
                    pts.map(|t| (t, index - 1))
                } else {
                    None
                };
                at += len;
                if !why.is_empty() {
                    unsupported = (unsupported.0 + 1, why);
                    continue;
                }
                match config {
                    None => config = Some(cfg),
                    Some(c) if c != cfg => {
                        other_config += 1;
                        continue;
                    }
                    Some(_) => {}
                }
                frames.push(AudioFrame {
                    pts: frame_pts,
                    data: rest[header..len].to_vec(),
                });
            }
        }
        if garbage > 0 {
            warnings.push(Warning::AudioGarbage {
                track: Track::Audio,
                bytes: garbage,
            });
        }
        if unsupported.0 > 0 {
            warnings.push(Warning::UnsupportedAudio {
                what: unsupported.1,
                frames: unsupported.0,
            });
        }
        if other_config > 0 {
            warnings.push(Warning::ConfigChangedMidSegment {
                track: Track::Audio,
                frames: other_config,
            });
        }
        (config, frames)
    }

    /// Times the video access units on the output timeline and makes `trun` samples:
    /// `(samples, mdat bytes, base decode time, span)`, `None` without samples.
    fn video_samples(
        &mut self,
        aus: &[Au],
        map: impl Fn(u64) -> u64,
        warnings: &mut Vec<Warning>,
    ) -> Option<(Vec<Sample>, Vec<u8>, u64, Span)> {
        let first = aus.first()?;
        let mut dts: Vec<u64> = aus.iter().map(|a| map(a.dts)).collect();
        let pts: Vec<u64> = aus.iter().map(|a| map(a.pts)).collect();
        let frame = self.video.frame_duration.unwrap_or(DEFAULT_FRAME);
        if let Some(next) = self.video.next_dts {
            let delta = map(first.dts) as i64 - next as i64;
            if delta.unsigned_abs() <= VIDEO_SNAP.min(u64::from(frame)) {
                dts[0] = next;
            } else {
                warnings.push(Warning::TimestampJump {
                    track: Track::Video,
                    ms: delta / 90,
                });
            }
        }
        let mut repaired = 0;
        for i in 1..dts.len() {
            if dts[i] <= dts[i - 1] {
                dts[i] = dts[i - 1] + 1;
                repaired += 1;
            }
        }
        if repaired > 0 {
            warnings.push(Warning::NonMonotonic {
                track: Track::Video,
                frames: repaired,
            });
        }
        let n = aus.len();
        let durations: Vec<u32> = (0..n)
            .map(|i| match dts.get(i + 1) {
                Some(next) => u32::try_from(next - dts[i]).unwrap_or(u32::MAX),
                None if n >= 2 => u32::try_from(dts[i] - dts[i - 1]).unwrap_or(frame),
                None => frame,
            })
            .collect();
        let last = durations[n - 1];
        self.video.frame_duration = Some(last);
        self.video.next_dts = Some(dts[n - 1] + u64::from(last));

        let mut data = Vec::with_capacity(aus.iter().map(|a| a.unit.data.len()).sum());
        let mut samples = Vec::with_capacity(n);
        let (mut start, mut end) = (u64::MAX, 0);
        for (i, au) in aus.iter().enumerate() {
            let cts =
                (pts[i] as i64 - dts[i] as i64).clamp(i32::MIN.into(), i32::MAX.into()) as i32;
            samples.push(Sample {
                duration: durations[i],
                size: au.unit.data.len() as u32,
                flags: if au.unit.key {
                    mp4::FLAGS_SYNC
                } else {
                    mp4::FLAGS_NON_SYNC
                },
                cts,
            });
            data.extend_from_slice(&au.unit.data);
            let shown = dts[i].saturating_add_signed(cts.into());
            start = start.min(shown);
            end = end.max(shown + u64::from(durations[i]));
        }
        let span = Span {
            start: start as f64 / CLOCK as f64,
            end: end as f64 / CLOCK as f64,
            samples: n as u32,
        };
        Some((samples, data, dts[0], span))
    }

    /// Times the audio frames on the output timeline (one frame after another, the PES
    /// timestamps only correcting drift of a frame or more) and makes `trun` samples:
    /// `(samples, mdat bytes, base decode time, span)`, `None` without samples.
    fn audio_samples(
        &mut self,
        config: AudioConfig,
        frames: Vec<AudioFrame>,
        map: impl Fn(u64) -> u64,
        warnings: &mut Vec<Warning>,
    ) -> Option<(Vec<Sample>, Vec<u8>, u64, Span)> {
        if self.audio.config.is_some_and(|c| c != config) {
            // A new timescale: old positions mean nothing in it.
            self.audio.next = None;
        }
        self.audio.config = Some(config);
        let rate = config.sample_rate;
        let spf = u64::from(config.samples_per_frame);
        let jump_back = rescale(AUDIO_JUMP_BACK, CLOCK as u32, rate);
        let mut samples: Vec<Sample> = Vec::with_capacity(frames.len());
        let mut data = Vec::new();
        let mut base = 0;
        let (mut no_time, mut overlap) = (0u32, 0u32);
        for f in frames {
            let measured = f
                .pts
                .map(|(t, k)| rescale(map(t), CLOCK as u32, rate) + k * spf);
            let time = match (self.audio.next, measured) {
                (None, None) => {
                    no_time += 1;
                    continue;
                }
                (None, Some(m)) => m,
                (Some(n), None) => n,
                (Some(n), Some(m)) => {
                    let delta = (i128::from(m) - i128::from(n))
                        .clamp(i64::MIN.into(), i64::MAX.into())
                        as i64;
                    if delta.unsigned_abs() < spf {
                        n
                    } else if delta > 0 || (samples.is_empty() && delta.unsigned_abs() > jump_back)
                    {
                        // A gap is followed; so is a jump back at a segment's start (the
                        // stream went back in time); a small overlap is dropped below.
                        warnings.push(Warning::TimestampJump {
                            track: Track::Audio,
                            ms: delta.saturating_mul(1000) / i64::from(rate),
                        });
                        m
                    } else {
                        overlap += 1;
                        continue;
                    }
                }
            };
            match samples.last_mut() {
                // A gap inside the fragment: the previous frame lasts until this one.
                Some(prev) => {
                    let prev_time = self.audio.next.unwrap_or(time).saturating_sub(spf);
                    prev.duration =
                        u32::try_from(time.saturating_sub(prev_time)).unwrap_or(u32::MAX);
                }
                None => base = time,
            }
            samples.push(Sample {
                duration: spf as u32,
                size: f.data.len() as u32,
                flags: 0,
                cts: 0,
            });
            data.extend_from_slice(&f.data);
            self.audio.next = Some(time + spf);
        }
        if no_time > 0 {
            warnings.push(Warning::NotDecodableYet {
                track: Track::Audio,
                frames: no_time,
            });
        }
        if overlap > 0 {
            warnings.push(Warning::AudioOverlap { frames: overlap });
        }
        let end = self.audio.next.filter(|_| !samples.is_empty())?;
        let span = Span {
            start: base as f64 / f64::from(rate),
            end: end as f64 / f64::from(rate),
            samples: samples.len() as u32,
        };
        Some((samples, data, base, span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ADTS frame (AAC-LC, 48 kHz, mono) of `len` bytes, header included.
    fn adts(len: usize) -> Vec<u8> {
        let mut f = vec![
            0xff,
            0xf1,
            0x4c,
            0x40 | (len >> 11) as u8,
            (len >> 3) as u8,
            ((len & 7) << 5) as u8 | 0x1f,
            0xfc,
        ];
        f.resize(len, 0x11);
        f
    }

    /// A PES of audio at `pts` (90 kHz).
    fn pes(pts: Option<u64>, data: Vec<u8>) -> Pes {
        Pes {
            pts,
            dts: pts,
            data,
        }
    }

    #[test]
    fn audio_frames_survive_stuffing_garbage_and_pes_boundaries() {
        let mut tx = Transmuxer::new();
        let mut w = Vec::new();
        // Two frames then stuffing; garbage then a frame cut across two PES.
        let mut first = [adts(20), adts(30)].concat();
        first.extend_from_slice(&[0xff; 3]);
        first.extend_from_slice(&[1, 2, 3, 0xff, 0xf1]);
        let third = adts(40);
        first.extend_from_slice(&third[..10]);
        let mut second = third[10..].to_vec();
        second.extend(adts(25));
        let (config, frames) = tx.audio_frames(
            true,
            vec![pes(Some(9000), first), pes(Some(9000 + 5760), second)],
            &mut w,
        );
        assert_eq!(config.map(|c| c.sample_rate), Some(48000));
        let sizes: Vec<usize> = frames.iter().map(|f| f.data.len()).collect();
        assert_eq!(
            sizes,
            [13, 23, 33, 18],
            "ADTS headers stripped, no frame lost"
        );
        let times: Vec<_> = frames.iter().map(|f| f.pts).collect();
        // The cut frame started in the first PES: it has no time of its own.
        assert_eq!(
            times,
            [Some((9000, 0)), Some((9000, 1)), None, Some((14760, 0))]
        );
        assert_eq!(
            w,
            [Warning::AudioGarbage {
                track: Track::Audio,
                bytes: 8
            }]
        );
    }

    #[test]
    fn audio_runs_frame_after_frame_drops_overlaps_and_follows_gaps() {
        let mut tx = Transmuxer::new();
        let mut w = Vec::new();
        let config = aac::parse(&adts(10)).unwrap().config();
        let frame = |pts: u64, k: u64| AudioFrame {
            pts: Some((pts, k)),
            data: vec![0; 4],
        };
        // 1024 samples at 48 kHz = 1920 ticks at 90 kHz. Jitter under a frame is absorbed,
        // a frame overlapping by a whole frame is dropped, a gap of 3 frames followed.
        let frames = vec![
            frame(0, 0),
            frame(0, 1),
            frame(3840 + 300, 0),
            frame(3840, 0),
            frame(5760 + 3 * 1920, 0),
        ];
        let (samples, _, base, span) = tx.audio_samples(config, frames, |t| t, &mut w).unwrap();
        assert_eq!(base, 0);
        let durations: Vec<u32> = samples.iter().map(|s| s.duration).collect();
        assert_eq!(durations, [1024, 1024, 4 * 1024, 1024]);
        assert_eq!(span.samples, 4);
        assert!((span.end - 7.0 * 1024.0 / 48000.0).abs() < 1e-9, "{span:?}");
        assert_eq!(
            w,
            [
                Warning::TimestampJump {
                    track: Track::Audio,
                    ms: 64
                },
                Warning::AudioOverlap { frames: 1 }
            ]
        );
    }
}
