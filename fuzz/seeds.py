#!/usr/bin/env python3
"""Writes the seed corpus (fuzz/corpus/<target>/) from the repository's own media and
protocol examples, plus a few ffmpeg-made HLS streams. Run from anywhere; needs ffmpeg.
`cargo xtask fuzz` grows the corpus from these seeds; `cargo fuzz cmin` keeps it small.
"""
import json, os, re, shutil, subprocess, tempfile

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)


def write(target, name, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def boxes(data):
    at = 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at:at + 4], "big")
        if size < 8:
            break
        yield data[at + 4:at + 8], data[at:at + size]
        at += size


def ffmpeg(*args):
    subprocess.run(["ffmpeg", "-v", "error", "-y", *args], check=True)


# remux: FLV tags of the test pattern (H.264 with B-frames + AAC), as ingest receives them.
flv = open(os.path.join(ROOT, "crates/server/tests/data/pattern.flv"), "rb").read()
tags, at = [], 13
while at + 11 <= len(flv):
    size = int.from_bytes(flv[at + 1:at + 4], "big")
    tags.append(flv[at:at + 11 + size + 4])
    at += 11 + size + 4
video = [t for t in tags if t[0] == 9]
audio = [t for t in tags if t[0] == 8]
write("remux", "pattern.flv", flv)
write("remux", "first_gop", b"".join(tags[:40]))
write("remux", "sequence_headers", video[0] + audio[0])
write("remux", "video_only", b"".join(video[:14]))
second_key = next(i for i, t in enumerate(video) if i > 1 and t[11] >> 4 == 1)
write("remux", "reconnect_at_keyframe", video[0] + audio[0] + b"".join(video[second_key:second_key + 4]))
write("remux", "audio_before_video", b"".join(audio[:6]) + b"".join(video[:3]))

# playlist: hand-written edge cases, then what ffmpeg writes.
write("playlist", "media", "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n"
      "#EXT-X-MEDIA-SEQUENCE:40\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000,\nseg40.m4s\n"
      "#EXT-X-DISCONTINUITY\n#EXTINF:1.5,\nseg41.m4s\n#EXT-X-GAP\n#EXTINF:2,\nseg42.m4s\n")
write("playlist", "ended", "\ufeff#EXTM3U\r\n#EXT-X-TARGETDURATION:6\r\n#EXTINF:6.006,title\r\n"
      "a.m4s\r\n#EXT-X-ENDLIST\r\n")
write("playlist", "multivariant", "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=800000,"
      "CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360\nlow/index.m3u8\n"
      "#EXT-X-STREAM-INF:BANDWIDTH=+2500000,FRAME-RATE=30\nhigh/index.m3u8\n")
write("playlist", "big_sequence", "#EXTM3U\n#EXT-X-TARGETDURATION:1\n"
      "#EXT-X-MEDIA-SEQUENCE:18446744073709551614\n#EXTINF:1,\na\n")
with tempfile.TemporaryDirectory() as tmp:
    src = ["-f", "lavfi", "-i", "testsrc=size=64x48:rate=10", "-f", "lavfi", "-i",
           "sine=sample_rate=22050", "-t", "3", "-c:v", "libx264", "-g", "10",
           "-c:a", "aac", "-b:a", "16k"]
    ffmpeg(*src, "-f", "hls", "-hls_time", "1", "-hls_segment_type", "fmp4",
           "-hls_flags", "independent_segments+program_date_time",
           "-hls_fmp4_init_filename", "init.mp4", os.path.join(tmp, "fmp4.m3u8"))
    ffmpeg(*src, "-f", "hls", "-hls_time", "1", "-hls_segment_type", "mpegts",
           "-hls_list_size", "2", os.path.join(tmp, "ts.m3u8"))
    ffmpeg(*src, "-map", "0:v", "-map", "1:a", "-f", "hls", "-hls_time", "1",
           "-var_stream_map", "v:0 a:0", "-master_pl_name", "master.m3u8",
           os.path.join(tmp, "var_%v.m3u8"))
    for name in ["fmp4.m3u8", "ts.m3u8", "master.m3u8", "var_0.m3u8"]:
        write("playlist", "ffmpeg_" + name.replace(".m3u8", ""),
              open(os.path.join(tmp, name), "rb").read())
    # mp4: ffmpeg's fMP4 init segment and first media segment.
    write("mp4", "ffmpeg_init.mp4", open(os.path.join(tmp, "init.mp4"), "rb").read())
    seg = sorted(f for f in os.listdir(tmp) if f.endswith(".m4s"))[0]
    write("mp4", "ffmpeg_segment.m4s", open(os.path.join(tmp, seg), "rb").read()[:4096])

    # mp4: the demo clip's init segment and a fragment, cut to the boxes the player reads.
    frag = os.path.join(tmp, "demo_frag.mp4")
    ffmpeg("-i", os.path.join(ROOT, "media/demo.mp4"), "-t", "0.5", "-c", "copy",
           "-movflags", "frag_keyframe+empty_moov+default_base_moof", frag)
    parts = list(boxes(open(frag, "rb").read()))
    init = b"".join(b for k, b in parts if k in (b"ftyp", b"moov"))
    moof = next(b for k, b in parts if k == b"moof")
    mdat = (16).to_bytes(4, "big") + b"mdat" + bytes(8)
    write("mp4", "demo_init.mp4", init)
    write("mp4", "demo_fragment.m4s", moof + mdat)
    write("mp4", "demo_init_and_fragment.mp4", init + moof + mdat)

# chat_wire and protocol_json: the protocol's documented examples (its round-trip test)
# and the widget's wire test frames.
texts = []
for path in ["crates/protocol/tests/roundtrip.rs", "tests/wasm/wire.rs"]:
    src = open(os.path.join(ROOT, path)).read()
    texts += re.findall(r'r#+"(\{.*?\})"#+', src, re.S)
for i, t in enumerate(texts):
    try:
        value = json.loads(t)
    except ValueError:
        continue
    frame = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    name = "%02d_%s" % (i, value.get("type", "untyped") if isinstance(value, dict) else "other")
    write("protocol_json", name, frame)
    write("chat_wire", name, frame)
