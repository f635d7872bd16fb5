//! RTMP ingest against cheap attacks, over real sockets: port scans, slow drips, huge
//! messages before `publish` and connections that never publish. Each test ends with
//! (or is about) a real ffmpeg publisher still going live, because that is what an
//! attack on ingest takes away.
//!
//! The tests take one lock and run one at a time: one of them measures the CPU time of
//! this whole process, which the others would spoil.
//!
//! Needs `ffmpeg` on PATH (`cargo xtask test` installs it).

mod publisher;

use lucarne_server::ingest::{HANDSHAKE_DEADLINE, MAX_PENDING_PER_IP, PUBLISH_DEADLINE};
use lucarne_server::{Config, Server};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;

static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Origin {
    server: Server,
    http: String,
    rtmp: SocketAddr,
    _dir: tempfile::TempDir,
}

async fn start() -> Origin {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        dist: dir.path().join("dist"),
        pages: workspace().join("static"),
        media: workspace().join("media"),
        no_demo: true,
        hls_window: 6,
        chunk_ms: 100,
        data_dir: dir.path().join("data"),
        hub: Default::default(),
        ingest: Default::default(),
        serve: Default::default(),
        access: Default::default(),
        edge: Default::default(),
    };
    config.hub.chat_db = Some(":memory:".into());
    config.ingest.rtmp_listen = "127.0.0.1:0".parse().unwrap();
    config.ingest.stream_keys = vec!["secret-1=studio".into()];
    config.ingest.ingest_grace_secs = 2;
    let server = Server::start(config).await.expect("server starts");
    Origin {
        http: format!("http://{}", server.local_addr()),
        rtmp: server.rtmp_addr().expect("ingest runs"),
        server,
        _dir: dir,
    }
}

/// ffmpeg publishing `secs` of the test pattern (video only), in real time.
fn publish(o: &Origin, secs: f64) -> Child {
    let url = format!("rtmp://{}/live/secret-1", o.rtmp);
    publisher::spawn(publisher::command(&url, secs, publisher::H264, false).stderr(Stdio::null()))
}

