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
  var OPTIONS = ["src", "stream", "ll", "chat", "layout", "mod-token", "muted", "lang", "theme", "accent", "radius", "font", "poster"];

  if (!api.mount) {
    var modules = {};
    // Two builds: with chat (lucarne_widget) and video only (lucarne_player, lighter).
    var load = function (base, chat) {
      var name = chat ? "lucarne_widget" : "lucarne_player";
      var key = base.href + name;
      if (!modules[key]) {
        // Fetch the wasm while the JS glue loads, not after: one round trip less.
        var wasm = fetch(new URL(name + "_bg.wasm", base).href, { mode: "cors", credentials: "omit" });
        modules[key] = import(new URL(name + ".js", base).href).then(function (m) {
          return m.default({ module_or_path: wasm }).then(function () {
            return m;
          });
        });
        // Let a later mount try again (a network blip must not poison the page).
        modules[key].catch(function () { delete modules[key]; });
      }
      return modules[key];
    };

    // Shown without WebAssembly, so it cannot be the widget's own rendering.
    var showError = function (host, text) {
      var root = host.shadowRoot || host.attachShadow({ mode: "open" });
      root.innerHTML = "<style>:host{all:initial;display:block}div{font:14px/1.4 system-ui,sans-serif;" +
        "background:#1b1b1b;color:#fff;padding:16px;border-radius:10px;min-height:80px;display:flex;" +
        "align-items:center;justify-content:center;text-align:center}</style><div role=\"alert\"></div>";
      root.querySelector("div").textContent = text;
      host.setAttribute("data-status", "error");
      console.error("lucarne: " + text);
    };

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
      return resolve(options).then(function (opts) {
        if (opts.ll && !opts.socket && opts.layout !== "chat") opts.socket = openEarly(opts.ll);
        return load(base || here, !!opts.chat && opts.layout !== "video").then(function (m) {
          var widget = m.mount(element, opts);
          return {
            destroy: function () {
              if (widget) { widget.destroy(); widget.free(); widget = null; }
            }
          };
        });
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
