//! FLV tags (as RTMP delivers them) → CMAF: an init segment and timed chunks for a
//! [`LiveStream`](crate::media::live::LiveStream). No transcoding: the H.264 NAL units
//! and AAC frames are moved, as they are, from FLV tags into `moof`+`mdat` fragments.
//!
//! Tag parsing is `scuffle-flv` (and its H.264 / AAC config parsers); box layout is
//! [`cmaf`](crate::media::cmaf). What is decided here:
//!
//! - **Timeline.** FLV timestamps are milliseconds from the publisher's start. Media
//!   time is `base + (ts - first_ts)`, so a publisher that reconnects continues the same
//!   timeline (the caller passes where the previous connection ended) and the player's
//!   buffer stays one contiguous range. Video runs at 90 kHz, audio at its sample rate
//!   with exact 1024-sample frame durations (re-anchored on the FLV clock only when they
//!   drift more than 100 ms apart, e.g. after dropped audio).
//! - **Chunks.** A video sample's duration is known when the next one arrives; a chunk
//!   closes before each keyframe (which opens a segment) or once it holds
//!   `chunk_ms` of video, and takes the audio frames that start before its end.
//! - **What is refused.** A video codec other than H.264 ends the publish; non-AAC audio
//!   is dropped with a warning; frames before the first keyframe are dropped.
//!
//! The module is pure (no clock, no I/O), so it is tested by feeding tags.

use crate::media::cmaf::{self, MuxError, Sample, Track};
use crate::media::live::PackagedChunk;
use bytes::Bytes;
use mp4_atom::esds::{DecoderConfig, DecoderSpecific, EsDescriptor, SLConfig};
use mp4_atom::{
    Audio, Avc1, Avcc, Codec, Dinf, Esds, FourCC, Hdlr, Mdhd, Mdia, Minf, Mp4a, Smhd, Stbl, Stsd,
    Tkhd, Trak, Visual, Vmhd,
};
use scuffle_flv::audio::body::legacy::aac::AacAudioData;
use scuffle_flv::audio::body::legacy::LegacyAudioTagBody;
use scuffle_flv::audio::body::AudioTagBody;
use scuffle_flv::audio::header::legacy::SoundFormat;
use scuffle_flv::audio::header::AudioTagHeader;
use scuffle_flv::audio::AudioData;
use scuffle_flv::video::body::legacy::LegacyVideoTagBody;
use scuffle_flv::video::body::VideoTagBody;
use scuffle_flv::video::header::legacy::{LegacyVideoTagHeader, LegacyVideoTagHeaderAvcPacket};
use scuffle_flv::video::header::{VideoFrameType, VideoTagHeaderData};
use scuffle_flv::video::VideoData;
use std::io::Cursor;

/// Video decode times are in this timescale (the MPEG convention).
pub const VIDEO_TIMESCALE: u32 = 90_000;
const VIDEO_TRACK: u32 = 1;
const AUDIO_TRACK: u32 = 2;
/// AAC frames hold 1024 samples (per channel, at the core sample rate).
const AAC_FRAME: u32 = 1024;
/// A keyframe interval longer than this is reported (segments grow with it).
const LONG_GOP_MS: u64 = 4_000;
/// A video sample's duration when the next timestamp is unusable (30 fps).
const FALLBACK_VIDEO_TICKS: u32 = VIDEO_TIMESCALE / 30;

