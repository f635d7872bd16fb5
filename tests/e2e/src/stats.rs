//! Numbers for the benchmark report: percentiles of latency samples and the
//! brotli-compressed size of the code a player ships. Pure functions.

use std::io::Write;

/// The `p`-th percentile (0..=100) of `samples` by linear interpolation between
/// closest ranks; `None` when there are no samples.
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = samples.iter().copied().filter(|x| x.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let rank = (p.clamp(0.0, 100.0) / 100.0) * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    Some(sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64))
}

/// Size in bytes of `data` compressed with brotli at quality 11, window 22
/// (what a CDN serving `Content-Encoding: br` for static files would send).
pub fn brotli_size(data: &[u8]) -> usize {
    let mut out = Vec::new();
    {
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        // Writing to a Vec cannot fail.
        let _ = w.write_all(data);
    }
    out.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_interpolate() {
        let s = [4.0, 1.0, 3.0, 2.0, 5.0];
        assert_eq!(percentile(&s, 50.0), Some(3.0));
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&s, 100.0), Some(5.0));
        assert_eq!(percentile(&s, 95.0), Some(4.8));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn brotli_shrinks_repetitive_code() {
        let js = "function f(){return 1}\n".repeat(1000);
        let n = brotli_size(js.as_bytes());
        assert!(n > 0 && n < js.len() / 20, "{n}");
    }
}
