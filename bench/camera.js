// camera.js — the camera stand-in of the go-live benchmark (bench_golive): a canvas
// that shows the wall clock as the barcode bench/measure.js reads, handed to the page
// as its camera.
//
// Owns: drawing the barcode from Date.now() at 30 fps, replacing
// navigator.mediaDevices.getUserMedia with a function that returns the canvas's
// captureStream(30) (plus a quiet 440 Hz tone from an AudioContext when audio is
// asked for), and counting what it drew in `window.__lucarneCamera`. It never touches
// the page otherwise: the console records whatever getUserMedia returned, as it would
// a camera's stream.
//
// The barcode is that of media/make-demo-clip.sh, with the frame index taken from the
// wall clock as tests/e2e/src/publisher.rs does for ffmpeg: n = round(t * 30) mod 480,
// t the unix time in seconds. A frame is drawn right after each 1/30 s boundary of the
// wall clock, so the frame showing n was "captured" at t = n / 30 (mod 16 s), which is
// what measure.js assumes: latency = presentation time - t. The timer's lateness (how
// long after the boundary the frame was drawn) counts as latency, like a real
// camera's capture delay; `late_ms` keeps it, to tell it apart.
//
// The band scales with the canvas: the top 32/270 of the height, 12 cells across the
// full width (measure.js reads the band in proportion to the frame).
//
// Usage: run this file in the page (WebDriver's execute script), then
//   lucarneCamera.install({ width: 640, height: 360 });
// before the page calls getUserMedia. Nothing happens on load.
(function () {
  'use strict';

  // Must match media/make-demo-clip.sh and bench/measure.js.
  var FPS = 30;
  var FRAMES = 480;
  var CELLS = 12;
  var BAR_H = 32;
  var CLIP_H = 270;
  var PERIOD_MS = 1000 / FPS;

  /** The frame index of wall-clock time `ms` (unix milliseconds). */
  function frameIndex(ms) {
    return Math.floor((ms * FPS) / 1000 + 0.5) % FRAMES;
  }

  /** The 12 cells of frame `n`: start marker, 9 bits (MSB first), odd parity, stop. */
  function cells(n) {
    var bits = [1];
    var ones = 0;
    for (var b = 8; b >= 0; b--) {
      var bit = (n >> b) & 1;
      ones += bit;
      bits.push(bit);
    }
    bits.push(ones % 2 === 0 ? 1 : 0);
    bits.push(0);
    return bits;
  }

  function draw(ctx, w, h, n, nowMs) {
    ctx.fillStyle = '#404850';
    ctx.fillRect(0, 0, w, h);
    // Something that moves, so the encoder has a picture to code and not a still.
    var x = ((nowMs / 4000) % 1) * w;
    ctx.fillStyle = '#d08030';
    ctx.fillRect(x - w / 16, h * 0.45, w / 8, h / 4);
    ctx.fillStyle = '#ffffff';
    ctx.font = Math.round(h / 9) + 'px sans-serif';
    ctx.fillText('frame ' + n + '  ' + new Date(nowMs).toISOString().slice(11, 23), w / 20, h * 0.3);
    // The barcode band.
    var band = (h * BAR_H) / CLIP_H;
    ctx.fillStyle = '#000000';
    ctx.fillRect(0, 0, w, band);
    ctx.fillStyle = '#ffffff';
    var bits = cells(n);
    for (var c = 0; c < CELLS; c++) {
      if (bits[c]) ctx.fillRect((c * w) / CELLS, 0, w / CELLS, band);
    }
  }

  function install(options) {
    var opts = options || {};
    var w = opts.width || 640;
    var h = opts.height || 360;
    var stats = (window.__lucarneCamera = {
      width: w,
      height: h,
      drawn: 0, // frames drawn
      skipped: 0, // frame indices the timer missed (drawn too late for them)
      late_ms: [], // per frame drawn: ms after its 1/30 s boundary (first 2000 kept)
      calls: 0, // getUserMedia calls answered
      errors: [],
    });

    var canvas = document.createElement('canvas');
    canvas.width = w;
    canvas.height = h;
    var ctx = canvas.getContext('2d');
    var last = -1;
    function tick() {
      var now = Date.now();
      var n = frameIndex(now);
      if (n !== last) {
        if (last >= 0) stats.skipped += (n - last - 1 + FRAMES) % FRAMES;
        last = n;
        draw(ctx, w, h, n, now);
        stats.drawn++;
        if (stats.late_ms.length < 2000) {
          // Distance from the boundary the frame index rounds to.
          var boundary = Math.round(now / PERIOD_MS) * PERIOD_MS;
          stats.late_ms.push(now - boundary);
        }
      }
      // Wake just after the next boundary.
      var next = (Math.floor(Date.now() / PERIOD_MS) + 1) * PERIOD_MS;
      setTimeout(tick, Math.max(0, next - Date.now() + 1));
    }
    tick();
    var video = canvas.captureStream(FPS);

    var audio = null;
    function audioTrack() {
      if (!audio) {
        var Ctx = window.AudioContext || window.webkitAudioContext;
        var ac = new Ctx();
        var osc = ac.createOscillator();
        var gain = ac.createGain();
        osc.frequency.value = 440;
        gain.gain.value = 0.05;
        var dest = ac.createMediaStreamDestination();
        osc.connect(gain).connect(dest);
        osc.start();
        ac.resume().catch(function (e) {
          stats.errors.push('AudioContext: ' + e);
        });
        audio = dest.stream;
      }
      return audio.getAudioTracks()[0].clone();
    }

    // The console stops the old stream's tracks when it opens the camera again, so
    // every call gets clones.
    navigator.mediaDevices.getUserMedia = function (constraints) {
      stats.calls++;
      try {
        var tracks = [];
        if (!constraints || constraints.video) tracks.push(video.getVideoTracks()[0].clone());
        if (constraints && constraints.audio) tracks.push(audioTrack());
        return Promise.resolve(new MediaStream(tracks));
      } catch (e) {
        stats.errors.push('getUserMedia: ' + e);
        return Promise.reject(e);
      }
    };
    return { width: w, height: h };
  }

  window.lucarneCamera = { install: install, frameIndex: frameIndex, cells: cells };
})();
