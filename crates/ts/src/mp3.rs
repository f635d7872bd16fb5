//! MPEG audio frames (ISO 11172-3, 13818-3): the header fields needed to frame and
//! time MP3 (layer III). Layers I and II are recognised only to be refused: browsers
//! do not decode them.
//!
//! In fMP4 an MP3 frame stays whole (header included) under an `mp4a` sample entry
//! whose `esds` says MPEG-1 audio (0x6B) or MPEG-2 audio (0x69), the layout ffmpeg
//! writes. Firefox 153 plays it (as `mp3`); Chromium 156 plays MP3 in MediaSource
//! only as raw frames (`audio/mpeg`), which the transmuxer can output instead.

use crate::aac::CodecName;
use crate::mp4::AudioConfig;

/// Bytes of an MPEG audio frame header.
pub(crate) const HEADER_LEN: usize = 4;

/// Layer III bitrates in kbit/s by index: MPEG-1, then MPEG-2/2.5 (0: free format).
const BITRATES: [[u16; 15]; 2] = [
    [
        0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
    ],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];
/// MPEG-1 sample rates; MPEG-2 halves them, MPEG-2.5 quarters them.
const RATES: [u32; 3] = [44100, 48000, 32000];

/// One MPEG audio frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// MPEG-1 (as opposed to MPEG-2 or 2.5, the half and quarter rates).
    pub(crate) mpeg1: bool,
    /// 1, 2 or 3.
    pub(crate) layer: u8,
    /// Samples per second.
    pub(crate) sample_rate: u32,
    /// 1 or 2.
    pub(crate) channels: u8,
    /// Bytes of the whole frame (0 for layers I/II, which are not framed here).
    pub(crate) frame_len: usize,
}

/// Reads an MPEG audio frame header at the start of `b`. `None` if there is none
/// (bad sync, reserved version/layer/rate, free-format or invalid bitrate).
pub(crate) fn parse(b: &[u8]) -> Option<Header> {
    let h = b.get(..HEADER_LEN)?;
    if h[0] != 0xff || h[1] & 0xe0 != 0xe0 {
        return None;
    }
    let version = (h[1] >> 3) & 3; // 0: 2.5, 1: reserved, 2: MPEG-2, 3: MPEG-1
    let layer = match (h[1] >> 1) & 3 {
        1 => 3,
        2 => 2,
        3 => 1,
        _ => return None,
    };
    let bitrate_index = usize::from(h[2] >> 4);
    let rate_index = usize::from((h[2] >> 2) & 3);
    if version == 1 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    let mpeg1 = version == 3;
    let sample_rate = RATES[rate_index]
        >> match version {
            3 => 0,
            2 => 1,
            _ => 2,
        };
    let channels = if h[3] >> 6 == 3 { 1 } else { 2 };
    let frame_len = if layer == 3 {
        let kbps = usize::from(BITRATES[usize::from(!mpeg1)][bitrate_index]);
        let per_frame = if mpeg1 { 144_000 } else { 72_000 };
        per_frame * kbps / sample_rate as usize + usize::from((h[2] >> 1) & 1)
    } else {
        0
    };
    Some(Header {
        mpeg1,
        layer,
        sample_rate,
        channels,
        frame_len,
    })
}

impl Header {
    /// The track configuration this frame belongs to.
    pub(crate) fn config(&self) -> AudioConfig {
        AudioConfig {
            object_type_indication: if self.mpeg1 { 0x6b } else { 0x69 },
            decoder_specific_info: None,
            sample_rate: self.sample_rate,
            channels: self.channels,
            samples_per_frame: if self.mpeg1 { 1152 } else { 576 },
            codec: CodecName::Mp3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_3_headers_give_rate_channels_and_length() {
        // MPEG-1 layer III, 128 kbit/s, 44.1 kHz, padded, joint stereo: 418 bytes.
        let h = parse(&[0xff, 0xfb, 0x92, 0x44]).unwrap();
        assert_eq!(
            (h.mpeg1, h.layer, h.sample_rate, h.channels),
            (true, 3, 44100, 2)
        );
        assert_eq!(h.frame_len, 418);
        assert_eq!(h.config().codec.string(), "mp3");
        assert_eq!(h.config().object_type_indication, 0x6b);
        // MPEG-2 layer III, 64 kbit/s, 24 kHz, mono: 192 bytes, 576 samples.
        let h = parse(&[0xff, 0xf3, 0x84, 0xc4]).unwrap();
        assert_eq!(
            (h.mpeg1, h.sample_rate, h.channels, h.frame_len),
            (false, 24000, 1, 192)
        );
        assert_eq!(h.config().samples_per_frame, 576);
        assert_eq!(h.config().object_type_indication, 0x69);
    }

    #[test]
    fn invalid_headers_are_refused_and_layer_2_is_recognised() {
        assert_eq!(parse(&[0xff, 0xfb, 0xf2, 0x44]), None, "bitrate 15");
        assert_eq!(parse(&[0xff, 0xfb, 0x02, 0x44]), None, "free format");
        assert_eq!(parse(&[0xff, 0xeb, 0x92, 0x44]), None, "reserved version");
        assert_eq!(parse(&[0xff, 0xf9, 0x92, 0x44]), None, "reserved layer");
        assert_eq!(parse(&[0xff, 0xfd, 0x92, 0x44]).map(|h| h.layer), Some(2));
    }
}
