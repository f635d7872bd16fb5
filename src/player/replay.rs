//! The replay loader's decisions, pure: which segment of a finished recording to load
//! next, when to wait (far enough ahead of the playhead, or the browser wants no media),
//! where to go when the viewer seeks, and what a failed init segment means. The HLS
//! source (`hls.rs`) does the fetching and must await something on every [`Step::Wait`]:
//! a loop that goes round without awaiting freezes the page.

/// A replay is loaded this many seconds ahead of the playhead.
pub const VOD_AHEAD: f64 = 30.0;

/// What the loader does next.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Step {
    /// Load segment `i` (its init segment first if it names one).
    Load(usize),
    /// Everything is loaded: say so once, then wait.
    Complete,
    /// Nothing to do now: sleep, then ask again.
    Wait,
}

/// How loading a segment's init segment went.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum InitOutcome {
    /// Loaded (or already sent).
    Ready,
    /// Its URI does not resolve against the playlist's: it never will.
    Unresolvable,
    /// The request failed; the loader has waited its backoff already.
    Failed,
    /// The loader is being dropped.
    Aborted,
}

/// What follows an [`InitOutcome`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AfterInit {
    /// Load the segment.
    Proceed,
    /// Skip the segment: it cannot be played.
    Skip,
    /// Try the same segment again (the backoff was awaited).
    Retry,
    /// Stop the loader.
    Stop,
}

/// The decision after an init segment load. An unresolvable URI is skipped, never
/// retried: a retry would not await anything and would spin the page's one thread.
pub fn after_init(outcome: InitOutcome) -> AfterInit {
    match outcome {
        InitOutcome::Ready => AfterInit::Proceed,
        InitOutcome::Unresolvable => AfterInit::Skip,
        InitOutcome::Failed => AfterInit::Retry,
        InitOutcome::Aborted => AfterInit::Stop,
    }
}

/// Position in a replay's segment list.
///
/// Two clocks: the playlist's (segment starts from its first segment, as [`span`]
/// gives them; the demuxed audio's playlist keeps the same one) and the replay's, which
/// the viewer sees and [`step`] and [`seek`] take: it begins at the first segment
/// loaded ([`begin_at`]), 0 unless the playlist opens on missing or gap segments.
///
/// [`span`]: ReplayPlan::span
/// [`step`]: ReplayPlan::step
/// [`seek`]: ReplayPlan::seek
/// [`begin_at`]: ReplayPlan::begin_at
#[derive(Debug, Clone)]
pub struct ReplayPlan {
    /// Start of each segment relative to the first, seconds.
    starts: Vec<f64>,
    /// Where the replay's time 0 is on the playlist's clock.
    origin: f64,
    /// Segments marked `EXT-X-GAP`: they keep their place on the timeline (what follows
    /// them starts where the playlist says) but are never loaded.
    gaps: Vec<bool>,
    total: f64,
    next: usize,
    complete: bool,
}

impl ReplayPlan {
    /// A plan for segments of these durations.
    pub fn new(durations: impl IntoIterator<Item = f64>) -> Self {
        let mut starts = Vec::new();
        let mut total = 0.0;
        for d in durations {
            starts.push(total);
            total += d;
        }
        ReplayPlan {
            gaps: vec![false; starts.len()],
            starts,
            origin: 0.0,
            total,
            next: 0,
            complete: false,
        }
    }

    /// Marks segment `i` as a gap (`EXT-X-GAP`): [`ReplayPlan::step`] passes over it.
    pub fn gap(&mut self, i: usize) {
        if let Some(g) = self.gaps.get_mut(i) {
            *g = true;
        }
    }

    /// The replay begins with segment `i`, the first one loaded: those before it were
    /// missing or gaps. Its start is the replay's time 0 (the source then offsets the
    /// media so that segment's first frame is at 0); what follows keeps the playlist's
    /// spacing, gaps included. A hole at the very start would instead need a seek
    /// before the first frame, and that seek hangs WebKitGTK's page (its main thread
    /// waits on the media pipeline for good).
    pub fn begin_at(&mut self, i: usize) {
        self.origin = self.span(i).0;
    }

    /// The replay's length, seconds, from its time 0.
    pub fn duration(&self) -> f64 {
        self.total - self.origin
    }

    /// The viewer jumped to `t` (replay time) outside what is buffered: load from the
    /// segment there.
    pub fn seek(&mut self, t: f64) {
        let t = t + self.origin;
        self.next = self.starts.iter().rposition(|s| *s <= t).unwrap_or(0);
        self.complete = false;
    }

    /// The next step. `started`: the first segment went out (before that, load without
    /// looking at the playhead); `playhead` is in replay time.
    pub fn step(&mut self, started: bool, playhead: f64, wanted: bool) -> Step {
        let playhead = playhead + self.origin;
        while self.gaps.get(self.next) == Some(&true) {
            self.next += 1;
        }
        let Some(start) = self.starts.get(self.next) else {
            if self.complete {
                return Step::Wait;
            }
            self.complete = true;
            return Step::Complete;
        };
        if started && (*start > playhead + VOD_AHEAD || !wanted) {
            return Step::Wait;
        }
        Step::Load(self.next)
    }

