//! PES packets: reassembly from transport packets (continuity checked, size bounded)
//! and the header fields the transmuxer needs (PTS, DTS, payload).
//!
//! Owns one assembler per elementary PID. It knows nothing of codecs: a completed PES
//! is handed back as bytes and parsed by [`parse`].

use crate::error::{TsError, Warning};
use crate::packet::Packet;

/// The largest PES accepted, in bytes. A video access unit of a 4K stream at a high
/// bitrate is well under this; a larger one is a corrupt length or not video at all.
pub const MAX_PES_BYTES: usize = 8 * 1024 * 1024;

/// A parsed PES: timestamps (33-bit, as in the stream) and the elementary stream bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pes {
    /// Presentation timestamp, 90 kHz, 33 bits.
    pub(crate) pts: Option<u64>,
    /// Decode timestamp, 90 kHz, 33 bits (equal to the PTS when absent).
    pub(crate) dts: Option<u64>,
    /// The elementary stream payload.
    pub(crate) data: Vec<u8>,
}

/// Reads a 5-byte PES timestamp (marker bits not checked: some muxers get them wrong).
fn timestamp(b: &[u8]) -> u64 {
    (u64::from(b[0] >> 1) & 7) << 30
        | u64::from(b[1]) << 22
        | (u64::from(b[2]) >> 1) << 15
        | u64::from(b[3]) << 7
        | u64::from(b[4]) >> 1
}

/// Parses a complete PES packet. `None` if it is not one (no start code, header longer
/// than the packet).
pub(crate) fn parse(mut bytes: Vec<u8>) -> Option<Pes> {
    if bytes.get(..3)? != [0, 0, 1] {
        return None;
    }
    let stream_id = *bytes.get(3)?;
    // Streams without the optional header: program stream map, padding, private 2,
    // ECM, EMM, directory, DSM-CC, H.222.1 type E.
    if matches!(
        stream_id,
        0xbc | 0xbe | 0xbf | 0xf0 | 0xf1 | 0xff | 0xf2 | 0xf8
    ) {
        bytes.drain(..6.min(bytes.len()));
        return Some(Pes {
            pts: None,
            dts: None,
            data: bytes,
        });
    }
    let flags = *bytes.get(7)?;
    let header_len = 9 + usize::from(*bytes.get(8)?);
    if header_len > bytes.len() {
        return None;
    }
    let (mut pts, mut dts) = (None, None);
    if flags & 0x80 != 0 {
        pts = Some(timestamp(bytes.get(9..14)?));
        if flags & 0x40 != 0 {
            dts = Some(timestamp(bytes.get(14..19)?));
        }
    }
    bytes.drain(..header_len);
    Some(Pes {
        pts,
        dts: dts.or(pts),
        data: bytes,
    })
}

/// Assembles the PES packets of one PID from its transport packets.
#[derive(Debug)]
pub(crate) struct Assembler {
    /// The PID, for messages.
    pid: u16,
    /// Bytes of the PES in progress (empty when none is).
    buf: Vec<u8>,
    /// A PES is in progress (its first packet was seen and none was lost since).
    active: bool,
    /// Total length of the PES in progress when its header states one
    /// (`PES_packet_length` + 6); video usually leaves it 0, "until the next start".
    expected: Option<usize>,
    /// The last continuity counter seen, `None` at the start of a segment: the first
    /// packet of a PID in a segment is not checked, since segments may come from
    /// different muxer sessions (a rendition switch, a restarted encoder).
    last_cc: Option<u8>,
}

impl Assembler {
    /// An assembler for `pid` with nothing in progress.
    pub(crate) fn new(pid: u16) -> Self {
        Self {
            pid,
            buf: Vec::new(),
            active: false,
            expected: None,
            last_cc: None,
        }
    }

    /// Feeds one packet of this PID. Completed PES packets (raw bytes, header
    /// included) are appended to `out`.
    pub(crate) fn push(
        &mut self,
        p: &Packet<'_>,
        out: &mut Vec<Vec<u8>>,
        warnings: &mut Vec<Warning>,
    ) -> Result<(), TsError> {
        if !p.has_payload {
            return Ok(());
        }
        if let Some(last) = self.last_cc {
            let expected = (last + 1) & 0x0f;
            if p.cc == last && !p.discontinuity {
                // A duplicate packet (allowed once by ISO 13818-1): same payload again.
                return Ok(());
            }
            if p.cc != expected && !p.discontinuity {
                warnings.push(Warning::Continuity {
                    pid: self.pid,
                    expected,
                    got: p.cc,
                    dropped_bytes: if self.active { self.buf.len() } else { 0 },
                });
                self.active = false;
                self.buf.clear();
            }
        }
        self.last_cc = Some(p.cc);

        if p.start {
            self.flush(out);
            self.active = true;
            self.expected = match p.payload.get(4..6) {
                Some(&[hi, lo]) if (hi, lo) != (0, 0) => {
                    Some(usize::from(u16::from_be_bytes([hi, lo])) + 6)
                }
                _ => None,
            };
        } else if !self.active {
            // The middle of a PES whose start we did not see (or dropped): useless.
            return Ok(());
        }
        if self.buf.len() + p.payload.len() > MAX_PES_BYTES {
            return Err(TsError::PesTooLarge {
                pid: self.pid,
                limit: MAX_PES_BYTES,
            });
        }
        self.buf.extend_from_slice(p.payload);
        if let Some(len) = self.expected {
            if self.buf.len() >= len {
                // Bytes after the stated length are stuffing.
                self.buf.truncate(len);
                self.flush(out);
            }
        }
        Ok(())
    }

