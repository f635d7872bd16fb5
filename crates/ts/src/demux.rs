//! Demuxing: one segment's packets to the PES packets of the streams to play.
//!
//! Owns the choice of streams (the first H.264, the first AAC or MP3, the first ID3
//! stream of the first program), the refusal of programs with nothing playable, and
//! the fallback to the previous program for segments without PAT/PMT. Pure: it reads
//! the previous program but changes no state, so a segment that fails here leaves the
//! transmuxer as it was.

use crate::error::{TsError, Warning};
use crate::packet;
use crate::pes::{self, Assembler, Pes};
use crate::psi::{self, SectionReader, Stream, StreamKind};

/// The streams of the program that are played, from its PMT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Program {
    /// Every stream the PMT lists, to notice when it changes.
    pub(crate) streams: Vec<Stream>,
    /// The H.264 stream's PID.
    pub(crate) video: Option<u16>,
    /// The audio stream's PID, and whether it is ADTS (else MPEG audio).
    pub(crate) audio: Option<(u16, bool)>,
    /// The ID3 metadata stream's PID.
    pub(crate) id3: Option<u16>,
}

/// Chooses the streams to play, or says why nothing can.
fn select(streams: Vec<Stream>) -> Result<Program, TsError> {
    let first = |f: fn(&StreamKind) -> bool| streams.iter().find(|s| f(&s.kind)).copied();
    let video = first(|k| *k == StreamKind::H264);
    let audio = first(|k| matches!(k, StreamKind::Adts | StreamKind::MpegAudio));
    let unsupported_video = first(|k| matches!(k, StreamKind::UnsupportedVideo(_)));
    let unsupported_audio = first(|k| matches!(k, StreamKind::UnsupportedAudio(_)));
    let refuse = |s: Stream| match s.kind {
        StreamKind::UnsupportedVideo(name) | StreamKind::UnsupportedAudio(name) => {
            TsError::Unsupported {
                stream_type: s.stream_type,
                name,
            }
        }
        _ => TsError::NoMedia,
    };
    if video.is_none() {
        // Audio alone under a picture the browser never gets is not "playing".
        if let Some(s) = unsupported_video {
            return Err(refuse(s));
        }
        if audio.is_none() {
            return Err(unsupported_audio.map_or(TsError::NoMedia, refuse));
        }
    }
    Ok(Program {
        video: video.map(|s| s.pid),
        audio: audio.map(|s| (s.pid, s.kind == StreamKind::Adts)),
        id3: first(|k| *k == StreamKind::Id3).map(|s| s.pid),
        streams,
    })
}

/// What the demuxer pulled out of one segment.
pub(crate) struct Demuxed {
    /// The program, from this segment's PMT or the previous one.
    pub(crate) program: Program,
    /// Video PES packets in stream order.
    pub(crate) video: Vec<Pes>,
    /// Audio PES packets in stream order.
    pub(crate) audio: Vec<Pes>,
    /// ID3 PES packets in stream order.
    pub(crate) id3: Vec<Pes>,
}

/// Finds the first complete, valid section on `pid` that `parse` accepts.
fn find_section<T>(
    packets: &[(usize, &[u8])],
    pid: u16,
    parse: impl Fn(&[u8]) -> Option<T>,
    warnings: &mut Vec<Warning>,
) -> Option<T> {
    let mut reader = SectionReader::default();
    for (_, raw) in packets {
        let Some(p) = packet::parse(raw).filter(|p| p.pid == pid) else {
            continue;
        };
        match reader.push(&p) {
            Some(Ok(section)) => {
                if let Some(v) = parse(&section) {
                    return Some(v);
                }
            }
            Some(Err(())) => warnings.push(Warning::CorruptSection { pid }),
            None => {}
        }
    }
    None
}

/// Splits a segment into the PES packets of the streams to play. Pure: the previous
/// program is only read, as a fallback for segments without PSI.
pub(crate) fn demux(
    data: &[u8],
    known: Option<&Program>,
    warnings: &mut Vec<Warning>,
) -> Result<Demuxed, TsError> {
    let packets = packet::packets(data, warnings)?;
    let kb = data.len().div_ceil(1024);
    let program = match find_section(&packets, 0, psi::parse_pat, warnings) {
        Some((number, pmt_pid)) => {
            match find_section(&packets, pmt_pid, psi::parse_pmt, warnings) {
                Some(streams) if known.is_some_and(|k| k.streams == streams) => known.cloned(),
                Some(streams) => {
                    let program = select(streams)?;
                    for s in &program.streams {
                        if let StreamKind::UnsupportedVideo(name)
                        | StreamKind::UnsupportedAudio(name) = s.kind
                        {
                            warnings.push(Warning::IgnoredStream {
                                pid: s.pid,
                                stream_type: s.stream_type,
                                name,
                            });
                        }
                    }
                    Some(program)
                }
                None if known.is_some() => known.cloned(),
                None => {
                    return Err(TsError::NoPmt {
                        pid: pmt_pid,
                        program: number,
                        kb,
                    })
                }
            }
        }
        None => known.cloned(),
    }
    .ok_or(TsError::NoPat(kb))?;

    let mut video = Assembler::new(program.video.unwrap_or(0x1fff));
    let mut audio = Assembler::new(program.audio.map_or(0x1fff, |a| a.0));
    let mut id3 = Assembler::new(program.id3.unwrap_or(0x1fff));
    let (mut v, mut a, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for &(offset, raw) in &packets {
        let Some(p) = packet::parse(raw) else {
            warnings.push(Warning::CorruptPacket { offset });
            continue;
        };
        let pid = Some(p.pid);
        if pid == program.video {
            video.push(&p, &mut v, warnings)?;
        } else if pid == program.audio.map(|a| a.0) {
            audio.push(&p, &mut a, warnings)?;
        } else if pid == program.id3 {
            id3.push(&p, &mut m, warnings)?;
        }
        // Other PIDs (PSI, SDT, null packets, streams not played) are not ours.
    }
    video.flush(&mut v);
    audio.flush(&mut a);
    id3.flush(&mut m);
    let mut parse_all = |raw: Vec<Vec<u8>>, pid: Option<u16>| -> Vec<Pes> {
        raw.into_iter()
            .filter_map(|b| {
                let pes = pes::parse(b);
                if pes.is_none() {
                    warnings.push(Warning::MalformedPes {
                        pid: pid.unwrap_or(0),
                    });
                }
                pes
            })
            .collect()
    };
    let video = parse_all(v, program.video);
    let audio = parse_all(a, program.audio.map(|a| a.0));
    let id3 = parse_all(m, program.id3);
    Ok(Demuxed {
        program,
        video,
        audio,
        id3,
    })
}
