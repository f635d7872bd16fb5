#!/usr/bin/env bash
# make-demo-clip.sh — builds media/demo.mp4, the clip lucarne-server loops as the
# built-in "demo" live stream, then checks it with check-demo-clip.py.
#
# Usage: media/make-demo-clip.sh [output.mp4]      (needs ffmpeg and python3)
#
# The server re-times this clip as live: decode time = unix wall-clock time, the
# clip restarting every 16 s from the unix epoch. Every number below exists so
# that the loop is exact and the stream cuts into clean 1 s HLS segments:
#
# * Exactly 16.000 s. Both media clocks divide it exactly: 16 s x 30 fps = 480
#   video frames, and 16 s x 48000 Hz = 768000 samples = 750 AAC frames of 1024
#   samples. So loop k starts at exactly 16k s on both tracks, with no drift and no
#   fractional frame to drop at the seam, and a viewer can compute which frame
#   should be on screen from the wall clock alone (what bench/measure.js does).
# * 30 fps constant (480 frames): one frame = 1/30 s, no variable frame durations
#   for the server to interpolate. Video timescale 90 kHz = 3000 ticks per frame.
# * No B-frames (-bf 0): decode order = presentation order and pts = dts, so a
#   fragment's decode time IS its presentation time (no composition offsets, no
#   edit list) and the newest fragment can be shown as soon as it arrives, which
#   matters for the low-latency push.
# * A keyframe every 30 frames exactly (-g 30 -keyint_min 30 -sc_threshold 0),
#   closed GOP, each keyframe an IDR: every second starts with an independently
#   decodable frame, so every 1 s HLS segment (and every place a player may join
#   or resume) begins with a keyframe. Scene-cut detection is off so no extra
#   keyframe breaks the rhythm.
# * ~400 kbit/s video, high profile, 480x270 yuv420p: small enough to commit
#   (whole clip < 1.2 MB) and to stream anywhere, big enough to look decent.
#   The rate is capped (maxrate/bufsize) so that 1 s segments stay similar in size.
# * AAC-LC 48 kHz stereo ~96 kbit/s, a 440 Hz tone with a short beep at the start
#   of every second (higher on the loop's first second, so the seam is audible as
#   a landmark, not as a glitch). 440 Hz x 16 s = 7040 whole cycles and the beeps
#   repeat every 16 s, so the signal is periodic in 16 s. AAC frames overlap their neighbours
#   (MDCT) and the encoder adds 1024 samples of priming, so an encode of one 16 s
#   period would click at the seam and carry an edit list. Instead we encode
#   three periods and keep the 750 frames of the middle one: those frames were
#   encoded with a periodic past and future, they carry no priming, and frame 0
#   overlaps seamlessly with frame 749 of the previous loop.
# * Regular (non-fragmented) MP4 with +faststart (moov first), no edit lists
#   (-use_editlist 0): the server reads the sample tables once and cuts CMAF
#   fragments itself; a simple parser sees pts starting at 0 on both tracks.
# * Machine-readable barcode of the frame index n (0..479) along the top edge,
#   rows 0..31 (two macroblock rows, so it survives H.264 at low bit rates),
#   12 cells of 40 px across the full width, each cell black or white:
#     cell 0      start marker, always white
#     cells 1..9  the 9 bits of n, most significant first (white = 1)
#     cell 10     odd parity: the cells 1..10 hold an odd number of whites
#     cell 11     stop marker, always black
#   A reader samples the centre of each cell, thresholds at mid-grey and rejects
#   the frame unless the markers, the parity and n < 480 all check out.
#   Drawn with geq, whose N is the frame number.
# * Human-readable too: "lucarne demo", the frame counter and the time, in
#   DejaVu Sans (apt fonts-dejavu-core) when drawtext and the font exist.
# * Reproducible: single-threaded x264 and bitexact muxing, so the same ffmpeg
#   build gives the same bytes (ffmpeg 5.1 from Debian 12 made the committed clip).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/demo.mp4}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

command -v ffmpeg >/dev/null || { echo "ffmpeg not found (apt-get install ffmpeg)" >&2; exit 1; }

# ---- video -----------------------------------------------------------------
W=480 H=270 FPS=30 FRAMES=480 BAR_H=32 CELL_W=40

# Odd parity over the 9 bits of N.
popcount="0"
for k in 0 1 2 3 4 5 6 7 8; do popcount="$popcount+bitand(floor(N/$((1 << k))),1)"; done
parity="1-mod($popcount,2)"
# Cell value (1 = white) for cell index ld(0).
cell="if(eq(ld(0),0),1,if(eq(ld(0),11),0,if(eq(ld(0),10),$parity,bitand(floor(N/pow(2,9-ld(0))),1))))"
# Limited-range luma: 16 black, 235 white. Neutral chroma inside the band.
lum="if(lt(Y,$BAR_H),st(0,trunc(X/$CELL_W));16+219*($cell),lum(X,Y))"
chroma_cb="if(lt(Y,$BAR_H*SH),128,cb(X,Y))"
chroma_cr="if(lt(Y,$BAR_H*SH),128,cr(X,Y))"

