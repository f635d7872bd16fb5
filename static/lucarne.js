/*! lucarne loader: a live video widget for any page (usage: README) */
/*
 *   <script async src="https://HOST/lucarne.js" data-src="https://HOST/s/demo"></script>
 *   <script async src="https://HOST/lucarne.js"
 *           data-stream="https://HOST/live/demo/index.m3u8" data-ll="wss://HOST/live/demo/ll"></script>
 *   <lucarne-live stream="https://..." lang="fr"></lucarne-live>
 *   lucarne.mount(element, {stream, ll, src, ...}) -> Promise<{destroy()}>
 *
 * The widget (WebAssembly) is fetched once, lazily, relative to this file. Plain ES5-ish
 * script on purpose: no build step for the people who paste it. */
(function () {
  "use strict";
  var script = document.currentScript;
  var here = script && script.src ? new URL(".", script.src) : new URL(".", document.baseURI);
  var api = window.lucarne = window.lucarne || {};
  var OPTIONS = ["src", "stream", "ll", "chat", "layout", "mod-token", "muted", "lang", "theme", "accent", "radius", "font", "poster", "max-height", "token"];

  if (!api.mount) {
    // base + build name -> {url: the glue's URL, ready: Promise of the glue module}.
    var modules = {};
    // base + build name -> fresh copies made after a trap.
    var copies = {};
    // Mounted widgets: {element, widget, glue (URL of the glue it runs in), lang, retry}.
    var live = [];
    // Two builds: with chat (lucarne_widget) and video only (lucarne_player, lighter).
    var load = function (base, chat) {
      var name = chat ? "lucarne_widget" : "lucarne_player";
      var key = base.href + name;
      if (!modules[key]) {
        // Fetch the wasm while the JS glue loads, not after: one round trip less.
        var wasm = fetch(new URL(name + "_bg.wasm", base).href, { mode: "cors", credentials: "omit" });
        // A module URL is instantiated once per page: after a trap, a copy of the glue
        // under another URL is the only way to a fresh WebAssembly instance.
        var n = copies[key] || 0;
        var url = new URL(name + ".js" + (n ? "?copy=" + n : ""), base).href;
        var entry = modules[key] = {
          url: url,
          ready: import(url).then(function (m) {
            return m.default({ module_or_path: wasm }).then(function () {
              return m;
            });
          })
        };
        // Let a later mount try again (a network blip must not poison the page).
        entry.ready.catch(function () { if (modules[key] === entry) delete modules[key]; });
      }
      return modules[key];
    };

    // Shown without WebAssembly, so it cannot be the widget's own rendering. With
    // `retry`, a button under the text calls it.
    var showError = function (host, text, retry, label) {
      var root = host.shadowRoot || host.attachShadow({ mode: "open" });
      root.innerHTML = "<style>:host{all:initial;display:block}div{font:14px/1.4 system-ui,sans-serif;" +
        "background:#1b1b1b;color:#fff;padding:16px;border-radius:10px;min-height:80px;display:flex;" +
        "flex-direction:column;gap:10px;align-items:center;justify-content:center;text-align:center}" +
        "button{font:inherit;color:#000;background:#fff;border:0;border-radius:6px;padding:6px 14px;cursor:pointer}" +
        "</style><div role=\"alert\"><p></p></div>";
      var box = root.querySelector("div");
      box.firstChild.textContent = text;
      if (retry) {
        var button = document.createElement("button");
        button.type = "button";
        button.className = "retry";
        button.textContent = label;
        button.onclick = function () {
          button.disabled = true;
          host.setAttribute("data-status", "loading");
          retry();
        };
        box.appendChild(button);
      }
      host.setAttribute("data-status", "error");
      console.error("lucarne: " + text);
    };

    // The widget's rule: its `lang` option, else the page's, else the browser's.
    var french = function (lang) {
      var tags = [lang, document.documentElement.lang].concat(navigator.languages || [navigator.language]);
      for (var i = 0; i < tags.length; i++) {
        var primary = String(tags[i] || "").trim().split(/[-_]/)[0].toLowerCase();
        if (primary === "fr") return true;
        if (primary === "en") return false;
      }
      return false;
    };

    // A trap (a Rust panic, an out-of-bounds access) leaves the instance in a state
    // nothing can trust, and the widgets it runs freeze. It surfaces as a
    // WebAssembly.RuntimeError out of a callback of the widget (its glue is on the stack;
    // a trap of the page's own WebAssembly is not ours). Every widget of that instance
    // shows an error with "retry", which mounts it again in a fresh instance.
    var trapped = function (error) {
      if (typeof WebAssembly !== "object" || !(error instanceof WebAssembly.RuntimeError)) return;
      var stack = String(error.stack || "");
      for (var key in modules) {
        var glue = modules[key].url;
        // ":" ends the URL in a stack frame, so an older copy (`?copy=1`) never matches.
        if (stack.indexOf(glue + ":") < 0) continue;
        delete modules[key];
        copies[key] = (copies[key] || 0) + 1;
        for (var i = live.length - 1; i >= 0; i--) {
          if (live[i].glue !== glue) continue;
          var dead = live.splice(i, 1)[0];
          var root = dead.element.shadowRoot;
          var media = root ? root.querySelectorAll("video,audio") : [];
          for (var j = 0; j < media.length; j++) media[j].pause();
          try {
            // Closes its sockets and media if the instance still can; it may trap again.
            dead.widget.destroy();
            dead.widget.free();
          } catch (e) { /* the instance is gone either way */ }
          dead.widget = null;
          var fr = french(dead.lang);
          showError(dead.element, fr ? "La vidéo s’est arrêtée après une erreur." : "The video stopped after an error.",
            dead.retry, fr ? "Réessayer" : "Retry");
        }
      }
    };
    window.addEventListener("error", function (e) { trapped(e.error); });
    window.addEventListener("unhandledrejection", function (e) { trapped(e.reason); });

    var explain = function (e) {
      var msg = String(e && e.message || e);
      if (/WebAssembly|wasm/i.test(msg) && /Content.Security.Policy|CSP|unsafe-eval|not allowed|Refused/i.test(msg)) {
        return "This page's Content-Security-Policy blocks WebAssembly, which the live video needs: " +
          "add 'wasm-unsafe-eval' to its script-src.";
      }
      return msg;
    };

    // data-src short form: the server says where the stream is.
    var resolve = function (options) {
      if (!options.src) return Promise.resolve(options);
      var src = new URL(options.src, document.baseURI);
      return fetch(src.href, { mode: "cors" }).then(function (r) {
        if (!r.ok) throw new Error("data-src: " + src.href + " answered HTTP " + r.status);
        return r.json();
      }).then(function (info) {
        var out = {};
        for (var k in options) out[k] = options[k];
        if (!out.stream && info.hls) out.stream = new URL(info.hls, src).href;
        if (!out.ll && info.ll) out.ll = new URL(info.ll, src).href.replace(/^http/, "ws");
        if (!out.poster && info.poster) out.poster = new URL(info.poster, src).href;
        if (!out.chat && info.chat) out.chat = new URL(info.chat, src).href.replace(/^http/, "ws");
        return out;
      });
    };

    // data-token: a private broadcast's playback token goes on the URLs the widget
    // opens itself (playlist, push, chat); the server puts it on every URI of the
    // playlists it serves, so segments and parts carry it too. It never goes in the
    // page's URL, so the Referer the widget's requests send does not hold it.
    var withToken = function (options) {
      var token = options.token && String(options.token).trim();
      if (!token) return options;
      var out = {};
      for (var k in options) out[k] = options[k];
      ["stream", "ll", "chat"].forEach(function (k) {
        if (!out[k]) return;
        var u = new URL(out[k], document.baseURI);
        u.searchParams.set("token", token);
        out[k] = u.href;
      });
      return out;
    };

    // The low-latency socket opens while the WebAssembly downloads and compiles; the
    // widget adopts it with whatever it has received (a faster first frame).
    var openEarly = function (url) {
      try {
        var early = { ws: new WebSocket(new URL(url, document.baseURI).href.replace(/^http/, "ws")), queue: [], closed: false };
        early.ws.binaryType = "arraybuffer";
        early.ws.onmessage = function (e) { early.queue.push(e.data); };
        early.ws.onclose = function () { early.closed = true; };
        return early;
      } catch (e) {
        return null;
      }
    };

    api.mount = function (element, options, base) {
      options = options || {};
      var mounted = { element: element, widget: null, gone: false };
      var start = function (given) {
        return resolve(given).then(withToken).then(function (opts) {
          if (opts.ll && !opts.socket && opts.layout !== "chat") opts.socket = openEarly(opts.ll);
          var entry = load(base || here, !!opts.chat && opts.layout !== "video");
          return entry.ready.then(function (m) {
            if (mounted.gone) return;
            mounted.widget = m.mount(element, opts);
            mounted.glue = entry.url;
            mounted.lang = opts.lang;
            live.push(mounted);
          });
        });
      };
      mounted.retry = function () {
        // The early socket went to the instance that trapped: a new one opens.
        var again = {};
        for (var k in options) if (k !== "socket") again[k] = options[k];
        start(again).catch(function (e) {
          showError(element, explain(e), mounted.retry, french(options.lang) ? "Réessayer" : "Retry");
        });
      };
      return start(options).then(function () {
        return {
          destroy: function () {
            mounted.gone = true;
            var i = live.indexOf(mounted);
            if (i >= 0) live.splice(i, 1);
            if (mounted.widget) { mounted.widget.destroy(); mounted.widget.free(); mounted.widget = null; }
          }
        };
      }).catch(function (e) {
        showError(element, explain(e));
        throw e;
      });
    };

    if (window.customElements && !customElements.get("lucarne-live")) {
      var LucarneLive = function () { return Reflect.construct(HTMLElement, [], LucarneLive); };
      LucarneLive.prototype = Object.create(HTMLElement.prototype);
      LucarneLive.prototype.constructor = LucarneLive;
      Object.defineProperty(LucarneLive, "observedAttributes", {
        get: function () {
          return OPTIONS.concat(OPTIONS.map(function (o) { return "data-" + o; }));
        }
      });
      LucarneLive.prototype.options = function () {
        var out = {};
        for (var i = 0; i < OPTIONS.length; i++) {
          var v = this.getAttribute(OPTIONS[i]);
          if (v === null) v = this.getAttribute("data-" + OPTIONS[i]);
          // Same keys as a script's dataset: mod-token -> modToken.
          if (v !== null) out[OPTIONS[i].replace(/-(\w)/g, function (_, c) { return c.toUpperCase(); })] = v;
        }
        return out;
      };
      LucarneLive.prototype.remount = function () {
        var self = this;
        if (self._pending) return;
        self._pending = true;
        // Batch attribute changes made together into one mount.
        Promise.resolve().then(function () {
          self._pending = false;
          if (self._handle) { self._handle.then(function (h) { h.destroy(); }, function () {}); }
          self._handle = self.isConnected ? api.mount(self, self.options()) : null;
          if (self._handle) self._handle.catch(function () {});
        });
      };
      LucarneLive.prototype.connectedCallback = function () { this.remount(); };
      LucarneLive.prototype.attributeChangedCallback = function () { if (this.isConnected) this.remount(); };
      LucarneLive.prototype.disconnectedCallback = function () {
        if (this._handle) this._handle.then(function (h) { h.destroy(); }, function () {});
        this._handle = null;
      };
      customElements.define("lucarne-live", LucarneLive);
    }
  }

  // The one-script-tag form: mount right where this script stands.
  if (script && script.dataset && (script.dataset.stream || script.dataset.ll || script.dataset.src || script.dataset.chat)) {
    var host = document.createElement("div");
    host.className = "lucarne-host";
    // Inline, so a page rule like `div { display: inline }` cannot collapse it.
    host.style.display = "block";
    host.setAttribute("data-status", "loading");
    script.parentNode.insertBefore(host, script);
    var options = {};
    for (var k in script.dataset) options[k] = script.dataset[k];
    api.mount(host, options, here).then(function (handle) { host.lucarne = handle; }, function () {});
  }
})();