    /// The current segment is loaded or skipped.
    pub fn advance(&mut self) {
        self.next += 1;
    }

    /// Segment `i`'s start and end on the playlist's clock.
    pub fn span(&self, i: usize) -> (f64, f64) {
        let start = self.starts.get(i).copied().unwrap_or(self.total);
        let end = self.starts.get(i + 1).copied().unwrap_or(self.total);
        (start, end)
    }
}

/// A replay's demuxed audio: which of its segments go with each video segment. Both
/// playlists start at the replay's start (as a packager writes them); their segments
/// need not line up.
#[derive(Debug, Clone)]
pub struct AudioPlan {
    segments: ReplayPlan,
    /// The segment handed out last: the next video segment often overlaps it too.
    last: Option<usize>,
}

impl AudioPlan {
    /// A plan for audio segments of these durations.
    pub fn new(durations: impl IntoIterator<Item = f64>) -> Self {
        AudioPlan {
            segments: ReplayPlan::new(durations),
            last: None,
        }
    }

    /// The audio segments that start in a gap of `video` are never handed out, so both
    /// tracks have a hole there, and the player jumps it as it jumps a missing segment.
    /// (With the sound alone going on through a hole in the video, WebKitGTK's picture
    /// stays frozen after it.)
    pub fn skip_gaps(&mut self, video: &ReplayPlan) {
        // Called for each video segment loaded: the gaps first (usually none), so a long
        // replay without any costs a pass over booleans.
        let gaps: Vec<(f64, f64)> = (0..video.starts.len())
            .filter(|&i| video.gaps[i])
            .map(|i| video.span(i))
            .collect();
        if gaps.is_empty() {
            return;
        }
        for k in 0..self.segments.starts.len() {
            let start = self.segments.starts[k];
            if gaps.iter().any(|&(from, to)| from <= start && start < to) {
                self.segments.gap(k);
            }
        }
    }

