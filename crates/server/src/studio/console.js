// The broadcaster console (see crates/server/src/studio/mod.rs for the design).
// Three parts that share nothing but the secret: the unlock form, the chat socket
// (as the broadcaster), and going live (camera -> MediaRecorder -> ingest socket).
'use strict';
(() => {
  const $ = (id) => document.getElementById(id);
  const stream = decodeURIComponent(location.pathname.split('/')[2] || '');
  const storeKey = 'lucarne.studio.' + stream;
  const wsBase = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host;
  // Recorder chunk length: short enough for low latency, long enough to stay cheap.
  const TIMESLICE_MS = 200;
  // Bytes the ingest socket may hold unsent before the console stops: a network that
  // cannot carry the camera gets a clear message, not a growing delay.
  const MAX_UNSENT = 8 << 20;
  // A recorder that has given nothing this long after starting gives nothing at all.
  const NO_DATA_MS = 5000;
  // Codecs in order of preference: H.264 is copied by the server, others re-encoded.
  const MIME_TYPES = [
    'video/webm;codecs=h264,opus',
    'video/mp4;codecs=avc1.42E01F,mp4a.40.2',
    'video/mp4;codecs=avc1,mp4a',
    'video/mp4',
    'video/webm;codecs=vp8,opus',
    'video/webm;codecs=vp9,opus',
    'video/webm',
  ];
  $('stream-name').textContent = stream;

  let secret = sessionStorage.getItem(storeKey);

  const status = (text, kind) => {
    $('status').textContent = text;
    $('status').dataset.kind = kind || 'info';
  };
  const setBadge = (state) => {
    const b = $('live-badge');
    b.dataset.state = state;
    b.textContent = { live: 'Live', offline: 'Offline', ended: 'Ended', unsupported: 'Unsupported' }[state] || state;
  };

  // ---- unlock ------------------------------------------------------------------
  // Checks a secret with the server; for a private stream the answer carries the
  // playback token the chat socket needs.
  async function check(candidate) {
    try {
      const r = await fetch('/studio/' + encodeURIComponent(stream) + '/unlock', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ secret: candidate }),
        cache: 'no-store',
      });
      const body = await r.json().catch(() => ({}));
      if (!r.ok) return { error: body.message || 'refused (' + r.status + ')' };
      return { chatToken: body.chatToken || null, broadcaster: !!body.broadcaster };
    } catch (e) {
      return { error: 'the server cannot be reached (' + e.message + ')' };
    }
  }
  function showForm(error) {
    $('unlock-error').textContent = error || '';
    $('console').classList.add('hidden');
    $('unlock').classList.remove('hidden');
  }
  async function unlock(candidate) {
    const r = await check(candidate);
    if (r.error) {
      sessionStorage.removeItem(storeKey);
      showForm(r.error);
      return;
    }
    secret = candidate;
    sessionStorage.setItem(storeKey, secret);
    $('unlock').classList.add('hidden');
    $('console').classList.remove('hidden');
    chat.broadcaster = r.broadcaster;
    chat.connect(r.chatToken);
  }
  $('unlock').addEventListener('submit', (e) => {
    e.preventDefault();
    const candidate = $('secret').value.trim();
    $('secret').value = '';
    if (candidate) unlock(candidate);
  });
  $('forget').addEventListener('click', () => {
    sessionStorage.removeItem(storeKey);
    location.reload();
  });

  // ---- chat, hearts, viewer count ----------------------------------------------
  const chat = {
    ws: null,
    role: 'viewer',
    broadcaster: false,
    resume: null,
    viewer: null,
    backoff: 500,
    pinger: null,
    async reconnect() {
      // A private stream's token may have expired: ask for a fresh one.
      const r = await check(secret);
      if (r.error) { showForm(r.error); return; }
      this.broadcaster = r.broadcaster;
      this.connect(r.chatToken);
    },
    connect(token) {
      const query = token ? '?token=' + encodeURIComponent(token) : '';
      const ws = new WebSocket(wsBase + '/chat/' + encodeURIComponent(stream) + query);
      this.ws = ws;
      ws.onopen = () => {
        // Only the broadcaster token is a chat token; a stream key opens a read-only chat.
        // Backstage: the console is not one of the viewers it counts.
        const hello = { type: 'hello', protocolVersion: 1, backstage: true };
        if (this.broadcaster) hello.authToken = secret;
        if (this.viewer) { hello.viewerId = this.viewer.id; hello.viewerToken = this.viewer.token; }
        if (this.resume) hello.resume = this.resume;
        ws.send(JSON.stringify(hello));
        this.pinger = setInterval(() => ws.readyState === 1 && ws.send('{"type":"ping"}'), 20000);
      };
      ws.onmessage = (e) => this.onMessage(JSON.parse(e.data));
      ws.onclose = () => {
        clearInterval(this.pinger);
        $('chat-state').dataset.state = 'closed';
        $('chat-state').textContent = 'chat: reconnecting…';
        const wait = this.backoff * (0.5 + Math.random());
        this.backoff = Math.min(this.backoff * 2, 15000);
        setTimeout(() => this.reconnect(), wait);
      };
    },
    send(msg) {
      if (this.ws && this.ws.readyState === 1) this.ws.send(JSON.stringify(msg));
    },
    onMessage(m) {
      switch (m.type) {
        case 'welcome': {
          this.backoff = 500;
          this.role = m.role || 'viewer';
          this.viewer = { id: m.viewerId, token: m.viewerToken };
          if (!m.recovered) { $('chat').replaceChildren(); this.questions.clear(); }
          for (const ev of m.history || []) this.onMessage(ev);
          for (const [id, n] of Object.entries(m.votes || {})) this.vote(id, n);
          this.pin(m.pinned || null);
          this.resume = { epoch: m.epoch, lastSeq: Math.max(m.seq, this.resume && this.resume.epoch === m.epoch ? this.resume.lastSeq : 0) };
          $('viewers').textContent = m.viewerCount;
          $('hearts-total').textContent = m.heartsTotal;
          setBadge(m.streamState || 'offline');
          $('slow-mode').value = String((m.settings && m.settings.slowModeSecs) || 0);
          const staff = this.role !== 'viewer';
          $('moderation').classList.toggle('hidden', !staff);
          $('mod-note').textContent = staff ? '' : 'Open the studio with the broadcaster token to moderate.';
          $('chat-state').dataset.state = 'open';
          $('chat-state').textContent = staff ? 'chat: connected as ' + this.role : 'chat: connected (read only)';
          break;
        }
        case 'chat':
          this.seen(m);
          this.addLine(m);
          if (m.question && !this.questions.has(m.id)) this.questions.set(m.id, { m, votes: 0 });
          this.listQuestions();
          break;
        case 'deleted': {
          this.seen(m);
          const li = document.querySelector('#chat li[data-id="' + CSS.escape(m.id) + '"]');
          if (li) li.remove();
          this.closeQuestion(m.id);
          break;
        }
        case 'answered': this.seen(m); this.closeQuestion(m.id); break;
        case 'pinned': this.seen(m); this.pin(m.question || null); break;
        case 'votes':
          for (const [id, n] of Object.entries(m.counts || {})) this.vote(id, n);
          break;
        case 'hearts': {
          $('hearts-total').textContent = m.total;
          for (const [colour, n] of Object.entries(m.counts || {})) {
            for (let i = 0; i < Math.min(n, 10); i++) floatHeart(colour);
          }
          break;
        }
        case 'viewerCount': $('viewers').textContent = m.count; break;
        case 'streamState': setBadge(m.state); break;
        case 'settings': $('slow-mode').value = String(m.slowModeSecs || 0); break;
        case 'error': case 'notice': $('mod-note').textContent = m.message; break;
        default: break;
      }
    },
    // Open questions by id ({m, votes}), listed most voted first; the pinned one.
    questions: new Map(),
    pinnedId: null,
    vote(id, n) {
      const q = this.questions.get(id);
      if (q) { q.votes = n; this.listQuestions(); }
    },
    closeQuestion(id) {
      this.questions.delete(id);
      if (this.pinnedId === id) this.pin(null);
      this.listQuestions();
    },
    pin(question) {
      this.pinnedId = question ? question.id : null;
      $('pinned').classList.toggle('hidden', !question);
      $('unpin').classList.toggle('hidden', this.role === 'viewer');
      $('pinned').querySelector('.text').textContent = question ? question.name + ': ' + question.text : '';
      this.listQuestions();
    },
    listQuestions() {
      const staff = this.role !== 'viewer';
      const items = [...this.questions.values()]
        .sort((a, b) => b.votes - a.votes || a.m.seq - b.m.seq)
        .map(({ m, votes }) => {
          const li = document.createElement('li');
          li.dataset.id = m.id;
          if (m.id === this.pinnedId) li.className = 'is-pinned';
          const count = document.createElement('span');
          count.className = 'votes';
          count.textContent = '+' + votes;
          const text = document.createElement('span');
          text.className = 'text';
          text.textContent = m.name + ': ' + m.text;
          li.append(count, text);
          if (staff) {
            const button = (cls, label, msg) => {
              const b = document.createElement('button');
              b.type = 'button';
              b.className = 'mod ' + cls;
              b.textContent = label;
              b.onclick = () => this.send(msg);
              return b;
            };
            li.append(
              button('pin', m.id === this.pinnedId ? 'Pinned' : 'Pin', { type: 'pin', id: m.id }),
              button('answer', 'Answered', { type: 'answer', id: m.id }),
            );
          }
          return li;
        });
      $('questions').replaceChildren(...items);
      $('questions-count').textContent = String(items.length);
    },
    seen(ev) {
      if (this.resume && ev.seq > this.resume.lastSeq) this.resume.lastSeq = ev.seq;
    },
    addLine(m) {
      if (document.querySelector('#chat li[data-id="' + CSS.escape(m.id) + '"]')) return;
      const li = document.createElement('li');
      li.dataset.id = m.id;
      li.dataset.viewer = m.viewerId;
      const name = document.createElement('span');
      name.className = 'name';
      name.style.color = m.colour;
      name.textContent = m.name;
      const text = document.createElement('span');
      text.className = 'text';
      text.textContent = m.text;
      li.append(name, text);
      if (this.role !== 'viewer' && m.role !== 'broadcaster') {
        const del = document.createElement('button');
        del.className = 'mod delete';
        del.type = 'button';
        del.textContent = 'Delete';
        del.onclick = () => this.send({ type: 'delete', id: m.id });
        const ban = document.createElement('button');
        ban.className = 'mod ban';
        ban.type = 'button';
        ban.textContent = 'Ban';
        ban.onclick = () => {
          if (confirm('Ban ' + m.name + '?')) this.send({ type: 'ban', viewerId: m.viewerId });
        };
        li.append(del, ban);
      }
      const list = $('chat');
      const atBottom = list.scrollTop + list.clientHeight >= list.scrollHeight - 40;
      list.append(li);
      while (list.children.length > 200) list.firstElementChild.remove();
      if (atBottom) list.scrollTop = list.scrollHeight;
    },
  };
  $('unpin').addEventListener('click', () => chat.send({ type: 'pin' }));
  $('slow-mode').addEventListener('change', (e) => chat.send({ type: 'slowMode', seconds: Number(e.target.value) }));

  function floatHeart(colour) {
    const layer = $('hearts');
    if (layer.childElementCount > 40) return;
    const h = document.createElement('span');
    h.textContent = '♥';
    h.style.color = colour;
    h.style.left = (10 + Math.random() * 80) + '%';
    h.addEventListener('animationend', () => h.remove());
    layer.append(h);
  }

  // ---- camera and going live ---------------------------------------------------
  const live = {
    media: null, recorder: null, ws: null, sent: 0, sentAt: 0, lastBytes: 0, timer: null,
    ending: false, error: null,
    // Set once the server said live; a lost connection then retries until this time
    // (inside the server's grace period, so viewers see the same broadcast go on).
    retryUntil: 0, wasLive: false, retryTimer: null,
  };
  // Less than the server's default grace period (15 s).
  const RETRY_MS = 12000;
  // While reconnecting, the previous session may still hold the stream for a moment.
  const RETRYABLE = ['already_live', 'publisher_live'];

  async function openCamera() {
    if (live.media) live.media.getTracks().forEach((t) => t.stop());
    const video = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 30 } };
    if ($('camera').value) video.deviceId = { exact: $('camera').value };
    else if ($('facing').value) video.facingMode = { ideal: $('facing').value };
    const audio = $('microphone').value ? { deviceId: { exact: $('microphone').value } } : true;
    try {
      live.media = await navigator.mediaDevices.getUserMedia({ video, audio });
    } catch (e) {
      status('Cannot open the camera: ' + e.message + ' (allow the camera and microphone for this site)', 'error');
      return;
    }
    $('preview').srcObject = live.media;
    await $('preview').play().catch(() => {});
    await listDevices();
    $('go-live').disabled = false;
    status('Camera ready.');
  }

  async function listDevices() {
    const devices = await navigator.mediaDevices.enumerateDevices();
    const fill = (select, kind, current) => {
      const keep = select.value;
      select.replaceChildren();
      const any = document.createElement('option');
      any.value = '';
      any.textContent = kind === 'videoinput' ? 'Default camera' : 'Default microphone';
      select.append(any);
      devices.filter((d) => d.kind === kind).forEach((d, i) => {
        const o = document.createElement('option');
        o.value = d.deviceId;
        o.textContent = d.label || (kind === 'videoinput' ? 'Camera ' : 'Microphone ') + (i + 1);
        select.append(o);
      });
      select.value = keep || (current ? current.getSettings().deviceId || '' : '');
      select.disabled = false;
    };
    fill($('camera'), 'videoinput', live.media.getVideoTracks()[0]);
    fill($('microphone'), 'audioinput', live.media.getAudioTracks()[0]);
    $('facing').disabled = false;
  }

  $('camera-on').addEventListener('click', openCamera);
  for (const id of ['camera', 'microphone']) $(id).addEventListener('change', () => { if (!live.recorder) openCamera(); });
  $('facing').addEventListener('change', () => { $('camera').value = ''; if (!live.recorder) openCamera(); });

  function pickMimeType() {
    if (typeof MediaRecorder === 'undefined') return null;
    return MIME_TYPES.find((t) => MediaRecorder.isTypeSupported(t)) || null;
  }

  function goLive() {
    const mimeType = pickMimeType();
    if (!mimeType) { status('This browser cannot record video (no MediaRecorder): broadcast with OBS instead.', 'error'); return; }
    live.retryTimer = null;
    setControls(true);
    if (!live.retryUntil) status('Connecting…');
    const ws = new WebSocket(wsBase + '/studio/' + encodeURIComponent(stream) + '/ingest');
    ws.binaryType = 'arraybuffer';
    live.ws = ws;
    live.ending = false;
    live.error = null;
    ws.onopen = () => ws.send(JSON.stringify({ type: 'start', secret, mimeType }));
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'accepted') startRecorder(ws, mimeType, m.transcoding);
      else if (m.type === 'live') {
        live.wasLive = true;
        live.retryUntil = 0;
        status('You are live.');
        document.body.dataset.live = 'yes';
      } else if (m.type === 'error') {
        if (live.retryUntil && RETRYABLE.includes(m.code)) return;
        live.error = m;
        status(m.message, 'error');
      }
    };
    ws.onclose = (e) => {
      stopRecorder();
      if (live.ws !== ws) return;
      live.ws = null;
      if (!live.ending && !live.error && live.wasLive) {
        // The network dropped (a phone changing cells): go on with the same broadcast.
        const now = Date.now();
        if (!live.retryUntil) live.retryUntil = now + RETRY_MS;
        if (now < live.retryUntil) {
          document.body.dataset.live = 'reconnecting';
          status('Connection lost: reconnecting…', 'warn');
          live.retryTimer = setTimeout(goLive, 1000);
          return;
        }
      }
      document.body.dataset.live = 'no';
      setControls(false);
      if (live.error) status(live.error.message, 'error');
      else if (live.ending) status('Broadcast ended.');
      else status('The connection to the server was lost (' + e.code + '): the broadcast stopped.', 'error');
      live.error = null;
      live.wasLive = false;
      live.retryUntil = 0;
    };
  }

  function startRecorder(ws, mimeType, transcoding) {
    let recorder;
    try {
      // Keyframe every second where the browser supports asking (it is copied as is).
      recorder = new MediaRecorder(live.media, {
        mimeType, videoBitsPerSecond: 2500000, audioBitsPerSecond: 128000,
        videoKeyFrameIntervalDuration: 1000,
      });
    } catch (e) {
      status('Cannot record: ' + e.message, 'error');
      ws.close(1000);
      return;
    }
    live.recorder = recorder;
    live.sent = 0; live.lastBytes = 0; live.sentAt = performance.now();
    recorder.ondataavailable = (e) => {
      if (!e.data || !e.data.size || ws.readyState !== 1) return;
      if (ws.bufferedAmount > MAX_UNSENT) {
        live.error = { message: 'The network cannot carry the camera: the broadcast stopped. Try a lower resolution or another network.' };
        ws.close(1000);
        return;
      }
      live.sent += e.data.size;
      ws.send(e.data);
    };
    recorder.onstop = () => {
      if (ws.readyState === 1) { ws.send('{"type":"end"}'); ws.close(1000); }
    };
    recorder.start(TIMESLICE_MS);
    status('Starting…' + (transcoding ? ' (the server re-encodes this browser\'s video)' : ''));
    const started = performance.now();
    live.timer = setInterval(() => {
      const now = performance.now();
      // Some recorders accept the camera and then hand nothing (WebKitGTK without
      // working GStreamer encoders): say so instead of showing "Starting…" forever.
      if (live.sent === 0 && now - started > NO_DATA_MS) {
        live.error = { message: 'This browser records nothing from the camera (' + mimeType + '): go live from another browser, or with OBS.' };
        ws.close(1000);
        return;
      }
      const kbps = ((live.sent - live.lastBytes) * 8) / (now - live.sentAt);
      live.lastBytes = live.sent; live.sentAt = now;
      const s = live.media.getVideoTracks()[0];
      const settings = s ? s.getSettings() : {};
      $('health').textContent = mimeType + ' · ' + Math.round(kbps) + ' kbit/s sent · ' +
        (settings.width ? settings.width + 'x' + settings.height + ' @ ' + Math.round(settings.frameRate || 0) + ' fps · ' : '') +
        Math.round(ws.bufferedAmount / 1024) + ' KB waiting';
    }, 1000);
  }

  function stopRecorder() {
    clearInterval(live.timer);
    if (live.recorder && live.recorder.state !== 'inactive') {
      live.recorder.onstop = null;
      live.recorder.stop();
    }
    live.recorder = null;
  }

  function endLive() {
    live.ending = true;
    status('Ending…');
    if (live.retryTimer) {
      clearTimeout(live.retryTimer);
      live.retryTimer = null;
      if (!live.ws) {
        document.body.dataset.live = 'no';
        live.wasLive = false;
        live.retryUntil = 0;
        setControls(false);
        status('Broadcast ended.');
        return;
      }
    }
    if (live.recorder && live.recorder.state !== 'inactive') live.recorder.stop();
    else if (live.ws) live.ws.close(1000);
  }

  function setControls(onAir) {
    $('go-live').disabled = onAir || !live.media;
    $('end').disabled = !onAir;
    for (const id of ['camera', 'microphone', 'facing', 'camera-on']) $(id).disabled = onAir;
  }

  $('go-live').addEventListener('click', goLive);
  $('end').addEventListener('click', endLive);

  if (secret) unlock(secret);
  else showForm();
})();
