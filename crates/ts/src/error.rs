//! What can go wrong: [`TsError`] (the segment produced nothing) and [`Warning`] (the
//! segment was transmuxed, but something in it was dropped or repaired).
//!
//! Owns the wording the widget shows or logs. Messages carry integers only (PIDs, byte
//! counts, milliseconds): no float formatting, which would cost code size in the wasm
//! module.

/// A segment that cannot be transmuxed at all. The [`Transmuxer`](crate::Transmuxer)'s
/// state is left as it was before the call, so the caller may skip the segment and go
/// on with the next one, or give up on the stream and say why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TsError {
    /// Zero bytes.
    #[error("empty segment: not an MPEG-TS segment")]
    Empty,
    /// Some bytes, but fewer than one 188-byte packet.
    #[error("truncated packet: {0} bytes, an MPEG-TS packet is 188")]
    Truncated(usize),
    /// No sync byte pattern (0x47 every 188 bytes) near the start.
    #[error("no MPEG-TS sync pattern (0x47 every 188 bytes) in the first {0} KB: not an MPEG-TS segment")]
    NoSync(usize),
    /// Packets, but no Program Association Table, and none known from an earlier segment.
    #[error("no PAT found in the first {0} KB: not an MPEG-TS segment")]
    NoPat(usize),
    /// A PAT, but no Program Map Table on the PID it names.
    #[error("no PMT found on PID {pid:#x} (program {program}) in {kb} KB")]
    NoPmt {
        /// The PMT's PID, from the PAT.
        pid: u16,
        /// The program number, from the PAT.
        program: u16,
        /// How much was searched.
        kb: usize,
    },
    /// The program has a stream this transmuxer cannot turn into something a browser
    /// plays, and nothing playable in its place (no H.264 when the program has video,
    /// or no audio at all).
    #[error("unsupported stream type {stream_type:#04x} ({name}) in PMT")]
    Unsupported {
        /// The PMT's `stream_type`.
        stream_type: u8,
        /// What it is, e.g. "HEVC".
        name: &'static str,
    },
    /// The PMT lists no elementary stream at all.
    #[error("the PMT lists no audio or video stream")]
    NoMedia,
    /// One PES packet grew past the bound (a corrupt length or an endless stream).
    #[error("PES on PID {pid:#x} is larger than {limit} bytes")]
    PesTooLarge {
        /// The elementary stream's PID.
        pid: u16,
        /// The bound, [`MAX_PES_BYTES`](crate::MAX_PES_BYTES).
        limit: usize,
    },
}

/// Which elementary stream a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    /// The H.264 stream.
    Video,
    /// The AAC or MP3 stream.
    Audio,
}

impl Track {
    /// Lower-case name for messages.
    fn name(self) -> &'static str {
        match self {
            Track::Video => "video",
            Track::Audio => "audio",
        }
    }
}

impl core::fmt::Display for Track {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

/// Something repaired or dropped while transmuxing a segment that still produced output.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Warning {
    /// A packet's continuity counter skipped: packets were lost, the PES being assembled
    /// on that PID was dropped.
    #[error("continuity error on PID {pid:#x}: expected counter {expected}, got {got}; dropped a PES of {dropped_bytes} bytes")]
    Continuity {
        /// The PID.
        pid: u16,
        /// The counter that should have come.
        expected: u8,
        /// The counter that came.
        got: u8,
        /// Bytes of the PES that was dropped (0 if none was in progress).
        dropped_bytes: usize,
    },
    /// Bytes that were not 188-byte packets were skipped to find the sync pattern again.
    #[error("skipped {skipped} bytes of garbage at offset {offset} to resynchronise")]
    Resync {
        /// Where the garbage starts.
        offset: usize,
        /// How many bytes were skipped.
        skipped: usize,
    },
    /// The segment ends with a packet shorter than 188 bytes; it was ignored.
    #[error("truncated packet at offset {offset}: {len} of 188 bytes, ignored")]
    TruncatedPacket {
        /// Where the packet starts.
        offset: usize,
        /// Its length.
        len: usize,
    },
    /// A packet with the transport error indicator set, or a malformed adaptation field.
    #[error("corrupt packet at offset {offset} ignored")]
    CorruptPacket {
        /// Where the packet starts.
        offset: usize,
    },
    /// A PSI section (PAT or PMT) failed its CRC or was malformed; it was ignored.
    #[error("corrupt PSI section on PID {pid:#x} ignored")]
    CorruptSection {
        /// The PID.
        pid: u16,
    },
    /// A PES that does not start with a PES header, or a header that lies about its size.
    #[error("malformed PES on PID {pid:#x} dropped")]
    MalformedPes {
        /// The PID.
        pid: u16,
    },
    /// A stream of the program is ignored (the rest plays).
    #[error("ignored stream type {stream_type:#04x} ({name}) on PID {pid:#x}")]
    IgnoredStream {
        /// The PID.
        pid: u16,
        /// The PMT's `stream_type`.
        stream_type: u8,
        /// What it is.
        name: &'static str,
    },
    /// Frames dropped because they cannot be decoded yet: video before the first
    /// SPS/PPS or the first keyframe after a start or discontinuity, audio before its
    /// first timestamp.
    #[error("{track}: dropped {frames} frames that come before the first decodable one")]
    NotDecodableYet {
        /// Which stream.
        track: Track,
        /// How many frames.
        frames: u32,
    },
    /// The codec configuration changed in the middle of a segment. Video keeps the
    /// in-band parameter sets and the init segment of the segment's start; audio frames
    /// of the new configuration are dropped.
    #[error("{track}: codec configuration changed mid-segment; {frames} frames dropped")]
    ConfigChangedMidSegment {
        /// Which stream.
        track: Track,
        /// Frames dropped (video: 0, they are kept).
        frames: u32,
    },
    /// An SPS that could not be parsed; its frames are kept if an earlier SPS is known.
    #[error("unreadable H.264 SPS ignored")]
    BadSps,
    /// Bytes of an audio elementary stream that were not frames were skipped.
    #[error("{track}: skipped {bytes} bytes that are not audio frames")]
    AudioGarbage {
        /// Always audio.
        track: Track,
        /// Bytes skipped.
        bytes: usize,
    },
    /// Audio frames of a kind no browser decodes (MPEG audio layer I/II, AAC with its
    /// channel layout in a PCE, ADTS with several raw blocks) were dropped.
    #[error("dropped {frames} audio frames: {what} is not supported")]
    UnsupportedAudio {
        /// What they were.
        what: &'static str,
        /// How many.
        frames: u32,
    },
    /// Audio frames that overlapped the previous ones by a frame or more were dropped.
    #[error("dropped {frames} overlapping audio frames")]
    AudioOverlap {
        /// How many.
        frames: u32,
    },
    /// Timestamps jumped within a stream that was not announced as a discontinuity; the
    /// new timestamps were followed (a gap or an overlap in the output).
    #[error("{track}: timestamps jumped by {ms} ms without a discontinuity")]
    TimestampJump {
        /// Which stream.
        track: Track,
        /// By how much, in milliseconds (negative: backwards).
        ms: i64,
    },
    /// Decode timestamps went backwards or stood still; they were repaired.
    #[error("{track}: {frames} decode timestamps went backwards and were repaired")]
    NonMonotonic {
        /// Which stream.
        track: Track,
        /// How many frames.
        frames: u32,
    },
    /// A metadata PES that is not an ID3 tag was dropped.
    #[error("metadata on PID {pid:#x} is not ID3; dropped")]
    NotId3 {
        /// The PID.
        pid: u16,
    },
}