    /// Ends the PES in progress, if any, and hands it out: at the next start, and at
    /// the end of a segment (HLS segments start with a new PES on every PID).
    pub(crate) fn flush(&mut self, out: &mut Vec<Vec<u8>>) {
        if self.active && !self.buf.is_empty() {
            out.push(std::mem::take(&mut self.buf));
        }
        self.buf.clear();
        self.active = false;
        self.expected = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of PID 0x100 with `payload`.
    fn pkt(start: bool, cc: u8, payload: &[u8]) -> Packet<'_> {
        Packet {
            pid: 0x100,
            start,
            cc,
            has_payload: true,
            discontinuity: false,
            payload,
        }
    }

    #[test]
    fn assembly_follows_counters_lengths_and_duplicates() {
        let (mut a, mut out, mut w) = (Assembler::new(0x100), Vec::new(), Vec::new());
        // A PES stating its length (6 + 4 bytes) completes without waiting.
        a.push(
            &pkt(true, 0, &[0, 0, 1, 0xc0, 0, 4, 1, 2]),
            &mut out,
            &mut w,
        )
        .unwrap();
        a.push(&pkt(false, 1, &[3, 4, 0xff, 0xff]), &mut out, &mut w)
            .unwrap();
        assert_eq!(
            out,
            [vec![0, 0, 1, 0xc0, 0, 4, 1, 2, 3, 4]],
            "stuffing after the length cut"
        );
        // A duplicate packet is skipped; a lost one drops the PES in progress.
        a.push(&pkt(true, 2, &[0, 0, 1, 0xe0, 0, 0, 9]), &mut out, &mut w)
            .unwrap();
        a.push(&pkt(false, 2, &[0, 0, 1, 0xe0, 0, 0, 9]), &mut out, &mut w)
            .unwrap();
        assert!(w.is_empty());
        a.push(&pkt(false, 4, &[8]), &mut out, &mut w).unwrap();
        assert_eq!(
            w,
            [Warning::Continuity {
                pid: 0x100,
                expected: 3,
                got: 4,
                dropped_bytes: 7
            }]
        );
        a.flush(&mut out);
        assert_eq!(out.len(), 1, "nothing of the broken PES comes out");
        // A PES that never ends is refused at the bound.
        let big = [0u8; 184];
        a.push(&pkt(true, 5, &big), &mut out, &mut w).unwrap();
        let err = (0..=MAX_PES_BYTES / 184)
            .map(|i| a.push(&pkt(false, (6 + i) as u8 & 15, &big), &mut out, &mut w))
            .find_map(Result::err);
        assert_eq!(
            err,
            Some(TsError::PesTooLarge {
                pid: 0x100,
                limit: MAX_PES_BYTES
            })
        );
    }

    #[test]
    fn pts_and_dts_are_read_from_the_header() {
        // PTS 0x1_2345_6789 (33 bits), DTS 0x0_0000_0001.
        let ts = |prefix: u8, v: u64| {
            [
                prefix << 4 | ((v >> 29) & 0x0e) as u8 | 1,
                (v >> 22) as u8,
                ((v >> 14) & 0xfe) as u8 | 1,
                (v >> 7) as u8,
                ((v << 1) & 0xfe) as u8 | 1,
            ]
        };
        let mut b = vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0xc0, 10];
        b.extend(ts(3, 0x1_2345_6789));
        b.extend(ts(1, 1));
        b.extend_from_slice(b"data");
        let pes = parse(b).unwrap();
        assert_eq!(pes.pts, Some(0x1_2345_6789));
        assert_eq!(pes.dts, Some(1));
        assert_eq!(pes.data, b"data");
        assert_eq!(parse(vec![0, 0, 1, 0xe0, 0, 0, 0x80, 0x80, 200]), None);
    }
}
