// The broadcaster console's stream-health panel (see crates/server/src/studio/mod.rs,
// "Health"): while the stream is live, asks POST /studio/{stream}/health every 2 s with
// the console's secret and shows bitrate, frame rate, keyframe interval, dropped
// frames and the viewers' latency p50. Shares nothing with studio.js but the secret
// (sessionStorage) and the live badge it reads.
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const stream = decodeURIComponent(location.pathname.split('/')[2] || '');
  const storeKey = 'lucarne.studio.' + stream;
  const POLL_MS = 2000;
  // Longer than this between keyframes: viewers wait that long to start, and segments
  // grow with it (the server warns past 4 s too).
  const LONG_KEYFRAME_INTERVAL = 4;
  const panel = $('stream-health');
  if (!panel) return;

  let lastDropped = null;
  // Polls since the dropped count last rose: the warning stays for 5 of them (10 s).
  let sinceDrop = Infinity;
  let live = false;
  let refused = false;

  const show = (name, text, warn) => {
    const el = panel.querySelector('[data-figure="' + name + '"]');
    if (!el) return;
    el.querySelector('dd').textContent = text;
    el.dataset.warn = warn ? 'true' : 'false';
  };
  const kbps = (bps) => bps >= 1e6 ? (bps / 1e6).toFixed(2) + ' Mbit/s' : Math.round(bps / 1e3) + ' kbit/s';
  const dash = '—';

  function render(h) {
    live = !!h.live;
    panel.classList.toggle('hidden', !live);
    if (!live) { lastDropped = null; sinceDrop = Infinity; return; }
    show('bitrate', h.bitrate != null ? kbps(h.bitrate) : dash, false);
    show('fps', h.frameRate != null ? h.frameRate.toFixed(1) + ' fps' : dash, false);
    const ki = h.keyframeInterval;
    show('keyframe', ki != null ? ki.toFixed(1) + ' s' : dash, ki != null && ki > LONG_KEYFRAME_INTERVAL);
    const dropped = h.droppedFrames || 0;
    if (lastDropped !== null && dropped > lastDropped) sinceDrop = 0; else sinceDrop += 1;
    lastDropped = dropped;
    show('dropped', String(dropped), sinceDrop < 5);
    show('latency', h.viewerLatency != null
      ? h.viewerLatency.toFixed(1) + ' s (' + h.viewerReports + (h.viewerReports === 1 ? ' viewer)' : ' viewers)')
      : dash, false);
    panel.dataset.warn = panel.querySelector('[data-warn="true"]') ? 'true' : 'false';
  }

  async function poll() {
    const secret = sessionStorage.getItem(storeKey);
    const badge = $('live-badge');
    const unlocked = secret && !$('console').classList.contains('hidden');
    // Only while the stream is live (the console's badge, or the last answer).
    if (refused || !unlocked || !(live || (badge && badge.dataset.state === 'live'))) {
      if (!unlocked) panel.classList.add('hidden');
      return;
    }
    try {
      const r = await fetch('/studio/' + encodeURIComponent(stream) + '/health', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ secret }),
        cache: 'no-store',
      });
      // A refused secret: the console asks for another; do not spend guesses on it.
      if (r.status === 403) { refused = true; panel.classList.add('hidden'); return; }
      if (!r.ok) return;
      render(await r.json());
    } catch (e) {
      // The server is unreachable: the console says so; try again next time.
    }
  }
  setInterval(poll, POLL_MS);
  // A new secret (the form) may be the right one.
  document.getElementById('unlock').addEventListener('submit', () => { refused = false; });
})();
