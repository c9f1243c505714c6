/* Draw every chart of the page with the shared offline Vega bundle (assets/vega.js).
   Wrapped in an IIFE: vega.js declares global consts. No eval: vega's expression interpreter
   (vendor/vega-interpreter.js) replaces new Function, and defaultStyle:false avoids <style> injection. */
(function () {
  "use strict";
  /* Colours and the font come from the page's CSS custom properties (assets/theme.css, generated from
     article/structure/theme.py), so charts follow the theme and the light/dark switch without a copy of it here. */
  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue("--" + name).trim();
  }
  function theme() {
    var font = css("sans"), fg = css("fg"), muted = css("muted"), grid = css("grid");
    return {
      background: null,
      font: font,
      view: { stroke: null },
      axis: { labelColor: muted, titleColor: fg, domainColor: muted, tickColor: muted, gridColor: grid,
              labelFont: font, titleFont: font },
      legend: { labelColor: muted, titleColor: fg, labelFont: font, titleFont: font },
      title: { color: fg, subtitleColor: muted, font: font },
      header: { labelColor: fg, titleColor: fg },
      text: { color: fg },
      style: { "vw-ink": { color: fg } }  /* marks drawn in the text colour: dark on light, light on dark */
    };
  }
  var dark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  var views = {};

  /* Vega asks for images with crossOrigin="anonymous", which pages opened from file:// (origin null) are
     refused. Figures load no data by URL (their data arrive as classic scripts), so this minimal loader only
     resolves image URLs: relative paths of the figure's own files (or data: images), with no crossOrigin
     attribute since the images are never read back into a canvas. Anything else is refused. */
  var SAFE_IMAGE = /^(?![a-z][a-z0-9+.-]*:)|^data:image\//i;
  var imageLoader = {
    options: {},
    fileAccess: false,
    sanitize: function (uri, options) {
      if (!(options && options.context === "image") || !SAFE_IMAGE.test(String(uri))) {
        return Promise.reject(new Error("figures load no external resources: " + uri));
      }
      return Promise.resolve({ href: String(uri), crossOrigin: null });
    },
    load: function (uri) { return Promise.reject(new Error("figures load no data by URL: " + uri)); },
    http: function (uri) { return Promise.reject(new Error("no http loading: " + uri)); },
    file: function (uri) { return Promise.reject(new Error("no file loading: " + uri)); }
  };

  /* Which spec fits: a figure that is wider than its column on a phone has a narrow twin (Figure.narrow, re-specified
     for the width, never scaled: CSS scaling would break Vega's pointer coordinates). */
  function variant(el) {
    var id = el.getAttribute("data-vw-chart");
    var wide = parseFloat(el.getAttribute("data-vw-width"));
    var narrow = document.getElementById("spec-narrow-" + id);
    return narrow && wide > el.clientWidth ? "narrow" : "wide";
  }

  /* A narrow spec names the parts it shares with the wide one ({"$vwref": [key, ...]}, article/figures/figrender.py
     shared_parts): each becomes a copy of the wide spec's part at that path. */
  function expandShared(node, wide) {
    if (Array.isArray(node)) return node.map(function (v) { return expandShared(v, wide); });
    if (node && typeof node === "object") {
      var keys = Object.keys(node);
      if (keys.length === 1 && keys[0] === "$vwref") {
        var part = wide;
        node.$vwref.forEach(function (step) { part = part[step]; });
        return JSON.parse(JSON.stringify(part));
      }
      var out = {};
      keys.forEach(function (k) { out[k] = expandShared(node[k], wide); });
      return out;
    }
    return node;
  }

  function draw(el) {
    var id = el.getAttribute("data-vw-chart");
    var figure = el.closest("figure");
    try {
      var which = variant(el);
      el.setAttribute("data-vw-variant", which);
      var spec = JSON.parse(document.getElementById("spec-" + id).textContent);
      if (which === "narrow") spec = expandShared(JSON.parse(document.getElementById("spec-narrow-" + id).textContent), spec);
      var data = (window.VW_DATA || {})[id];
      if (!data) throw new Error("no data loaded for figure " + id);
      spec.datasets = data;
      if (views[id]) { views[id].finalize(); delete views[id]; }
      el.removeAttribute("data-vw-drawn");
      return window.vegaEmbed(el, spec, {
        ast: true,
        expr: window.vegaInterpreter.expressionInterpreter,
        actions: false,
        renderer: "svg",
        defaultStyle: false,
        loader: imageLoader,
        config: theme(),
        tooltip: { theme: "custom", disableDefaultStyle: true }
      }).then(function (result) {
        views[id] = result;
        followSelection(figure, result.view, spec.usermeta && spec.usermeta.vwExplorer);
        figure.classList.remove("vw-failed");
        el.setAttribute("data-vw-scheme", dark && dark.matches ? "dark" : "light");  /* which theme it was drawn in */
        el.setAttribute("data-vw-drawn", "true");
      }).catch(function (err) { fail(el, figure, err); });
    } catch (err) {
      fail(el, figure, err);
      return Promise.resolve();
    }
  }

  /* A figure's "in the weight explorer" link follows the neuron the reader picks (usermeta.vwExplorer, written by
     article/model_pages.follow_selection): the selection `select` holds the neuron in `field` (its leading integer:
     a context pair "12-3" is output neuron 12), the parameter `param` picks which target (model page) it is in. */
  function followSelection(figure, view, meta) {
    if (!meta) return;
    var pagePath = function (href) { return href.split("#")[0]; };
    function update() {
      var target = meta.targets[meta.param ? view.signal(meta.param) : ""];
      var picked = (view.signal(meta.select) || {})[meta.field];
      var n = parseInt(Array.isArray(picked) ? picked[0] : picked, 10);
      if (!target || !(n >= 0) || (target.neurons && n >= target.neurons)) return;
      figure.querySelectorAll(".vw-links a").forEach(function (a) {
        if (pagePath(a.getAttribute("href")) !== pagePath(target.href)) return;
        a.setAttribute("href", target.href + "/" + n);
        a.textContent = target.text.replace("{n}", String(n));
      });
    }
    view.addSignalListener(meta.select, update);
    if (meta.param) view.addSignalListener(meta.param, update);
    update();
  }

  function fail(el, figure, err) {
    figure.classList.add("vw-failed");  /* CSS shows the static SVG fallback */
    el.setAttribute("data-vw-drawn", "error");
    console.error("figure " + el.getAttribute("data-vw-chart") + " could not be drawn:", err);
  }

  function drawAll() {
    document.querySelectorAll("[data-vw-chart]").forEach(draw);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (typeof window.vegaEmbed !== "function" || !window.vegaInterpreter) {
      document.querySelectorAll("[data-vw-chart]").forEach(function (el) {
        fail(el, el.closest("figure"), new Error("vega bundle not loaded"));
      });
      return;
    }
    /* Text is measured when drawn: wait for the vendored font (a no-op once it is cached). */
    var fontsReady = document.fonts && document.fonts.ready ? document.fonts.ready : Promise.resolve();
    fontsReady.then(drawAll, drawAll);
    if (dark) {
      var redraw = function () { drawAll(); };
      if (dark.addEventListener) dark.addEventListener("change", redraw);
      else if (dark.addListener) dark.addListener(redraw);
    }
    /* A phone turned sideways (or a window resized) may now fit the other variant. */
    var pending = null;
    window.addEventListener("resize", function () {
      clearTimeout(pending);
      pending = setTimeout(function () {
        document.querySelectorAll("[data-vw-chart][data-vw-drawn]").forEach(function (el) {
          if (el.getAttribute("data-vw-variant") !== variant(el)) draw(el);
        });
      }, 200);
    });
  });
})();
