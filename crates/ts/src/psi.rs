//! Program Specific Information: the PAT (which PID carries the program's map) and the
//! PMT (which PIDs carry which elementary streams).
//!
//! Owns section reassembly (a section may span packets), the CRC check and the mapping
//! from `stream_type` (and descriptors) to what the transmuxer can do with a stream.
//! It does not decide which streams are played: see the transmuxer.

use crate::packet::Packet;

/// A section is at most 1024 bytes (`section_length` ≤ 1021 plus a 3-byte header).
const MAX_SECTION: usize = 1024;

/// What an elementary stream of the PMT is, for the transmuxer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StreamKind {
    /// H.264 in Annex-B (`stream_type` 0x1B).
    H264,
    /// AAC in ADTS frames (0x0F).
    Adts,
    /// MPEG-1/2 audio (0x03, 0x04); the layer is checked per frame.
    MpegAudio,
    /// ID3 timed metadata (0x15, or private data registered as `ID3 `).
    Id3,
    /// Video this transmuxer cannot pass on.
    UnsupportedVideo(&'static str),
    /// Audio this transmuxer cannot pass on.
    UnsupportedAudio(&'static str),
    /// Anything else (SCTE-35, subtitles, private data): ignored silently.
    Other,
}

/// One elementary stream of the PMT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stream {
    /// Its PID.
    pub(crate) pid: u16,
    /// Its `stream_type`.
    pub(crate) stream_type: u8,
    /// What it is.
    pub(crate) kind: StreamKind,
}

/// CRC-32/MPEG-2 (polynomial 0x04C11DB7, no reflection), bit by bit: a table would be
/// 1 KB of the wasm module for a few hundred bytes of PSI per segment.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Reassembles the sections of one PSI PID.
#[derive(Debug, Default)]
pub(crate) struct SectionReader {
    /// The bytes of the section in progress.
    buf: Vec<u8>,
}

impl SectionReader {
    /// Feeds one packet; returns a complete section whose CRC is correct, `Some(Err(()))`
    /// for a complete but corrupt one. Only the first section starting in a packet is
    /// read (PAT and PMT are one section each in practice).
    pub(crate) fn push(&mut self, p: &Packet<'_>) -> Option<Result<Vec<u8>, ()>> {
        let mut payload = p.payload;
        if p.start {
            let pointer = usize::from(*payload.first()?);
            payload = payload.get(1 + pointer..)?;
            self.buf.clear();
        } else if self.buf.is_empty() {
            return None;
        }
        let room = MAX_SECTION - self.buf.len();
        self.buf
            .extend_from_slice(&payload[..payload.len().min(room)]);
        let len =
            usize::from(u16::from_be_bytes([*self.buf.get(1)?, *self.buf.get(2)?]) & 0x0fff) + 3;
        if !(12..=MAX_SECTION).contains(&len) {
            self.buf.clear();
            return Some(Err(()));
        }
        if self.buf.len() < len {
            return None;
        }
        let section: Vec<u8> = self.buf.drain(..).take(len).collect();
        if crc32(&section) != 0 {
            return Some(Err(()));
        }
        Some(Ok(section))
    }
}

/// The first program of a PAT section: `(program_number, pmt_pid)`. `None` when the
/// section is not a PAT or lists no program (only the NIT).
pub(crate) fn parse_pat(section: &[u8]) -> Option<(u16, u16)> {
    if section.first() != Some(&0x00) {
        return None;
    }
    // Header 8 bytes, CRC 4 at the end, entries of 4 bytes in between.
    let entries = section.get(8..section.len().checked_sub(4)?)?;
    entries.chunks_exact(4).find_map(|e| {
        let program = u16::from_be_bytes([e[0], e[1]]);
        let pid = u16::from_be_bytes([e[2], e[3]]) & 0x1fff;
        (program != 0).then_some((program, pid))
    })
}

/// The elementary streams of a PMT section. `None` when the section is not a PMT or is
/// malformed.
pub(crate) fn parse_pmt(section: &[u8]) -> Option<Vec<Stream>> {
    if section.first() != Some(&0x02) {
        return None;
    }
    let end = section.len().checked_sub(4)?;
    let program_info =
        usize::from(u16::from_be_bytes([*section.get(10)?, *section.get(11)?]) & 0x0fff);
    let mut at = 12 + program_info;
    let mut streams = Vec::new();
    while at + 5 <= end {
        let stream_type = section[at];
        let pid = u16::from_be_bytes([section[at + 1], section[at + 2]]) & 0x1fff;
        let info_len = usize::from(u16::from_be_bytes([section[at + 3], section[at + 4]]) & 0x0fff);
        let descriptors = section.get(at + 5..at + 5 + info_len)?;
        if at + 5 + info_len > end {
            return None;
        }
        streams.push(Stream {
            pid,
            stream_type,
            kind: classify(stream_type, descriptors),
        });
        at += 5 + info_len;
    }
    Some(streams)
}

