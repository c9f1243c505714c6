// Live reload for `python build.py serve` only: the server sends this file, and the build never copies it into
// the site. The server adds <script src="/__livereload.js" data-version=".." data-poll=".."> to every HTML page.
(function () {
  "use strict";
  var me = document.currentScript;
  var version = me ? me.getAttribute("data-version") : null;
  var pollMs = (me && Number(me.getAttribute("data-poll"))) || 400;
  var box = null;
  function show(text) {
    if (!box) {
      box = document.createElement("pre");
      box.id = "vw-livereload-error";
      box.setAttribute("role", "alert");
      // CSSOM assignments are allowed under CSP style-src 'self' (style attributes are not).
      Object.assign(box.style, {position: "fixed", left: "0", right: "0", bottom: "0", zIndex: "2147483647",
        margin: "0", padding: "12px 16px", maxHeight: "40vh", overflow: "auto", whiteSpace: "pre-wrap",
        font: "13px/1.4 ui-monospace, SFMono-Regular, Menlo, monospace", color: "#fff",
        background: "rgba(160, 20, 20, 0.95)", boxShadow: "0 -2px 8px rgba(0,0,0,0.3)"});
      document.body.appendChild(box);
    }
    box.textContent = "Build failed (still showing the last good build):\n" + text;
  }
  function hide() { if (box) { box.remove(); box = null; } }
  function poll() {
    fetch("/__livereload/status", {cache: "no-store"})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (version !== null && String(s.version) !== version) { location.reload(); return; }
        if (s.error) { show(s.error); } else { hide(); }
        setTimeout(poll, pollMs);
      })
      .catch(function () { setTimeout(poll, 1500); });  // server restarting: keep trying
  }
  poll();
})();
