// measure.js — glass-to-glass latency, time to first frame and stalls of a <video>
// playing lucarne's demo stream, measured from the pixels actually presented.
//
// Owns: reading the frame-index barcode that media/make-demo-clip.sh draws on the
// top 32 rows of every frame, and the samples in `window.__lucarneBench`. It never
// touches the player (no play(), no seeking, no muting): it only watches.
//
// How latency is known: the demo stream's media time is unix time and the 16 s clip
// (480 frames at 30 fps) loops from the unix epoch, so clip frame n was "captured"
// at the most recent wall-clock time t <= now with t mod 16 == n / 30. For every
// presented frame (requestVideoFrameCallback) we draw the barcode band into a small
// canvas, read n, and record latency = now - t, where now is the frame's
// presentation time on the wall clock. Latency is therefore known modulo 16 s;
// anything above that would alias (no player here comes near it).
//
// Usage (plain script, no modules):
//   <script src="measure.js"></script>
//   lucarneMeasure.start(() => document.querySelector('.lucarne-host')
//       ?.shadowRoot?.querySelector('video'));
// The finder is polled, because players create their <video> late and may replace it.
(function () {
  'use strict';

  // Must match media/make-demo-clip.sh and media/check-demo-clip.py.
  var CLIP_S = 16;
  var FPS = 30;
  var FRAMES = 480;
  var CELLS = 12;
  var BAR_H = 32; // rows of the barcode band in the 480x270 clip
  var CLIP_H = 270;
  // The band is scaled into this canvas: 10 px per cell, 8 rows.
  var CW = CELLS * 10;
  var CH = 8;

  /**
   * Decodes the barcode from RGBA pixels of the CW x CH canvas.
   * Returns the frame index 0..479, or -1 when the markers or parity do not check.
   */
  function decodeBand(rgba) {
    var bits = [];
    for (var c = 0; c < CELLS; c++) {
      var sum = 0;
      var count = 0;
      // Centre of the cell, middle rows: away from edges blurred by scaling and coding.
      for (var y = 2; y < CH - 2; y++) {
        for (var x = c * 10 + 3; x < c * 10 + 7; x++) {
          var i = (y * CW + x) * 4;
          // Rec. 601 luma of the RGB the browser produced.
          sum += 0.299 * rgba[i] + 0.587 * rgba[i + 1] + 0.114 * rgba[i + 2];
          count++;
        }
      }
      bits.push(sum / count >= 128 ? 1 : 0);
    }
    if (bits[0] !== 1 || bits[CELLS - 1] !== 0) return -1;
    var ones = 0;
    for (var k = 1; k <= 10; k++) ones += bits[k];
    if (ones % 2 !== 1) return -1;
    var n = 0;
    for (var b = 1; b <= 9; b++) n = n * 2 + bits[b];
    return n < FRAMES ? n : -1;
  }

  /**
   * Reads the clip frame index of the frame `video` shows now, through the 2D
   * context `ctx` of a CW x CH canvas. Returns 0..479, or -1 when unreadable.
   */
  function readFrame(ctx, video) {
    var vw = video.videoWidth;
    var vh = video.videoHeight;
    if (!(vw > 0 && vh > 0)) return -1;
    ctx.drawImage(video, 0, 0, vw, (vh * BAR_H) / CLIP_H, 0, 0, CW, CH);
    return decodeBand(ctx.getImageData(0, 0, CW, CH).data);
  }

  /** A context to pass to readFrame. */
  function newReader() {
    var canvas = document.createElement('canvas');
    canvas.width = CW;
    canvas.height = CH;
    return canvas.getContext('2d', { willReadFrequently: true });
  }

  /** Latency in seconds of clip frame n presented at wall-clock time nowS (unix s). */
  function latencyOf(n, nowS) {
    var offset = n / FPS;
    var t = Math.floor((nowS - offset) / CLIP_S) * CLIP_S + offset;
    return nowS - t;
  }

  function newResults() {
    return {
      samples: [], // latency in seconds, one per readable presented frame
      ttff_s: null, // first presented frame, seconds since navigation start
      stalls: 0, // `waiting` events after the first frame
      errors: [], // strings: exceptions, media errors
      frames: 0, // presented frames seen (readable or not)
      unreadable: 0, // presented frames whose barcode did not validate
      first_n: null, // clip frame index of the first readable frame
      // Diagnostic: does the frame read n agree with the frame's media time
      // (n == round(mediaTime * 30) mod 480)? True when the player keeps the
      // stream's unix-time timestamps, or plays the clip itself from 0.
      mediatime_agree: 0,
      mediatime_disagree: 0,
      videos: 0, // how many distinct <video> elements were attached
    };
  }

  function start(findVideo, options) {
    var opts = options || {};
    var results = newResults();
    window.__lucarneBench = results;

    var ctx = newReader();
    var current = null;
    // opts.keepFrames: also keep [n, mediaTime, presentationTime] per frame (tests).
    if (opts.keepFrames) results.frame_log = [];

    function onFrame(video, now, meta) {
      if (video !== current) return; // detached element
      try {
        if (results.ttff_s === null) results.ttff_s = meta.presentationTime / 1000;
        results.frames++;
        var n = readFrame(ctx, video);
        if (results.frame_log) results.frame_log.push([n, meta.mediaTime, meta.presentationTime]);
        if (n < 0) {
          results.unreadable++;
        } else {
          if (results.first_n === null) results.first_n = n;
          var nowS = (performance.timeOrigin + meta.presentationTime) / 1000;
          results.samples.push(latencyOf(n, nowS));
          var expected = Math.round(meta.mediaTime * FPS) % FRAMES;
          if (expected === n) results.mediatime_agree++;
          else results.mediatime_disagree++;
        }
      } catch (e) {
        if (results.errors.length < 20) results.errors.push('frame: ' + e);
      }
      video.requestVideoFrameCallback(function (t, m) {
        onFrame(video, t, m);
      });
    }

    function attach(video) {
      current = video;
      results.videos++;
      if (typeof video.requestVideoFrameCallback !== 'function') {
        results.errors.push('requestVideoFrameCallback is not supported by this browser');
        return;
      }
      video.addEventListener('waiting', function () {
        if (video === current && results.ttff_s !== null) results.stalls++;
      });
      video.addEventListener('error', function () {
        var err = video.error;
        results.errors.push('media error ' + (err ? err.code + ' ' + err.message : '?'));
      });
      video.requestVideoFrameCallback(function (t, m) {
        onFrame(video, t, m);
      });
    }

    var poll = setInterval(function () {
      var video = null;
      try {
        video = findVideo();
      } catch (e) {
        // The host may not exist yet; keep polling.
      }
      if (video && video !== current) attach(video);
    }, opts.pollMs || 5); // short: a frame shown before attaching would be missed

    return {
      results: results,
      stop: function () {
        clearInterval(poll);
        current = null;
      },
    };
  }

  window.lucarneMeasure = {
    start: start,
    decodeBand: decodeBand,
    readFrame: readFrame,
    newReader: newReader,
    latencyOf: latencyOf,
  };
})();
