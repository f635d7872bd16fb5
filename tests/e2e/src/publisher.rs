//! A broadcaster: ffmpeg publishing a live test pattern with a tone over RTMP, the way
//! OBS or a phone app would (H.264 with a 1 s keyframe interval and no B-frames, AAC).

use anyhow::Result;

use crate::process::{Output, Spawned};

/// A running publisher; killing (or dropping) it is the broadcaster vanishing.
#[derive(Debug)]
pub struct RtmpPublisher {
    process: Spawned,
}

impl RtmpPublisher {
    /// Starts publishing to `url` (`rtmp://HOST:PORT/live/KEY`) until killed.
    pub fn start(url: &str) -> Result<Self> {
        Self::spawn(url, "testsrc=size=640x360:rate=30", None, &[])
    }

    /// Like [`RtmpPublisher::start`], from an encoder in trouble: one frame in 30 left
    /// out of the timeline (the frame after it keeps its own timestamp, so a gap of two
    /// frame durations) and a keyframe every 150 frames (about 5 s).
    pub fn start_unhealthy(url: &str) -> Result<Self> {
        Self::spawn(
            url,
            "testsrc=size=640x360:rate=30",
            Some("select='not(eq(mod(n,30),15))'".into()),
            &["-fps_mode", "passthrough", "-g", "150"],
        )
    }

    /// Like [`RtmpPublisher::start`], with the wall-clock barcode bench/measure.js
    /// reads drawn into every frame: frame index `round(t·30) mod 480`, where `t` is
    /// the unix time at which the frame left the test source (its capture). The
    /// latency measured from it is glass to glass: encoding, RTMP, remuxing, the
    /// push, decoding and presentation.
    pub fn start_clocked(url: &str) -> Result<Self> {
        Self::spawn(
            url,
            "testsrc2=size=480x270:rate=30",
            Some(clock_barcode()),
            &[],
        )
    }

    /// Like [`RtmpPublisher::start_clocked`], scaled down to `width`x`height` (16:9)
    /// after the barcode is drawn: measure.js reads the band in proportion to the
    /// frame, so it still reads, and encoding costs less on a long run.
    pub fn start_clocked_scaled(url: &str, width: u32, height: u32) -> Result<Self> {
        let filter = format!("{},scale={width}:{height}", clock_barcode());
        Self::spawn(url, "testsrc2=size=480x270:rate=30", Some(filter), &[])
    }

    /// ffmpeg's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// ffmpeg publishing `source` through `filter`, with `extra` output options after
    /// the usual ones (a later `-g` wins).
    fn spawn(url: &str, source: &str, filter: Option<String>, extra: &[&str]) -> Result<Self> {
        let mut args: Vec<String> = [
            "-hide_banner",
            "-loglevel",
            "warning",
            "-re",
            "-f",
            "lavfi",
            "-i",
            source,
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ]
        .map(str::to_owned)
        .into();
        if let Some(f) = filter {
            args.push("-vf".into());
            args.push(f);
        }
        args.extend(
            [
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-tune",
                "zerolatency",
                "-g",
                "30",
                "-bf",
                "0",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
            ]
            .map(str::to_owned),
        );
        args.extend(extra.iter().map(|a| a.to_string()));
        args.extend(["-f", "flv", url].map(str::to_owned));
        let (process, _) = Spawned::start("ffmpeg", "ffmpeg", args, &[], Output::Capture)?;
        Ok(Self { process })
    }

    /// What ffmpeg said.
    pub fn log_tail(&self, n: usize) -> String {
        self.process.log().tail(n)
    }

    /// SIGKILLs it: the connection drops without an unpublish, as when a phone loses
    /// its network.
    pub async fn kill(self) {
        self.process.kill().await;
    }
}

/// ffmpeg filters drawing the barcode of media/make-demo-clip.sh (12 cells of 40 px on
/// the top 32 rows: white start marker, 9 bits of the frame index, odd parity, black
/// stop marker) with the frame index taken from the wall clock instead of the clip.
fn clock_barcode() -> String {
    // Timestamps become unix time (RTCTIME, microseconds) for the drawing, then start
    // at zero again for the encoder.
    let n = "mod(floor(t*30+0.5),480)";
    let bit = |k: u32| format!("bitand(floor({n}/{}),1)", 1u32 << k);
    let ones: Vec<String> = (0..9).map(bit).collect();
    let parity = format!("1-mod({},2)", ones.join("+"));
    let cell = |c: u32, enable: &str| {
        format!(
            "drawbox=x={}:y=0:w=40:h=32:color=white:t=fill:enable='{enable}'",
            c * 40
        )
    };
    let mut f = vec![
        "format=yuv420p".to_owned(),
        "setpts=RTCTIME/(TB*1000000)".to_owned(),
        "drawbox=x=0:y=0:w=480:h=32:color=black:t=fill".to_owned(),
        cell(0, "1"),
    ];
    for c in 1..=9 {
        f.push(cell(c, &bit(9 - c)));
    }
    f.push(cell(10, &parity));
    f.push("setpts=PTS-STARTPTS".to_owned());
    f.join(",")
}

/// A free TCP port on 127.0.0.1 (for `--rtmp-listen`).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