    /// The audio segments that cover `from..to` seconds (a video segment), in order,
    /// but the one handed out last and those skipped.
    pub fn covering(&mut self, from: f64, to: f64) -> Vec<usize> {
        let found: Vec<usize> = (0..self.segments.starts.len())
            .filter(|&k| {
                let (start, end) = self.segments.span(k);
                start < to && end > from && self.last != Some(k) && !self.segments.gaps[k]
            })
            .collect();
        if let Some(&k) = found.last() {
            self.last = Some(k);
        }
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the loader's decisions with every init segment failing as `outcome`, and
    /// returns the steps taken until the first wait (or 50 steps: a spinning loop).
    fn run(plan: &mut ReplayPlan, outcome: InitOutcome) -> Vec<Step> {
        let mut steps = Vec::new();
        for _ in 0..50 {
            let step = plan.step(false, 0.0, true);
            steps.push(step);
            match step {
                Step::Load(_) => match after_init(outcome) {
                    AfterInit::Skip | AfterInit::Proceed => plan.advance(),
                    AfterInit::Retry | AfterInit::Stop => {}
                },
                Step::Wait => break,
                Step::Complete => {}
            }
        }
        steps
    }

    #[test]
    fn demuxed_audio_covers_each_video_segment_once_whatever_the_boundaries() {
        // Video in 2 s segments; audio cut a little later, in 1.02 s ones.
        let video = ReplayPlan::new([2.0; 3]);
        let mut audio = AudioPlan::new([1.02; 6]);
        let sent: Vec<Vec<usize>> = (0..3)
            .map(|i| {
                let (from, to) = video.span(i);
                audio.covering(from, to)
            })
            .collect();
        assert_eq!(sent, [vec![0, 1], vec![2, 3], vec![4, 5]]);
        assert_eq!(video.span(2), (4.0, 6.0));

        // A seek back loads the audio there again, and goes on from there.
        assert_eq!(audio.covering(0.0, 2.0), [0, 1]);
        assert_eq!(audio.covering(2.0, 4.0), [2, 3]);
        // Past the audio's end: nothing.
        assert!(audio.covering(7.0, 9.0).is_empty());
    }

    #[test]
    fn a_gap_keeps_its_place_on_the_timeline_and_is_never_loaded() {
        let mut plan = ReplayPlan::new([2.0; 5]);
        plan.gap(2);
        let mut loaded = Vec::new();
        while let Step::Load(i) = plan.step(false, 0.0, true) {
            loaded.push((i, plan.span(i)));
            plan.advance();
        }
        assert_eq!(
            loaded,
            [
                (0, (0.0, 2.0)),
                (1, (2.0, 4.0)),
                (3, (6.0, 8.0)),
                (4, (8.0, 10.0))
            ],
            "what follows the gap starts where the playlist says"
        );
        assert_eq!(plan.duration(), 10.0);

        // A seek into the gap loads from the segment after it; one just past it, that one.
        plan.seek(5.0);
        assert_eq!(plan.step(true, 5.0, true), Step::Load(3));
        plan.seek(7.0);
        assert_eq!(plan.step(true, 7.0, true), Step::Load(3));

        // The audio that starts in the gap is skipped with it.
        let mut audio = AudioPlan::new([1.02; 10]);
        let mut video = ReplayPlan::new([2.0; 5]);
        video.gap(2);
        audio.skip_gaps(&video);
        assert_eq!(audio.covering(2.0, 4.0), [1, 2, 3]);
        assert_eq!(audio.covering(6.0, 8.0), [6, 7], "4 and 5 start in the gap");

        // Only gaps: nothing to load.
        let mut empty = ReplayPlan::new([2.0; 2]);
        empty.gap(0);
        empty.gap(1);
        assert_eq!(empty.step(false, 0.0, true), Step::Complete);
    }

    #[test]
    fn a_replay_that_opens_on_a_gap_begins_at_its_first_segment_loaded() {
        let mut plan = ReplayPlan::new([2.0; 5]);
        plan.gap(0);
        plan.gap(3);
        assert_eq!(plan.step(false, 0.0, true), Step::Load(1));
        plan.begin_at(1);
        plan.advance();
        // Time 0 is segment 1's start: 8 s of replay, the later gap kept in place.
        assert_eq!(plan.duration(), 8.0);
        assert_eq!(
            plan.span(1),
            (2.0, 4.0),
            "the playlist's clock is unchanged"
        );
        assert_eq!(plan.step(true, 0.0, true), Step::Load(2));
        plan.advance();
        assert_eq!(plan.step(true, 0.0, true), Step::Load(4), "past the gap");
        // Seeks are in replay time: 3 s is 5 s on the playlist's clock (segment 2);
        // 7 s is 9 s (segment 4); before the start, the first segment loaded.
        plan.seek(3.0);
        assert_eq!(plan.step(true, 3.0, true), Step::Load(2));
        plan.seek(7.0);
        assert_eq!(plan.step(true, 7.0, true), Step::Load(4));
        plan.seek(0.0);
        assert_eq!(plan.step(true, 0.0, true), Step::Load(1));
        // Far enough ahead is measured in replay time too.
        let mut long = ReplayPlan::new(std::iter::repeat_n(2.0, 40));
        long.gap(0);
        long.begin_at(1);
        long.seek(0.0);
        let mut loaded = 0;
        while let Step::Load(_) = long.step(true, 0.0, true) {
            long.advance();
            loaded += 1;
        }
        assert_eq!(loaded, 16, "segments starting within 30 s of the playhead");
    }

    #[test]
    fn an_unresolvable_init_uri_skips_its_segments_instead_of_spinning() {
        let mut plan = ReplayPlan::new([2.0, 2.0, 2.0]);
        let steps = run(&mut plan, InitOutcome::Unresolvable);
        assert_eq!(
            steps,
            vec![
                Step::Load(0),
                Step::Load(1),
                Step::Load(2),
                Step::Complete,
                Step::Wait
            ],
            "each segment is tried once, then the loader waits"
        );
    }

    #[test]
    fn a_failed_init_load_is_retried_and_an_abort_stops() {
        assert_eq!(after_init(InitOutcome::Failed), AfterInit::Retry);
        assert_eq!(after_init(InitOutcome::Aborted), AfterInit::Stop);
        assert_eq!(after_init(InitOutcome::Ready), AfterInit::Proceed);
    }

    #[test]
    fn loads_at_most_thirty_seconds_ahead_of_the_playhead() {
        let mut plan = ReplayPlan::new(std::iter::repeat_n(2.0, 40));
        assert_eq!(plan.duration(), 80.0);
        let mut loaded = 0;
        while let Step::Load(_) = plan.step(true, 0.0, true) {
            plan.advance();
            loaded += 1;
        }
        assert_eq!(loaded, 16, "segments starting within 30 s of the playhead");
        assert_eq!(plan.step(true, 10.0, true), Step::Load(16));
        assert_eq!(plan.step(true, 10.0, false), Step::Wait, "not wanted now");
    }

    #[test]
    fn a_seek_loads_from_the_segment_containing_it_and_completes_again() {
        let mut plan = ReplayPlan::new([2.0, 2.0, 2.0]);
        for _ in 0..3 {
            plan.advance();
        }
        assert_eq!(plan.step(true, 6.0, true), Step::Complete);
        assert_eq!(plan.step(true, 6.0, true), Step::Wait, "said once");
        plan.seek(3.5);
        assert_eq!(plan.step(true, 3.5, true), Step::Load(1));
        plan.advance();
        plan.advance();
        assert_eq!(plan.step(true, 3.5, true), Step::Complete);
        plan.seek(-1.0);
        assert_eq!(plan.step(true, 0.0, true), Step::Load(0));
    }
}
