"""The camera, as a Streamlit custom component v2 (inline HTML/CSS/JS, no build step).

Two modes share one camera widget:

- ``record``: hold a button to record a burst (``fps`` frames per second) into the chosen class, or
  add photos from a phone's camera or gallery (``<input type=file accept=image/* capture>``). One
  trigger per burst, ``frames``: ``{"cls", "images": [data URLs]}``.
- ``live``: classify frames continuously. At most one frame is in flight: the next frame is taken
  only when the answer to the last one came back (``data.result.seq``), so a slow server makes the
  camera skip frames instead of building a queue. Trigger ``frame``: ``{"seq", "image"}``. The bars
  are drawn here from ``data.result``; the component measures frame sent → bars drawn and shows it
  (and keeps it in ``data-rate``/``data-latency-ms`` attributes for the benchmark).

The camera picker appears when the browser sees several cameras; the choice is remembered.
"""

from __future__ import annotations

import streamlit as st

HTML = """
<div class="tlcam">
  <div class="bar"><select class="pick" hidden></select><span class="msg"></span></div>
  <div class="stage"><video autoplay playsinline muted></video><div class="bars"></div></div>
  <div class="controls">
    <button class="rec" type="button"></button>
    <label class="photos"><span></span><input type="file" accept="image/*" capture="environment" multiple></label>
    <button class="live" type="button"></button>
  </div>
  <div class="stats"></div>
</div>
"""

CSS = """
.tlcam { font-family: var(--st-font, sans-serif); color: var(--st-text-color); }
.tlcam .bar { display: flex; gap: .5rem; align-items: center; margin-bottom: .4rem; min-height: 1.6rem; }
.tlcam select { font: inherit; padding: .2rem; }
.tlcam .msg { color: var(--st-text-color); opacity: .8; }
.tlcam .stage { display: flex; gap: 1rem; flex-wrap: wrap; align-items: flex-start; }
.tlcam video { width: 100%; max-width: 400px; border-radius: .5rem; background: #222; aspect-ratio: 4 / 3; }
.tlcam .bars { flex: 1; min-width: 220px; }
.tlcam .bars .verdict { font-weight: 600; margin-bottom: 6px; }
.tlcam .row { margin: .25rem 0; }
.tlcam .row .name { display: flex; justify-content: space-between; font-size: .95rem; }
.tlcam .row .track { height: .9rem; background: var(--st-secondary-background-color, #eee); border-radius: .3rem; }
.tlcam .row .fill { height: 100%; background: var(--st-primary-color, #ff4b4b); border-radius: .3rem; }
.tlcam .controls { display: flex; gap: .6rem; margin-top: .5rem; flex-wrap: wrap; }
.tlcam button, .tlcam .photos { font: inherit; padding: .55rem 1rem; border-radius: .5rem; cursor: pointer;
  border: 1px solid var(--st-border-color, #ccc); background: var(--st-background-color, #fff);
  color: var(--st-text-color); user-select: none; -webkit-user-select: none; touch-action: none; }
.tlcam button.rec { background: var(--st-primary-color, #ff4b4b); color: #fff; border: none; }
.tlcam button.rec.on { filter: brightness(.8); box-shadow: 0 0 0 3px rgba(255,0,0,.35); }
.tlcam .photos input { display: none; }
.tlcam .stats { font-size: .85rem; opacity: .75; margin-top: .3rem; }
.tlcam [hidden] { display: none !important; }
"""

