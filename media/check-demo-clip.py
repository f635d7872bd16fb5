#!/usr/bin/env python3
"""check-demo-clip.py — verifies media/demo.mp4 against the spec in make-demo-clip.sh.

Usage: media/check-demo-clip.py [demo.mp4]     (needs ffmpeg/ffprobe, no Python packages)

Checks the container and stream timing with ffprobe, then decodes every one of the
480 frames and reads the frame-index barcode from the top band: frame n must read n.
The barcode reader here is the reference for bench/measure.js (same layout, same
validation). Exits non-zero with a message saying what was seen on any mismatch.
"""
import json
import math
import os
import struct
import subprocess
import sys

W, H, FPS, FRAMES = 480, 270, 30, 480
BAR_H, CELLS = 32, 12
AUDIO_FRAMES = 750  # 16 s * 48000 / 1024


def fail(msg):
    sys.exit(f"demo clip check FAILED: {msg}")


def decode_barcode(row_cells):
    """row_cells: 12 mean luma values (0..255). Returns n, or None when invalid."""
    bits = [1 if v >= 128 else 0 for v in row_cells]
    if bits[0] != 1 or bits[11] != 0:
        return None
    if sum(bits[1:11]) % 2 != 1:
        return None
    n = 0
    for b in bits[1:10]:
        n = n * 2 + b
    return n if n < FRAMES else None


def probe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", path],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def packets(path, sel):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", sel, "-show_entries",
         "packet=pts,dts,duration,flags", "-of", "json", path],
        check=True, capture_output=True, text=True).stdout
    return json.loads(out)["packets"]


def ideal_audio(i):
    """The signal make-demo-clip.sh encodes (its `tone`), at sample i of a loop."""
    t = (i % (16 * 48000)) / 48000.0
    m = t % 1
    beep = 0.0
    if m < 0.06:
        beep = 0.3 * math.sin(math.pi * m / 0.06) * math.sin(2 * math.pi * (1760 if t < 1 else 880) * t)
    return 0.2 * math.sin(2 * math.pi * 440 * t) + beep


def check_audio_seam(path):
    """Plays the audio track twice back to back: around the seam the decoded
    signal must match the ideal one as closely as in the middle of the clip."""
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-stream_loop", "1", "-i", path, "-map", "0:a:0",
         "-c", "copy", "-f", "adts", "-"], check=True, capture_output=True).stdout
    pcm = subprocess.run(
        ["ffmpeg", "-v", "error", "-f", "aac", "-i", "-", "-ac", "1", "-f", "f32le", "-"],
        input=raw, check=True, capture_output=True).stdout
    s = struct.unpack(f"<{len(pcm) // 4}f", pcm)
    period = 16 * 48000
    if len(s) != 2 * period:
        fail(f"two loops of audio decode to {len(s)} samples, want {2 * period}")

    def err(centre):
        return max(abs(s[centre + i] - ideal_audio(centre + i)) for i in range(-4800, 4800))

    seam, middle = err(period), err(period // 2)
    if seam > 0.01 or middle > 0.01:
        fail(f"audio differs from the periodic signal by {seam:.4f} at the loop seam and "
             f"{middle:.4f} mid-clip (want < 0.01 both)")
    return seam


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "demo.mp4")
    size = os.path.getsize(path)
    if size > 1_200_000:
        fail(f"{path} is {size} bytes, want < 1.2 MB")

    info = probe(path)
    v = [s for s in info["streams"] if s["codec_type"] == "video"]
    a = [s for s in info["streams"] if s["codec_type"] == "audio"]
    if len(v) != 1 or len(a) != 1:
        fail(f"want one video + one audio stream, got {len(v)} + {len(a)}")
    v, a = v[0], a[0]
    want_v = {"codec_name": "h264", "width": W, "height": H, "pix_fmt": "yuv420p",
              "r_frame_rate": "30/1", "avg_frame_rate": "30/1", "nb_frames": str(FRAMES),
              "has_b_frames": 0}
    for k, want in want_v.items():
        if v.get(k) != want:
            fail(f"video {k} = {v.get(k)!r}, want {want!r}")
    if v.get("profile") not in ("High", "Main"):
        fail(f"video profile {v.get('profile')!r}")
    want_a = {"codec_name": "aac", "profile": "LC", "sample_rate": "48000", "channels": 2,
              "nb_frames": str(AUDIO_FRAMES)}
    for k, want in want_a.items():
        if a.get(k) != want:
            fail(f"audio {k} = {a.get(k)!r}, want {want!r}")
    for s, want in ((v, "16.000000"), (a, "16.000000")):
        if s.get("duration") != want:
            fail(f"{s['codec_type']} duration {s.get('duration')!r}, want {want}")
    if "fragmented" in json.dumps(info["format"].get("tags", {})).lower():
        fail("clip looks fragmented")

    vp = packets(path, "v:0")
    if len(vp) != FRAMES:
        fail(f"{len(vp)} video packets, want {FRAMES}")
    for i, p in enumerate(vp):
        if p["pts"] != p["dts"]:
            fail(f"video packet {i}: pts {p['pts']} != dts {p['dts']} (B-frames?)")
        key = "K" in p["flags"]
        if key != (i % 30 == 0):
            fail(f"video packet {i}: keyframe={key}, want keyframes exactly every 30 frames")
    ap = packets(path, "a:0")
    if len(ap) != AUDIO_FRAMES or ap[0]["pts"] != 0:
        fail(f"{len(ap)} audio packets starting at pts {ap[0]['pts']}, want {AUDIO_FRAMES} from 0")

    # Every frame's top band as 8-bit grey: read the middle 8 rows of the band.
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", path, "-map", "0:v:0",
         "-vf", f"crop={W}:8:0:{BAR_H // 2 - 4},format=gray", "-f", "rawvideo", "-"],
        check=True, capture_output=True).stdout
    band = W * 8
    if len(raw) != band * FRAMES:
        fail(f"decoded {len(raw) // band} frames, want {FRAMES}")
    cell_w = W // CELLS
    worst = 255
    for n in range(FRAMES):
        frame = raw[n * band:(n + 1) * band]
        cells = []
        for c in range(CELLS):
            x0, x1 = c * cell_w + cell_w // 4, (c + 1) * cell_w - cell_w // 4
            vals = [frame[r * W + x] for r in range(8) for x in range(x0, x1)]
            cells.append(sum(vals) / len(vals))
            worst = min(worst, abs(cells[-1] - 128))
        got = decode_barcode(cells)
        if got != n:
            fail(f"frame {n}: barcode reads {got} (cells {[round(x) for x in cells]})")
    seam = check_audio_seam(path)
    print(f"demo clip OK: {path}, {size} bytes, 480 frames, 750 AAC frames, 16.000 s, "
          f"keyframe every 30, barcode reads n on all 480 frames "
          f"(worst cell margin {worst:.0f}/128), audio seam error {seam:.4f}")


if __name__ == "__main__":
    main()
