//! Loading the demo clip: a regular (progressive) MP4 file read into memory as tracks
//! and samples, trimmed so that every track lasts exactly the same whole number of
//! seconds. That exactness is what lets the demo loop forever with no gap or overlap in
//! decode times.
//!
//! Box decoding is `mp4-atom`'s; this module only walks the sample tables (`stts`,
//! `ctts`, `stss`, `stsc`, `stsz`, `stco`/`co64`), which `mp4-atom` decodes but does not
//! interpret.

use super::cmaf::{Sample, Track};
use mp4_atom::{Any, DecodeMaybe, Moov, StszSamples, Trak};
use std::path::Path;

/// Why a clip cannot be looped as a live stream.
#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a well-formed MP4.
    #[error("not a valid MP4: {0}")]
    Mp4(#[from] mp4_atom::Error),
    /// A structural problem, described.
    #[error("unusable clip: {0}")]
    Invalid(String),
}

/// A track of the clip with all its samples, decode times starting at zero.
#[derive(Debug, Clone)]
pub struct ClipTrack {
    /// Codec and timescale.
    pub track: Track,
    /// Samples in decode order; `dts` is relative to the start of the loop.
    pub samples: Vec<Sample>,
}

/// A clip ready to loop: every track lasts exactly `loop_secs` seconds.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Video first, then audio.
    pub tracks: Vec<ClipTrack>,
    /// Length of one loop, in whole seconds.
    pub loop_secs: u64,
}

