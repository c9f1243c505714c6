/* Weight explorer of a model page: the layer table, one layer's neurons (loaded on demand through a classic
   <script>, since file:// pages cannot fetch), and one neuron's detail. State lives in the URL fragment
   #<tensor>/<neuron>, so links, back and forward work. No inline styles: sprite cells are placed through the CSSOM. */
(function () {
  'use strict';
  var data = {};      // tensor id -> layer payload
  var waiting = {};   // tensor id -> callbacks
  var exdata = {};    // analysed layer -> its dataset examples (examples/<layer>.js, loaded when first needed)
  var exwaiting = {}; // analysed layer -> callbacks
  var view = {layer: null, neuron: null, page: 0, skip: false, missing: null};  // skip: a residual block's identity included
  var el = {};
  var stops = [];

  window.VWExplorer = {
    layer: function (payload) {
      data[payload.id] = payload;
      (waiting[payload.id] || []).forEach(function (cb) { cb(payload); });
      delete waiting[payload.id];
    },
    examples: function (payload) {
      exdata[payload.layer] = payload;
      (exwaiting[payload.layer] || []).forEach(function (cb) { cb(payload); });
      delete exwaiting[payload.layer];
    }
  };

  function $(id) { return document.getElementById(id); }
  function make(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  /* A block whose identity skip was removed shows its own weights; with "include the skip" ticked, its norms and
     strongest inputs (and a layer's outputs into such a block) are those of the total instead. */
  function weightsOf(d) { return view.skip && d.total ? d.total : d; }
  function outputsOf(d) { return view.skip && d.outputs_total ? d.outputs_total : d.outputs; }
  function layerNote(d) {
    var text = d.n + ' neurons, each reading ' + d.in + ' input channels through ' + d.h + '×' + d.w +
      ' kernels. Each picture is a neuron\u2019s NMF: three spatial factors as red, green and blue.';
    if (d.identity === 'removed') {
      var at = d.total.at, centre = at[0] === (d.h - 1) / 2 && at[1] === (d.w - 1) / 2 ? 'the centre' :
        'position (' + at[1] + ', ' + at[0] + ')';
      text += ' A residual block: it also passes its input through unchanged, weight 1 from each channel to itself ' +
        'at ' + centre + '. ' + (view.skip ? 'Norms and strongest inputs now include that skip (the total); the NMF pictures ' +
        'and banding stay the block\u2019s own.' : 'Everything here is the block\u2019s own contribution, the total ' +
        'minus that identity.');
    } else if (d.identity === 'projection') {
      text += ' Its skip goes through a projection (a 1×1 convolution or pooling), not an identity, so these are ' +
        'the total weights, skip included.';
    }
    return text + (d.next ? ' Its output feeds ' + d.next + '.' : '');
  }
  function fmt(x) { return x === null || x === undefined ? '–' : Number(x).toPrecision(3); }
  function frag(id) { return '#' + id.replace(/%/g, '%25').replace(/>/g, '%3E').replace(/ /g, '%20'); }
  function rows() { return Array.prototype.slice.call(document.querySelectorAll('tr[data-vw-neurons]')); }
  function row(id) { return rows().filter(function (r) { return r.id === id; })[0]; }

  function parseHash() {
    var h = location.hash.slice(1);
    try { h = decodeURIComponent(h); } catch (e) { /* keep it raw */ }
    var m = /^(.*)\/(\d+)$/.exec(h);
    return m ? {layer: m[1], neuron: parseInt(m[2], 10)} : {layer: h, neuron: null};
  }

  function load(id, cb) {
    if (data[id]) { cb(data[id]); return; }
    var r = row(id);
    if (!r) return;
    if (waiting[id]) { waiting[id].push(cb); return; }
    waiting[id] = [cb];
    var s = document.createElement('script');
    s.src = r.getAttribute('data-script');
    s.onerror = function () { el.note.textContent = 'The data of ' + id + ' could not be loaded (' + s.src + ').'; };
    document.head.appendChild(s);
  }

  /* ---------------------------------------------------------------- dataset examples */
  function loadExamples(ref, cb) {  // ref: {layer, src, n} from the layer payload's `ex`; cb(payload) when loaded
    if (!ref) return;
    if (exdata[ref.layer]) { cb(exdata[ref.layer]); return; }
    if (exwaiting[ref.layer]) { exwaiting[ref.layer].push(cb); return; }
    exwaiting[ref.layer] = [cb];
    var s = document.createElement('script');
    s.src = ref.src;
    s.onerror = function () { delete exwaiting[ref.layer]; };
    document.head.appendChild(s);
  }
  /* One example: its context square cut out of its picture by CSS (no file per example), px wide, with the
     receptive field drawn over it. e = [picture, x, y, w, h, rf x, rf y, rf w, rf h, activation, label]. */
  function exampleThumb(p, e, px, rank, n) {
    var pic = p.pics[e[0]], f = px / e[3], label = p.labels[e[10]] + ', activation ' + fmt(e[9]);
    var box = make('span', 'vw-ex' + (px < 48 ? ' vw-ex-small' : ''));
    box.setAttribute('role', 'img');
    box.setAttribute('aria-label', 'Dataset example ' + (rank + 1) + ' of neuron ' + n + ': ' + label +
      '; the box marks its receptive field');
    box.title = label;
    box.style.width = px + 'px';
    box.style.height = Math.round(e[4] * f) + 'px';
    box.style.backgroundImage = 'url("' + pic[0] + '")';
    box.style.backgroundSize = (pic[1] * f) + 'px ' + (pic[2] * f) + 'px';
    box.style.backgroundPosition = (-e[1] * f) + 'px ' + (-e[2] * f) + 'px';
    var rf = make('span', 'vw-rf');
    rf.setAttribute('aria-hidden', 'true');
    /* A deep layer's field can be larger than the context square: outline the part inside it (the whole square
       when the field covers it), not a box beyond the edges that would not show at all. */
    var x0 = Math.max(0, (e[5] - e[1]) * f), y0 = Math.max(0, (e[6] - e[2]) * f);
    var x1 = Math.min(px, (e[5] - e[1] + e[7]) * f), y1 = Math.min(e[4] * f, (e[6] - e[2] + e[8]) * f);
    rf.style.left = x0 + 'px';
    rf.style.top = y0 + 'px';
    rf.style.width = Math.max(0, x1 - x0) + 'px';
    rf.style.height = Math.max(0, y1 - y0) + 'px';
    box.appendChild(rf);
    return box;
  }
  /* The first len(sizes) examples of neuron n into `into`, the k-th at sizes[k] pixels (filled when loaded). */
  function examplesInto(into, ref, n, sizes) {
    loadExamples(ref, function (p) {
      into.textContent = '';
      (p.ex[n] || []).slice(0, sizes.length).forEach(function (e, k) { into.appendChild(exampleThumb(p, e, sizes[k], k, n)); });
    });
  }

  /* ---------------------------------------------------------------- colours */
  function hexRgb(h) { return [1, 3, 5].map(function (i) { return parseInt(h.slice(i, i + 2), 16); }); }
  function diverging(t) {  // t in [-1, 1] -> [r, g, b] on the theme's scale
    var x = (Math.max(-1, Math.min(1, t)) + 1) / 2 * (stops.length - 1);
    var i = Math.min(stops.length - 2, Math.floor(x)), f = x - i;
    return stops[i].map(function (v, k) { return Math.round(v + (stops[i + 1][k] - v) * f); });
  }
  function pixelCanvas(h, w, label, colour) {  // an h x w picture, one canvas pixel per kernel position
    var c = make('canvas', 'vw-kernel');
    c.width = w; c.height = h;
    /* Square cells whatever the kernel's shape (a 1x7 kernel is a strip, not a stretched square): its longer side
       takes the 4rem box. */
    var cell = 4 * parseFloat(getComputedStyle(document.documentElement).fontSize || '16') / Math.max(h, w);
    c.style.width = (w * cell) + 'px'; c.style.height = (h * cell) + 'px';
    c.setAttribute('role', 'img');
    c.setAttribute('aria-label', label);
    var ctx = c.getContext('2d'), img = ctx.createImageData(w, h);
    for (var p = 0; p < h * w; p++) {
      var rgb = colour(p);
      img.data[4 * p] = rgb[0]; img.data[4 * p + 1] = rgb[1]; img.data[4 * p + 2] = rgb[2]; img.data[4 * p + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    return c;
  }
  function heatmap(values, h, w, scaleLabel) {  // signed weights on the theme's diverging scale
    return pixelCanvas(h, w, scaleLabel, function (p) { return diverging(values[p] / 99); });
  }
  function factorMap(values, h, w, f, label) {  // one non-negative factor in its own colour, 0 = background
    return pixelCanvas(h, w, label, function (p) {
      var rgb = [0, 0, 0];
      rgb[f] = Math.round(values[p] / 99 * 255);
      return rgb;
    });
  }
  function legend(scale) {
    var box = make('div', 'vw-legend');
    var c = make('canvas', 'vw-legend-bar');
    c.width = 101; c.height = 1;
    c.setAttribute('aria-hidden', 'true');
    var ctx = c.getContext('2d'), img = ctx.createImageData(101, 1);
    for (var i = 0; i <= 100; i++) {
      var rgb = diverging(i / 50 - 1);
      img.data.set([rgb[0], rgb[1], rgb[2], 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    box.appendChild(make('span', '', '−' + fmt(scale)));
    box.appendChild(c);
    box.appendChild(make('span', '', '+' + fmt(scale)));
    box.appendChild(make('span', 'vw-legend-text', 'one shared scale for these kernels (blue negative, red positive)'));
    return box;
  }

  /* ---------------------------------------------------------------- the sprite */
  function picture(cell, d, n, px) {
    var s = d.sprite;
    if (!s) { cell.classList.add('vw-nopic'); return; }
    var col = n % s.cols, r = Math.floor(n / s.cols);
    cell.style.backgroundImage = 'url("' + s.src + '")';
    cell.style.backgroundSize = (s.cols * 100) + '% ' + (s.rows * 100) + '%';
    cell.style.backgroundPosition = (s.cols > 1 ? col / (s.cols - 1) * 100 : 0) + '% ' +
                                    (s.rows > 1 ? r / (s.rows - 1) * 100 : 0) + '%';
    if (px) { cell.style.width = px + 'px'; cell.style.height = Math.round(px * d.h / d.w) + 'px'; }
  }

  /* ---------------------------------------------------------------- the neuron list */
  function filterIds(text, n) {
    text = text.trim();
    if (!text) return null;
    var keep = {};
    text.split(/[,\s]+/).forEach(function (part) {
      var m = /^(\d+)(?:-(\d+))?$/.exec(part);
      if (!m) return;
      var a = parseInt(m[1], 10), b = m[2] ? parseInt(m[2], 10) : a;
      for (var i = a; i <= Math.min(b, n - 1); i++) keep[i] = true;
    });
    return keep;
  }

  function order(d) {
    var key = el.sort.value, desc = el.dir.value === 'desc';
    var ids = [], keep = filterIds(el.filter.value, d.n);
    for (var i = 0; i < d.n; i++) if (!keep || keep[i]) ids.push(i);
    var v = key === 'norm' ? weightsOf(d).norm : d[key];
    if (key !== 'id' && v) {
      ids.sort(function (a, b) {
        var x = v[a] === null ? -Infinity : v[a], y = v[b] === null ? -Infinity : v[b];
        return (desc ? y - x : x - y) || a - b;
      });
    } else if (desc) { ids.reverse(); }
    return ids;
  }

  function drawGrid() {
    var d = data[view.layer];
    if (!d) return;
    var ids = order(d), per = parseInt(el.perPage.value, 10) || ids.length || 1;
    var pages = Math.max(1, Math.ceil(ids.length / per));
    view.page = Math.max(0, Math.min(view.page, pages - 1));
    var shown = ids.slice(view.page * per, view.page * per + per);
    var px = parseInt(el.zoom.value, 10), frag0 = frag(d.id), box = document.createDocumentFragment();
    shown.forEach(function (n) {
      var li = make('li'), a = make('a', 'vw-cell');
      a.href = frag0 + '/' + n;
      a.setAttribute('data-neuron', n);
      a.setAttribute('aria-label', 'neuron ' + n);
      a.title = 'neuron ' + n + ' · norm ' + fmt(weightsOf(d).norm && weightsOf(d).norm[n]) + ' · R ' + fmt(d.R[n]) + ' · C ' + fmt(d.C[n]) +
        ' · NMF error ' + fmt(d.err && d.err[n]);
      if (n === view.neuron) a.setAttribute('aria-current', 'true');
      var pic = make('span', 'vw-pic');
      pic.setAttribute('aria-hidden', 'true');
      picture(pic, d, n, px);
      a.appendChild(pic);
      a.appendChild(make('span', 'vw-id', String(n)));
      li.appendChild(a);
      box.appendChild(li);
    });
    el.grid.textContent = '';
    el.grid.appendChild(box);
    el.pageText.textContent = ids.length ? 'neurons ' + (view.page * per + 1) + '–' + (view.page * per + shown.length) +
      ' of ' + ids.length + (ids.length < d.n ? ' (filtered from ' + d.n + ')' : '') : 'no neuron matches';
    el.prev.disabled = view.page === 0;
    el.next.disabled = view.page >= pages - 1;
  }

  function showPageOf(n) {  // the page that holds neuron n in the current order (dropping a filter that hides it)
    var d = data[view.layer], ids = order(d);
    if (ids.indexOf(n) < 0) { el.filter.value = ''; ids = order(d); }
    var per = parseInt(el.perPage.value, 10) || ids.length || 1;
    view.page = Math.floor(Math.max(0, ids.indexOf(n)) / per);
  }

  /* ---------------------------------------------------------------- one neuron */
  function link(layer, n, text) {
    if (layer === null || layer === undefined || !row(layer)) return make('span', '', text);
    var a = make('a', '', text);
    a.href = frag(layer) + '/' + n;
    return a;
  }

  function detail(d, n) {
    var box = el.detail;
    box.textContent = '';
    if (n === null || n >= d.n) { el.status.textContent = n === null ? 'Pick a neuron.' : 'No neuron ' + n + ' in this layer.'; return; }
    // One heading: "Neuron 57" stands out, the layer it belongs to reads on in smaller type.
    el.status.textContent = '';
    el.status.appendChild(make('span', 'vw-neuron-name', 'Neuron ' + n));
    el.status.appendChild(make('span', 'vw-neuron-of', ' of ' + d.id + ' (' + d.n + ' neurons).'));
    var top = make('div', 'vw-neuron-top');
    var big = make('span', 'vw-pic vw-big');
    big.setAttribute('role', 'img');
    big.setAttribute('aria-label', 'NMF picture of neuron ' + n + ': three spatial factors as red, green and blue');
    picture(big, d, n, 128);
    top.appendChild(big);
    var dl = make('dl', 'vw-stats');
    [['weight norm', weightsOf(d).norm && weightsOf(d).norm[n]], ['banding R (NMF picture)', d.R[n]], ['banding C (NMF picture)', d.C[n]],
     ['NMF error', d.err && d.err[n]]].forEach(function (p) {
      dl.appendChild(make('dt', '', p[0])); dl.appendChild(make('dd', '', fmt(p[1])));
    });
    top.appendChild(dl);
    if (d.fv[n]) {
      var fig = make('figure', 'vw-fv'), img = make('img');
      img.src = d.fv[n]; img.alt = 'Feature visualization of neuron ' + n; img.width = 96; img.height = 96;
      fig.appendChild(img); fig.appendChild(make('figcaption', '', 'feature visualization'));
      top.appendChild(fig);
    }
    box.appendChild(top);
    if (d.factors) {
      box.appendChild(make('h4', '', 'NMF spatial factors'));
      var fs = make('div', 'vw-factors'), hw = d.h * d.w;
      ['red', 'green', 'blue'].forEach(function (name, f) {
        var fig = make('figure', 'vw-factor');
        fig.appendChild(factorMap(d.factors[n].slice(f * hw, (f + 1) * hw), d.h, d.w, f,
          'Spatial factor ' + f + ' of neuron ' + n + ' (the ' + name + ' of its picture)'));
        var mix = d.ffv && d.ffv[n] && d.ffv[n][f];
        if (mix) {  // the factor's channel loadings, visualized as one direction in the layer below
          var img = make('img');
          img.src = mix; img.width = 64; img.height = 64;
          img.alt = 'Feature visualization of factor ' + f + '\u2019s mix of input channels';
          fig.appendChild(img);
        }
        fig.appendChild(make('figcaption', '', 'factor ' + f + ' (' + name + ')'));
        fs.appendChild(fig);
      });
      box.appendChild(fs);
    }
    var ex = d.ex || {};
    if (ex.self) {
      box.appendChild(make('h4', '', 'Dataset examples'));
      var exBox = make('div', 'vw-examples'), exNote = make('p', 'vw-muted vw-ex-note');
      box.appendChild(exBox);
      box.appendChild(exNote);
      examplesInto(exBox, ex.self, n, [72, 72, 72, 72, 72, 72, 72, 72]);
      loadExamples(ex.self, function (p) {
        exNote.textContent = 'Strongest first, of ' + p.dataset + '. The box is the receptive field (' + p.rf +
          ' px of the network\u2019s input).';
      });
    }
    var ins = weightsOf(d).inputs;
    box.appendChild(make('h4', '', 'Strongest inputs' + (d.prev ? ' (neurons of ' + d.prev + ')' : '')));
    if (d.identity === 'removed') {
      box.appendChild(make('p', 'vw-muted vw-skip-note', view.skip ?
        'Total weights, the skip included: channel ' + n + '\u2019s kernel has +1 at the centre from the identity.' :
        'The block\u2019s own weights. The skip also passes channel ' + n + ' through unchanged (weight 1 at the ' +
        'centre), which is not counted here.'));
    }
    if (ins.kernel) box.appendChild(legend(ins.scale[n]));
    var list = make('ol', 'vw-inputs');
    ins.index[n].forEach(function (ch, k) {
      var li = make('li');
      if (ins.kernel) {
        li.appendChild(heatmap(ins.kernel[n].slice(k * d.h * d.w, (k + 1) * d.h * d.w), d.h, d.w,
          'Kernel from input channel ' + ch + ' to neuron ' + n));
      }
      var cap = make('span', 'vw-cap');
      cap.appendChild(link(d.prev, ch, 'channel ' + ch));
      cap.appendChild(make('span', 'vw-strength', ' ‖w‖ ' + fmt(ins.strength[n][k])));
      li.appendChild(cap);
      if (ex.prev) {
        var row = make('span', 'vw-ex-row');
        li.appendChild(row);
        examplesInto(row, ex.prev, ch, [64, 30, 30]);
      }
      list.appendChild(li);
    });
    box.appendChild(list);
    box.appendChild(make('h4', '', d.next ? 'Strongest outputs (neurons of ' + d.next + ')' : 'Strongest outputs'));
    var outputs = outputsOf(d);
    if (outputs && outputs.index[n]) {
      var outs = make('ol', 'vw-outputs');
      outputs.index[n].forEach(function (j, k) {
        var li = make('li');
        li.appendChild(link(d.next, j, 'neuron ' + j));
        li.appendChild(make('span', 'vw-strength', ' ‖w‖ ' + fmt(outputs.strength[n][k])));
        if (ex.next) {
          var row = make('span', 'vw-ex-row');
          li.appendChild(row);
          examplesInto(row, ex.next, j, [40, 40, 40]);
        }
        outs.appendChild(li);
      });
      box.appendChild(outs);
    } else {
      box.appendChild(make('p', 'vw-muted', 'No later analysed tensor reads this layer\u2019s output.'));
    }
  }

  /* ---------------------------------------------------------------- routing */
  var routed = null, first = true;
  function route() {
    if (routed !== null && routed === location.hash) return;  // hashchange and popstate both report one step
    routed = location.hash;
    var want = parseHash(), missing = null;
    if (!row(want.layer)) {  // a link to a layer this model does not have: say so, then show the first one
      missing = want.layer || null;
      want = {layer: rows().length ? rows()[0].id : null, neuron: null};
    }
    if (!want.layer) return;
    var focusDetail = el.neuronBox.contains(document.activeElement);
    load(want.layer, function (d) {
      var changed = view.layer !== want.layer;
      view.layer = want.layer; view.neuron = want.neuron;
      rows().forEach(function (r) {
        if (r.id === d.id) r.setAttribute('aria-current', 'true'); else r.removeAttribute('aria-current');
      });
      el.panel.hidden = false;
      if (changed || missing !== view.missing) {
        el.title.textContent = d.id;
        el.note.textContent = (missing ? 'No layer ' + missing + ' in this model; showing ' + d.id + '. ' : '') +
          layerNote(d);
        el.skipBox.hidden = !(d.total || d.outputs_total);
        view.missing = missing;
      }
      if (changed) view.page = 0;
      if (view.neuron !== null) showPageOf(view.neuron);
      drawGrid();
      detail(d, view.neuron);
      if (focusDetail) el.status.focus();
      if (location.hash && (changed || view.neuron !== null)) reveal(first || changed);
      first = false;
    });
  }

  /* Bring what the link asked for into view. Side by side (wide screens): the layer's title, controls, grid and
     neuron together, once; after that only as far as the neuron panel needs. Stacked (phones): the neuron panel
     from its heading. Either way the grid scrolls itself to the current neuron, without moving the page. */
  function reveal(jump) {
    var grid = el.grid.getBoundingClientRect(), box = el.neuronBox.getBoundingClientRect();
    var beside = box.left >= grid.right;
    if (view.neuron === null) el.panel.scrollIntoView({block: 'start'});
    else if (!beside) el.neuronBox.scrollIntoView({block: 'start'});
    else if (jump) el.panel.scrollIntoView({block: 'start'});
    else el.neuronBox.scrollIntoView({block: 'nearest'});
    var cell = el.grid.querySelector('a[aria-current="true"]');
    if (cell) {
      var c = cell.getBoundingClientRect(), g = el.grid.getBoundingClientRect();
      if (c.top < g.top || c.bottom > g.bottom) el.grid.scrollTop += c.top - g.top - (g.height - c.height) / 2;
    }
  }

  /* ---------------------------------------------------------------- the layer table */
  function sortTable(btn) {
    var th = btn.parentNode, key = btn.getAttribute('data-sort');
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    document.querySelectorAll('.vw-layers th[aria-sort]').forEach(function (t) { t.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = document.querySelector('.vw-layers tbody');
    rows().sort(function (a, b) {
      var x = a.getAttribute('data-' + key), y = b.getAttribute('data-' + key), r;
      if (key === 'id') r = x.localeCompare(y);
      else r = (x === '' ? -Infinity : parseFloat(x)) - (y === '' ? -Infinity : parseFloat(y));
      return (asc ? r : -r) || (parseInt(a.getAttribute('data-order'), 10) - parseInt(b.getAttribute('data-order'), 10));
    }).forEach(function (r) { body.appendChild(r); });
  }

  function init() {
    var root = $('vw-explorer');
    if (!root) return;
    stops = JSON.parse(root.getAttribute('data-diverging')).map(hexRgb);
    el = {panel: $('vw-layer'), title: $('vw-layer-title'), note: $('vw-layer-note'), grid: $('vw-grid'),
          sort: $('vw-sort'), dir: $('vw-dir'), filter: $('vw-filter'), perPage: $('vw-per-page'), zoom: $('vw-zoom'),
          prev: $('vw-prev'), next: $('vw-next'), pageText: $('vw-page'), detail: $('vw-detail'),
          status: $('vw-status'), neuronBox: $('vw-neuron'), skip: $('vw-skip'), skipBox: $('vw-skip-box')};
    view.skip = el.skip.checked;  // a reload keeps the box's state
    el.skip.addEventListener('change', function () {
      view.skip = el.skip.checked;
      var d = data[view.layer];
      if (!d) return;
      el.note.textContent = layerNote(d);
      drawGrid();
      detail(d, view.neuron);
    });
    document.querySelectorAll('.vw-layers button[data-sort]').forEach(function (b) {
      b.addEventListener('click', function () { sortTable(b); });
    });
    el.sort.addEventListener('change', function () {
      el.dir.value = el.sort.value === 'id' ? 'asc' : 'desc';
      view.page = 0; drawGrid();
    });
    [el.dir, el.perPage].forEach(function (c) { c.addEventListener('change', function () { view.page = 0; drawGrid(); }); });
    el.filter.addEventListener('input', function () { view.page = 0; drawGrid(); });
    el.zoom.addEventListener('input', drawGrid);
    el.prev.addEventListener('click', function () { view.page--; drawGrid(); });
    el.next.addEventListener('click', function () { view.page++; drawGrid(); });
    el.dir.value = 'asc';
    window.addEventListener('hashchange', route);
    window.addEventListener('popstate', route);
    route();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
