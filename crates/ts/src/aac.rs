//! AAC in ADTS frames (ISO 14496-3 1.A.2): header parsing and the
//! AudioSpecificConfig that replaces the headers in fMP4.
//!
//! Owns the ADTS header layout only; where frames sit in a PES and what time they get
//! is the transmuxer's business.

use crate::mp4::AudioConfig;

/// Sample rates by `sampling_frequency_index`.
const RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// Bytes of an ADTS header without CRC (the minimum to read one).
pub(crate) const HEADER_LEN: usize = 7;

/// One ADTS frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Adts {
    /// Audio object type (`profile` + 1): 2 = AAC-LC.
    pub(crate) object_type: u8,
    /// `sampling_frequency_index`.
    pub(crate) rate_index: u8,
    /// `channel_configuration` (0: defined by a PCE in the stream).
    pub(crate) channels: u8,
    /// Header bytes before the raw data (7, or 9 with a CRC).
    pub(crate) header_len: usize,
    /// Whole frame, header included.
    pub(crate) frame_len: usize,
    /// Raw data blocks in the frame (1 in practice).
    pub(crate) blocks: u8,
}

/// Reads an ADTS header at the start of `b`. `None` if there is no valid header there.
pub(crate) fn parse(b: &[u8]) -> Option<Adts> {
    let h = b.get(..HEADER_LEN)?;
    // syncword 0xFFF, layer 0.
    if h[0] != 0xff || h[1] & 0xf6 != 0xf0 {
        return None;
    }
    let header_len = if h[1] & 1 == 1 { 7 } else { 9 };
    let rate_index = (h[2] >> 2) & 0x0f;
    if usize::from(rate_index) >= RATES.len() {
        return None;
    }
    let frame_len = usize::from(h[3] & 3) << 11 | usize::from(h[4]) << 3 | usize::from(h[5] >> 5);
    if frame_len <= header_len {
        return None;
    }
    Some(Adts {
        object_type: (h[2] >> 6) + 1,
        rate_index,
        channels: (h[2] & 1) << 2 | h[3] >> 6,
        header_len,
        frame_len,
        blocks: (h[6] & 3) + 1,
    })
}

impl Adts {
    /// The track configuration this frame belongs to.
    pub(crate) fn config(&self) -> AudioConfig {
        // AudioSpecificConfig: object type (5 bits), frequency index (4), channel
        // configuration (4), then GASpecificConfig's three zero flags.
        let asc = [
            self.object_type << 3 | self.rate_index >> 1,
            (self.rate_index & 1) << 7 | self.channels << 3,
        ];
        AudioConfig {
            object_type_indication: 0x40,
            decoder_specific_info: Some(asc),
            sample_rate: RATES[usize::from(self.rate_index)],
            channels: self.channels,
            samples_per_frame: 1024,
            codec: CodecName::Aac(self.object_type),
        }
    }
}

/// How an audio configuration is named in a codecs string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodecName {
    /// `mp4a.40.<object type>`.
    Aac(u8),
    /// MP3, named `mp3`: the name Firefox's `isTypeSupported` accepts for MP3 in MP4
    /// (it refuses the registered `mp4a.6B` and `mp4a.69`).
    Mp3,
}

impl CodecName {
    /// The RFC 6381 string.
    pub(crate) fn string(self) -> String {
        match self {
            CodecName::Aac(ot) => {
                let mut s = String::from("mp4a.40.");
                // Object types are < 64: one or two decimal digits.
                if ot >= 10 {
                    s.push(char::from(b'0' + ot / 10 % 10));
                }
                s.push(char::from(b'0' + ot % 10));
                s
            }
            CodecName::Mp3 => "mp3".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_header_gives_config_and_frame_length() {
        // AAC-LC, 48 kHz (index 3), mono, 200-byte frame, no CRC.
        let h = [0xff, 0xf1, 0x4c, 0x40, 0x19, 0x1f, 0xfc];
        let a = parse(&h).unwrap();
        assert_eq!((a.object_type, a.rate_index, a.channels), (2, 3, 1));
        assert_eq!((a.header_len, a.frame_len, a.blocks), (7, 200, 1));
        let c = a.config();
        assert_eq!(c.decoder_specific_info, Some([0x11, 0x88]));
        assert_eq!(c.sample_rate, 48000);
        assert_eq!(c.codec.string(), "mp4a.40.2");
        assert_eq!(CodecName::Aac(29).string(), "mp4a.40.29");
    }

    #[test]
    fn not_adts_is_refused() {
        assert_eq!(parse(&[0xff, 0xf1, 0x4c]), None);
        assert_eq!(
            parse(&[0xff, 0xf7, 0x4c, 0x40, 0x19, 0x1f, 0xfc]),
            None,
            "layer 3"
        );
        assert_eq!(
            parse(&[0xff, 0xf1, 0x7c, 0x40, 0x19, 0x1f, 0xfc]),
            None,
            "rate 15"
        );
        assert_eq!(
            parse(&[0xff, 0xf1, 0x4c, 0x40, 0x00, 0x1f, 0xfc]),
            None,
            "length 0"
        );
    }
}