/// True if a descriptor loop has a registration descriptor (tag 5) or a metadata
/// descriptor (tag 0x26, format 0xFF) naming `ID3 `.
fn registers_id3(mut d: &[u8]) -> bool {
    while let [tag, len, rest @ ..] = d {
        let Some(body) = rest.get(..usize::from(*len)) else {
            return false;
        };
        let id3 = match tag {
            0x05 => body.starts_with(b"ID3 "),
            // metadata_application_format (2, followed by a 4-byte identifier when
            // 0xFFFF), then metadata_format 0xFF and metadata_format_identifier.
            0x26 => {
                let at = if body.get(..2) == Some(&[0xff, 0xff]) {
                    6
                } else {
                    2
                };
                body.get(at) == Some(&0xff) && body.get(at + 1..at + 5) == Some(b"ID3 ")
            }
            _ => false,
        };
        if id3 {
            return true;
        }
        d = &rest[usize::from(*len)..];
    }
    false
}

/// Maps a `stream_type` and its descriptors to what the transmuxer does with it.
fn classify(stream_type: u8, descriptors: &[u8]) -> StreamKind {
    use StreamKind::*;
    match stream_type {
        0x1b => H264,
        0x0f => Adts,
        0x03 | 0x04 => MpegAudio,
        0x15 => Id3,
        0x06 if registers_id3(descriptors) => Id3,
        0x01 => UnsupportedVideo("MPEG-1 video"),
        0x02 => UnsupportedVideo("MPEG-2 video"),
        0x10 => UnsupportedVideo("MPEG-4 part 2 video"),
        0x20 => UnsupportedVideo("H.264 MVC"),
        0x24 => UnsupportedVideo("HEVC"),
        0x33 => UnsupportedVideo("VVC"),
        0xdb => UnsupportedVideo("SAMPLE-AES encrypted H.264"),
        0x11 => UnsupportedAudio("AAC in LATM"),
        0x1c => UnsupportedAudio("MPEG-4 audio without ADTS"),
        0x81 => UnsupportedAudio("AC-3"),
        0x87 => UnsupportedAudio("E-AC-3"),
        0x82 | 0x85 | 0x8a => UnsupportedAudio("DTS"),
        0xcf => UnsupportedAudio("SAMPLE-AES encrypted AAC"),
        0xc1 => UnsupportedAudio("SAMPLE-AES encrypted AC-3"),
        0xc2 => UnsupportedAudio("SAMPLE-AES encrypted E-AC-3"),
        _ => Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A section with its CRC appended.
    pub(crate) fn with_crc(mut s: Vec<u8>) -> Vec<u8> {
        let crc = crc32(&s);
        s.extend_from_slice(&crc.to_be_bytes());
        s
    }

    #[test]
    fn crc_of_a_section_with_its_crc_is_zero() {
        // The PAT ffmpeg writes: program 1 on PMT PID 0x1000.
        let pat = [
            0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1,
            0x04, 0xb2,
        ];
        assert_eq!(crc32(&pat), 0);
        assert_eq!(parse_pat(&pat), Some((1, 0x1000)));
    }

    #[test]
    fn pmt_streams_are_classified_with_their_descriptors() {
        let mut s = vec![0x02, 0xb0, 0, 0, 1, 0xc1, 0, 0, 0xe1, 0x00, 0xf0, 0x00];
        s.extend_from_slice(&[0x1b, 0xe1, 0x00, 0xf0, 0x00]);
        s.extend_from_slice(&[
            0x06, 0xe1, 0x02, 0xf0, 0x06, 0x05, 0x04, b'I', b'D', b'3', b' ',
        ]);
        s.extend_from_slice(&[0x24, 0xe1, 0x03, 0xf0, 0x00]);
        // Private data with Apple's metadata descriptor.
        s.extend_from_slice(&[0x06, 0xe1, 0x04, 0xf0, 14, 0x26, 12, 0xff, 0xff]);
        s.extend_from_slice(b"ID3 \xffID3 \x00");
        let len = s.len() - 3 + 4;
        s[2] = len as u8;
        let s = with_crc(s);
        let kinds: Vec<_> = parse_pmt(&s)
            .unwrap()
            .iter()
            .map(|s| (s.pid, s.kind))
            .collect();
        assert_eq!(
            kinds,
            [
                (0x100, StreamKind::H264),
                (0x102, StreamKind::Id3),
                (0x103, StreamKind::UnsupportedVideo("HEVC")),
                (0x104, StreamKind::Id3)
            ]
        );
    }
}
