//! CMAF muxing: an init segment for a set of tracks, and `moof`+`mdat` fragments.
//!
//! Owns the byte layout of what the origin publishes. It knows nothing about clocks,
//! playlists or sockets: callers hand it samples with absolute decode times and get
//! bytes back. The boxes themselves are encoded by `mp4-atom`; this module only decides
//! which boxes, in which order, with which offsets. The same muxer serves the demo loop
//! and, later, remuxed RTMP ingest.

use bytes::Bytes;
use mp4_atom::{
    Dinf, Dref, Encode, Ftyp, Mdat, Mfhd, Moof, Moov, Mvex, Mvhd, Stbl, Tfdt, Tfhd, Traf, Trak,
    Trex, Trun, TrunEntry,
};

/// `sample_depends_on = 2`: a sync sample that needs no other sample to decode.
const FLAGS_SYNC: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`: a predicted frame.
const FLAGS_NON_SYNC: u32 = 0x0101_0000;

/// Errors from encoding boxes. Only reachable with a malformed track description.
#[derive(Debug, thiserror::Error)]
pub enum MuxError {
    /// `mp4-atom` refused to encode a box.
    #[error("cannot encode MP4 box: {0}")]
    Encode(#[from] mp4_atom::Error),
    /// A fragment was asked for a track the init segment does not declare.
    #[error("unknown track id {0}")]
    UnknownTrack(u32),
}

/// One elementary stream of a live presentation.
#[derive(Debug, Clone)]
pub struct Track {
    /// The `trak` as it will appear in the init segment: codec configuration (`stsd`),
    /// timescale and handler. Sample tables are emptied by [`init_segment`].
    pub trak: Trak,
}

impl Track {
    /// The track id used in `tfhd`.
    pub fn id(&self) -> u32 {
        self.trak.tkhd.track_id
    }

    /// Ticks per second of this track's decode times.
    pub fn timescale(&self) -> u32 {
        self.trak.mdia.mdhd.timescale
    }

    /// True for a video track (`vide` handler).
    pub fn is_video(&self) -> bool {
        self.trak.mdia.hdlr.handler == b"vide".into()
    }
}

/// One access unit ready to be muxed.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Absolute decode time, in the track's timescale.
    pub dts: u64,
    /// Duration in the track's timescale.
    pub duration: u32,
    /// Presentation minus decode time (B-frames); zero for audio.
    pub cts_offset: i32,
    /// A random access point: decoding can start here.
    pub keyframe: bool,
    /// The coded bytes (length-prefixed NAL units for H.264, raw AAC frames).
    pub data: Bytes,
}

/// Builds the CMAF header (`ftyp` + `moov` with `mvex`) for `tracks`.
pub fn init_segment(tracks: &[Track]) -> Result<Bytes, MuxError> {
    let mut out = Vec::new();
    Ftyp {
        major_brand: b"iso6".into(),
        minor_version: 0,
        compatible_brands: vec![b"iso6".into(), b"cmfc".into(), b"mp41".into()],
    }
    .encode(&mut out)?;

    let trak = tracks
        .iter()
        .map(|t| {
            let mut trak = t.trak.clone();
            trak.edts = None;
            trak.tkhd.duration = 0;
            trak.mdia.mdhd.duration = 0;
            let stsd = std::mem::take(&mut trak.mdia.minf.stbl.stsd);
            // Sample tables live in the fragments; the header keeps only the codec.
            trak.mdia.minf.stbl = Stbl {
                stsd,
                stco: Some(Default::default()),
                ..Default::default()
            };
            trak.mdia.minf.dinf = Dinf {
                dref: Dref {
                    entries: vec![mp4_atom::Url::default().into()],
                },
            };
            trak
        })
        .collect();
    Moov {
        mvhd: Mvhd {
            timescale: 1000,
            duration: 0,
            next_track_id: tracks.iter().map(Track::id).max().unwrap_or(0) + 1,
            ..Default::default()
        },
        mvex: Some(Mvex {
            mehd: None,
            trex: tracks
                .iter()
                .map(|t| Trex {
                    track_id: t.id(),
                    default_sample_description_index: 1,
                    ..Default::default()
                })
                .collect(),
        }),
        trak,
        ..Default::default()
    }
    .encode(&mut out)?;
    Ok(out.into())
}

/// Muxes one fragment: a `moof` with one `traf` per non-empty track, then one `mdat`
/// holding the tracks' samples in the same order.
pub fn fragment(sequence_number: u32, runs: &[(u32, &[Sample])]) -> Result<Bytes, MuxError> {
    let runs: Vec<_> = runs.iter().filter(|(_, s)| !s.is_empty()).collect();
    let mut moof = Moof {
        mfhd: Mfhd { sequence_number },
        traf: runs
            .iter()
            .map(|(track_id, samples)| Traf {
                tfhd: Tfhd {
                    track_id: *track_id,
                    default_base_is_moof: true,
                    ..Default::default()
                },
                tfdt: Some(Tfdt {
                    base_media_decode_time: samples[0].dts,
                }),
                trun: vec![Trun {
                    data_offset: Some(0),
                    samples: samples
                        .iter()
                        .map(|s| TrunEntry {
                            duration: Some(s.duration),
                            size: Some(s.data.len() as u32),
                            flags: Some(if s.keyframe {
                                FLAGS_SYNC
                            } else {
                                FLAGS_NON_SYNC
                            }),
                            cts: Some(s.cts_offset.into()),
                        })
                        .collect::<Vec<_>>()
                        .into(),
                }],
                ..Default::default()
            })
            .collect(),
    };

    // The offsets do not change the moof's size, so encode once to learn it.
    let mut probe = Vec::new();
    moof.encode(&mut probe)?;
    let mut offset = probe.len() + 8; // mdat header
    for (traf, (_, samples)) in moof.traf.iter_mut().zip(&runs) {
        traf.trun[0].data_offset = Some(offset as i32);
        offset += samples.iter().map(|s| s.data.len()).sum::<usize>();
    }

    let mut data = Vec::with_capacity(offset);
    for (_, samples) in &runs {
        for s in samples.iter() {
            data.extend_from_slice(&s.data);
        }
    }
    let mut out = Vec::with_capacity(offset + probe.len());
    moof.encode(&mut out)?;
    Mdat { data }.encode(&mut out)?;
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mp4_atom::{Any, DecodeMaybe};

    fn sample(dts: u64, key: bool, len: usize) -> Sample {
        Sample {
            dts,
            duration: 512,
            cts_offset: 0,
            keyframe: key,
            data: vec![key as u8; len].into(),
        }
    }

    #[test]
    fn fragment_offsets_point_at_each_tracks_bytes() {
        let video = [sample(1000, true, 10), sample(1512, false, 7)];
        let audio = [sample(48_000, true, 5)];
        let bytes = fragment(7, &[(1, &video), (2, &audio)]).unwrap();

        let mut buf = &bytes[..];
        let Some(Any::Moof(moof)) = Any::decode_maybe(&mut buf).unwrap() else {
            panic!("first box is not moof");
        };
        let moof_len = bytes.len() - buf.len();
        assert_eq!(moof.mfhd.sequence_number, 7);
        assert_eq!(moof.traf.len(), 2);
        assert_eq!(
            moof.traf[0].tfdt.as_ref().unwrap().base_media_decode_time,
            1000
        );
        let v_off = moof.traf[0].trun[0].data_offset.unwrap() as usize;
        let a_off = moof.traf[1].trun[0].data_offset.unwrap() as usize;
        assert_eq!(v_off, moof_len + 8);
        assert_eq!(a_off, v_off + 17);
        assert_eq!(bytes[v_off], 1, "video keyframe byte");
        assert_eq!(bytes[v_off + 10], 0, "second video sample byte");
        assert_eq!(bytes.len(), a_off + 5, "mdat ends after the audio sample");
    }

    #[test]
    fn empty_runs_are_left_out() {
        let video = [sample(0, true, 3)];
        let bytes = fragment(1, &[(1, &video), (2, &[])]).unwrap();
        let mut buf = &bytes[..];
        let Some(Any::Moof(moof)) = Any::decode_maybe(&mut buf).unwrap() else {
            panic!("no moof");
        };
        assert_eq!(moof.traf.len(), 1);
    }
}
