//! The fMP4 writer: an init segment (`ftyp` + `moov` with `mvex`) for up to one video
//! and one audio track, and `moof` + `mdat` fragments.
//!
//! Hand-written boxes, in the layout of the server's CMAF writer
//! (`crates/server/src/media/cmaf.rs`), without its `mp4-atom` dependency: an MP4 crate
//! would outweigh the rest of this wasm module. It knows nothing about MPEG-TS or
//! clocks: callers give it codec configurations and samples with decode times.

use crate::aac::CodecName;
use crate::h264::AvcConfig;

/// Track id of the video track in every init segment and fragment.
pub(crate) const VIDEO_TRACK: u32 = 1;
/// Track id of the audio track.
pub(crate) const AUDIO_TRACK: u32 = 2;
/// Video timescale: the MPEG-TS clock itself, so no timestamp is rounded.
pub(crate) const VIDEO_TIMESCALE: u32 = 90_000;

/// `sample_depends_on = 2`: a sync sample that needs no other sample to decode.
pub(crate) const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`: a predicted frame.
pub(crate) const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// An audio track's configuration, as the `mp4a` sample entry states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AudioConfig {
    /// The `esds` objectTypeIndication: 0x40 (MPEG-4 audio, AAC), 0x6B (MPEG-1 audio),
    /// 0x69 (MPEG-2 audio).
    pub(crate) object_type_indication: u8,
    /// The AudioSpecificConfig, for AAC.
    pub(crate) decoder_specific_info: Option<[u8; 2]>,
    /// Samples per second; also the track's timescale, so every frame lasts a whole
    /// number of ticks.
    pub(crate) sample_rate: u32,
    /// Channel count.
    pub(crate) channels: u8,
    /// Samples per frame: 1024 (AAC), 1152 (MPEG-1 layer III), 576 (MPEG-2 layer III).
    pub(crate) samples_per_frame: u32,
    /// The codecs-string name.
    pub(crate) codec: CodecName,
}

/// Writes boxes into a buffer; sizes are patched when a box is closed.
struct Writer {
    /// The bytes written so far.
    buf: Vec<u8>,
    /// Start offsets of the boxes still open.
    open: Vec<usize>,
}

impl Writer {
    /// An empty writer.
    fn new() -> Self {
        Self {
            buf: Vec::new(),
            open: Vec::new(),
        }
    }

    /// Opens a box of type `kind`.
    fn start(&mut self, kind: &[u8; 4]) {
        self.open.push(self.buf.len());
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(kind);
    }

    /// Opens a full box (with version and flags).
    fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) {
        self.start(kind);
        self.u32(u32::from(version) << 24 | flags & 0x00ff_ffff);
    }

    /// Closes the innermost open box, writing its size.
    fn end(&mut self) {
        if let Some(at) = self.open.pop() {
            let size = (self.buf.len() - at) as u32;
            self.buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
        }
    }

    /// A box whose payload is `body`.
    fn leaf(&mut self, kind: &[u8; 4], body: &[u8]) {
        self.start(kind);
        self.bytes(body);
        self.end();
    }

    /// Raw bytes.
    fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }

    /// `n` zero bytes.
    fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// A big-endian u16.
    fn u16(&mut self, v: u16) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian u32.
    fn u32(&mut self, v: u32) {
        self.bytes(&v.to_be_bytes());
    }

    /// A big-endian u64.
    fn u64(&mut self, v: u64) {
        self.bytes(&v.to_be_bytes());
    }

    /// The unity transformation matrix of `mvhd` and `tkhd`.
    fn matrix(&mut self) {
        for v in [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
            self.u32(v);
        }
    }
}

/// Writes `ftyp` and opens `moov` with its `mvhd`, for a file whose one track is `id`.
fn start_init(w: &mut Writer, id: u32) {
    w.start(b"ftyp");
    w.bytes(b"isom");
    w.u32(0x200);
    w.bytes(b"isomiso6avc1mp41");
    w.end();

    w.start(b"moov");
    w.start_full(b"mvhd", 0, 0);
    w.zeros(8); // creation, modification time
    w.u32(1000);
    w.u32(0); // duration: unknown (live)
    w.u32(0x0001_0000); // rate 1.0
    w.u16(0x0100); // volume 1.0
    w.zeros(10);
    w.matrix();
    w.zeros(24);
    w.u32(id + 1); // next_track_ID
    w.end();
}

/// Writes `mvex` with the track's `trex` and closes `moov`.
fn end_init(w: &mut Writer, id: u32) {
    w.start(b"mvex");
    w.start_full(b"trex", 0, 0);
    w.u32(id);
    w.u32(1); // default_sample_description_index
    w.zeros(12); // default duration, size, flags (0: sync)
    w.end();
    w.end();
    w.end(); // moov
}

/// The init segment of a video track.
pub(crate) fn video_init(v: &AvcConfig) -> Vec<u8> {
    let mut w = Writer::new();
    start_init(&mut w, VIDEO_TRACK);
    let i = &v.info;
    // The display size: the coded size stretched by the sample aspect ratio.
    let display_w = u32::from(i.width) * u32::from(i.sar.0) / u32::from(i.sar.1.max(1));
    trak(
        &mut w,
        VIDEO_TRACK,
        VIDEO_TIMESCALE,
        display_w,
        u32::from(i.height),
        |w| {
            w.start(b"avc1");
            w.zeros(6);
            w.u16(1); // data_reference_index
            w.zeros(16);
            w.u16(i.width);
            w.u16(i.height);
            w.u32(0x0048_0000); // 72 dpi
            w.u32(0x0048_0000);
            w.u32(0);
            w.u16(1); // frame_count
            w.zeros(32); // compressorname
            w.u16(0x0018); // depth
            w.u16(0xffff); // pre_defined = -1
            w.leaf(b"avcC", &v.avcc());
            if i.sar != (1, 1) {
                w.start(b"pasp");
                w.u32(u32::from(i.sar.0));
                w.u32(u32::from(i.sar.1));
                w.end();
            }
            w.end();
        },
    );
    end_init(&mut w, VIDEO_TRACK);
    w.buf
}

/// The init segment of an audio track.
pub(crate) fn audio_init(a: &AudioConfig) -> Vec<u8> {
    let mut w = Writer::new();
    start_init(&mut w, AUDIO_TRACK);
    trak(&mut w, AUDIO_TRACK, a.sample_rate, 0, 0, |w| {
        w.start(b"mp4a");
        w.zeros(6);
        w.u16(1); // data_reference_index
        w.zeros(8);
        w.u16(u16::from(a.channels));
        w.u16(16); // samplesize
        w.zeros(4);
        // 16.16 fixed point; rates above 65535 Hz do not fit and are given as 0
        // (decoders read the rate from the AudioSpecificConfig).
        w.u32(if a.sample_rate <= 0xffff {
            a.sample_rate << 16
        } else {
            0
        });
        esds(w, a);
        w.end();
    });
    end_init(&mut w, AUDIO_TRACK);
    w.buf
}

/// Writes a `trak` whose sample entry `entry` writes.
fn trak(
    w: &mut Writer,
    id: u32,
    timescale: u32,
    width: u32,
    height: u32,
    entry: impl FnOnce(&mut Writer),
) {
    let video = id == VIDEO_TRACK;
    w.start(b"trak");
    w.start_full(b"tkhd", 0, 3); // enabled, in movie
    w.zeros(8);
    w.u32(id);
    w.zeros(4);
    w.u32(0); // duration
    w.zeros(8);
    w.u16(0); // layer
    w.u16(0); // alternate_group
    w.u16(if video { 0 } else { 0x0100 }); // volume
    w.u16(0);
    w.matrix();
    w.u32(width << 16);
    w.u32(height << 16);
    w.end();

    w.start(b"mdia");
    w.start_full(b"mdhd", 0, 0);
    w.zeros(8);
    w.u32(timescale);
    w.u32(0);
    w.u16(0x55c4); // language "und"
    w.u16(0);
    w.end();
    w.start_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(if video { b"vide" } else { b"soun" });
    w.zeros(12);
    w.bytes(if video {
        b"VideoHandler\0"
    } else {
        b"SoundHandler\0"
    });
    w.end();

    w.start(b"minf");
    if video {
        w.start_full(b"vmhd", 0, 1);
        w.zeros(8);
    } else {
        w.start_full(b"smhd", 0, 0);
        w.zeros(4);
    }
    w.end();
    w.start(b"dinf");
    w.start_full(b"dref", 0, 0);
    w.u32(1);
    w.start_full(b"url ", 0, 1); // media in the same file
    w.end();
    w.end();
    w.end();
    w.start(b"stbl");
    w.start_full(b"stsd", 0, 0);
    w.u32(1);
    entry(w);
    w.end();
    // Empty sample tables: the samples are in the fragments.
    for kind in [b"stts", b"stsc", b"stco"] {
        w.start_full(kind, 0, 0);
        w.u32(0);
        w.end();
    }
    w.start_full(b"stsz", 0, 0);
    w.zeros(8);
    w.end();
    w.end(); // stbl
    w.end(); // minf
    w.end(); // mdia
    w.end(); // trak
}

/// The `esds` box: ES_Descriptor > DecoderConfigDescriptor (> DecoderSpecificInfo),
/// SLConfigDescriptor (ISO 14496-1 7.2.6). Every descriptor here is shorter than 128
/// bytes, so each length is one byte.
fn esds(w: &mut Writer, a: &AudioConfig) {
    let dsi_len = a.decoder_specific_info.map_or(0, |d| 2 + d.len());
    let dcd_len = 13 + dsi_len;
    w.start_full(b"esds", 0, 0);
    w.bytes(&[0x03, (3 + 2 + dcd_len + 3) as u8]);
    w.u16(0); // ES_ID
    w.bytes(&[0]); // flags
    w.bytes(&[0x04, dcd_len as u8, a.object_type_indication, 0x15]); // audio stream
    w.zeros(3 + 4 + 4); // bufferSizeDB, maxBitrate, avgBitrate
    if let Some(d) = a.decoder_specific_info {
        w.bytes(&[0x05, d.len() as u8]);
        w.bytes(&d);
    }
    w.bytes(&[0x06, 1, 2]); // SLConfigDescriptor, predefined = MP4
    w.end();
}

/// One sample of a fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sample {
    /// Duration in the track's timescale.
    pub(crate) duration: u32,
    /// Bytes in the `mdat`.
    pub(crate) size: u32,
    /// [`FLAGS_SYNC`] or [`FLAGS_NON_SYNC`] (video; audio samples are all sync).
    pub(crate) flags: u32,
    /// Presentation minus decode time (B-frames), in the track's timescale.
    pub(crate) cts: i32,
}

/// One track's samples in a fragment.
pub(crate) struct Run<'a> {
    /// [`VIDEO_TRACK`] or [`AUDIO_TRACK`].
    pub(crate) track_id: u32,
    /// Decode time of the first sample, in the track's timescale (`tfdt`).
    pub(crate) base_decode_time: u64,
    /// The samples, in decode order.
    pub(crate) samples: &'a [Sample],
    /// Their bytes, back to back.
    pub(crate) data: &'a [u8],
}

/// Builds one fragment of one track: a `moof` with one `traf`, then the `mdat`.
pub(crate) fn fragment(sequence_number: u32, run: &Run<'_>) -> Vec<u8> {
    let video = run.track_id == VIDEO_TRACK;
    let mut w = Writer::new();
    w.start(b"moof");
    w.start_full(b"mfhd", 0, 0);
    w.u32(sequence_number);
    w.end();
    w.start(b"traf");
    w.start_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
    w.u32(run.track_id);
    w.end();
    w.start_full(b"tfdt", 1, 0);
    w.u64(run.base_decode_time);
    w.end();
    // Data offset, duration, size; video adds flags and composition offsets, in a
    // version 1 (signed) trun only when an offset is negative.
    let flags = if video { 0x0f01 } else { 0x0301 };
    let version = u8::from(video && run.samples.iter().any(|s| s.cts < 0));
    w.start_full(b"trun", version, flags);
    w.u32(run.samples.len() as u32);
    let offset_field = w.buf.len();
    w.u32(0);
    for s in run.samples {
        w.u32(s.duration);
        w.u32(s.size);
        if video {
            w.u32(s.flags);
            w.u32(s.cts as u32);
        }
    }
    w.end();
    w.end(); // traf
    w.end(); // moof
             // Relative to the moof's start (default-base-is-moof); the mdat's payload starts
             // after its 8-byte header.
    let offset = w.buf.len() as u32 + 8;
    w.buf[offset_field..offset_field + 4].copy_from_slice(&offset.to_be_bytes());
    w.start(b"mdat");
    w.bytes(run.data);
    w.end();
    w.buf
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boxes laid end to end in `data`: `(type, payload)`.
    pub(crate) fn boxes(mut data: &[u8]) -> Vec<([u8; 4], &[u8])> {
        let mut out = Vec::new();
        while data.len() >= 8 {
            let size = u32::from_be_bytes(data[..4].try_into().unwrap()) as usize;
            assert!(size >= 8 && size <= data.len(), "box size {size}");
            out.push((data[4..8].try_into().unwrap(), &data[8..size]));
            data = &data[size..];
        }
        assert!(data.is_empty());
        out
    }

    #[test]
    fn fragment_offset_points_at_the_samples() {
        let v = [
            Sample {
                duration: 3000,
                size: 3,
                flags: FLAGS_SYNC,
                cts: 6000,
            },
            Sample {
                duration: 3000,
                size: 2,
                flags: FLAGS_NON_SYNC,
                cts: -3000,
            },
        ];
        let run = Run {
            track_id: VIDEO_TRACK,
            base_decode_time: 1 << 40,
            samples: &v,
            data: &[1, 1, 1, 2, 2],
        };
        let bytes = fragment(7, &run);
        let top = boxes(&bytes);
        assert_eq!(
            top.iter().map(|b| b.0).collect::<Vec<_>>(),
            [*b"moof", *b"mdat"]
        );
        let moof_len = top[0].1.len() + 8;
        let traf = boxes(top[0].1)
            .into_iter()
            .find(|b| &b.0 == b"traf")
            .unwrap()
            .1;
        let trun = boxes(traf).into_iter().find(|b| &b.0 == b"trun").unwrap().1;
        assert_eq!(trun[0], 1, "a negative composition offset needs version 1");
        assert_eq!(
            u32::from_be_bytes(trun[8..12].try_into().unwrap()) as usize,
            moof_len + 8
        );
        let tfdt = boxes(traf).into_iter().find(|b| &b.0 == b"tfdt").unwrap().1;
        assert_eq!(tfdt[4..], (1u64 << 40).to_be_bytes());
        assert_eq!(top[1].1, &[1, 1, 1, 2, 2]);

        let a = [Sample {
            duration: 1024,
            size: 4,
            flags: 0,
            cts: 0,
        }];
        let bytes = fragment(
            8,
            &Run {
                track_id: AUDIO_TRACK,
                base_decode_time: 5,
                samples: &a,
                data: &[3; 4],
            },
        );
        let traf = boxes(boxes(&bytes)[0].1)
            .into_iter()
            .find(|b| &b.0 == b"traf")
            .unwrap()
            .1;
        let trun = boxes(traf).into_iter().find(|b| &b.0 == b"trun").unwrap().1;
        assert_eq!(
            (trun[0], trun[3]),
            (0, 0x01),
            "audio: version 0, no flags or offsets"
        );
        assert_eq!(trun.len(), 12 + 8);
    }

    #[test]
    fn init_segment_has_one_trak_and_its_trex() {
        let a = AudioConfig {
            object_type_indication: 0x40,
            decoder_specific_info: Some([0x11, 0x88]),
            sample_rate: 48000,
            channels: 1,
            samples_per_frame: 1024,
            codec: CodecName::Aac(2),
        };
        let init = audio_init(&a);
        let top = boxes(&init);
        assert_eq!(
            top.iter().map(|b| b.0).collect::<Vec<_>>(),
            [*b"ftyp", *b"moov"]
        );
        let moov = boxes(top[1].1);
        let kinds: Vec<_> = moov.iter().map(|b| b.0).collect();
        assert_eq!(kinds, [*b"mvhd", *b"trak", *b"mvex"]);
        let trex = boxes(moov[2].1)[0].1;
        assert_eq!(trex[4..8], AUDIO_TRACK.to_be_bytes());
    }
}
