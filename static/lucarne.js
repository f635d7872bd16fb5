/*! lucarne loader: mounts a live video widget where this script stands.
 *
 *   <script async src="https://HOST/lucarne.js"
 *           data-stream="https://HOST/live/demo/index.m3u8"
 *           data-ll="wss://HOST/live/demo/ll"></script>
 *
 * Also exposes window.lucarne.mount(element, {stream, ll, muted}) -> Promise<handle>,
 * handle.destroy(). The WebAssembly is loaded once, lazily, relative to this file. */
(function () {
  "use strict";
  var script = document.currentScript;
  var base = script && script.src ? new URL(".", script.src) : new URL(".", document.baseURI);
  var api = window.lucarne || {};
  if (!api._ready) {
    var modules = {};
    api._load = function (from) {
      var key = from.href;
      if (!modules[key]) {
        modules[key] = import(new URL("lucarne_widget.js", from).href).then(function (m) {
          return m.default({ module_or_path: new URL("lucarne_widget_bg.wasm", from) }).then(function () {
            return m;
          });
        });
      }
      return modules[key];
    };
    api._ready = true;
    api.mount = function (element, options, from) {
      return api._load(from || base).then(function (m) {
        return m.mount(element, options || {});
      });
    };
    window.lucarne = api;
  }
  if (script && script.dataset && (script.dataset.stream || script.dataset.ll)) {
    var host = document.createElement("div");
    host.className = "lucarne-host";
    host.setAttribute("data-status", "loading");
    script.parentNode.insertBefore(host, script);
    var options = {};
    for (var k in script.dataset) options[k] = script.dataset[k];
    api.mount(host, options, base).catch(function (e) {
      host.setAttribute("data-status", "error");
      console.error("lucarne:", e && e.message ? e.message : e);
    });
  }
})();
