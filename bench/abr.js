// abr.js — what the ABR benchmark (`cargo xtask bench abr`) reads from a page, the
// same for every player: which rendition is playing and when the picture stalled.
// Watches only; never drives the player.
//
//   var abr = lucarneAbr.start(function () { return videoElementOrNull; });
//   abr.level(height, 'source');   // the player says a rendition of this height plays
//
// Results in window.__lucarneAbr (times are Date.now() / 1000, unix seconds, so the
// runner can cut every page's record to the same wall-clock window):
// - first_frame: when the video first played (time advancing), null before;
// - levels: [{t, height, source}], each change of the rendition the player reports;
// - resizes: [{t, height}], each change of the <video>'s videoHeight (the picture
//   itself: a cross-check of `levels` that needs no player API);
// - stalls: [{from, to}], `waiting` to `playing` or to the time advancing again
//   (`to` null while still stalled); only after the first frame;
// - frozen_s: seconds, polled every 100 ms, during which the time did not advance
//   while not paused (after the first frame): a cross-check of `stalls`;
// - ahead: [{t, s}], every 500 ms after the first frame (at most 2,000), the seconds
//   buffered ahead of the playhead: how much a player has to ride out a slower link;
// - errors: what the player or the page reported.
(function () {
  'use strict';
  var POLL_MS = 100;

  function now() {
    return Date.now() / 1000;
  }

  // Seconds buffered from the playhead to the end of its buffered range.
  function bufferedAhead(v) {
    var b = v.buffered;
    for (var i = 0; i < b.length; i++) {
      if (b.start(i) <= v.currentTime + 0.1 && v.currentTime <= b.end(i)) {
        return b.end(i) - v.currentTime;
      }
    }
    return 0;
  }

  function start(getVideo) {
    var r = (window.__lucarneAbr = {
      first_frame: null,
      levels: [],
      resizes: [],
      stalls: [],
      frozen_s: 0,
      ahead: [],
      errors: [],
    });
    var video = null;
    var lastTime = null;
    var lastPoll = null;
    var polls = 0;

    function open() {
      var s = r.stalls[r.stalls.length - 1];
      return s && s.to === null ? s : null;
    }
    function endStall() {
      var s = open();
      if (s) s.to = now();
    }
    function advancing(t) {
      if (r.first_frame === null) r.first_frame = now();
      // Past the time it stalled at: the moves seen in the poll that saw `waiting`
      // come before the stall.
      var s = open();
      if (s && t > s.at) s.to = now();
    }

    function attach(v) {
      video = v;
      v.addEventListener('waiting', function () {
        if (r.first_frame !== null && !open()) {
          r.stalls.push({ from: now(), to: null, at: v.currentTime });
        }
      });
      v.addEventListener('playing', function () {
        if (r.first_frame !== null) endStall();
      });
      v.addEventListener('resize', function () {
        var h = v.videoHeight;
        var last = r.resizes[r.resizes.length - 1];
        if (h > 0 && (!last || last.height !== h)) r.resizes.push({ t: now(), height: h });
      });
      v.addEventListener('error', function () {
        if (r.errors.length < 20) r.errors.push('video error ' + (v.error && v.error.code));
      });
    }

    setInterval(function () {
      if (!video) {
        var v = getVideo();
        if (v) attach(v);
        return;
      }
      var t = video.currentTime;
      var at = now();
      // Time advancing, not by a seek: the picture moves.
      var moved = lastTime !== null && t > lastTime && !video.seeking && !video.paused;
      if (r.first_frame !== null && lastPoll !== null && !moved && !video.paused) {
        r.frozen_s += at - lastPoll;
      }
      if (moved) advancing(t);
      lastTime = t;
      lastPoll = at;
      polls += 1;
      if (r.first_frame !== null && polls % 5 === 0 && r.ahead.length < 2000) {
        r.ahead.push({ t: at, s: bufferedAhead(video) });
      }
    }, POLL_MS);

    return {
      results: r,
      level: function (height, source) {
        var last = r.levels[r.levels.length - 1];
        if (height > 0 && (!last || last.height !== height)) {
          r.levels.push({ t: now(), height: height, source: source });
        }
      },
      error: function (message) {
        if (r.errors.length < 20) r.errors.push(String(message));
      },
    };
  }

  window.lucarneAbr = { start: start };
})();
