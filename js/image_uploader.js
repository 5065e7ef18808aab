// ImageUploader front-end (anywidget, plain ES module: JupyterLab 4, Notebook 7, Colab).
// Files go to the kernel in chunks (binary buffers, a few in flight); the protocol is documented in
// nerf_widgets/widgets/image_uploader.py. User data (file and project names, reasons) is only ever
// written with textContent, never as HTML.

const WINDOW_BYTES = 8 * 1048576; // bytes in flight (across files): bounds memory, not latency
const WINDOW_CHUNKS = 64; // small files: many chunks in flight so each does not wait a round trip

function h(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function key() {
  return Math.random().toString(36).slice(2, 12) + Date.now().toString(36);
}

function mib(bytes) {
  return (bytes / 1048576).toFixed(1) + " MiB";
}

// Replies from the kernel, routed by batch key and kind (per view: other views ignore them).
class Inbox {
  constructor() {
    this.waiters = new Map();
    this.fileHandlers = new Map();
  }
  wait(bid, kinds) {
    return new Promise((resolve) => {
      for (const kind of kinds) this.waiters.set(bid + "/" + kind, resolve);
    });
  }
  deliver(msg) {
    if (msg.kind === "failed") {
      for (const [k, handler] of this.fileHandlers) {
        if (k.startsWith(msg.bid + "/")) handler({ refused: msg.message });
      }
    }
    if (msg.kind === "ack") {
      const handler = this.fileHandlers.get(msg.bid + "/" + msg.fid);
      if (handler) handler(msg);
      return;
    }
    const resolve = this.waiters.get(msg.bid + "/" + msg.kind);
    if (!resolve) return;
    for (const k of ["begun", "done", "failed"]) this.waiters.delete(msg.bid + "/" + k);
    resolve(msg);
  }
}

// Sends every file in order with a window of chunks in flight across files, so small files do not
// each wait a round trip. Resolves to a Map fid -> refusal reason; rejects if the batch failed.
async function sendFiles(model, inbox, bid, rows) {
  const chunk = model.get("chunk_size") || 1048576;
  const refused = new Map();
  let inflight = 0;
  let inflightBytes = 0;
  const sizes = new Map(); // "fid/offset" -> chunk length, to release the window on ack
  let failed = null;
  let wake = null;
  const nap = () => new Promise((resolve) => (wake = resolve));
  for (const r of rows) {
    inbox.fileHandlers.set(bid + "/" + r.fid, (msg) => {
      if (msg.kind === "failed") failed = msg.message;
      if (msg.kind === "ack") {
        inflight -= 1;
        inflightBytes -= sizes.get(r.fid + "/" + msg.offset) || 0;
      }
      if (msg.refused) refused.set(r.fid, msg.refused);
      if (typeof msg.received === "number") r.onProgress(msg.received);
      if (wake) {
        const w = wake;
        wake = null;
        w();
      }
    });
  }
  try {
    for (const r of rows) {
      let offset = 0;
      while (offset < r.file.size && !refused.has(r.fid) && !failed) {
        while ((inflight >= WINDOW_CHUNKS || inflightBytes >= WINDOW_BYTES) && !failed) await nap();
        if (failed) break;
        const end = Math.min(offset + chunk, r.file.size);
        const buffer = await r.file.slice(offset, end).arrayBuffer();
        model.send({ kind: "chunk", bid, fid: r.fid, offset }, undefined, [buffer]);
        sizes.set(r.fid + "/" + offset, end - offset);
        inflight += 1;
        inflightBytes += end - offset;
        offset = end;
      }
    }
    while (inflight > 0 && !failed) await nap();
  } finally {
    for (const r of rows) inbox.fileHandlers.delete(bid + "/" + r.fid);
  }
  if (failed) throw new Error(failed);
  return refused;
}

// Files of a drop; dropped folders are walked (hidden files skipped). Entries must be taken
// synchronously inside the drop event, hence before the first await.
async function droppedFiles(dataTransfer) {
  const entries = Array.from(dataTransfer.items || [])
    .map((item) => (item.webkitGetAsEntry ? item.webkitGetAsEntry() : null))
    .filter(Boolean);
  if (!entries.length) return Array.from(dataTransfer.files || []);
  const out = [];
  async function walk(entry) {
    if (entry.name.startsWith(".")) return;
    if (entry.isFile) {
      out.push(await new Promise((resolve, reject) => entry.file(resolve, reject)));
    } else if (entry.isDirectory) {
      const reader = entry.createReader();
      for (;;) {
        const batch = await new Promise((resolve, reject) => reader.readEntries(resolve, reject));
        if (!batch.length) break;
        for (const child of batch) await walk(child);
      }
    }
  }
  for (const entry of entries) await walk(entry);
  return out;
}

function fileRow(file) {
  const row = h("div", "nw-file");
  const name = h("span", "nw-file-name", file.name);
  name.title = file.name;
  const bar = h("progress", "nw-file-progress");
  bar.max = Math.max(file.size, 1);
  bar.value = 0;
  const status = h("span", "nw-file-status", "waiting · " + mib(file.size));
  row.append(name, bar, status);
  return { row, bar, status, file, done: false };
}

function describe(result) {
  if (result.status === "accepted") return "added";
  if (result.status === "duplicate") return "duplicate" + (result.reason ? ": " + result.reason : "");
  return (result.status || "rejected") + (result.reason ? ": " + result.reason : "");
}

function applyResults(rows, results) {
  const byName = new Map();
  for (const r of results) {
    if (!byName.has(r.name)) byName.set(r.name, []);
    byName.get(r.name).push(r);
  }
  for (const row of rows) {
    const mine = byName.get(row.file.name) || [];
    if (!mine.length) continue;
    const first = mine.length > 1 && mine.every((r) => r.status === "accepted") ? null : mine.shift();
    row.status.textContent = first ? describe(first) : mine.length + " frames added";
    row.row.dataset.status = first ? first.status : "accepted";
    if (!first) mine.length = 0;
  }
}

function render({ model, el }) {
  const root = h("div", "nw-uploader");
  const header = h("div", "nw-header");
  const drop = h("div", "nw-drop");
  const dropText = h("div", "nw-drop-text", "Drop photos or videos here, or ");
  const picker = h("input", "nw-file-input");
  picker.type = "file";
  picker.multiple = true;
  picker.accept = "image/*,video/*,.heic,.heif";
  const pickButton = h("button", "nw-button", "choose files");
  const dirPicker = h("input", "nw-dir-input");
  dirPicker.type = "file";
  dirPicker.webkitdirectory = true;
  const dirButton = h("button", "nw-button", "choose a folder");
  picker.hidden = dirPicker.hidden = true;
  dropText.append(pickButton, document.createTextNode(" "), dirButton);
  drop.append(dropText, picker, dirPicker);

  const serverRow = h("div", "nw-server");
  const pathBox = h("input", "nw-folder-path");
  pathBox.type = "text";
  pathBox.placeholder = "Folder on the kernel's disk, e.g. ~/photos/scene1";
  const pathButton = h("button", "nw-button nw-folder-add", "Add folder");
  serverRow.append(h("span", "nw-label", "Or from the kernel's disk:"), pathBox, pathButton);

  const errorLine = h("div", "nw-error");
  const ingest = h("div", "nw-ingest");
  const files = h("div", "nw-files");
  const notAdded = h("div", "nw-not-added");
  const gridTitle = h("div", "nw-grid-title");
  const grid = h("div", "nw-grid");
  root.append(header, drop, serverRow, errorLine, ingest, files, notAdded, gridTitle, grid);
  el.append(root);

  const inbox = new Inbox();
  const thumbs = new Map(); // image id -> object URL
  const requested = new Set();
  let uploading = false;
  let localError = ""; // problems the kernel cannot know about (a broken drop, a lost connection)

  const onMessage = (msg, buffers) => {
    if (msg.kind === "thumbs") {
      msg.ids.forEach((id, i) => {
        const blob = new Blob([buffers[i]], { type: "image/jpeg" });
        if (thumbs.has(id)) URL.revokeObjectURL(thumbs.get(id));
        thumbs.set(id, URL.createObjectURL(blob));
        requested.delete(id);
      });
      drawGrid();
      return;
    }
    inbox.deliver(msg);
  };
  model.on("msg:custom", onMessage);

  async function upload(list) {
    const chosen = Array.from(list);
    if (!chosen.length || uploading) return;
    uploading = true;
    localError = "";
    drawControls();
    const bid = key();
    files.replaceChildren();
    const rows = chosen.map((file, i) => ({ ...fileRow(file), fid: "f" + i }));
    rows.forEach((r) => files.append(r.row));
    try {
      const entries = rows.map((r) => ({ fid: r.fid, name: r.file.name, size: r.file.size }));
      const begun = inbox.wait(bid, ["begun", "failed"]);
      model.send({ kind: "begin", bid, files: entries });
      const answer = await begun;
      if (answer.kind === "failed") return;
      const sending = [];
      for (const r of rows) {
        const refusedUpFront = answer.refused[r.fid];
        if (refusedUpFront) {
          r.status.textContent = "rejected: " + refusedUpFront;
          r.row.dataset.status = "rejected";
          continue;
        }
        r.onProgress = (received) => {
          r.bar.value = received;
          r.status.textContent = received >= r.file.size ? "sent" : mib(received) + " / " + mib(r.file.size);
        };
        sending.push(r);
      }
      const refused = await sendFiles(model, inbox, bid, sending);
      for (const [fid, reason] of refused) {
        const r = rows.find((x) => x.fid === fid);
        r.status.textContent = "rejected: " + reason;
        r.row.dataset.status = "rejected";
      }
      for (const r of sending) if (!refused.has(r.fid)) r.bar.value = r.bar.max;
      const done = inbox.wait(bid, ["done", "failed"]);
      model.send({ kind: "commit", bid });
      const result = await done;
      if (result.kind === "done") applyResults(rows, result.results);
    } catch (err) {
      model.send({ kind: "cancel", bid });
      localError = "Upload stopped: " + err;
    } finally {
      uploading = false;
      picker.value = dirPicker.value = "";
      drawControls();
    }
  }

  async function addFolder() {
    const path = pathBox.value.trim();
    if (uploading) return;
    uploading = true;
    drawControls();
    const bid = key();
    const done = inbox.wait(bid, ["done", "failed"]);
    model.send({ kind: "folder", bid, path });
    await done;
    uploading = false;
    drawControls();
  }

  pickButton.addEventListener("click", () => picker.click());
  dirButton.addEventListener("click", () => dirPicker.click());
  picker.addEventListener("change", () => upload(picker.files));
  dirPicker.addEventListener("change", () => upload(dirPicker.files));
  pathButton.addEventListener("click", addFolder);
  pathBox.addEventListener("keydown", (e) => {
    if (e.key === "Enter") addFolder();
  });
  drop.addEventListener("dragover", (e) => {
    e.preventDefault();
    drop.classList.add("nw-drag");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("nw-drag"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("nw-drag");
    if (!e.dataTransfer) return;
    droppedFiles(e.dataTransfer).then(upload, (err) => {
      localError = "Drop failed: " + err;
      drawControls();
    });
  });

  function drawControls() {
    const open = !!model.get("project_id");
    const blocked = !open || uploading || model.get("busy");
    header.replaceChildren();
    if (open) {
      header.append(h("span", "nw-label", "Images of project "), h("b", "nw-project", model.get("project_name")));
    } else {
      header.append(h("span", "nw-hint", "Open or create a project (Projects tab) to add images."));
    }
    for (const control of [pickButton, dirButton, pathBox, pathButton]) control.disabled = blocked;
    drop.classList.toggle("nw-disabled", blocked);
    errorLine.textContent = model.get("error") || localError;
  }

  function drawProgress() {
    const p = model.get("progress") || {};
    ingest.replaceChildren();
    if (!p.total) return;
    const bar = h("progress", "nw-ingest-progress");
    bar.max = p.total;
    bar.value = p.done;
    ingest.append(h("span", "nw-label", "Processing " + p.done + " / " + p.total + " "), bar, h("span", "nw-file-name", p.name || ""));
  }

  function drawNotAdded() {
    notAdded.replaceChildren();
    for (const r of model.get("results") || []) {
      if (r.status === "accepted") continue;
      const item = h("div", "nw-result");
      item.dataset.status = r.status;
      item.append(h("span", "nw-badge nw-badge-" + r.status, r.status), h("span", "nw-file-name", r.name), h("span", "nw-reason", r.reason));
      notAdded.append(item);
    }
  }

  function card(image) {
    const item = h("div", "nw-thumb");
    item.dataset.id = image.id;
    const url = thumbs.get(image.id);
    const picture = url ? h("img", "nw-thumb-img") : h("div", "nw-thumb-img nw-thumb-wait", "…");
    if (url) {
      picture.src = url;
      picture.alt = image.name;
    }
    const label = h("div", "nw-thumb-name", image.name);
    label.title = image.name + " · " + image.width + "×" + image.height + " · sharpness " + image.sharpness;
    const badges = h("div", "nw-badges");
    if (image.blurry) badges.append(h("span", "nw-badge nw-badge-blurry", "blurry"));
    if (image.has_alpha) badges.append(h("span", "nw-badge nw-badge-mask", "mask"));
    const remove = h("button", "nw-remove", "×");
    remove.title = "Remove this image";
    remove.addEventListener("click", () => {
      remove.disabled = true;
      model.send({ kind: "remove", id: image.id });
    });
    item.append(picture, remove, badges, label);
    return item;
  }

  function drawGrid() {
    const images = model.get("images") || [];
    const live = new Set(images.map((i) => i.id));
    for (const [id, url] of thumbs) {
      if (!live.has(id)) {
        URL.revokeObjectURL(url);
        thumbs.delete(id);
      }
    }
    const missing = images.filter((i) => !thumbs.has(i.id) && !requested.has(i.id)).map((i) => i.id);
    if (missing.length) {
      missing.forEach((id) => requested.add(id));
      model.send({ kind: "thumbs", ids: missing });
    }
    gridTitle.textContent = images.length ? images.length + " image" + (images.length === 1 ? "" : "s") : "";
    grid.replaceChildren(...images.map(card));
  }

  const onProject = () => {
    files.replaceChildren();
    requested.clear();
    drawControls();
    drawGrid();
  };
  model.on("change:project_id", onProject);
  model.on("change:project_name", drawControls);
  model.on("change:busy", drawControls);
  model.on("change:error", drawControls);
  model.on("change:progress", drawProgress);
  model.on("change:results", drawNotAdded);
  model.on("change:images", drawGrid);
  drawControls();
  drawProgress();
  drawNotAdded();
  drawGrid();

  return () => {
    model.off("msg:custom", onMessage);
    model.off("change:project_id", onProject);
    model.off("change:project_name", drawControls);
    model.off("change:busy", drawControls);
    model.off("change:error", drawControls);
    model.off("change:progress", drawProgress);
    model.off("change:results", drawNotAdded);
    model.off("change:images", drawGrid);
    for (const url of thumbs.values()) URL.revokeObjectURL(url);
  };
}

export default { render };
