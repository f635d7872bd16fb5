//! 188-byte transport stream packets: finding them (sync byte pattern, resynchronising
//! after garbage) and reading their header and adaptation field.
//!
//! Owns the packet framing only; what a payload means (PSI, PES) is decided by the
//! caller. Never allocates per packet: packets borrow the segment.

use crate::error::{TsError, Warning};

/// Bytes in one transport stream packet.
pub(crate) const PACKET_LEN: usize = 188;
/// The first byte of every packet.
const SYNC: u8 = 0x47;
/// How far into a segment the first packet is looked for. A segment that starts with
/// more garbage than this is not MPEG-TS.
const SYNC_SEARCH: usize = 16 * 1024;

/// One packet's header fields and payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Packet<'a> {
    /// Packet identifier: which stream or table this belongs to.
    pub(crate) pid: u16,
    /// `payload_unit_start_indicator`: a PES or PSI section starts in this payload.
    pub(crate) start: bool,
    /// The 4-bit continuity counter.
    pub(crate) cc: u8,
    /// Whether the packet carries a payload (the counter only counts those).
    pub(crate) has_payload: bool,
    /// The adaptation field's `discontinuity_indicator`: a counter jump is expected.
    pub(crate) discontinuity: bool,
    /// The payload after any adaptation field (may be empty).
    pub(crate) payload: &'a [u8],
}

/// Reads a packet's header. `None` for a packet that must be ignored: transport error
/// indicator set, reserved adaptation field control, or an adaptation field longer than
/// the packet.
pub(crate) fn parse(p: &[u8]) -> Option<Packet<'_>> {
    if p.len() != PACKET_LEN || p[0] != SYNC || p[1] & 0x80 != 0 {
        return None;
    }
    let pid = u16::from(p[1] & 0x1f) << 8 | u16::from(p[2]);
    let afc = (p[3] >> 4) & 3;
    let mut at = 4;
    let mut discontinuity = false;
    if afc == 0 {
        return None;
    }
    if afc & 2 != 0 {
        let len = usize::from(p[4]);
        // With a payload the field leaves at least one byte of it; without, it fills
        // the packet.
        let max = if afc == 3 { 182 } else { 183 };
        if len > max {
            return None;
        }
        if len > 0 {
            discontinuity = p[5] & 0x80 != 0;
        }
        at = 5 + len;
    }
    let has_payload = afc & 1 != 0;
    Some(Packet {
        pid,
        start: p[1] & 0x40 != 0,
        cc: p[3] & 0x0f,
        has_payload,
        discontinuity,
        payload: if has_payload { &p[at..] } else { &[] },
    })
}

/// True if a packet can start at `at`: a sync byte there and, when the segment is long
/// enough to tell, at the next packet too.
fn synced(data: &[u8], at: usize) -> bool {
    data.get(at) == Some(&SYNC) && data.get(at + PACKET_LEN).is_none_or(|&b| b == SYNC)
}

/// The first position at or after `from` where packets line up, if any.
fn find_sync(data: &[u8], from: usize, limit: usize) -> Option<usize> {
    (from..limit.min(data.len())).find(|&at| synced(data, at))
}

/// Splits a segment into packets `(offset, bytes)`, skipping garbage between them
/// (with a warning).
///
/// Errors when the segment is empty, shorter than a packet, or does not look like a
/// transport stream near its start.
pub(crate) fn packets<'a>(
    data: &'a [u8],
    warnings: &mut Vec<Warning>,
) -> Result<Vec<(usize, &'a [u8])>, TsError> {
    if data.is_empty() {
        return Err(TsError::Empty);
    }
    if data.len() < PACKET_LEN {
        return Err(TsError::Truncated(data.len()));
    }
    // A segment that starts with a sync byte is taken at its word; otherwise the
    // pattern must repeat, so a 0x47 in garbage is not mistaken for a packet.
    let first = if data[0] == SYNC {
        Some(0)
    } else {
        find_sync(data, 0, SYNC_SEARCH)
    };
    let mut at = first
        .filter(|&at| at + PACKET_LEN <= data.len())
        .ok_or(TsError::NoSync(SYNC_SEARCH.min(data.len()).div_ceil(1024)))?;
    if at > 0 {
        warnings.push(Warning::Resync {
            offset: 0,
            skipped: at,
        });
    }
    let mut out = Vec::with_capacity(data.len() / PACKET_LEN);
    while at < data.len() {
        if data[at] == SYNC && !synced(data, at) {
            // A sync byte not followed by another: either this packet is garbage that
            // happens to start with 0x47 and a real packet starts within it, or the
            // next one is damaged. Only the first case skips it.
            if let Some(next) = find_sync(data, at + 1, at + PACKET_LEN + 1) {
                warnings.push(Warning::Resync {
                    offset: at,
                    skipped: next - at,
                });
                at = next;
                continue;
            }
        }
        if data[at] != SYNC {
            // Lost sync: look for the next place where packets line up again. Each step
            // moves forward, so this ends.
            let next = find_sync(data, at + 1, data.len()).unwrap_or(data.len());
            warnings.push(Warning::Resync {
                offset: at,
                skipped: next - at,
            });
            at = next;
            continue;
        }
        let Some(p) = data.get(at..at + PACKET_LEN) else {
            warnings.push(Warning::TruncatedPacket {
                offset: at,
                len: data.len() - at,
            });
            break;
        };
        out.push((at, p));
        at += PACKET_LEN;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(pid: u16, cc: u8) -> Vec<u8> {
        let mut p = vec![0xff; PACKET_LEN];
        p[0] = SYNC;
        p[1] = 0x40 | (pid >> 8) as u8;
        p[2] = pid as u8;
        p[3] = 0x10 | cc;
        p
    }

    #[test]
    fn header_fields_and_payload_are_read() {
        let p = packet(0x101, 7);
        let h = parse(&p).unwrap();
        assert_eq!(
            (h.pid, h.start, h.cc, h.payload.len()),
            (0x101, true, 7, 184)
        );
        let mut af = packet(0x101, 7);
        af[3] = 0x30 | 7;
        af[4] = 7;
        af[5] = 0x80;
        let h = parse(&af).unwrap();
        assert!(h.discontinuity);
        assert_eq!(h.payload.len(), 184 - 8);
        af[4] = 183;
        assert!(parse(&af).is_none(), "adaptation field leaves no payload");
    }

    #[test]
    fn garbage_between_packets_is_skipped_with_a_warning() {
        let mut data = packet(1, 0);
        data.extend_from_slice(&[1, 2, 3, 0x47, 5]);
        data.extend(packet(1, 1));
        data.extend(packet(1, 2));
        data.extend_from_slice(&packet(1, 3)[..100]);
        let mut w = Vec::new();
        let ps = packets(&data, &mut w).unwrap();
        assert_eq!(ps.len(), 3);
        assert_eq!(
            w,
            [
                Warning::Resync {
                    offset: 188,
                    skipped: 5
                },
                Warning::TruncatedPacket {
                    offset: 193 + 376,
                    len: 100
                }
            ]
        );
    }

    #[test]
    fn inputs_that_are_not_ts_are_refused() {
        let mut w = Vec::new();
        assert_eq!(packets(&[], &mut w), Err(TsError::Empty));
        assert_eq!(packets(&[0x47; 100], &mut w), Err(TsError::Truncated(100)));
        assert_eq!(packets(&[0u8; 4000], &mut w), Err(TsError::NoSync(4)));
    }
}