/// Why a tag was refused. `Unsupported` ends the publish; `Malformed` drops the tag.
#[derive(Debug, thiserror::Error)]
pub enum RemuxError {
    /// The tag could not be parsed.
    #[error("malformed {kind} tag: {why}")]
    Malformed {
        /// "video" or "audio".
        kind: &'static str,
        /// The parser's message.
        why: String,
    },
    /// A codec lucarne cannot play without transcoding.
    #[error("unsupported video codec: {0} (publish H.264 video with AAC audio)")]
    Unsupported(String),
    /// Packaging failed (a malformed codec configuration).
    #[error("packaging: {0}")]
    Mux(#[from] MuxError),
}

/// What the remuxer produces, in order.
#[derive(Debug)]
pub enum Output {
    /// A new init segment: the first, or after the codec configuration changed.
    Init(Bytes),
    /// A chunk ready for the stream.
    Chunk(PackagedChunk),
    /// Worth a log line; the stream goes on.
    Warning(String),
    /// A video frame entered the stream, with its FLV timestamp (ms, the publisher's
    /// clock): what the console's frame rate and dropped frames count
    /// ([`crate::media::health`]).
    Frame(u32),
}

#[derive(Debug, Clone, PartialEq)]
struct VideoConfig {
    avcc: Avcc,
    width: u16,
    height: u16,
}

#[derive(Debug, Clone, PartialEq)]
struct AudioConfig {
    asc: Vec<u8>,
    rate: u32,
    channels: u8,
}

/// Remuxes one publisher connection.
#[derive(Debug)]
pub struct Remuxer {
    /// Media time, in milliseconds, of the first frame of this connection.
    base_ms: u64,
    /// FLV timestamp of the first keyframe (the origin of `base_ms`).
    first_ts: Option<u32>,
    chunk_ticks: u64,
    video: Option<VideoConfig>,
    audio: Option<AudioConfig>,
    /// The configuration the current init segment was built from.
    packaged: Option<(VideoConfig, Option<AudioConfig>)>,
    /// The last video sample, waiting for the next timestamp to know its duration.
    pending: Option<Sample>,
    video_run: Vec<Sample>,
    audio_queue: Vec<Sample>,
    audio_next_dts: Option<u64>,
    fragment_seq: u32,
    /// Media sequence number of the segment being built.
    msn: u64,
    /// Media time (ms) of the last keyframe, to report a long keyframe interval once.
    last_key_ms: u64,
    long_gop_reported: bool,
    audio_dropped_reported: bool,
    /// Media time (ms) just after the last video sample.
    end_ms: u64,
    /// Media time (ms) just after the last audio frame packaged.
    audio_end_ms: Option<u64>,
}

impl Remuxer {
    /// A remuxer whose first keyframe lands at media time `base_ms` and opens segment
    /// `first_msn`; chunks hold about `chunk_ms` of video.
    pub fn new(base_ms: u64, first_msn: u64, chunk_ms: u32) -> Remuxer {
        Remuxer {
            base_ms,
            first_ts: None,
            chunk_ticks: u64::from(VIDEO_TIMESCALE) * u64::from(chunk_ms.max(1)) / 1000,
            video: None,
            audio: None,
            packaged: None,
            pending: None,
            video_run: Vec::new(),
            audio_queue: Vec::new(),
            audio_next_dts: None,
            fragment_seq: 0,
            // Incremented at the first keyframe.
            msn: first_msn.saturating_sub(1),
            last_key_ms: base_ms,
            long_gop_reported: false,
            audio_dropped_reported: false,
            end_ms: base_ms,
            audio_end_ms: None,
        }
    }

    /// Media time (ms) where a reconnecting publisher continues: just after the last
    /// video frame, or a little earlier if the audio stopped short of it (the last
    /// frame is then overwritten rather than leaving a hole in the audio, which
    /// players see as a gap in the buffer).
    pub fn end_ms(&self) -> u64 {
        match self.audio_end_ms {
            Some(a) if a < self.end_ms => a.max(self.end_ms.saturating_sub(100)),
            _ => self.end_ms,
        }
    }

    /// The segment number the next keyframe would open.
    pub fn next_msn(&self) -> u64 {
        self.msn + 1
    }

    /// Media time (ms) of FLV timestamp `ts` and the number of the segment being built;
    /// right after a keyframe's tag, where that keyframe's segment starts (the ladder
    /// lines its renditions up on it). `None` before the first keyframe.
    pub fn position(&self, ts: u32) -> Option<(u64, u64)> {
        Some((self.media_ms(ts)?, self.msn))
    }

    /// True once an init segment was produced (the publisher sent decodable video).
    pub fn started(&self) -> bool {
        self.packaged.is_some()
    }

    fn media_ms(&self, ts: u32) -> Option<u64> {
        let first = self.first_ts?;
        // FLV timestamps are 32-bit milliseconds; wrapping_sub keeps a wrap (49 days)
        // or a slightly earlier audio tag from producing a huge time.
        let delta = ts.wrapping_sub(first) as i32;
        Some(self.base_ms.saturating_add_signed(i64::from(delta)))
    }

