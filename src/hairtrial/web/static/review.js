// hairtrial review page: SVG hair overlay with zoom/pan, delete, draw, move exit, class and
// diameter edits, live endpoints, save as draft or approve; exits the measurement is unsure
// of are hollow rings, n walks through them and f swaps a hair's ends. Vanilla JS, no
// dependencies.
"use strict";
(function () {
  const root = document.getElementById("review");
  if (!root) return;
  const imageId = Number(root.dataset.imageId);
  const width = Number(root.dataset.width);
  const height = Number(root.dataset.height);
  const umPerPx = Number(root.dataset.umPerPx);
  const areaCm2 = Number(root.dataset.areaCm2);
  const canEdit = root.dataset.canEdit === "yes";
  const csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  const svg = document.getElementById("overlay");
  const layer = document.getElementById("hairs");
  const drawing = document.getElementById("drawing");
  const NS = "http://www.w3.org/2000/svg";
  const TERMINAL_MIN_UM = 60, VELLUS_MAX_UM = 30;
  // Below this exit confidence about one exit in four is the cut end (simulated trial).
  const UNSURE_EXIT = 0.95;

  let hairs = [];
  let baseRevisionId = null;
  let selected = null;
  let tool = "select";
  let view = { x: 0, y: 0, w: width, h: height };
  let drawPts = null;
  let panFrom = null;

  const $ = (id) => document.getElementById(id);
  const message = (text, bad) => { const m = $("message"); m.textContent = text; m.className = bad ? "error" : "muted"; };

  function classify(d) { return d >= TERMINAL_MIN_UM ? "terminal" : (d <= VELLUS_MAX_UM ? "vellus" : "intermediate"); }
  function unsure(h) { return h.exit_px !== null && typeof h.exit_confidence === "number" && h.exit_confidence < UNSURE_EXIT; }
  function inside(p) { return p && p[0] >= 0 && p[1] >= 0 && p[0] <= width && p[1] <= height; }

  function setView() {
    svg.setAttribute("viewBox", `${view.x} ${view.y} ${view.w} ${view.h}`);
    const r = 4 * view.w / Math.max(1, svg.clientWidth);
    for (const dot of layer.querySelectorAll("circle")) dot.setAttribute("r", r);
  }
  function toImage(evt) {
    const pt = svg.createSVGPoint();
    pt.x = evt.clientX; pt.y = evt.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [Math.round(p.x * 100) / 100, Math.round(p.y * 100) / 100];
  }
  function zoom(factor, centre) {
    const c = centre || [view.x + view.w / 2, view.y + view.h / 2];
    const w = Math.min(width * 4, Math.max(4, view.w * factor));
    const h = w * height / width;
    view = { x: c[0] - (c[0] - view.x) * (w / view.w), y: c[1] - (c[1] - view.y) * (h / view.h), w: w, h: h };
    setView();
  }

  function endpoints() {
    const counted = hairs.filter((h) => h.exit_px !== null);
    const n = counted.length;
    const d = counted.map((h) => h.diameter_um);
    const mean = n ? d.reduce((a, b) => a + b, 0) / n : null;
    const term = n ? d.filter((v) => v >= TERMINAL_MIN_UM).length / n : null;
    $("count").textContent = String(n);
    $("density").textContent = (n / areaCm2).toFixed(1);
    $("mean-diameter").textContent = mean === null ? "–" : mean.toFixed(1);
    $("terminal-fraction").textContent = term === null ? "–" : term.toFixed(2);
  }

  function render() {
    while (layer.firstChild) layer.removeChild(layer.firstChild);
    for (const h of hairs) {
      const line = document.createElementNS(NS, "polyline");
      line.setAttribute("points", h.centerline_px.map((p) => p.join(",")).join(" "));
      line.setAttribute("class", "hair" + (h.exit_px === null ? " uncounted" : "") + (h === selected ? " selected" : ""));
      line.dataset.hairId = String(h.id);
      layer.appendChild(line);
      if (h.exit_px !== null) {
        const dot = document.createElementNS(NS, "circle");
        dot.setAttribute("cx", h.exit_px[0]); dot.setAttribute("cy", h.exit_px[1]);
        dot.setAttribute("r", 4 * view.w / Math.max(1, svg.clientWidth));  // ~4 screen px
        dot.setAttribute("class", "exit" + (unsure(h) ? " unsure" : "") + (h === selected ? " selected" : ""));
        dot.dataset.hairId = String(h.id);
        layer.appendChild(dot);
      }
    }
    const fs = $("hair-edit");
    fs.disabled = !selected || !canEdit;
    $("sel-id").textContent = selected ? "#" + selected.id : "";
    $("sel-exit").textContent = selected && typeof selected.exit_confidence === "number" && selected.exit_px !== null
      ? `exit sure ${selected.exit_confidence.toFixed(2)}` : "";
    $("n-unsure").textContent = String(hairs.filter(unsure).length);
    if (selected) { $("sel-class").value = selected.class; $("sel-diameter").value = selected.diameter_um; }
    endpoints();
  }

  function select(h) { selected = h; render(); }
  function setTool(name) {
    tool = name;
    for (const t of ["select", "draw", "exit"]) $("tool-" + t).classList.toggle("active", t === name);
  }
  function removeSelected() {
    if (!selected || !canEdit) return;
    hairs = hairs.filter((h) => h !== selected);
    selected = null; render(); message("Hair deleted (not saved yet).");
  }
  function nextUnsure() {
    const list = hairs.filter(unsure).sort((a, b) => a.id - b.id);
    if (!list.length) { message("No unsure exits left."); return; }
    const next = list.find((h) => selected && h.id > selected.id) || list[0];
    view.x = next.exit_px[0] - view.w / 2; view.y = next.exit_px[1] - view.h / 2;
    setView(); select(next);
  }
  function swapEnds() {
    // the measurement read the cut end as the exit (or the inner end as a cut tip): the
    // tip becomes the exit, the exit the tip, and the centreline runs the other way
    if (!selected || !canEdit) return;
    const line = selected.centerline_px.slice().reverse();
    const oldExit = selected.exit_px;
    selected.centerline_px = line;
    selected.exit_px = inside(line[0]) ? line[0] : null;
    selected.tip_px = oldExit !== null ? oldExit : line[line.length - 1];
    delete selected.exit_confidence;  // a person decided it
    render(); message("Ends swapped (not saved yet).");
  }
  function setClass(c) { if (selected && canEdit) { selected.class = c; render(); } }

  function addDrawn(points) {
    if (points.length < 2) return;
    let length = 0;
    for (let i = 1; i < points.length; i++) length += Math.hypot(points[i][0] - points[i - 1][0], points[i][1] - points[i - 1][1]);
    const id = hairs.reduce((m, h) => Math.max(m, h.id), 0) + 1;
    const d = 60;
    const hair = { id: id, exit_px: inside(points[0]) ? points[0] : null, tip_px: points[points.length - 1],
      centerline_px: points, diameter_um: d, length_um: Math.round(length * umPerPx * 100) / 100,
      class: classify(d), confidence: 1 };
    hairs.push(hair); select(hair); message("Hair added (not saved yet).");
  }

  svg.addEventListener("wheel", (evt) => { evt.preventDefault(); zoom(evt.deltaY > 0 ? 1.2 : 1 / 1.2, toImage(evt)); }, { passive: false });
  svg.addEventListener("pointerdown", (evt) => {
    const p = toImage(evt);
    const target = evt.target;
    if (tool === "draw" && canEdit) { drawPts = [p]; svg.setPointerCapture(evt.pointerId); return; }
    if (tool === "exit" && canEdit && selected) {
      selected.exit_px = inside(p) ? p : null;
      selected.centerline_px = [p, ...selected.centerline_px.slice(1)];
      delete selected.exit_confidence;  // a person placed it: no measured confidence
      render(); message("Exit moved (not saved yet)."); return;
    }
    if (target && target.dataset && target.dataset.hairId) {
      select(hairs.find((h) => String(h.id) === target.dataset.hairId) || null); return;
    }
    panFrom = { client: [evt.clientX, evt.clientY], view: Object.assign({}, view) };
    svg.setPointerCapture(evt.pointerId);
  });
  svg.addEventListener("pointermove", (evt) => {
    if (drawPts) {
      const p = toImage(evt);
      const last = drawPts[drawPts.length - 1];
      if (Math.hypot(p[0] - last[0], p[1] - last[1]) >= view.w / 400) drawPts.push(p);
      drawing.setAttribute("points", drawPts.map((q) => q.join(",")).join(" "));
    } else if (panFrom) {
      const r = svg.getBoundingClientRect();
      const s = Math.max(view.w / r.width, view.h / r.height);
      view.x = panFrom.view.x - (evt.clientX - panFrom.client[0]) * s;
      view.y = panFrom.view.y - (evt.clientY - panFrom.client[1]) * s;
      setView();
    }
  });
  svg.addEventListener("pointerup", () => {
    if (drawPts) { const pts = drawPts; drawPts = null; drawing.setAttribute("points", ""); addDrawn(pts); }
    panFrom = null;
  });

  $("tool-select").addEventListener("click", () => setTool("select"));
  $("tool-draw").addEventListener("click", () => setTool("draw"));
  $("tool-exit").addEventListener("click", () => setTool("exit"));
  $("delete-hair").addEventListener("click", removeSelected);
  $("next-unsure").addEventListener("click", nextUnsure);
  $("swap-ends").addEventListener("click", swapEnds);
  $("zoom-reset").addEventListener("click", () => { view = { x: 0, y: 0, w: width, h: height }; setView(); });
  $("sel-class").addEventListener("change", (e) => setClass(e.target.value));
  $("sel-diameter").addEventListener("input", (e) => {
    const v = Number(e.target.value);
    if (selected && canEdit && Number.isFinite(v) && v >= 0 && v <= 1000) { selected.diameter_um = v; selected.class = classify(v); render(); }
  });

  async function save(status) {
    if (!canEdit) return;
    const unusable = $("unusable").checked;
    const body = { hairs: hairs, status: status, base_revision_id: baseRevisionId, unusable: unusable,
      unusable_reason: $("unusable-reason").value || null, comment: $("comment").value || null };
    const r = await fetch(`/api/images/${imageId}/revisions`, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf }, body: JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) { message("Not saved: " + (typeof data.detail === "string" ? data.detail : r.status), true); return; }
    baseRevisionId = data.id;
    message(`${status === "approved" ? "Approved" : "Draft saved"} as revision ${data.id}: ${data.summary.hair_count} hairs counted.`);
    loadHistory();
  }
  $("save-draft").addEventListener("click", () => save("draft"));
  $("approve").addEventListener("click", () => save("approved"));

  document.addEventListener("keydown", (evt) => {
    const tag = (evt.target && evt.target.tagName) || "";
    if (["INPUT", "TEXTAREA", "SELECT"].includes(tag) || evt.ctrlKey || evt.metaKey || evt.altKey) return;
    const k = evt.key;
    if (k === "Delete" || k === "Backspace" || k === "x") { removeSelected(); }
    else if (k === "d") setTool("draw");
    else if (k === "v") setTool("select");
    else if (k === "e") setTool("exit");
    else if (k === "n") nextUnsure();
    else if (k === "f") swapEnds();
    else if (k === "1") setClass("vellus");
    else if (k === "2") setClass("intermediate");
    else if (k === "3") setClass("terminal");
    else if (k === "+" || k === "=") zoom(1 / 1.25);
    else if (k === "-") zoom(1.25);
    else if (k === "0") { view = { x: 0, y: 0, w: width, h: height }; setView(); }
    else if (k === "s") save("draft");
    else if (k === "a") save("approved");
    else if (k === "Escape") select(null);
    else return;
    evt.preventDefault();
  });

  async function loadHistory() {
    const r = await fetch(`/api/images/${imageId}/revisions`, { credentials: "same-origin" });
    if (!r.ok) return;
    const list = $("history");
    while (list.firstChild) list.removeChild(list.firstChild);
    for (const rev of await r.json()) {
      const li = document.createElement("li");
      li.textContent = `#${rev.id} ${rev.status}${rev.unusable ? " (unusable)" : ""} by ${rev.author}, ` +
        `${rev.summary.hair_count} hairs (+${rev.n_added} −${rev.n_deleted} ~${rev.n_edited})`;
      list.appendChild(li);
    }
  }

  async function load() {
    const r = await fetch(`/api/images/${imageId}`, { credentials: "same-origin" });
    if (!r.ok) { message("Could not load the image (" + r.status + ").", true); return; }
    const state = await r.json();
    hairs = state.hairs;
    baseRevisionId = state.revision_id;
    render();
    root.dataset.ready = "yes";
    loadHistory();
  }
  load();
})();