/// Waits until the stream's HLS playlist lists a segment; panics after `within`.
async fn wait_for_segments(o: &Origin, within: Duration) -> Duration {
    let started = Instant::now();
    let url = format!("{}/live/studio/index.m3u8", o.http);
    loop {
        if let Ok(r) = reqwest::get(&url).await {
            if r.status() == 200 {
                let body = r.text().await.unwrap_or_default();
                if body.lines().any(|l| l.ends_with(".m4s")) {
                    return started.elapsed();
                }
            }
        }
        assert!(
            started.elapsed() < within,
            "the publisher did not go live within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publisher_goes_live(o: &Origin, within: Duration) -> Duration {
    let mut ffmpeg = publish(o, 4.0);
    let took = wait_for_segments(o, within).await;
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    took
}

/// CPU time (user + system) this process has used so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    // utime and stime are fields 14 and 15 of the file, in USER_HZ (100 on Linux).
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    Duration::from_millis(ticks * 10)
}

/// A connection from `source` (any 127/8 address: loopback answers them all), so that
/// tests can play many hosts.
async fn connect_from(source: Ipv4Addr, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind((source, 0).into()).unwrap();
    socket.connect(to).await.unwrap()
}

/// Connects and does the simple RTMP handshake (C0/C1, S0/S1/S2, C2).
async fn handshake(to: SocketAddr) -> TcpStream {
    let mut tcp = TcpStream::connect(to).await.unwrap();
    let mut c0c1 = vec![3u8];
    c0c1.extend((0..1536).map(|i| if i < 8 { 0 } else { (i * 7) as u8 }));
    tcp.write_all(&c0c1).await.unwrap();
    let mut s = vec![0u8; 1 + 1536 * 2];
    tcp.read_exact(&mut s).await.unwrap();
    tcp.write_all(&s[1..1537]).await.unwrap();
    tcp
}

/// How long until the server closes (or resets) the connection, reading and
/// discarding what it sends; `None` if it is still open after `within`.
async fn closed_within(tcp: &mut TcpStream, within: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((started + within).into(), tcp.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_scan_neither_spins_the_cpu_nor_keeps_publishers_out() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let o = start().await;

    // A scanner's connect and close, before any byte and in the middle of the
    // handshake; more of them than ingest has publishing slots.
    for _ in 0..70 {
        drop(TcpStream::connect(o.rtmp).await.unwrap());
    }
    for _ in 0..70 {
        let mut tcp = TcpStream::connect(o.rtmp).await.unwrap();
        tcp.write_all(&[3, 0, 0, 0, 0]).await.unwrap();
        drop(tcp);
    }
    // The last close reaches the server within a moment; then nothing runs but the
    // server, idle.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let window = Duration::from_secs(2);
    let (cpu_before, wall_before) = (cpu_time(), Instant::now());
    tokio::time::sleep(window).await;
    let busy = (cpu_time() - cpu_before).as_secs_f64() / wall_before.elapsed().as_secs_f64();
    println!(
        "CPU after 140 scanner connections: {:.1} % of a core",
        busy * 100.0
    );
    assert!(
        busy < 0.3,
        "closed connections keep the server busy: {:.0} % of a core",
        busy * 100.0
    );

    let took = publisher_goes_live(&o, Duration::from_secs(10)).await;
    println!("publisher live after {took:?}");
    o.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_drip_connections_do_not_keep_a_publisher_out_and_are_dropped_at_the_handshake_deadline(
) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let o = start().await;

    // 72 connections from 12 hosts (within each host's share of pending connections),
    // each sending one handshake byte every 1.5 s: at that pace a handshake would take
    // over an hour, and no single read ever times out.
    let mut drips = Vec::new();
    for i in 0..72u8 {
        let mut tcp = connect_from(Ipv4Addr::new(127, 0, 1, 1 + i % 12), o.rtmp).await;
        drips.push(tokio::spawn(async move {
            let started = Instant::now();
            let mut buf = [0u8; 64];
            loop {
                if tcp.write_all(&[3]).await.is_err() {
                    return Some(started.elapsed());
                }
                match tokio::time::timeout(Duration::from_millis(1500), tcp.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => return Some(started.elapsed()),
                    Ok(Ok(_)) => {}
                    Err(_) if started.elapsed() > HANDSHAKE_DEADLINE * 3 => return None,
                    Err(_) => {}
                }
            }
        }));
    }

    let took = publisher_goes_live(&o, Duration::from_secs(8)).await;
    println!("publisher live after {took:?} beside 72 slow drips");

    for drip in drips {
        let lasted = drip.await.unwrap();
        let lasted = lasted.expect("a slow drip outlived three handshake deadlines");
        println!("slow drip dropped after {lasted:?}");
        assert!(
            lasted >= HANDSHAKE_DEADLINE - Duration::from_millis(200)
                && lasted < HANDSHAKE_DEADLINE + Duration::from_secs(2),
            "slow drip dropped after {lasted:?}, the handshake deadline is {HANDSHAKE_DEADLINE:?}"
        );
    }
    o.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_host_cannot_hold_more_than_its_share_of_pending_connections() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let o = start().await;
    let host = Ipv4Addr::new(127, 0, 2, 1);
    let mut held = Vec::new();
    for _ in 0..MAX_PENDING_PER_IP {
        held.push(connect_from(host, o.rtmp).await);
    }
    // The listener answers in order: once a later connection from elsewhere has been
    // through the handshake, the ones before it were counted. (This all takes well
    // under the 2 s a silent handshake is allowed per read.)
    drop(handshake(o.rtmp).await);
    let mut extra = connect_from(host, o.rtmp).await;
    assert!(
        closed_within(&mut extra, Duration::from_secs(1))
            .await
            .is_some(),
        "a host got more than {MAX_PENDING_PER_IP} pending connections"
    );
    for tcp in &mut held {
        assert!(
            closed_within(tcp, Duration::from_millis(100))
                .await
                .is_none(),
            "a connection within the host's share was closed early"
        );
    }
    // Other hosts are not affected.
    publisher_goes_live(&o, Duration::from_secs(8)).await;
    o.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_message_before_publish_is_cut_off_at_the_pre_publish_limit() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let o = start().await;
    let mut tcp = handshake(o.rtmp).await;
    // An AMF0 command (type 0x14) on chunk stream 3 that declares 10 000 000 bytes, just
    // under the media limit, then its chunks (128 bytes at the initial chunk size)
    // trickling in fast enough that no read times out.
    let len = 10_000_000u32.to_be_bytes();
    tcp.write_all(&[0x03, 0, 0, 0, len[1], len[2], len[3], 0x14, 0, 0, 0, 0])
        .await
        .unwrap();
    let started = Instant::now();
    let mut sent = 0usize;
    let closed = loop {
        let mut chunk = vec![0xc3u8];
        chunk.extend([0x05u8; 128]);
        if tcp
            .write_all(&chunk[usize::from(sent == 0)..])
            .await
            .is_err()
        {
            break Some(started.elapsed());
        }
        sent += 128;
        if let Some(after) = closed_within(&mut tcp, Duration::from_millis(10)).await {
            break Some(started.elapsed() - Duration::from_millis(10) + after);
        }
        if started.elapsed() > Duration::from_secs(4) {
            break None;
        }
    };
    println!("closed after {closed:?}, {sent} bytes of the message sent");
    assert!(
        closed.is_some(),
        "{sent} bytes of an unfinished message accepted before publish"
    );
    assert!(sent <= 64 * 1024 + 128, "{sent} bytes accepted");

    publisher_goes_live(&o, Duration::from_secs(8)).await;
    o.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_sends_frames_far_over_the_pre_publish_limit() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let o = start().await;
    // Noise does not compress: every frame of 640x360 at this quality is some hundred
    // KB, each one RTMP message well over the 64 KiB allowed before publish.
    let url = format!("rtmp://{}/live/secret-1", o.rtmp);
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=10"])
        .args(["-t", "4", "-vf", "noise=alls=80:allf=t"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-qp", "8"])
        .args([
            "-g", "10", "-bf", "0", "-pix_fmt", "yuv420p", "-an", "-f", "flv", &url,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg runs");
    wait_for_segments(&o, Duration::from_secs(10)).await;
    let playlist = reqwest::get(format!("{}/live/studio/index.m3u8", o.http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let segment = playlist.lines().find(|l| l.ends_with(".m4s")).unwrap();
    let segment = match segment.strip_prefix('/') {
        Some(path) => format!("{}/{path}", o.http),
        None => format!("{}/live/studio/{segment}", o.http),
    };
    let bytes = reqwest::get(segment).await.unwrap().bytes().await.unwrap();
    // A segment holds a second: 10 frames of over 64 KiB each.
    println!("first segment: {} KB", bytes.len() / 1000);
    assert!(bytes.len() > 10 * 64 * 1024, "{} bytes", bytes.len());
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    o.server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_never_publishes_is_dropped_at_the_publish_deadline() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let o = start().await;
    let connected = Instant::now();
    let mut tcp = handshake(o.rtmp).await;
    // A window acknowledgement size message (type 5) every second: valid, tiny, and
    // enough to keep every read from timing out.
    let closed = loop {
        let ack = [
            0x02, 0, 0, 0, 0, 0, 4, 0x05, 0, 0, 0, 0, 0, 0x26, 0x25, 0xa0,
        ];
        if tcp.write_all(&ack).await.is_err() {
            break Some(connected.elapsed());
        }
        if closed_within(&mut tcp, Duration::from_secs(1))
            .await
            .is_some()
        {
            break Some(connected.elapsed());
        }
        if connected.elapsed() > PUBLISH_DEADLINE * 2 {
            break None;
        }
    };
    let closed = closed.expect("a connection that never published outlived two deadlines");
    println!("dropped after {closed:?}");
    assert!(
        closed >= PUBLISH_DEADLINE - Duration::from_millis(200)
            && closed < PUBLISH_DEADLINE + Duration::from_secs(2),
        "dropped after {closed:?}, the publish deadline is {PUBLISH_DEADLINE:?}"
    );
    o.server.shutdown().await;
}