font=""
for f in /usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf \
         /usr/share/fonts/dejavu/DejaVuSans-Bold.ttf; do
  [ -f "$f" ] && { font="$f"; break; }
done
text=""
filters="$(ffmpeg -hide_banner -filters 2>/dev/null || true)"
if [ -n "$font" ] && grep -q ' drawtext ' <<<"$filters"; then
  box="box=1:boxcolor=black@0.55:boxborderw=8:fontcolor=white:fontfile=$font"
  text=",drawtext=$box:fontsize=26:text='lucarne demo':x=(w-tw)/2:y=h-th-18"
  text="$text,drawtext=$box:fontsize=44:text='%{eif\\:n\\:d\\:3}':x=(w-tw)/2:y=60"
  text="$text,drawtext=$box:fontsize=20:text='of 480 frames  ·  t %{pts\\:hms}':x=(w-tw)/2:y=124"
else
  echo "note: drawtext or DejaVu font missing, clip will have no text" >&2
fi

cat >"$tmp/video.filter" <<EOF
testsrc2=size=${W}x${H}:rate=${FPS}:duration=16,format=yuv420p${text},geq=lum='${lum}':cb='${chroma_cb}':cr='${chroma_cr}'
EOF

ffmpeg -hide_banner -loglevel error -y \
  -filter_complex_script "$tmp/video.filter" \
  -frames:v "$FRAMES" -r "$FPS" \
  -c:v libx264 -profile:v high -preset slow -pix_fmt yuv420p \
  -b:v 400k -maxrate 450k -bufsize 450k \
  -bf 0 -g 30 -keyint_min 30 -sc_threshold 0 -flags +cgop \
  -x264-params "keyint=30:min-keyint=30:scenecut=0:open-gop=0:bframes=0" \
  -threads 1 -fflags +bitexact -flags:v +bitexact \
  -f h264 "$tmp/video.h264"

# ---- audio -----------------------------------------------------------------
# A soft 440 Hz tone; a 60 ms 880 Hz beep (sine-shaped envelope, no click) at the
# start of every second, 1760 Hz for the one that starts each 16 s loop. Written
# as a function of t, so it is periodic by construction (ffmpeg's sine filter is
# not: its beep phase only advances while beeping, so it repeats every 5 s).
tone="0.2*sin(2*PI*440*t)+0.3*lt(mod(t,1),0.06)*sin(PI*mod(t,1)/0.06)*sin(2*PI*if(lt(mod(t,16),1),1760,880)*t)"
# Three 16 s periods, encoded to ADTS (one header per AAC frame, easy to cut).
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "aevalsrc=exprs='${tone}':sample_rate=48000:duration=48" \
  -af "aformat=sample_fmts=fltp:channel_layouts=stereo" \
  -c:a aac -profile:a aac_low -b:a 96k -fflags +bitexact -flags:a +bitexact \
  -f adts "$tmp/audio3.aac"

# ADTS frame j (0-based) of the encoder output covers input samples
# [(j-1)*1024, j*1024) because of the 1024-sample priming, so the middle period
# [768000, 1536000) is frames 751..1500.
python3 - "$tmp/audio3.aac" "$tmp/audio.aac" <<'PY'
import sys
data = open(sys.argv[1], "rb").read()
frames, i = [], 0
while i + 7 <= len(data):
    assert data[i] == 0xFF and data[i + 1] & 0xF0 == 0xF0, f"lost ADTS sync at byte {i}"
    n = ((data[i + 3] & 3) << 11) | (data[i + 4] << 3) | (data[i + 5] >> 5)
    frames.append(data[i:i + n])
    i += n
assert len(frames) == 2251, f"expected 2251 ADTS frames (3 x 750 + priming), got {len(frames)}"
open(sys.argv[2], "wb").write(b"".join(frames[751:1501]))
PY

# ---- mux -------------------------------------------------------------------
ffmpeg -hide_banner -loglevel error -y \
  -r "$FPS" -f h264 -i "$tmp/video.h264" -f aac -i "$tmp/audio.aac" \
  -map 0:v -map 1:a -c copy \
  -video_track_timescale 90000 -use_editlist 0 -movflags +faststart \
  -map_metadata -1 -fflags +bitexact \
  "$out"

python3 "$here/check-demo-clip.py" "$out"