    /// Feeds a video tag body (the RTMP video message) with its timestamp.
    pub fn video(&mut self, ts: u32, data: Bytes) -> Result<Vec<Output>, RemuxError> {
        let tag = VideoData::demux(&mut Cursor::new(data)).map_err(|e| RemuxError::Malformed {
            kind: "video",
            why: e.to_string(),
        })?;
        let mut out = Vec::new();
        match (&tag.header.data, tag.body) {
            (VideoTagHeaderData::Enhanced(h), _) => {
                return Err(RemuxError::Unsupported(format!(
                    "enhanced-RTMP video ({:?})",
                    h.content
                )))
            }
            (VideoTagHeaderData::Legacy(LegacyVideoTagHeader::Other { video_codec_id }), _) => {
                return Err(RemuxError::Unsupported(format!(
                    "FLV codec id {}",
                    u8::from(*video_codec_id)
                )))
            }
            (
                VideoTagHeaderData::Legacy(LegacyVideoTagHeader::AvcPacket(
                    LegacyVideoTagHeaderAvcPacket::SequenceHeader,
                )),
                VideoTagBody::Legacy(LegacyVideoTagBody::AvcVideoPacketSeqHdr(record)),
            ) => {
                let config = video_config(&record)?;
                if self.video.as_ref() != Some(&config) {
                    self.video = Some(config);
                }
            }
            (
                VideoTagHeaderData::Legacy(LegacyVideoTagHeader::AvcPacket(
                    LegacyVideoTagHeaderAvcPacket::Nalu {
                        composition_time_offset,
                    },
                )),
                VideoTagBody::Legacy(LegacyVideoTagBody::Other { data }),
            ) => {
                let keyframe = tag.header.frame_type == VideoFrameType::KeyFrame;
                // SI24: sign-extend.
                let cts_ms = ((*composition_time_offset << 8) as i32) >> 8;
                self.video_frame(ts, keyframe, cts_ms, data, &mut out)?;
            }
            // Commands, end of sequence, unknown AVC packet types: nothing to play.
            _ => {}
        }
        Ok(out)
    }

    fn video_frame(
        &mut self,
        ts: u32,
        keyframe: bool,
        cts_ms: i32,
        data: Bytes,
        out: &mut Vec<Output>,
    ) -> Result<(), RemuxError> {
        let Some(video) = &self.video else {
            return Ok(()); // No sequence header yet: cannot be decoded.
        };
        let needs_init = self.packaged.as_ref().is_none_or(|(v, _)| v != video);
        if needs_init {
            let current = (video.clone(), self.audio.clone());
            if !keyframe {
                return Ok(());
            }
            self.flush_pending(out)?;
            if self.first_ts.is_none() {
                self.first_ts = Some(ts);
            }
            out.push(Output::Init(init_segment(&current.0, current.1.as_ref())?));
            self.packaged = Some(current);
        }
        let Some(ms) = self.media_ms(ts) else {
            return Ok(());
        };
        let mut dts = ms * u64::from(VIDEO_TIMESCALE) / 1000;
        // Decode times only go forward: a publisher whose clock steps back (an encoder
        // restarted on the same connection, a corrupt tag) would otherwise end a run
        // before it starts (found by the remux fuzz target: `end - start` underflowed).
        // Its frames follow on at the last frame rate until its clock catches up.
        if let Some(prev) = &self.pending {
            if dts <= prev.dts {
                let step = self
                    .video_run
                    .last()
                    .map_or(FALLBACK_VIDEO_TICKS, |s| s.duration);
                dts = prev.dts + u64::from(step);
            }
        }
        // The previous frame's duration is now known: it joins the run.
        if let Some(mut prev) = self.pending.take() {
            let d = dts.saturating_sub(prev.dts);
            prev.duration = if d == 0 || d > u64::from(VIDEO_TIMESCALE) * 10 {
                FALLBACK_VIDEO_TICKS
            } else {
                d as u32
            };
            self.video_run.push(prev);
            let run_ticks: u64 = self.video_run.iter().map(|s| u64::from(s.duration)).sum();
            if keyframe || run_ticks >= self.chunk_ticks {
                self.flush_run(out)?;
            }
        }
        if keyframe {
            self.msn += 1;
            self.last_key_ms = ms;
            self.long_gop_reported = false;
        } else if ms.saturating_sub(self.last_key_ms) > LONG_GOP_MS && !self.long_gop_reported {
            self.long_gop_reported = true;
            out.push(Output::Warning(format!(
                "no keyframe for {} s: set the encoder's keyframe interval to 1 s \
                 (segments and start-up delay grow with it)",
                LONG_GOP_MS / 1000
            )));
        }
        self.pending = Some(Sample {
            dts,
            duration: 0,
            cts_offset: cts_ms.saturating_mul(90),
            keyframe,
            data,
        });
        out.push(Output::Frame(ts));
        Ok(())
    }

