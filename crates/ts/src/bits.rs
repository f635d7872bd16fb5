//! A big-endian bit reader with Exp-Golomb codes, for the few H.264 fields the
//! transmuxer reads (SPS, slice header start).
//!
//! Owns nothing but a cursor over an RBSP (emulation prevention bytes already removed
//! by the caller). Every read is bounds-checked and returns `None` past the end, so a
//! truncated or hostile SPS can never panic or loop.

/// Reads bits most significant first from a byte slice.
pub(crate) struct BitReader<'a> {
    /// The RBSP being read.
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// One bit.
    pub(crate) fn bit(&mut self) -> Option<bool> {
        let byte = *self.data.get(self.pos / 8)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(bit == 1)
    }

    /// `n` bits (at most 32) as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Option<u32> {
        debug_assert!(n <= 32);
        let mut v: u32 = 0;
        for _ in 0..n.min(32) {
            v = (v << 1) | u32::from(self.bit()?);
        }
        Some(v)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: usize) -> Option<()> {
        let end = self.pos.checked_add(n)?;
        if end > self.data.len() * 8 {
            return None;
        }
        self.pos = end;
        Some(())
    }

    /// An unsigned Exp-Golomb code, `ue(v)`. More than 31 leading zeros cannot be a
    /// valid H.264 value (it would not fit in 32 bits) and is refused.
    pub(crate) fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        let rest = self.bits(zeros)?;
        // 2^zeros - 1 + rest, computed in u64: zeros = 31 with rest = 2^31 - 1 is 2^32 - 2.
        u32::try_from((1u64 << zeros) - 1 + u64::from(rest)).ok()
    }

    /// A signed Exp-Golomb code, `se(v)`: 1, -1, 2, -2, ... from ue 1, 2, 3, 4, ...
    pub(crate) fn se(&mut self) -> Option<i32> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        i32::try_from(v).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_read_as_the_standard_table() {
        // 1 | 010 | 011 | 00100 | 00101 -> ue 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!(
            [r.ue(), r.ue(), r.ue(), r.ue(), r.ue()],
            [Some(0), Some(1), Some(2), Some(3), Some(4)]
        );
        // se: ue 1 -> 1, ue 2 -> -1, ue 3 -> 2
        let data = [0b0100_1100, 0b1000_0000];
        let mut r = BitReader::new(&data);
        assert_eq!([r.se(), r.se(), r.se()], [Some(1), Some(-1), Some(2)]);
    }

    #[test]
    fn reads_past_the_end_or_endless_zeros_are_refused() {
        let mut r = BitReader::new(&[0xff]);
        assert_eq!(r.bits(8), Some(0xff));
        assert_eq!(r.bit(), None);
        assert_eq!(BitReader::new(&[0; 8]).ue(), None);
        assert_eq!(BitReader::new(&[0, 0, 0, 0, 0]).ue(), None);
        assert_eq!(BitReader::new(&[1]).skip(9), None);
    }
}
