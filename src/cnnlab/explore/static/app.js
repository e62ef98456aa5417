// cnnlab explore: the page. Plain JavaScript, no library, no build step, nothing from the network.
// Talks to the local server (/api/...) or, in a static copy, reads window.CNNLAB_STATIC (same answers).
"use strict";
(() => {
  const STATIC = window.CNNLAB_STATIC || null;
  const TOKEN = new URLSearchParams(location.search).get("token");
  const $ = (sel) => document.querySelector(sel);
  const el = (tag, attrs = {}, ...kids) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") e.className = v;
      else if (k === "text") e.textContent = v;
      else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "dataset") Object.assign(e.dataset, v);
      else if (k === "style") e.style.cssText = v;  // CSSOM, allowed by the page's CSP (style attributes are not)
      else e.setAttribute(k, v);
    }
    for (const kid of kids) if (kid != null) e.append(kid);
    return e;
  };
  let S = {};  // translated strings
  const TOP_CLASSES = 10;  // probabilities listed (the true class too, wherever it ranks)
  const MAX_OPTIONS = 20;  // Grad-CAM menu: every class up to this many, else the most probable ones (any by number)
  const state = { info: null, image: null, data: null, layer: null, neuron: null, cols: {} };
  window.cnnlabTimings = [];

  async function api(path, options) {
    if (STATIC) {
      if (path in STATIC.answers) return STATIC.answers[path];
      throw new Error(S.not_static || "not in this static copy");
    }
    const headers = Object.assign({}, TOKEN ? { "X-Cnnlab-Token": TOKEN } : {}, (options && options.headers) || {});
    const response = await fetch(path, Object.assign({}, options || {}, { headers }));
    let body;
    try { body = await response.json(); } catch (e) { body = { error: response.statusText }; }
    if (!response.ok || (body && body.error)) throw new Error(body.error || response.statusText);
    return body;
  }

  function showError(err) {
    const box = $("#error");
    box.textContent = (S.error || "error") + ": " + (err && err.message ? err.message : err);
    box.hidden = false;
  }
  function clearError() { $("#error").hidden = true; }

  let phases = null;  // the current action's steps: [name, ms since its start]
  const phase = (name) => { if (phases) phases.push([name, Math.round(performance.now() - phases.t0)]); };

  async function timed(what, fn) {
    const t0 = performance.now();
    phases = []; phases.t0 = t0;
    const mine = phases;
    try {
      clearError();
      await fn();
    } catch (err) {
      showError(err);
    }
    const ms = performance.now() - t0;
    window.cnnlabTimings.push({ what, ms, phases: mine.slice() });
    document.body.dataset.done = String(window.cnnlabTimings.length);
  }

  // ------------------------------------------------------------------ colours and numbers
  const VIRIDIS = [[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]];
  const JET = [[0, 0, 131], [0, 60, 170], [5, 255, 255], [255, 255, 0], [250, 0, 0], [128, 0, 0]];
  function lut(stops) {
    const out = new Uint8Array(256 * 3);
    for (let i = 0; i < 256; i++) {
      const t = (i / 255) * (stops.length - 1), k = Math.min(stops.length - 2, Math.floor(t)), f = t - k;
      for (let c = 0; c < 3; c++) out[i * 3 + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
    }
    return out;
  }
  const VIR = lut(VIRIDIS), HOT = lut(JET);
  const fmt = (v) => (v === null || v === undefined) ? "pad" : (Math.abs(v) >= 1e5 || (Math.abs(v) < 1e-4 && v !== 0) ? v.toExponential(4) : (+v.toPrecision(7)).toString());
  const num = (v, cls) => el("span", { class: "num " + (cls || ""), text: fmt(v), dataset: { value: String(v) } });
  function bytes(b64) {
    const s = atob(b64), out = new Uint8Array(s.length);
    for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
    return out;
  }
  function paint(canvas, values, w, h, table, alpha) {
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    for (let i = 0; i < w * h; i++) {
      const v = values[i];
      img.data[i * 4] = table[v * 3]; img.data[i * 4 + 1] = table[v * 3 + 1]; img.data[i * 4 + 2] = table[v * 3 + 2];
      img.data[i * 4 + 3] = alpha === undefined ? 255 : alpha;
    }
    ctx.putImageData(img, 0, 0);
  }

  // ------------------------------------------------------------------ start
  async function start() {
    const info = await api("/api/info");
    state.info = info; S = info.strings;
    document.documentElement.lang = info.lang;
    document.querySelectorAll("[data-t]").forEach((e) => { if (S[e.dataset.t]) e.textContent = S[e.dataset.t]; });
    $("#title").textContent = "— " + info.name;
    const notes = $("#notes");
    info.notes.forEach((n, k) => notes.append(info.untrained && k === 0
      ? el("div", { class: "note untrained", id: "untrained", text: n }) : el("div", { class: "note", text: n })));
    if (STATIC) {
      notes.append(el("div", { class: "note", text: S.static }));
      $("#upload-box").hidden = true;
    } else setupUpload();
    const images = await api("/api/images");
    renderThumbs(images);
    if (images.length) await selectImage(images[0].id);
  }

  function renderThumbs(images) {
    const box = $("#thumbs");
    box.replaceChildren();
    for (const im of images) {
      const status = im.correct === null ? "" : (im.correct ? "ok" : "bad");
      const caption = im.label === null ? S.unlabelled + " → " + im.predicted
        : im.correct === null ? im.label + " → " + im.predicted : im.label + (im.correct ? " ✓" : " ✗ " + im.predicted);
      const b = el("button", { class: "thumb " + status, dataset: { id: im.id }, title: im.source + " — " + (im.correct === null ? "" : (im.correct ? S.correct : S.wrong)),
        onclick: () => selectImage(im.id) }, el("img", { src: im.png, alt: im.source }), el("span", { text: caption }));
      box.append(b);
    }
  }

  function setupUpload() {
    const send = (file) => timed("upload", async () => {
      const r = await api("/api/upload?name=" + encodeURIComponent(file.name), { method: "POST", body: file,
        headers: { "Content-Type": "application/octet-stream" } });
      renderThumbs(r.images);
      await loadImage(r.id);
    });
    $("#upload").addEventListener("change", (e) => { if (e.target.files.length) send(e.target.files[0]); });
    const drop = $("#drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => {
      e.preventDefault(); drop.classList.remove("over");
      if (e.dataTransfer.files.length) send(e.dataTransfer.files[0]);
    });
  }

  const selectImage = (id) => timed("image", () => loadImage(id));

  async function loadImage(id) {
    const data = await api("/api/image/" + id);
    phase("answer");
    state.image = id; state.data = data; state.neuron = null;
    document.querySelectorAll(".thumb").forEach((t) => t.classList.toggle("selected", t.dataset.id === id));
    renderNetwork(data);
    phase("network drawn");
    if (state.layer !== null) renderLayerSelection();
    $("#neuron").replaceChildren(el("p", { class: "hint", text: S.pick_neuron }));
    renderCamControls(data);
  }

  // ------------------------------------------------------------------ the network at a glance
  function renderNetwork(data) {
    const net = $("#network");
    net.replaceChildren();
    const inputBox = el("div", { class: "input-box", id: "input-box" }, el("img", { id: "input-image", src: data.input, alt: "input" }));
    net.append(el("div", { class: "col", id: "col-input" }, el("div", { class: "shape", text: S.input }), inputBox));
    state.info.layers.forEach((layer, i) => net.append(renderColumn(layer, data.layers[i])));
    const probs = el("div", { class: "probs", id: "probs" });
    const order = data.probs.map((p, k) => [p, k]).sort((a, b) => b[0] - a[0]);
    const shown = order.filter(([, k], rank) => rank < TOP_CLASSES || k === data.label);
    if (shown.length < order.length) probs.append(el("div", { class: "shape", text: `${shown.length} ${S.of} ${order.length}` }));
    for (const [p, k] of shown) {
      const cls = "prob" + (k === data.predicted ? " pred" : "") + (k === data.label ? " truth" : "");
      probs.append(el("div", { class: cls, dataset: { cls: String(k), p: String(p) } }, el("span", { class: "name", text: state.info.classes[k] }),
        el("div", { class: "bar" }, el("span", { style: "width:" + (100 * p).toFixed(1) + "%" })),
        el("span", { text: (100 * p).toFixed(1) + "%" })));
    }
    net.append(el("div", { class: "col" }, el("div", { class: "shape", text: S.probabilities }), probs));
  }

  function renderColumn(layer, page) {
    const col = el("div", { class: "col", id: "col-" + layer.index, dataset: { layer: String(layer.index) } });
    col.append(el("button", { class: "layer-title", dataset: { layer: String(layer.index) }, title: layer.title,
      onclick: () => selectLayer(layer.index), text: layer.index + " · " + layer.title }));
    col.append(el("div", { class: "shape", text: layer.shape_text }));
    const maps = el("div", { class: "maps" });
    col.append(maps);
    col.append(el("div", { class: "pager" }));
    fillColumn(col, page);
    return col;
  }

  function fillColumn(col, page) {
    const layer = page.layer, maps = col.querySelector(".maps"), pager = col.querySelector(".pager");
    maps.replaceChildren();
    if (page.spatial) {
      page.data.forEach((b64, k) => {
        const c = page.first + k;
        const canvas = el("canvas", { class: "map", dataset: { layer: String(layer), channel: String(c), lo: String(page.lo[k]), hi: String(page.hi[k]) },
          title: S.channel + " " + c + " · " + fmt(page.lo[k]) + " … " + fmt(page.hi[k]) });
        paint(canvas, bytes(b64), page.dw, page.dh, VIR);
        canvas.addEventListener("click", (e) => {
          const r = canvas.getBoundingClientRect();
          const y = Math.min(page.h - 1, Math.floor((e.clientY - r.top) / r.height * page.h));
          const x = Math.min(page.w - 1, Math.floor((e.clientX - r.left) / r.width * page.w));
          selectNeuron(layer, c, y, x);
        });
        maps.append(canvas);
      });
    } else {
      const values = page.values, cols = 16, rows = Math.ceil(values.length / cols);
      let lo = Math.min(...values), hi = Math.max(...values);
      const scaled = new Uint8Array(rows * cols);
      values.forEach((v, i) => { scaled[i] = hi > lo ? Math.round((v - lo) / (hi - lo) * 255) : 0; });
      const canvas = el("canvas", { class: "flat", dataset: { layer: String(layer), first: String(page.first), count: String(values.length) } });
      paint(canvas, scaled, cols, rows, VIR);
      canvas.style.width = cols * 8 + "px"; canvas.style.height = rows * 8 + "px";
      canvas.addEventListener("click", (e) => {
        const r = canvas.getBoundingClientRect();
        const i = Math.floor((e.clientY - r.top) / r.height * rows) * cols + Math.floor((e.clientX - r.left) / r.width * cols);
        if (i < values.length) selectNeuron(layer, page.first + i, 0, 0);
      });
      maps.style.gridTemplateColumns = "auto";
      maps.append(canvas);
    }
    pager.replaceChildren();
    if (page.pages > 1) {
      const size = page.spatial ? page.data.length : page.values.length;
      const go = (p) => timed("page", async () => fillColumn(col, await api(`/api/maps/${state.image}/${layer}/${p}`)));
      pager.append(el("button", { text: "◂", class: "prev", onclick: () => go(page.page - 1) }));
      if (page.page === 0) pager.lastChild.disabled = true;
      pager.append(el("span", { text: `${page.first}–${page.first + size - 1} ${S.of} ${page.count}` }));
      pager.append(el("button", { text: "▸", class: "next", onclick: () => go(page.page + 1) }));
      if (page.page === page.pages - 1) pager.lastChild.disabled = true;
    }
  }

  // ------------------------------------------------------------------ a layer
  const selectLayer = (i) => timed("layer", async () => { state.layer = i; await renderLayer(i); });

  function renderLayerSelection() {
    document.querySelectorAll(".col").forEach((c) => c.classList.toggle("selected", c.dataset.layer === String(state.layer)));
  }

  async function renderLayer(i) {
    const d = await api("/api/layer/" + i);
    renderLayerSelection();
    const box = $("#layer");
    box.replaceChildren(el("h3", { id: "layer-title", text: `${d.index} · ${d.title}` }),
      el("div", { text: `${S.output} ${d.shape_text} · ${S.params} ${d.params_text} · ${S.macs} ${d.macs_text} · ${S.rf} ${d.rf}` }),
      el("pre", { class: "explanation", id: "explanation", text: d.explanation }));
    if (d.filters) {
      const f = d.filters, grid = el("div", { class: "filters", id: "filters" });
      for (const tile of f.tiles) grid.append(drawTile(tile, f.colour));
      box.append(el("h4", { text: `${S.filters}: ${f.shown} ${S.of} ${f.total}` }), grid);
    }
    if (d.weights) {
      const t = el("table", { class: "nums", id: "weights" });
      for (const w of d.weights) t.append(el("tr", {}, el("td", { text: w.unit_name }), el("td", { text: "← " + w.where.join(",") }), el("td", {}, num(w.weight))));
      box.append(el("h4", { text: S.weights }), t);
    }
  }

  function drawTile(tile, colour) {
    const h = tile.length, w = tile[0].length, canvas = el("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d"), img = ctx.createImageData(w, h);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
      const v = tile[y][x], o = (y * w + x) * 4;
      const rgb = colour ? v.map((c) => Math.round(c * 255)) : (v < 0 ? [220, 232, 250] : [v * 255, v * 255, v * 255]);
      img.data[o] = rgb[0]; img.data[o + 1] = rgb[1]; img.data[o + 2] = rgb[2]; img.data[o + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    canvas.style.height = (colour || w === h ? 36 : 20) + "px";
    canvas.style.width = Math.round((colour || w === h ? 36 : 20) * w / h) + "px";
    return canvas;
  }

  // ------------------------------------------------------------------ a neuron
  const selectNeuron = (layer, c, y, x) => timed("neuron", async () => {
    const d = await api(`/api/neuron/${state.image}/${layer}/${c}/${y}/${x}`);
    phase("answer");
    state.neuron = d;
    document.querySelectorAll("canvas.map.selected").forEach((m) => m.classList.remove("selected"));
    const m = document.querySelector(`canvas.map[data-layer="${layer}"][data-channel="${c}"]`);
    if (m) m.classList.add("selected");
    renderNeuron(d);
    drawRF(d.rf);
    phase("drawn");
    if (state.layer !== layer) setTimeout(() => selectLayer(layer), 0);  // the layer panel follows, as its own answer
  });

  function drawRF(box) {
    const holder = $("#input-box"), img = $("#input-image");
    holder.querySelectorAll(".rf").forEach((r) => r.remove());
    const s = img.clientWidth / state.info.input_shape[2];
    holder.append(el("div", { class: "rf", id: "rf", dataset: { box: box.join(",") },
      style: `left:${box[1] * s}px;top:${box[0] * s}px;width:${(box[3] - box[1] + 1) * s}px;height:${(box[2] - box[0] + 1) * s}px` }));
  }

  function grid(values, cls, chosen) {
    const t = el("table", { class: "nums " + (cls || "") });
    values.forEach((row, i) => t.append(el("tr", {}, ...row.map((v, j) => {
      const isChosen = chosen && chosen[0] === i && chosen[1] === j;
      return el("td", { class: (v === null ? "pad" : "") + (isChosen ? " chosen" : ""), text: fmt(v), dataset: { value: String(v) } });
    }))));
    return t;
  }

  function eq(...parts) { return el("div", { class: "eq" }, ...parts); }

  function renderNeuron(d) {
    const box = $("#neuron");
    const where = d.y === null ? `${S.layer} ${d.layer} (${d.kind}), unit ${d.channel}` : `${S.layer} ${d.layer} (${d.kind}), ${S.channel} ${d.channel}, row ${d.y}, column ${d.x}`;
    box.replaceChildren(el("div", { id: "neuron-where", text: where }));
    const body = el("div", { id: "neuron-body", dataset: { op: d.op, layer: String(d.layer), channel: String(d.channel), y: String(d.y), x: String(d.x) } });
    box.append(body);
    if (d.op === "conv") {
      const shown = Math.min(d.window.length, 4);
      for (let k = 0; k < shown; k++) {
        body.append(el("div", { class: "channel", dataset: { channel: String(d.in_channels[k]) } },
          el("div", { text: `${S.channel} ${d.in_channels[k]}: ${S.window} × ${S.kernel} = ${fmt(d.partial[k])}` }),
          grid(d.window[k], "window"), el("span", { text: " × " }), grid(d.weights[k], "kernel")));
      }
      const partials = el("div", { class: "partials", id: "partials" });
      d.partial.forEach((p, k) => partials.append(el("div", {}, el("span", { text: d.in_channels[k] + ": " }), num(p, "partial"))));
      body.append(el("h4", { text: `${S.partial} (${d.partial.length}, k=${d.kernel_size.join("×")}, stride ${d.stride.join("×")}, padding ${d.padding.join("×")})` }), partials);
      body.append(eq("Σ " + S.partial + " + " + S.bias + " ", num(d.bias, "bias"), " = ", num(d.sum, "sum")));
    } else if (d.op === "pool") {
      body.append(el("div", { text: `${d.pool} pool ${d.kernel_size.join("×")}, stride ${d.stride.join("×")}` }), grid(d.window, "window", d.chosen));
      if (d.pool === "max") body.append(eq(S.chosen + " max = ", num(d.pooled, "pooled")));
      else body.append(eq(S.mean + " = ", num(d.total, "total"), ` / ${d.divisor} = `, num(d.pooled, "pooled")));
      if (d.affine) body.append(eq(`${fmt(d.affine[0])} · ${fmt(d.pooled)} + ${fmt(d.affine[1])} = `, num(d.sum, "sum")));
      else body.append(eq(S.sum + " = ", num(d.sum, "sum")));
    } else if (d.op === "dense") {
      const t = el("table", { class: "nums terms", id: "terms" });
      t.append(el("tr", {}, el("td", { text: "i (c,y,x)" }), el("td", { text: "x" }), el("td", { text: "w" }), el("td", { text: "x·w" })));
      for (const term of d.terms) t.append(el("tr", {}, el("td", { text: `${term.i} (${term.where.join(",")})` }), el("td", {}, num(term.x)), el("td", {}, num(term.w)), el("td", {}, num(term.product, "product"))));
      body.append(el("h4", { text: `${S.terms} (${d.terms.length} ${S.of} ${d.n})` }), t);
      body.append(eq(S.rest.replace("{n}", d.rest_count) + ": ", num(d.rest_sum, "rest")));
      body.append(eq("Σ x·w + " + S.bias + " ", num(d.bias, "bias"), " = ", num(d.sum, "sum")));
    } else if (d.op === "batchnorm") {
      body.append(eq(`(${fmt(d.input)} − ${fmt(d.mean)}) / √(${fmt(d.var)} + ${d.eps}) · ${fmt(d.gamma)} + ${fmt(d.beta)} = `, num(d.sum, "sum")));
    } else if (d.op === "residual") {
      body.append(eq(S.branch + " ", num(d.branch, "branch"), " + " + S.shortcut + (d.projection ? " (1×1 conv)" : "") + " ", num(d.shortcut, "shortcut"), " = ", num(d.sum, "sum")));
    } else if (d.op === "global_pool") {
      body.append(eq(`${d.pool} over ${d.shape.join("×")} = ${d.count} values → `, num(d.sum, "sum")));
    } else if (d.op === "flatten" || d.op === "elementwise") {
      body.append(eq((d.where ? `[${d.where.join(",")}] ` : "") + "input ", num(d.input, "input"), " → ", num(d.sum, "sum")));
    } else {
      body.append(el("div", { text: d.module }));
    }
    if (d.act !== undefined) body.append(eq(`${S.activation} ${d.act}(${fmt(d.sum)}) = `, num(d.activation, "activation")));
    body.append(eq(S.model_value + " = ", el("b", { id: "neuron-value", text: fmt(d.value), dataset: { value: String(d.value) } })));
    const patchButton = el("button", { id: "patches-button", text: `${S.patches.split(":")[0]}: ${S.layer} ${d.layer}, ${S.channel} ${d.channel}`,
      onclick: () => showPatches(d.layer, d.channel) });
    $("#patches").replaceChildren(patchButton);
  }

  // ------------------------------------------------------------------ why this class
  function renderCamControls(data) {
    const box = $("#cam");
    const select = el("select", { id: "cam-class" });
    const classes = state.info.classes.map((name, k) => k);
    if (classes.length > MAX_OPTIONS) classes.sort((a, b) => data.probs[b] - data.probs[a]).splice(MAX_OPTIONS);
    classes.forEach((k) => select.append(el("option", { value: String(k), text: `${state.info.classes[k]} (${(100 * data.probs[k]).toFixed(1)}%)` })));
    select.value = String(data.predicted);
    const index = el("input", { type: "number", id: "cam-index", min: "0", max: String(state.info.classes.length - 1), value: String(data.predicted) });
    select.addEventListener("change", () => { index.value = select.value; timed("cam", () => drawCam(+select.value)); });
    const go = el("button", { id: "cam-go", text: S.compute, onclick: () => timed("cam", () => drawCam(+index.value)) });
    box.replaceChildren(el("label", { text: S.class + " " }, select), " #", index, " ", go, el("div", { class: "cam-box", id: "cam-box" }));
    if (state.info.auto_cam) timed("cam", () => drawCam(data.predicted));
  }

  async function drawCam(k) {
    const holder = $("#cam-box");
    let d;
    try { d = await api(`/api/cam/${state.image}?class=${k}`); } catch (err) { holder.replaceChildren(el("p", { class: "hint", text: err.message })); return; }
    const base = el("canvas", { class: "base" }), heat = el("canvas", { class: "heat", dataset: { target: String(d.target) } });
    const img = $("#input-image");
    base.width = d.w; base.height = d.h;
    const ctx = base.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    await img.decode().catch(() => null);
    ctx.drawImage(img, 0, 0, d.w, d.h);
    paint(heat, bytes(d.data), d.w, d.h, HOT);
    holder.replaceChildren(base, heat, el("div", { text: `${state.info.classes[d.target]}: p = ${d.probability.toFixed(3)}, ${S.layer} ${d.layer}` }));
  }

  // ------------------------------------------------------------------ what a channel looks for
  const showPatches = (layer, channel) => timed("patches", async () => {
    const box = $("#patches");
    const d = await api(`/api/patches/${layer}/${channel}`);
    const g = el("div", { class: "patch-grid", id: "patch-grid" });
    for (const p of d.patches) g.append(el("figure", {}, el("img", { src: p.png, alt: p.id }), el("figcaption", { text: fmt(p.value) })));
    box.replaceChildren(el("div", { text: `${S.layer} ${layer}, ${S.channel} ${channel} (${d.searched})` }), g);
  });

  document.addEventListener("DOMContentLoaded", () => timed("start", start));
})();