    /// Feeds an audio tag body with its timestamp.
    pub fn audio(&mut self, ts: u32, data: Bytes) -> Result<Vec<Output>, RemuxError> {
        let tag = AudioData::demux(&mut Cursor::new(data)).map_err(|e| RemuxError::Malformed {
            kind: "audio",
            why: e.to_string(),
        })?;
        let mut out = Vec::new();
        let format = match &tag.header {
            AudioTagHeader::Legacy(h) => h.sound_format,
            AudioTagHeader::Enhanced(_) => SoundFormat::ExHeader,
        };
        match tag.body {
            AudioTagBody::Legacy(LegacyAudioTagBody::Aac(AacAudioData::SequenceHeader(asc))) => {
                match audio_config(&asc) {
                    Some(c) => self.audio = Some(c),
                    None => out.push(Output::Warning(
                        "unreadable AAC configuration; audio dropped".into(),
                    )),
                }
            }
            AudioTagBody::Legacy(LegacyAudioTagBody::Aac(AacAudioData::Raw(frame))) => {
                self.audio_frame(ts, frame, &mut out);
            }
            _ if format != SoundFormat::Aac && !self.audio_dropped_reported => {
                self.audio_dropped_reported = true;
                out.push(Output::Warning(format!(
                    "audio format {} is not AAC; audio dropped (publish AAC audio)",
                    u8::from(format)
                )));
            }
            _ => {}
        }
        Ok(out)
    }

    fn audio_frame(&mut self, ts: u32, frame: Bytes, out: &mut Vec<Output>) {
        // Audio joins only a presentation whose init segment declares it.
        let Some((_, Some(config))) = &self.packaged else {
            if self.packaged.is_some() && self.audio.is_some() && !self.audio_dropped_reported {
                self.audio_dropped_reported = true;
                out.push(Output::Warning(
                    "audio configuration arrived after the video started; audio dropped until \
                     the publisher reconnects"
                        .into(),
                ));
            }
            return;
        };
        let rate = u64::from(config.rate);
        let Some(ms) = self.media_ms(ts) else { return };
        let from_clock = ms * rate / 1000;
        let dts = match self.audio_next_dts {
            Some(next) if next.abs_diff(from_clock) <= rate / 10 => next,
            _ => from_clock,
        };
        self.audio_next_dts = Some(dts + u64::from(AAC_FRAME));
        self.audio_queue.push(Sample {
            dts,
            duration: AAC_FRAME,
            cts_offset: 0,
            keyframe: true,
            data: frame,
        });
        // Bound what a publisher sending audio only (video stalled) can make us hold.
        if self.audio_queue.len() > 2_000 {
            self.audio_queue.drain(..1_000);
        }
    }

    /// Moves the pending frame into the run (with an estimated duration) and emits it:
    /// the publisher stopped or the configuration changed.
    pub fn flush(&mut self) -> Result<Vec<Output>, RemuxError> {
        let mut out = Vec::new();
        self.flush_pending(&mut out)?;
        Ok(out)
    }

    fn flush_pending(&mut self, out: &mut Vec<Output>) -> Result<(), RemuxError> {
        if let Some(mut prev) = self.pending.take() {
            prev.duration = self
                .video_run
                .last()
                .map_or(FALLBACK_VIDEO_TICKS, |s| s.duration);
            self.video_run.push(prev);
        }
        self.flush_run(out)
    }