JS = """
const MAX_SIDE = 320;

function grab(s, side) {
  const v = s.video;
  if (!v.videoWidth) return null;
  const scale = Math.min(1, side / Math.max(v.videoWidth, v.videoHeight));
  s.canvas.width = Math.round(v.videoWidth * scale);
  s.canvas.height = Math.round(v.videoHeight * scale);
  s.canvas.getContext("2d").drawImage(v, 0, 0, s.canvas.width, s.canvas.height);
  return s.canvas.toDataURL("image/jpeg", 0.85);
}

async function start(s, deviceId) {
  if (s.stream) s.stream.getTracks().forEach(t => t.stop());
  const video = deviceId ? { deviceId: { exact: deviceId } } : { facingMode: "environment" };
  try {
    s.stream = await navigator.mediaDevices.getUserMedia({ video, audio: false });
  } catch (err) {
    s.msg.textContent = s.data.text.no_camera + " (" + err.name + ")";
    return;
  }
  s.video.srcObject = s.stream;
  s.msg.textContent = "";
  const cams = (await navigator.mediaDevices.enumerateDevices()).filter(d => d.kind === "videoinput");
  s.pick.hidden = cams.length < 2;
  s.pick.innerHTML = "";
  const current = s.stream.getVideoTracks()[0].getSettings().deviceId;
  cams.forEach((c, i) => {
    const o = document.createElement("option");
    o.value = c.deviceId; o.textContent = c.label || (s.data.text.camera + " " + (i + 1));
    o.selected = c.deviceId === current;
    s.pick.appendChild(o);
  });
}

function stopRecording(s) {
  if (!s.timer) return;
  clearInterval(s.timer); s.timer = null;
  s.rec_button.classList.remove("on");
  const images = s.burst; s.burst = [];
  s.rec_button.textContent = s.data.text.hold;
  if (images.length) s.send("frames", { cls: s.data.cls, images });
}

function startRecording(s, ev) {
  ev.preventDefault();
  if (s.timer || !s.data.cls) return;
  s.burst = [];
  s.rec_button.classList.add("on");
  const tick = () => {
    const f = grab(s, MAX_SIDE);
    if (f) s.burst.push(f);
    s.rec_button.textContent = s.data.text.recording.replace("{n}", s.burst.length);
  };
  tick();
  s.timer = setInterval(tick, 1000 / (s.data.fps || 8));
}

async function readPhotos(s, files) {
  const images = [];
  for (const file of files) {
    const bitmap = await createImageBitmap(file).catch(() => null);
    if (!bitmap) continue;
    const scale = Math.min(1, 640 / Math.max(bitmap.width, bitmap.height));
    s.canvas.width = Math.round(bitmap.width * scale); s.canvas.height = Math.round(bitmap.height * scale);
    s.canvas.getContext("2d").drawImage(bitmap, 0, 0, s.canvas.width, s.canvas.height);
    images.push(s.canvas.toDataURL("image/jpeg", 0.9));
  }
  if (images.length) s.send("frames", { cls: s.data.cls, images });
}

function drawBars(s, top, verdict) {
  s.bars.innerHTML = "";
  if (verdict) {
    const v = document.createElement("div"); v.className = "verdict"; v.textContent = verdict;
    s.bars.appendChild(v);
  }
  for (const t of top) {
    const row = document.createElement("div"); row.className = "row";
    const name = document.createElement("div"); name.className = "name";
    const a = document.createElement("span"); a.textContent = t.label;
    const b = document.createElement("span"); b.textContent = (100 * t.prob).toFixed(1) + "%";
    name.append(a, b);
    const track = document.createElement("div"); track.className = "track";
    const fill = document.createElement("div"); fill.className = "fill"; fill.style.width = (100 * t.prob) + "%";
    track.appendChild(fill); row.append(name, track); s.bars.appendChild(row);
  }
}

function liveStep(s) {
  if (!s.running || s.inflight) return;
  const image = grab(s, s.data.side || 256);
  if (!image) { setTimeout(() => liveStep(s), 100); return; }
  s.seq += 1;
  s.inflight = { seq: s.seq, t0: performance.now() };
  s.send("frame", { seq: s.seq, image });
}

function liveAnswer(s, result) {
  if (!result || !s.inflight || result.seq !== s.inflight.seq) return;
  drawBars(s, result.top, result.verdict);
  const now = performance.now();
  s.latencies.push(now - s.inflight.t0); s.done.push(now);
  s.latencies = s.latencies.slice(-100); s.done = s.done.filter(t => now - t < 5000);
  s.inflight = null;
  const span = (s.done[s.done.length - 1] - s.done[0]) / 1000;
  const rate = s.done.length > 1 ? (s.done.length - 1) / span : 0;
  const recent = s.latencies.slice(-30);
  const lat = recent.reduce((x, y) => x + y, 0) / recent.length;
  s.root.dataset.latencies = s.latencies.map(x => x.toFixed(0)).join(",");
  s.root.dataset.rate = rate.toFixed(2); s.root.dataset.latencyMs = lat.toFixed(0);
  s.root.dataset.answers = String((+s.root.dataset.answers || 0) + 1);
  s.stats.textContent = s.data.text.stats.replace("{rate}", rate.toFixed(1)).replace("{ms}", lat.toFixed(0));
  requestAnimationFrame(() => liveStep(s));
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement.querySelector(".tlcam");
  let s = root.__tl;
  if (!s) {
    s = root.__tl = { root, video: root.querySelector("video"), canvas: document.createElement("canvas"),
      pick: root.querySelector(".pick"), msg: root.querySelector(".msg"), bars: root.querySelector(".bars"),
      rec_button: root.querySelector(".rec"), live_button: root.querySelector(".live"),
      stats: root.querySelector(".stats"), photos: root.querySelector(".photos"), burst: [], timer: null,
      running: false, inflight: null, seq: 0, latencies: [], done: [] };
    s.data = data;
    const saved = localStorage.getItem("tl-camera") || "";
    s.pick.onchange = () => { localStorage.setItem("tl-camera", s.pick.value); start(s, s.pick.value); };
    const b = s.rec_button;
    b.addEventListener("pointerdown", ev => { b.setPointerCapture?.(ev.pointerId); startRecording(s, ev); });
    ["pointerup", "pointercancel", "lostpointercapture"].forEach(e => b.addEventListener(e, () => stopRecording(s)));
    b.addEventListener("contextmenu", ev => ev.preventDefault());
    b.addEventListener("keydown", ev => { if (ev.key === " " && !ev.repeat) startRecording(s, ev); });
    b.addEventListener("keyup", ev => { if (ev.key === " ") stopRecording(s); });
    s.photos.querySelector("input").onchange = ev => { readPhotos(s, ev.target.files); ev.target.value = ""; };
    s.live_button.onclick = async () => {
      s.running = !s.running; s.inflight = null;
      s.live_button.textContent = s.running ? s.data.text.stop : s.data.text.start;
      if (s.running && !s.stream) await start(s, localStorage.getItem("tl-camera") || "");
      if (!s.running && s.stream) { s.stream.getTracks().forEach(t => t.stop()); s.stream = null; }
      liveStep(s);
    };
    if (data.mode !== "live") start(s, saved);  // live: the camera turns on with Start, off with Stop
  }
  clearTimeout(s.closing);
  s.data = data;
  s.send = setTriggerValue;
  const live = data.mode === "live";
  s.rec_button.hidden = live || !data.cls; s.photos.hidden = live || !data.cls;
  s.live_button.hidden = !live; s.bars.hidden = !live; s.stats.hidden = !live;
  if (!s.timer) s.rec_button.textContent = data.text.hold;
  s.photos.querySelector("span").textContent = data.text.photos;
  s.live_button.textContent = s.running ? data.text.stop : data.text.start;
  if (live) liveAnswer(s, data.result);
  // Streamlit may unmount and mount again between runs: stop the camera only when it stays away.
  return () => {
    s.closing = setTimeout(() => {
      stopRecording(s); s.running = false;
      if (s.stream) s.stream.getTracks().forEach(t => t.stop());
      delete root.__tl;
    }, 1500);
  };
}
"""

_camera = st.components.v2.component("tl_camera", html=HTML, css=CSS, js=JS)


def camera(key: str, data: dict, **callbacks):
    """Mount the camera (``data``: ``mode``, ``text`` (the translated labels), and ``cls``/``fps``
    to record, or ``result``/``side`` for live prediction). Returns the component's result."""
    return _camera(key=key, data=data, height="content", **callbacks)
