//! H.264 in Annex-B (as MPEG-TS carries it) to what fMP4 needs: length-prefixed
//! samples, keyframes, the `avcC` configuration and the picture size from the SPS.
//!
//! Owns NAL unit splitting, emulation prevention removal and the SPS fields the
//! sample entry needs (profile, level, size, sample aspect ratio). It does not decode
//! slices beyond their type.

use crate::bits::BitReader;

/// NAL unit types this module looks at.
mod nal {
    /// A slice of a non-IDR picture.
    pub(super) const SLICE: u8 = 1;
    /// A slice of an IDR picture: a keyframe.
    pub(super) const IDR: u8 = 5;
    /// Sequence parameter set.
    pub(super) const SPS: u8 = 7;
    /// Picture parameter set.
    pub(super) const PPS: u8 = 8;
    /// Access unit delimiter: framing only, dropped from samples.
    pub(super) const AUD: u8 = 9;
    /// Filler data: padding, dropped from samples.
    pub(super) const FILLER: u8 = 12;
}

/// An SPS or PPS is small; one larger than this is corrupt.
const MAX_PARAMETER_SET: usize = 4096;

/// The NAL units of an Annex-B byte stream, without start codes and trailing zeros.
/// Bytes before the first start code are ignored.
pub(crate) fn nal_units(data: &[u8]) -> Vec<&[u8]> {
    /// Pushes `unit` without its trailing zero bytes (`trailing_zero_8bits`, or the
    /// first byte of a 4-byte start code), unless nothing is left.
    fn push<'a>(out: &mut Vec<&'a [u8]>, mut unit: &'a [u8]) {
        while let [rest @ .., 0] = unit {
            unit = rest;
        }
        if !unit.is_empty() {
            out.push(unit);
        }
    }
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 2 < data.len() {
        // A start code cannot begin at i, i+1 or i+2 if data[i+2] > 1: skip all three.
        if data[i + 2] > 1 {
            i += 3;
        } else if data[i + 2] == 1 && data[i] == 0 && data[i + 1] == 0 {
            if let Some(s) = start {
                push(&mut out, &data[s..i]);
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push(&mut out, &data[s..]);
    }
    out
}

/// The NAL unit's payload with emulation prevention bytes (the 3 of `00 00 03`)
/// removed, at most `limit` bytes of it.
fn rbsp(nal: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len().min(limit));
    let mut zeros = 0;
    for &b in nal.iter().skip(1) {
        if out.len() >= limit {
            break;
        }
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// What the sample entry needs from a sequence parameter set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SpsInfo {
    /// `profile_idc`.
    pub(crate) profile: u8,
    /// The constraint flags byte.
    pub(crate) constraints: u8,
    /// `level_idc`.
    pub(crate) level: u8,
    /// `chroma_format_idc` (1 = 4:2:0).
    pub(crate) chroma_format: u8,
    /// `bit_depth_luma_minus8`.
    pub(crate) bit_depth_luma_minus8: u8,
    /// `bit_depth_chroma_minus8`.
    pub(crate) bit_depth_chroma_minus8: u8,
    /// Displayed width in pixels, after cropping.
    pub(crate) width: u16,
    /// Displayed height in pixels, after cropping.
    pub(crate) height: u16,
    /// Sample aspect ratio `(h, v)`; `(1, 1)` for square pixels.
    pub(crate) sar: (u16, u16),
}

/// The profiles whose SPS carries chroma format, bit depths and scaling matrices.
fn has_chroma_info(profile: u8) -> bool {
    matches!(
        profile,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Skips one `scaling_list()` of `size` coefficients.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Option<()> {
    let (mut last, mut next) = (8i32, 8i32);
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Some(())
}

/// Table E-1: sample aspect ratios by `aspect_ratio_idc`.
const SAR: [(u16, u16); 17] = [
    (1, 1),
    (1, 1),
    (12, 11),
    (10, 11),
    (16, 11),
    (40, 33),
    (24, 11),
    (20, 11),
    (32, 11),
    (80, 33),
    (18, 11),
    (15, 11),
    (64, 33),
    (160, 99),
    (4, 3),
    (3, 2),
    (2, 1),
];

/// Parses an SPS NAL unit (with its header byte). `None` if it is malformed or
/// describes a picture larger than 16384 pixels a side.
pub(crate) fn parse_sps(nal: &[u8]) -> Option<SpsInfo> {
    if nal.first()? & 0x1f != nal::SPS {
        return None;
    }
    let data = rbsp(nal, MAX_PARAMETER_SET);
    let mut r = BitReader::new(&data);
    let profile = r.bits(8)? as u8;
    let constraints = r.bits(8)? as u8;
    let level = r.bits(8)? as u8;
    let _id = r.ue()?;
    let (mut chroma_format, mut separate_planes, mut depth_l, mut depth_c) = (1, false, 0, 0);
    if has_chroma_info(profile) {
        chroma_format = r.ue()?;
        if chroma_format > 3 {
            return None;
        }
        if chroma_format == 3 {
            separate_planes = r.bit()?;
        }
        depth_l = r.ue()?;
        depth_c = r.ue()?;
        if depth_l > 6 || depth_c > 6 {
            return None;
        }
        r.skip(1)?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            let lists = if chroma_format == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num = r.ue()?;
    match r.ue()? {
        0 => {
            r.ue()?; // log2_max_pic_order_cnt_lsb_minus4
        }
        1 => {
            r.skip(1)?; // delta_pic_order_always_zero_flag
            r.se()?; // offset_for_non_ref_pic
            r.se()?; // offset_for_top_to_bottom_field
            let cycle = r.ue()?;
            if cycle > 255 {
                return None;
            }
            for _ in 0..cycle {
                r.se()?;
            }
        }
        2 => {}
        _ => return None,
    }
    r.ue()?; // max_num_ref_frames
    r.skip(1)?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = u64::from(r.ue()?) + 1;
    let height_map_units = u64::from(r.ue()?) + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.skip(1)?; // mb_adaptive_frame_field_flag
    }
    r.skip(1)?; // direct_8x8_inference_flag
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let mut width = width_mbs * 16;
    let mut height = height_map_units * 16 * field_factor;
    if r.bit()? {
        let [left, right, top, bottom] = [r.ue()?, r.ue()?, r.ue()?, r.ue()?].map(u64::from);
        let (unit_x, unit_y) = if separate_planes || chroma_format == 0 {
            (1, field_factor)
        } else {
            let sub_w = if chroma_format == 3 { 1 } else { 2 };
            let sub_h = if chroma_format == 1 { 2 } else { 1 };
            (sub_w, sub_h * field_factor)
        };
        width = width.checked_sub(unit_x * (left + right))?;
        height = height.checked_sub(unit_y * (top + bottom))?;
    }
    let mut sar = (1, 1);
    // vui_parameters_present_flag, then aspect_ratio_info_present_flag. A VUI cut short
    // only loses the aspect ratio.
    if r.bit() == Some(true) && r.bit() == Some(true) {
        match r.bits(8) {
            Some(255) => {
                if let (Some(h), Some(v)) = (r.bits(16), r.bits(16)) {
                    if h > 0 && v > 0 {
                        sar = (h as u16, v as u16);
                    }
                }
            }
            Some(idc) => sar = SAR.get(idc as usize).copied().unwrap_or((1, 1)),
            None => {}
        }
    }
    if width == 0 || height == 0 || width > 16384 || height > 16384 {
        return None;
    }
    Some(SpsInfo {
        profile,
        constraints,
        level,
        chroma_format: chroma_format as u8,
        bit_depth_luma_minus8: depth_l as u8,
        bit_depth_chroma_minus8: depth_c as u8,
        width: width as u16,
        height: height as u16,
        sar,
    })
}

/// The slice type of a slice NAL unit is I (or SI): the picture decodes on its own.
fn is_intra_slice(nal: &[u8]) -> bool {
    let data = rbsp(nal, 16);
    let mut r = BitReader::new(&data);
    r.ue().is_some() && matches!(r.ue().map(|t| t % 5), Some(2 | 4))
}

/// One access unit converted for fMP4.
#[derive(Debug, Default)]
pub(crate) struct AccessUnit {
    /// The NAL units, each prefixed by its 4-byte length (`avcC` length size 4).
    pub(crate) data: Vec<u8>,
    /// Decoding can start here: an IDR picture, or an intra picture (as hls.js counts
    /// them, for streams with an open GOP and no IDR after the first).
    pub(crate) key: bool,
    /// The first SPS in the unit, if any.
    pub(crate) sps: Option<Vec<u8>>,
    /// The first PPS in the unit, if any.
    pub(crate) pps: Option<Vec<u8>>,
    /// It has at least one slice (a picture), not just parameter sets or SEI.
    pub(crate) has_picture: bool,
}

impl AccessUnit {
    /// Appends the NAL units of an Annex-B chunk (one PES, or a continuation of one).
    pub(crate) fn append(&mut self, annexb: &[u8]) {
        for unit in nal_units(annexb) {
            let kind = unit[0] & 0x1f;
            match kind {
                nal::AUD | nal::FILLER => continue,
                nal::IDR => {
                    self.key = true;
                    self.has_picture = true;
                }
                nal::SLICE => {
                    if !self.has_picture && is_intra_slice(unit) {
                        self.key = true;
                    }
                    self.has_picture = true;
                }
                nal::SPS if self.sps.is_none() && unit.len() <= MAX_PARAMETER_SET => {
                    self.sps = Some(unit.to_vec());
                }
                nal::PPS if self.pps.is_none() && unit.len() <= MAX_PARAMETER_SET => {
                    self.pps = Some(unit.to_vec());
                }
                _ => {}
            }
            // Parameter sets stay in-band too, as hls.js leaves them: harmless with
            // `avc1`, and a decoder that honours them survives a mid-segment change.
            self.data
                .extend_from_slice(&(unit.len() as u32).to_be_bytes());
            self.data.extend_from_slice(unit);
        }
    }
}

/// A complete decoder configuration: one SPS, one PPS and what the SPS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AvcConfig {
    /// The SPS NAL unit.
    pub(crate) sps: Vec<u8>,
    /// The PPS NAL unit.
    pub(crate) pps: Vec<u8>,
    /// Parsed from `sps`.
    pub(crate) info: SpsInfo,
}

/// Two lower-case hex digits.
pub(crate) fn hex(out: &mut String, b: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    out.push(char::from(DIGITS[usize::from(b >> 4)]));
    out.push(char::from(DIGITS[usize::from(b & 15)]));
}

impl AvcConfig {
    /// The RFC 6381 codec string, `avc1.PPCCLL`.
    pub(crate) fn codec(&self) -> String {
        let mut s = String::from("avc1.");
        for b in [self.info.profile, self.info.constraints, self.info.level] {
            hex(&mut s, b);
        }
        s
    }

    /// The `AVCDecoderConfigurationRecord` (the `avcC` box payload), ISO 14496-15 5.3.3.1.
    pub(crate) fn avcc(&self) -> Vec<u8> {
        let i = &self.info;
        let mut v = vec![1, i.profile, i.constraints, i.level, 0xff, 0xe1];
        v.extend_from_slice(&(self.sps.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.sps);
        v.push(1);
        v.extend_from_slice(&(self.pps.len() as u16).to_be_bytes());
        v.extend_from_slice(&self.pps);
        if matches!(i.profile, 100 | 110 | 122 | 144) {
            v.push(0xfc | i.chroma_format);
            v.push(0xf8 | i.bit_depth_luma_minus8);
            v.push(0xf8 | i.bit_depth_chroma_minus8);
            v.push(0); // numOfSequenceParameterSetExt
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SPS x264 writes for 160x90 High profile, level 1.1 (as in the fixtures):
    /// 10 macroblocks by 6, cropped 6 lines at the bottom.
    const SPS_160X90: [u8; 25] = [
        0x67, 0x64, 0x00, 0x0b, 0xac, 0xd9, 0x42, 0x8d, 0xf9, 0x30, 0x11, 0x00, 0x00, 0x03, 0x00,
        0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x14, 0x29, 0x96,
    ];

    #[test]
    fn high_profile_sps_gives_cropped_size_and_codec() {
        let info = parse_sps(&SPS_160X90).unwrap();
        assert_eq!((info.width, info.height), (160, 90));
        assert_eq!((info.profile, info.level, info.chroma_format), (100, 11, 1));
        let cfg = AvcConfig {
            sps: SPS_160X90.to_vec(),
            pps: vec![0x68, 0xef, 0xbc, 0xb0],
            info,
        };
        assert_eq!(cfg.codec(), "avc1.64000b");
        let avcc = cfg.avcc();
        assert_eq!(&avcc[..6], &[1, 0x64, 0, 0x0b, 0xff, 0xe1]);
        assert_eq!(&avcc[avcc.len() - 4..], &[0xfd, 0xf8, 0xf8, 0]);
    }

    /// Writes SPS fields as bits: `u` fixed-width, `ue`/`se` Exp-Golomb.
    #[derive(Default)]
    struct Bits(String);

    impl Bits {
        fn u(&mut self, n: usize, v: u32) -> &mut Self {
            self.0.push_str(&format!("{v:0n$b}"));
            self
        }
        fn ue(&mut self, v: u32) -> &mut Self {
            let n = (32 - (v + 1).leading_zeros()) as usize;
            self.0.push_str(&"0".repeat(n - 1));
            self.u(n, v + 1)
        }
        fn se(&mut self, v: i32) -> &mut Self {
            self.ue(if v > 0 {
                2 * v as u32 - 1
            } else {
                2 * v.unsigned_abs()
            })
        }
        /// The NAL unit: header byte, then the bits with a stop bit, byte-aligned.
        fn nal(&mut self) -> Vec<u8> {
            self.0.push('1');
            while self.0.len() % 8 != 0 {
                self.0.push('0');
            }
            let bytes = self.0.as_bytes().chunks(8);
            let mut nal = vec![0x67];
            nal.extend(
                bytes.map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()),
            );
            nal
        }
    }

    #[test]
    fn baseline_sps_with_cropping_and_sample_aspect_ratio() {
        // Baseline, 1920x1080 as 120x68 macroblocks cropped by 8 lines (4 units of 2
        // in 4:2:0), SAR 4:3 (aspect_ratio_idc 14).
        let mut b = Bits::default();
        b.u(8, 66).u(8, 0xc0).u(8, 40).ue(0); // profile, constraints, level, id
        b.ue(0).ue(2).ue(1).u(1, 0); // frame num, POC type 2, refs, gaps
        b.ue(119).ue(67).u(1, 1).u(1, 1); // size, frame_mbs_only, direct 8x8
        b.u(1, 1).ue(0).ue(0).ue(0).ue(4); // cropping
        b.u(1, 1).u(1, 1).u(8, 14); // VUI, aspect ratio
        let info = parse_sps(&b.nal()).unwrap();
        assert_eq!((info.width, info.height, info.sar), (1920, 1080, (4, 3)));
        assert_eq!((info.profile, info.chroma_format), (66, 1));
    }

    #[test]
    fn high_422_sps_with_scaling_lists_and_poc_type_1() {
        // High 4:2:2 10-bit with scaling matrices, POC type 1, field coding allowed
        // (frame_mbs_only 0): 1920x1080 as 120x34 map units of 2 fields, cropped by 8
        // lines, which in 4:2:2 with fields is 4 units of 2.
        let mut b = Bits::default();
        b.u(8, 122).u(8, 0).u(8, 41).ue(0);
        b.ue(2).ue(2).ue(2).u(1, 0); // chroma 4:2:2, 10-bit luma and chroma, no bypass
        b.u(1, 1); // seq_scaling_matrix_present_flag
        for i in 0..8 {
            let present = i == 0 || i == 6;
            b.u(1, u32::from(present));
            if i == 0 {
                for _ in 0..16 {
                    b.se(1); // a rising 4x4 list
                }
            } else if present {
                b.se(-8); // next scale 0 at once: the default 8x8 list
            }
        }
        b.ue(0).ue(1).u(1, 0).se(-2).se(3).ue(2).se(1).se(-1); // frame num, POC type 1
        b.ue(4).u(1, 0).ue(119).ue(33).u(1, 0).u(1, 1).u(1, 1); // refs, size, MBAFF
        b.u(1, 1).ue(0).ue(0).ue(0).ue(4); // cropping
        b.u(1, 0); // no VUI
        let nal = b.nal();
        let info = parse_sps(&nal).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!(
            (
                info.chroma_format,
                info.bit_depth_luma_minus8,
                info.bit_depth_chroma_minus8
            ),
            (2, 2, 2)
        );
        assert_eq!(info.sar, (1, 1));
        let cfg = AvcConfig {
            sps: nal,
            pps: vec![0x68],
            info,
        };
        assert_eq!(cfg.codec(), "avc1.7a0029");
        assert_eq!(cfg.avcc()[cfg.avcc().len() - 4..], [0xfe, 0xfa, 0xfa, 0]);
    }

    #[test]
    fn annexb_splits_on_3_and_4_byte_start_codes() {
        let data = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 0, 1, 0x41, 3,
        ];
        assert_eq!(
            nal_units(&data),
            [&[0x09, 0xf0][..], &[0x65, 1, 2][..], &[0x41, 3][..]]
        );
        let mut au = AccessUnit::default();
        au.append(&data);
        assert!(au.key && au.has_picture);
        assert_eq!(au.data, [0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 2, 0x41, 3]);
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(rbsp(&[0x67, 0, 0, 3, 1, 0, 0, 3], 100), [0, 0, 1, 0, 0]);
    }

    #[test]
    fn malformed_sps_is_refused_not_panicking() {
        assert_eq!(parse_sps(&[0x67]), None);
        assert_eq!(parse_sps(&SPS_160X90[..8]), None);
        assert_eq!(parse_sps(&[0x68, 0x64]), None);
        let mut huge = SPS_160X90;
        huge[4] = 0; // a run of zero bits: an Exp-Golomb code that never ends
        huge[5] = 0;
        huge[6] = 0;
        huge[7] = 0;
        huge[8] = 0;
        assert_eq!(parse_sps(&huge), None);
    }
}