    fn flush_run(&mut self, out: &mut Vec<Output>) -> Result<(), RemuxError> {
        let (Some(first), Some(last)) = (self.video_run.first(), self.video_run.last()) else {
            return Ok(());
        };
        let start = first.dts;
        let end = last.dts + u64::from(last.duration);
        let starts_segment = first.keyframe;
        let rate = self
            .packaged
            .as_ref()
            .and_then(|(_, a)| a.as_ref())
            .map_or(1, |a| u64::from(a.rate));
        let split = self
            .audio_queue
            .iter()
            .position(|s| s.dts * u64::from(VIDEO_TIMESCALE) / rate >= end)
            .unwrap_or(self.audio_queue.len());
        let audio: Vec<Sample> = self.audio_queue.drain(..split).collect();
        if let Some(a) = audio.last() {
            self.audio_end_ms = Some((a.dts + u64::from(a.duration)) * 1000 / rate);
        }
        let video = std::mem::take(&mut self.video_run);
        self.fragment_seq = self.fragment_seq.wrapping_add(1);
        let bytes = cmaf::fragment(
            self.fragment_seq,
            &[(VIDEO_TRACK, &video), (AUDIO_TRACK, &audio)],
        )?;
        let ts = f64::from(VIDEO_TIMESCALE);
        self.end_ms = end * 1000 / u64::from(VIDEO_TIMESCALE);
        out.push(Output::Chunk(PackagedChunk {
            bytes,
            starts_segment,
            segment_msn: self.msn,
            start: start as f64 / ts,
            duration: (end - start) as f64 / ts,
        }));
        Ok(())
    }
}

fn video_config(
    record: &scuffle_h264::AVCDecoderConfigurationRecord,
) -> Result<VideoConfig, RemuxError> {
    let malformed = |why: String| RemuxError::Malformed { kind: "video", why };
    let sps = record
        .sps
        .first()
        .ok_or_else(|| malformed("AVC sequence header without SPS".into()))?;
    // scuffle-expgolomb underflowed on some malformed SPSs (found by the remux fuzz
    // target; patched, see patches/scuffle-expgolomb). The SPS parser is a third party's
    // bit-twiddling over a publisher's bytes: should another panic hide in it, it is a
    // malformed tag, not a dead ingest.
    let parsed = std::panic::catch_unwind(|| {
        scuffle_h264::Sps::parse_with_emulation_prevention(Cursor::new(&sps[..]))
    })
    .map_err(|_| malformed("unreadable SPS".into()))?
    .map_err(|e| malformed(format!("unreadable SPS: {e}")))?;
    let (width, height) =
        frame_size(&parsed).ok_or_else(|| malformed("SPS crop larger than the picture".into()))?;
    let dim = |v: u64| u16::try_from(v).map_err(|_| malformed(format!("frame size {v}")));
    Ok(VideoConfig {
        width: dim(width)?,
        height: dim(height)?,
        avcc: Avcc {
            configuration_version: 1,
            avc_profile_indication: record.profile_indication,
            profile_compatibility: record.profile_compatibility,
            avc_level_indication: record.level_indication,
            length_size: record.length_size_minus_one + 1,
            sequence_parameter_sets: record.sps.iter().map(|b| b.to_vec()).collect(),
            picture_parameter_sets: record.pps.iter().map(|b| b.to_vec()).collect(),
            ext: None,
        },
    })
}

/// The picture size an SPS declares, after cropping; `None` if it does not fit in a u64
/// or the crop is larger than the picture. Not `Sps::width`/`height`: they subtract the
/// crop unchecked, so a publisher's SPS with a large crop panicked the ingest (debug) or
/// wrapped to a bogus size (release).
fn frame_size(sps: &scuffle_h264::Sps) -> Option<(u64, u64)> {
    let crop = |a: u64, b: u64| a.checked_add(b)?.checked_mul(2);
    let (crop_w, crop_h) = match &sps.frame_crop_info {
        Some(c) => (
            crop(c.frame_crop_left_offset, c.frame_crop_right_offset)?,
            crop(c.frame_crop_top_offset, c.frame_crop_bottom_offset)?,
        ),
        None => (0, 0),
    };
    // Field-coded pictures (frame_mbs_only_flag = 0) stack two fields of map units.
    let fields = if sps.mb_adaptive_frame_field_flag.is_none() {
        1
    } else {
        2
    };
    let width = sps
        .pic_width_in_mbs_minus1
        .checked_add(1)?
        .checked_mul(16)?;
    let height = sps
        .pic_height_in_map_units_minus1
        .checked_add(1)?
        .checked_mul(16 * fields)?;
    Some((width.checked_sub(crop_w)?, height.checked_sub(crop_h)?))
}

fn audio_config(asc: &[u8]) -> Option<AudioConfig> {
    let parsed = scuffle_aac::PartialAudioSpecificConfig::parse(asc).ok()?;
    (parsed.sampling_frequency > 0).then(|| AudioConfig {
        asc: asc.to_vec(),
        rate: parsed.sampling_frequency,
        channels: parsed.channel_configuration,
    })
}

/// Index of a sampling frequency in the AAC table (15: written explicitly).
fn freq_index(rate: u32) -> u8 {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    RATES
        .iter()
        .position(|r| *r == rate)
        .map_or(15, |i| i as u8)
}

fn init_segment(video: &VideoConfig, audio: Option<&AudioConfig>) -> Result<Bytes, RemuxError> {
    let mut tracks = vec![Track {
        trak: trak(
            VIDEO_TRACK,
            VIDEO_TIMESCALE,
            b"vide",
            Avc1 {
                visual: Visual {
                    data_reference_index: 1,
                    width: video.width,
                    height: video.height,
                    ..Default::default()
                },
                avcc: video.avcc.clone(),
                btrt: None,
                colr: None,
                pasp: None,
                taic: None,
                fiel: None,
                spatial: None,
            }
            .into(),
        ),
    }];
    if let Some(a) = audio {
        tracks.push(Track {
            trak: trak(
                AUDIO_TRACK,
                a.rate,
                b"soun",
                Mp4a {
                    audio: Audio {
                        data_reference_index: 1,
                        channel_count: u16::from(a.channels.max(1)),
                        sample_size: 16,
                        sample_rate: (a.rate.min(u32::from(u16::MAX)) as u16).into(),
                    },
                    esds: Esds {
                        es_desc: EsDescriptor {
                            es_id: AUDIO_TRACK as u16,
                            dec_config: DecoderConfig {
                                object_type_indication: 0x40, // MPEG-4 audio
                                stream_type: 5,               // audio stream
                                up_stream: 0,
                                dec_specific: Some(DecoderSpecific {
                                    profile: a.asc.first().map_or(2, |b| b >> 3),
                                    freq_index: freq_index(a.rate),
                                    chan_conf: a.channels,
                                    raw: a.asc.clone(),
                                }),
                                ..Default::default()
                            },
                            sl_config: SLConfig::default(),
                            ..Default::default()
                        },
                    },
                    btrt: None,
                    taic: None,
                }
                .into(),
            ),
        });
    }
    Ok(cmaf::init_segment(&tracks)?)
}

fn trak(id: u32, timescale: u32, handler: &[u8; 4], codec: Codec) -> Trak {
    let video = handler == b"vide";
    Trak {
        tkhd: Tkhd {
            track_id: id,
            enabled: true,
            in_movie: true,
            volume: if video { 0.into() } else { 1.into() },
            ..Default::default()
        },
        mdia: Mdia {
            mdhd: Mdhd {
                timescale,
                language: "und".into(),
                ..Default::default()
            },
            hdlr: Hdlr {
                handler: FourCC::new(handler),
                name: if video { "Video" } else { "Audio" }.into(),
            },
            minf: Minf {
                vmhd: video.then(Vmhd::default),
                smhd: (!video).then(Smhd::default),
                dinf: Dinf::default(),
                stbl: Stbl {
                    stsd: Stsd {
                        codecs: vec![codec],
                    },
                    ..Default::default()
                },
                ..Default::default()
            },
        },
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, DecodeMaybe, Moof, Moov};

    /// 2.5 s of a 96×64 test pattern at 20 fps (H.264 with B-frames, a keyframe every
    /// 10 frames) and a 44.1 kHz AAC tone, as ffmpeg publishes it:
    /// `ffmpeg -f lavfi -i testsrc=size=96x64:rate=20 -f lavfi -i sine=sample_rate=44100
    ///  -t 2.5 -c:v libx264 -g 10 -bf 2 -pix_fmt yuv420p -c:a aac -b:a 32k -f flv`
    const PATTERN: &[u8] = include_bytes!("../../tests/data/pattern.flv");

    /// (tag type, timestamp, body) of every tag of an FLV file.
    fn tags(flv: &[u8]) -> Vec<(u8, u32, Bytes)> {
        let mut out = Vec::new();
        let mut at = 9 + 4; // header, first PreviousTagSize
        while at + 11 <= flv.len() {
            let kind = flv[at];
            let size = u32::from_be_bytes([0, flv[at + 1], flv[at + 2], flv[at + 3]]) as usize;
            let ts = u32::from_be_bytes([flv[at + 7], flv[at + 4], flv[at + 5], flv[at + 6]]);
            let body = Bytes::copy_from_slice(&flv[at + 11..at + 11 + size]);
            out.push((kind, ts, body));
            at += 11 + size + 4;
        }
        out
    }

    fn feed(r: &mut Remuxer, tags: &[(u8, u32, Bytes)], ts_shift: u32) -> Vec<Output> {
        let mut out = Vec::new();
        for (kind, ts, body) in tags {
            let res = match kind {
                8 => r.audio(ts + ts_shift, body.clone()),
                9 => r.video(ts + ts_shift, body.clone()),
                _ => continue,
            };
            out.extend(res.expect("tag accepted"));
        }
        out.extend(r.flush().unwrap());
        out
    }

    fn chunks(out: &[Output]) -> Vec<&PackagedChunk> {
        out.iter()
            .filter_map(|o| match o {
                Output::Chunk(c) => Some(c),
                _ => None,
            })
            .collect()
    }

    fn moof(bytes: &[u8]) -> Moof {
        let mut buf = bytes;
        match Any::decode_maybe(&mut buf).unwrap() {
            Some(Any::Moof(m)) => m,
            other => panic!("not a moof: {other:?}"),
        }
    }

    #[test]
    fn a_publish_becomes_an_init_segment_and_keyframe_aligned_chunks() {
        let mut r = Remuxer::new(1_000_000, 500, 100);
        let out = feed(&mut r, &tags(PATTERN), 0);
        let Some(Output::Init(init)) = out.first() else {
            panic!("first output is not the init segment: {out:?}");
        };
        let mut buf = &init[..];
        let _ftyp = Any::decode_maybe(&mut buf).unwrap();
        let Some(Any::Moov(Moov { trak, .. })) = Any::decode_maybe(&mut buf).unwrap() else {
            panic!("no moov");
        };
        assert_eq!(trak.len(), 2, "video and audio");
        assert_eq!(trak[0].mdia.mdhd.timescale, VIDEO_TIMESCALE);
        assert_eq!(trak[1].mdia.mdhd.timescale, 44_100);
        let Codec::Avc1(avc1) = &trak[0].mdia.minf.stbl.stsd.codecs[0] else {
            panic!("not avc1");
        };
        assert_eq!((avc1.visual.width, avc1.visual.height), (96, 64));

        let chunks = chunks(&out);
        // Three GOPs of half a second → segments 500, 501, 502 (and the 2.5 s cut).
        let segments: Vec<u64> = chunks
            .iter()
            .filter(|c| c.starts_segment)
            .map(|c| c.segment_msn)
            .collect();
        assert_eq!(segments, [500, 501, 502, 503, 504]);
        assert!(chunks[0].starts_segment, "the stream opens on a keyframe");
        assert!(
            (chunks[0].start - 1000.0).abs() < 1e-6,
            "media time starts at the base"
        );
        // Chunks tile the timeline: each starts where the previous ended.
        for w in chunks.windows(2) {
            assert!(
                (w[0].start + w[0].duration - w[1].start).abs() < 1e-3,
                "{} + {} vs {}",
                w[0].start,
                w[0].duration,
                w[1].start
            );
        }
        let total: f64 = chunks.iter().map(|c| c.duration).sum();
        assert!((total - 2.5).abs() < 0.06, "{total}");
        // Chunks hold about 100 ms of video: two frames at 20 fps.
        let m = moof(&chunks[1].bytes);
        assert_eq!(m.traf[0].trun[0].samples.len(), 2);
        // Audio rides along: 2.5 s of 1024-sample frames at 44.1 kHz.
        let audio_frames: usize = chunks
            .iter()
            .map(|c| {
                moof(&c.bytes)
                    .traf
                    .iter()
                    .filter(|t| t.tfhd.track_id == AUDIO_TRACK)
                    .map(|t| t.trun[0].samples.len())
                    .sum::<usize>()
            })
            .sum();
        assert!((105..=110).contains(&audio_frames), "{audio_frames}");
        // B-frames keep their composition offsets.
        assert!(chunks.iter().any(|c| moof(&c.bytes).traf[0].trun[0]
            .samples
            .iter()
            .any(|e| e.cts.unwrap_or(0) != 0)));
    }

    #[test]
    fn a_reconnecting_publisher_continues_the_timeline() {
        let t = tags(PATTERN);
        let mut first = Remuxer::new(1_000_000, 500, 100);
        let out1 = feed(&mut first, &t, 0);
        let (end, next) = (first.end_ms(), first.next_msn());
        // The new connection's clock starts elsewhere (here 90 s in).
        let mut second = Remuxer::new(end, next, 100);
        let out2 = feed(&mut second, &t, 90_000);
        let last = chunks(&out1).last().unwrap().start + chunks(&out1).last().unwrap().duration;
        let resumed = chunks(&out2)[0];
        assert!(
            (resumed.start - last).abs() < 1e-3,
            "{} vs {last}",
            resumed.start
        );
        assert_eq!(resumed.segment_msn, next);
        assert!(matches!(out2[0], Output::Init(_)));
    }

    #[test]
    fn a_clock_that_steps_back_keeps_decode_times_going_forward() {
        // Found by the remux fuzz target: a video timestamp earlier than the one before
        // made a chunk end before it started (`end - start` underflowed: a panic in
        // debug builds, a chunk of 2^64 ticks in release).
        let mut t = tags(PATTERN);
        let video: Vec<usize> = (0..t.len()).filter(|&i| t[i].0 == 9).collect();
        // Two frames in, the clock jumps 2 s back and goes on from there.
        for &i in &video[5..] {
            t[i].1 = t[i].1.saturating_sub(2_000);
        }
        let mut r = Remuxer::new(1_000_000, 500, 100);
        let out = feed(&mut r, &t, 5_000);
        let chunks = chunks(&out);
        assert!(chunks.len() > 5, "the stream goes on: {}", chunks.len());
        for w in chunks.windows(2) {
            assert!(
                w[0].duration > 0.0 && w[0].duration < 10.0,
                "{}",
                w[0].duration
            );
            assert!(
                w[1].start >= w[0].start,
                "{} then {}",
                w[0].start,
                w[1].start
            );
        }
    }

    #[test]
    fn frames_before_the_first_keyframe_and_config_are_dropped() {
        let t = tags(PATTERN);
        let mut r = Remuxer::new(0, 1, 100);
        // Skip the sequence headers: nothing can be decoded, nothing comes out.
        let mut out = Vec::new();
        for (kind, ts, body) in t.iter().skip(3) {
            if *kind == 9 {
                out.extend(r.video(*ts, body.clone()).unwrap());
            }
        }
        assert!(out.is_empty(), "{out:?}");
        assert!(!r.started());
    }

    #[test]
    fn other_video_codecs_are_refused_by_name() {
        // FLV codec id 2 (Sorenson H.263), a keyframe.
        let err = Remuxer::new(0, 1, 100)
            .video(0, Bytes::from_static(&[0x12, 0, 0, 0]))
            .unwrap_err();
        assert!(matches!(err, RemuxError::Unsupported(_)), "{err}");
        assert!(err.to_string().contains("H.264"), "{err}");
    }

    #[test]
    fn malformed_tags_are_errors_not_panics() {
        let mut r = Remuxer::new(0, 1, 100);
        let garbage: [&[u8]; 6] = [
            &[],
            &[0x17],
            &[0x17, 0x00, 0x00],
            &[
                0x17, 0x00, 0, 0, 0, 1, 0x64, 0, 0x1f, 0xff, 0xe1, 0xff, 0xff,
            ],
            &[0x17, 0x01, 0, 0, 0, 0, 0, 0, 9],
            &[0x27, 0x01, 0xff, 0xff, 0xff],
        ];
        for g in garbage {
            let _ = r.video(0, Bytes::from_static(g));
            let _ = r.audio(0, Bytes::from_static(g));
        }
        for g in [
            &[0xaf_u8][..],
            &[0xaf, 0x00],
            &[0xaf, 0x00, 0xff],
            &[0x2f, 1, 2],
        ] {
            let _ = r.audio(0, Bytes::from_static(g));
        }
        assert!(!r.started());
    }

    #[test]
    fn an_sps_whose_crop_exceeds_the_picture_is_malformed_not_a_panic() {
        // Found by the remux fuzz target: a 16-pixel-wide SPS cropping 40 pixels made
        // scuffle-h264's `Sps::width` subtract with overflow.
        let tag = include_bytes!("../../../../fuzz/regressions/remux/sps_crop_larger_than_picture");
        let err = Remuxer::new(0, 1, 100)
            .video(0, Bytes::copy_from_slice(&tag[11..]))
            .unwrap_err();
        assert!(
            matches!(&err, RemuxError::Malformed { why, .. } if why.contains("crop")),
            "{err}"
        );
    }

    #[test]
    fn an_sps_that_overflows_the_exp_golomb_reader_is_malformed_not_a_panic() {
        // Found by the remux fuzz target: scuffle-expgolomb subtracted with overflow.
        let flv = include_bytes!("../../../../fuzz/regressions/remux/sps_expgolomb_overflow");
        let mut r = Remuxer::new(0, 1, 100);
        let mut rest = &flv[..];
        while rest.len() >= 11 {
            let size = u32::from_be_bytes([0, rest[1], rest[2], rest[3]]) as usize;
            let end = (11 + size).min(rest.len());
            let body = Bytes::copy_from_slice(&rest[11..end]);
            let _ = match rest[0] & 0x1f {
                8 => r.audio(0, body),
                9 => r.video(0, body),
                _ => Ok(Vec::new()),
            };
            rest = rest.get(end + 4..).unwrap_or(&[]);
        }
    }

    #[test]
    fn mp3_audio_is_dropped_with_a_warning_and_video_goes_on() {
        let mut r = Remuxer::new(0, 1, 100);
        let out = r.audio(0, Bytes::from_static(&[0x2f, 0xff, 0xfb])).unwrap();
        assert!(matches!(&out[..], [Output::Warning(w)] if w.contains("not AAC")));
        assert!(r
            .audio(20, Bytes::from_static(&[0x2f, 0xff, 0xfb]))
            .unwrap()
            .is_empty());
    }
}
