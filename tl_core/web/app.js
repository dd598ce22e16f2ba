/* The exported classifier page. Loads the model from the bytes in model.js with onnxruntime-web
   (single-threaded WebAssembly: file:// has no SharedArrayBuffer), classifies photos and camera
   frames on this device, and never sends anything anywhere. */
(function () {
  "use strict";
  const B = window.TL_BUNDLE, info = B.info, pre = info.preprocess, S = pre.crop;
  const cal = info.calibration || null, K = Math.min(5, info.labels.length);
  let lang = /^ko\b/i.test(navigator.language || "") ? "ko" : "en";
  let session = null, rerender = [];
  const $ = (id) => document.getElementById(id);

  function t(key, fields) {
    let s = (B.strings[lang] || {})[key] || B.strings.en[key] || key;
    for (const [k, v] of Object.entries(fields || {})) s = s.split("{" + k + "}").join(String(v));
    return s;
  }

  function fromBase64(b64) {
    const bin = atob(b64), out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  async function gunzip(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }

  async function load() {
    const t0 = performance.now();
    ort.env.wasm.numThreads = 1;  // threads need SharedArrayBuffer, which file:// pages do not get
    ort.env.wasm.proxy = false;
    // file:// may not import module files: the glue module comes from a data: URL, the WebAssembly as bytes.
    ort.env.wasm.wasmPaths = { mjs: "data:text/javascript;base64," + window.TL_GLUE_B64 };
    ort.env.wasm.wasmBinary = await gunzip(fromBase64(window.TL_RUNTIME_GZ_B64));
    const model = fromBase64(window.TL_MODEL_B64);
    session = await ort.InferenceSession.create(model, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    tl.stats.loadMs = performance.now() - t0;
    tl.stats.sinceNavigationMs = performance.now();
  }

  /** Raw class probabilities for n model views (uint8 RGB, n x S x S x 3). */
  async function classifyPixels(pixels, n) {
    if (!session) await tl.ready;
    const x = new ort.Tensor("uint8", pixels, [n || 1, S, S, 3]);
    const out = await session.run({ images: x });
    const p = out.probs.data, C = info.labels.length, rows = [];
    for (let i = 0; i < (n || 1); i++) rows.push(Array.from(p.subarray(i * C, (i + 1) * C)));
    return rows;
  }

  function calibrated(probs) {  // the run's temperature: softmax(log p / T), as the app does
    if (!cal) return probs;
    const z = probs.map((v) => Math.log(Math.max(v, 1e-12)) / cal.temperature), m = Math.max(...z);
    const e = z.map((v) => Math.exp(v - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / s);
  }

  function topK(probs) {
    return probs.map((p, i) => ({ label: info.labels[i], prob: p })).sort((a, b) => b.prob - a.prob).slice(0, K);
  }

  function verdictText(top) {
    const pct = (100 * top[0].prob).toFixed(1);
    if (cal && top[0].prob < cal.not_sure_below) return t("not_sure_best", { label: top[0].label, pct });
    return t("verdict", { label: top[0].label, pct });
  }

  function bars(el, top) {
    el.innerHTML = "";
    for (const { label, prob } of top) {
      const row = document.createElement("div"), name = document.createElement("span");
      const bar = document.createElement("span"), fill = document.createElement("span");
      const pct = document.createElement("span");
      row.className = "bar-row"; name.className = "bar-label"; bar.className = "bar"; fill.className = "fill";
      pct.className = "bar-pct"; name.textContent = label; pct.textContent = (100 * prob).toFixed(1) + "%";
      fill.style.width = (100 * prob).toFixed(1) + "%"; bar.appendChild(fill);
      row.append(name, bar, pct); el.appendChild(row);
    }
  }

  function show(el, probs) {  // data-* for tests and tools: the raw (uncalibrated) probabilities
    const top = topK(calibrated(probs)), unsure = cal && top[0].prob < cal.not_sure_below;
    el.dataset.top1 = topK(probs)[0].label; el.dataset.probs = JSON.stringify(probs);
    el.dataset.verdict = unsure ? "not sure" : top[0].label;
    return { top, unsure };
  }

  /** Decoded picture (EXIF orientation applied, transparent -> white) -> model view + preview canvas. */
  function viewOf(source, w, h) {
    const canvas = document.createElement("canvas");
    canvas.width = w; canvas.height = h;
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, w, h); ctx.drawImage(source, 0, 0, w, h);
    return TLPreprocess.modelPixels(ctx.getImageData(0, 0, w, h), pre);
  }

  function previewCanvas(pixels) {
    const c = document.createElement("canvas"), rgba = new Uint8ClampedArray(S * S * 4);
    c.width = c.height = S;
    for (let i = 0; i < S * S; i++) {
      rgba[i * 4] = pixels[i * 3]; rgba[i * 4 + 1] = pixels[i * 3 + 1]; rgba[i * 4 + 2] = pixels[i * 3 + 2]; rgba[i * 4 + 3] = 255;
    }
    c.getContext("2d").putImageData(new ImageData(rgba, S, S), 0, 0);
    return c;
  }

  async function classifyFile(file) {
    const card = document.createElement("div");
    card.className = "result"; $("results").prepend(card);
    try {
      const bitmap = await createImageBitmap(file, { imageOrientation: "from-image" });
      // Huge photos (short side over 8x the resize) are first halved by the browser: the exact
      // resampling in JavaScript would take seconds (the app reads such JPEGs at reduced size too).
      let w = bitmap.width, h = bitmap.height;
      while (Math.min(w, h) > 8 * pre.resize) { w = Math.round(w / 2); h = Math.round(h / 2); }
      const pixels = viewOf(bitmap, w, h);
      const probs = (await classifyPixels(pixels, 1))[0];
      const text = document.createElement("div"), verdict = document.createElement("p"), barBox = document.createElement("div");
      const name = document.createElement("p");
      name.className = "small"; name.textContent = file.name; verdict.className = "verdict";
      text.append(verdict, barBox, name); card.append(previewCanvas(pixels), text);
      card.dataset.file = file.name;
      const render = () => { const r = show(card, probs); verdict.textContent = verdictText(r.top); verdict.classList.toggle("unsure", !!r.unsure); bars(barBox, r.top); };
      render(); rerender.push(render);
    } catch (err) {
      card.classList.add("error"); card.dataset.error = String(err);
      card.textContent = t("cannot_read", { name: file.name, error: err.message || err });
    }
  }

  async function classifyFiles(files) {
    for (const f of files) await classifyFile(f);
  }

  // ---- live camera ----
  let stream = null, facing = "environment", running = false;
  async function startCamera() {
    stopCamera();
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: facing }, audio: false });
    } catch (err) {
      $("live-verdict").textContent = t("camera_denied", { error: err.message || err });
      return;
    }
    const video = $("video");
    video.srcObject = stream; await video.play();
    running = true; $("camera-start").textContent = t("camera_stop");
    liveLoop();
  }

  function stopCamera() {
    running = false;
    if (stream) stream.getTracks().forEach((tr) => tr.stop());
    stream = null; $("camera-start").textContent = t("camera_start");
  }

  async function liveLoop() {
    const video = $("video"), times = [];
    while (running) {
      if (video.videoWidth) {
        const t0 = performance.now();
        const probs = (await classifyPixels(viewOf(video, video.videoWidth, video.videoHeight), 1))[0];
        const el = $("live-verdict"), r = show(el, probs);
        el.textContent = verdictText(r.top); el.classList.toggle("unsure", !!r.unsure); bars($("live-bars"), r.top);
        times.push(performance.now() - t0); if (times.length > 10) times.shift();
        const ms = times.reduce((a, b) => a + b, 0) / times.length;
        $("live-speed").textContent = t("speed", { fps: (1000 / ms).toFixed(1), ms: ms.toFixed(0) });
      }
      await new Promise((ok) => setTimeout(ok, 30));  // let the page breathe between frames
    }
  }

  // ---- text ----
  function card() {
    const acc = info.metrics && info.metrics.test ? (100 * info.metrics.test.accuracy).toFixed(1) + "% (" +
      t("on_images", { n: info.metrics.test.n }) + ")" : t("not_evaluated");
    const rows = [["card_labels", info.labels.join(", ")], ["card_data", info.data || "?"],
      ["card_scenario", String(info.scenario)], ["card_backbone", info.backbone],
      ["card_accuracy", acc], ["card_date", info.created]];
    if (info.quantization) rows.push(["card_int8", t("int8_summary", info.quantization.summary)]);
    if (cal) rows.push(["card_not_sure", t("not_sure_rule", { pct: (100 * cal.not_sure_below).toFixed(1) })]);
    const dl = $("card"); dl.innerHTML = "";
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"), dd = document.createElement("dd");
      dt.textContent = t(k); dd.textContent = v; dl.append(dt, dd);
    }
    $("preprocess").textContent = t("pre_text", { resize: pre.resize, interp: pre.interpolation, crop: S,
      mean: pre.mean.join(", "), std: pre.std.join(", ") });
  }

  function applyLanguage() {
    document.documentElement.lang = lang;
    document.title = t("title", { labels: info.labels.join(", ") });
    $("title").textContent = document.title;
    document.querySelectorAll("[data-t]").forEach((el) => { el.textContent = t(el.dataset.t); });
    document.querySelectorAll("[data-lang]").forEach((b) => b.setAttribute("aria-pressed", String(b.dataset.lang === lang)));
    $("camera-start").textContent = t(running ? "camera_stop" : "camera_start");
    const st = $("status"); st.textContent = t(st.dataset.state === "ready" ? "ready" : st.dataset.state === "failed" ? "failed" : "loading", { error: st.dataset.error || "" });
    card(); rerender.forEach((f) => f());
  }

  function selectTab(name) {
    for (const tab of ["photos", "camera"]) {
      $("panel-" + tab).hidden = tab !== name; $("tab-" + tab).setAttribute("aria-selected", String(tab === name));
    }
    if (name !== "camera") stopCamera();
  }

  function wire() {
    document.querySelectorAll("[data-lang]").forEach((b) => b.addEventListener("click", () => { lang = b.dataset.lang; applyLanguage(); }));
    document.querySelectorAll("[data-tab]").forEach((b) => b.addEventListener("click", () => selectTab(b.dataset.tab)));
    $("files").addEventListener("change", (e) => classifyFiles(Array.from(e.target.files)));
    const drop = $("drop");
    drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (e) => { e.preventDefault(); drop.classList.remove("over"); classifyFiles(Array.from(e.dataTransfer.files)); });
    $("camera-start").addEventListener("click", () => (running ? stopCamera() : startCamera()));
    $("camera-flip").addEventListener("click", () => { facing = facing === "environment" ? "user" : "environment"; if (running) startCamera(); });
  }

  // Hooks for tests and the benchmark: the same functions the page uses.
  const tl = window.tl = { stats: {}, classifyPixels, modelPixels: (img) => TLPreprocess.modelPixels(img, pre), size: S };
  wire(); applyLanguage();
  tl.ready = load().then(() => {
    $("status").dataset.state = "ready"; applyLanguage(); document.body.dataset.ready = "1";
  }).catch((err) => {
    const st = $("status"); st.dataset.state = "failed"; st.dataset.error = String(err.message || err); applyLanguage();
    throw err;
  });
})();