impl Clip {
    /// Reads and validates the clip at `path`.
    pub fn load(path: &Path) -> Result<Clip, ClipError> {
        let bytes = std::fs::read(path).map_err(|source| ClipError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Clip::parse(&bytes)
    }

    /// Parses an in-memory MP4 file.
    pub fn parse(file: &[u8]) -> Result<Clip, ClipError> {
        let moov = find_moov(file)?;
        let mut tracks = Vec::new();
        for trak in &moov.trak {
            let handler = trak.mdia.hdlr.handler;
            if handler != b"vide".into() && handler != b"soun".into() {
                continue;
            }
            tracks.push(read_track(trak, file)?);
        }
        tracks.sort_by_key(|t| !t.track.is_video());
        let video = tracks
            .first()
            .filter(|t| t.track.is_video())
            .ok_or_else(|| ClipError::Invalid("no video track".into()))?;

        let ts = u64::from(video.track.timescale());
        let total: u64 = video.samples.iter().map(|s| u64::from(s.duration)).sum();
        if total == 0 || !total.is_multiple_of(ts) {
            return Err(ClipError::Invalid(format!(
                "video lasts {total}/{ts} s; it must be a whole number of seconds"
            )));
        }
        let loop_secs = total / ts;
        if !video.samples[0].keyframe {
            return Err(ClipError::Invalid(
                "video does not start with a keyframe".into(),
            ));
        }
        for t in &mut tracks[1..] {
            truncate_to(t, loop_secs)?;
        }
        Ok(Clip { tracks, loop_secs })
    }
}

fn find_moov(file: &[u8]) -> Result<Moov, ClipError> {
    let mut buf = file;
    while let Some(atom) = Any::decode_maybe(&mut buf)? {
        if let Any::Moov(moov) = atom {
            return Ok(moov);
        }
    }
    Err(ClipError::Invalid("no moov box".into()))
}

/// Keeps exactly `secs` seconds of a non-video track, or explains why it cannot.
fn truncate_to(t: &mut ClipTrack, secs: u64) -> Result<(), ClipError> {
    let want = secs * u64::from(t.track.timescale());
    let mut acc = 0u64;
    let keep = t
        .samples
        .iter()
        .take_while(|s| {
            let fits = acc + u64::from(s.duration) <= want;
            acc += u64::from(s.duration);
            fits
        })
        .count();
    let got: u64 = t.samples[..keep]
        .iter()
        .map(|s| u64::from(s.duration))
        .sum();
    if got != want {
        return Err(ClipError::Invalid(format!(
            "track {} has {got} ticks where the loop needs exactly {want}",
            t.track.id()
        )));
    }
    t.samples.truncate(keep);
    Ok(())
}

fn read_track(trak: &Trak, file: &[u8]) -> Result<ClipTrack, ClipError> {
    let stbl = &trak.mdia.minf.stbl;
    let invalid = |what: &str| ClipError::Invalid(format!("track {}: {what}", trak.tkhd.track_id));

    let sizes: Vec<u32> = match &stbl.stsz.samples {
        StszSamples::Identical { count, size } => vec![*size; *count as usize],
        StszSamples::Different { sizes } => sizes.clone(),
    };
    let count = sizes.len();

    let durations: Vec<u32> = stbl
        .stts
        .entries
        .iter()
        .flat_map(|e| std::iter::repeat_n(e.sample_delta, e.sample_count as usize))
        .collect();
    if durations.len() != count {
        return Err(invalid("stts and stsz disagree on the sample count"));
    }
    let cts: Vec<i64> = match &stbl.ctts {
        Some(ctts) => ctts
            .entries
            .iter()
            .flat_map(|e| std::iter::repeat_n(e.sample_offset, e.sample_count as usize))
            .collect(),
        None => vec![0; count],
    };
    if cts.len() != count {
        return Err(invalid("ctts and stsz disagree on the sample count"));
    }

    // Chunk offsets expanded to one offset per sample through stsc.
    let chunk_offsets: Vec<u64> = match (&stbl.stco, &stbl.co64) {
        (Some(stco), _) => stco.entries.iter().map(|&o| u64::from(o)).collect(),
        (None, Some(co64)) => co64.entries.clone(),
        (None, None) => return Err(invalid("no chunk offsets")),
    };
    let mut offsets = Vec::with_capacity(count);
    for (i, entry) in stbl.stsc.entries.iter().enumerate() {
        let first = entry.first_chunk as usize;
        let end = stbl
            .stsc
            .entries
            .get(i + 1)
            .map_or(chunk_offsets.len() + 1, |n| n.first_chunk as usize);
        for chunk in first..end {
            let mut pos = *chunk_offsets
                .get(chunk.wrapping_sub(1))
                .ok_or_else(|| invalid("stsc points past stco"))?;
            for _ in 0..entry.samples_per_chunk {
                let size = *sizes
                    .get(offsets.len())
                    .ok_or_else(|| invalid("stsc has too many samples"))?;
                offsets.push(pos);
                pos += u64::from(size);
            }
        }
    }
    if offsets.len() != count {
        return Err(invalid("stsc and stsz disagree on the sample count"));
    }

    // An edit list that starts later in the media hides encoder priming (AAC) or
    // B-frame delay; drop whole samples before it so the loop starts where playback does.
    let skip_ticks = trak
        .edts
        .as_ref()
        .and_then(|e| e.elst.as_ref())
        .and_then(|l| l.entries.iter().find_map(|e| e.media_time))
        .unwrap_or(0);

    let sync: Option<std::collections::HashSet<u32>> = stbl
        .stss
        .as_ref()
        .map(|s| s.entries.iter().copied().collect());
    let is_video = trak.mdia.hdlr.handler == b"vide".into();
    let mut samples = Vec::with_capacity(count);
    let mut dts = 0u64;
    for i in 0..count {
        let (off, len) = (offsets[i] as usize, sizes[i] as usize);
        let data = file
            .get(off..off + len)
            .ok_or_else(|| invalid("a sample lies outside the file"))?;
        let start = dts;
        dts += u64::from(durations[i]);
        if !is_video && start < skip_ticks {
            continue;
        }
        let keyframe = sync.as_ref().is_none_or(|s| s.contains(&(i as u32 + 1)));
        samples.push(Sample {
            dts: start,
            duration: durations[i],
            cts_offset: i32::try_from(cts[i] - if is_video { skip_ticks as i64 } else { 0 })
                .map_err(|_| invalid("composition offset out of range"))?,
            keyframe,
            data: bytes::Bytes::copy_from_slice(data),
        });
    }
    let base = samples.first().map_or(0, |s| s.dts);
    for s in &mut samples {
        s.dts -= base;
    }
    Ok(ClipTrack {
        track: Track { trak: trak.clone() },
        samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn demo_clip() -> Clip {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../media/demo.mp4");
        Clip::load(&path).expect("media/demo.mp4 loads")
    }

    #[test]
    fn demo_clip_loops_on_whole_seconds() {
        let clip = demo_clip();
        assert_eq!(clip.loop_secs, 16);
        for t in &clip.tracks {
            let ticks: u64 = t.samples.iter().map(|s| u64::from(s.duration)).sum();
            assert_eq!(
                ticks,
                16 * u64::from(t.track.timescale()),
                "track {}",
                t.track.id()
            );
        }
    }

    #[test]
    fn demo_video_has_a_keyframe_every_second() {
        let clip = demo_clip();
        let video = &clip.tracks[0];
        let ts = u64::from(video.track.timescale());
        for s in &video.samples {
            assert_eq!(s.keyframe, s.dts % ts == 0, "sample at {} ticks", s.dts);
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(Clip::parse(b"not an mp4 at all").is_err());
        assert!(Clip::parse(&[0, 0, 0, 8, b'm', b'o', b'o', b'v']).is_err());
        assert!(Clip::parse(&[]).is_err());
    }
}
