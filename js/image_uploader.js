// ImageUploader front-end (anywidget, plain ES module: JupyterLab 4, Notebook 7, Colab).
// Files go to the kernel in chunks (binary buffers, several in flight); the protocol is documented in
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

function noReply(seconds, what) {
  return (
    "No reply from the kernel for " + Math.round(seconds) + " s while " + what + ". It may be busy running " +
    "another cell, or it was restarted; try again when it is idle."
  );
}

// Replies from the kernel, routed by batch key and kind (per view: other views ignore them). Every wait
// has a timeout that restarts whenever the kernel shows a sign of life (any message or progress update),
// so a long ingest that reports progress never times out, while a kernel that says nothing does.
class Inbox {
  constructor(limitSeconds) {
    this.waiters = new Map();
    this.fileHandlers = new Map();
    this.limitSeconds = limitSeconds;
    this.heard = Date.now();
  }
  alive() {
    this.heard = Date.now();
  }
  silentFor(since) {
    return (Date.now() - Math.max(since, this.heard)) / 1000;
  }
  wait(bid, kinds, what) {
    return new Promise((resolve, reject) => {
      const since = Date.now();
      const timer = setInterval(() => {
        const limit = this.limitSeconds();
        if (this.silentFor(since) < limit) return;
        clearInterval(timer);
        for (const kind of kinds) this.waiters.delete(bid + "/" + kind);
        reject(new Error(noReply(limit, what)));
      }, 250);
      const finish = (msg) => {
        clearInterval(timer);
        resolve(msg);
      };
      for (const kind of kinds) this.waiters.set(bid + "/" + kind, finish);
    });
  }
  deliver(msg) {
    this.alive();
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
  let sentAt = Date.now();
  const nap = async () => {
    await new Promise((resolve) => {
      wake = resolve;
      setTimeout(resolve, 250);
    });
    const limit = inbox.limitSeconds();
    if (inbox.silentFor(sentAt) >= limit) throw new Error(noReply(limit, "receiving the files"));
  };
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
        sentAt = Date.now();
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

// Results carry the file key (fid) of the row they belong to: two files of the same name (from two folders)
// each get their own. A video gives several results (one per kept frame) for its one row.
function applyResults(rows, results) {
  const byFid = new Map();
  for (const r of results) {
    if (!byFid.has(r.fid)) byFid.set(r.fid, []);
    byFid.get(r.fid).push(r);
  }
  for (const row of rows) {
    const mine = byFid.get(row.fid) || [];
    if (!mine.length) continue;
    const frames = mine.length > 1 && mine.every((r) => r.status === "accepted");
    row.status.textContent = frames ? mine.length + " frames added" : mine.map(describe).join("; ");
    row.row.dataset.status = frames ? "accepted" : mine[0].status;
  }
}

// The static part of the view; every node that shows data is filled later with textContent.
function buildLayout() {
  const ui = {};
  const input = (className, props) => Object.assign(h("input", className), props);
  ui.root = h("div", "nw-uploader");
  ui.header = h("div", "nw-header");
  ui.drop = h("div", "nw-drop");
  ui.picker = input("nw-file-input", { type: "file", multiple: true, accept: "image/*,video/*,.heic,.heif", hidden: true });
  ui.dirPicker = input("nw-dir-input", { type: "file", webkitdirectory: true, hidden: true });
  ui.pickButton = h("button", "nw-button", "choose files");
  ui.dirButton = h("button", "nw-button", "choose a folder");
  const dropText = h("div", "nw-drop-text", "Drop photos or videos here, or ");
  dropText.append(ui.pickButton, document.createTextNode(" "), ui.dirButton);
  ui.drop.append(dropText, ui.picker, ui.dirPicker);
  ui.pathBox = input("nw-folder-path", { type: "text", placeholder: "Folder on the kernel's disk, e.g. ~/photos/scene1" });
  ui.pathButton = h("button", "nw-button nw-folder-add", "Add folder");
  const serverRow = h("div", "nw-server");
  serverRow.append(h("span", "nw-label", "Or from the kernel's disk:"), ui.pathBox, ui.pathButton);
  for (const name of ["error", "ingest", "files", "not-added", "grid-title", "grid"]) {
    ui[name.replace(/-(.)/g, (_m, c) => c.toUpperCase())] = h("div", "nw-" + name);
  }
  ui.root.append(ui.header, ui.drop, serverRow, ui.error, ui.ingest, ui.files, ui.notAdded, ui.gridTitle, ui.grid);
  return ui;
}

function thumbCard(image, url, onRemove) {
  const item = h("div", "nw-thumb");
  item.dataset.id = image.id;
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
    onRemove(image.id);
  });
  item.append(picture, remove, badges, label);
  return item;
}

class UploaderView {
  constructor(model, el) {
    this.model = model;
    this.ui = buildLayout();
    this.inbox = new Inbox(() => model.get("reply_timeout_s") || 300);
    this.thumbs = new Map(); // image id -> object URL
    this.requested = new Set();
    this.uploading = false;
    this.localError = ""; // problems the kernel cannot know about (a broken drop, a lost connection)
    this.listeners = [
      ["msg:custom", (msg, buffers) => this.onMessage(msg, buffers)],
      ["change:project_id", () => this.onProject()],
      ["change:project_name", () => this.drawControls()],
      ["change:busy", () => this.drawControls()],
      ["change:error", () => this.drawControls()],
      ["change:progress", () => (this.inbox.alive(), this.drawProgress())],
      ["change:results", () => this.drawNotAdded()],
      ["change:images", () => this.drawGrid()],
    ];
    for (const [event, fn] of this.listeners) model.on(event, fn);
    this.bindInputs();
    el.append(this.ui.root);
    this.drawControls();
    this.drawProgress();
    this.drawNotAdded();
    this.drawGrid();
  }

  destroy() {
    for (const [event, fn] of this.listeners) this.model.off(event, fn);
    for (const url of this.thumbs.values()) URL.revokeObjectURL(url);
  }

  bindInputs() {
    const ui = this.ui;
    ui.pickButton.addEventListener("click", () => ui.picker.click());
    ui.dirButton.addEventListener("click", () => ui.dirPicker.click());
    ui.picker.addEventListener("change", () => this.upload(ui.picker.files));
    ui.dirPicker.addEventListener("change", () => this.upload(ui.dirPicker.files));
    ui.pathButton.addEventListener("click", () => this.addFolder());
    ui.pathBox.addEventListener("keydown", (e) => e.key === "Enter" && this.addFolder());
    ui.drop.addEventListener("dragover", (e) => {
      e.preventDefault();
      ui.drop.classList.add("nw-drag");
    });
    ui.drop.addEventListener("dragleave", () => ui.drop.classList.remove("nw-drag"));
    ui.drop.addEventListener("drop", (e) => {
      e.preventDefault();
      ui.drop.classList.remove("nw-drag");
      if (!e.dataTransfer) return;
      droppedFiles(e.dataTransfer).then(
        (list) => this.upload(list),
        (err) => this.fail("Drop failed: " + err),
      );
    });
  }

  onMessage(msg, buffers) {
    this.inbox.alive();
    if (msg.kind !== "thumbs") return this.inbox.deliver(msg);
    msg.ids.forEach((id, i) => {
      if (this.thumbs.has(id)) URL.revokeObjectURL(this.thumbs.get(id));
      this.thumbs.set(id, URL.createObjectURL(new Blob([buffers[i]], { type: "image/jpeg" })));
      this.requested.delete(id);
    });
    this.drawGrid();
  }

  onProject() {
    this.ui.files.replaceChildren();
    this.requested.clear();
    this.drawControls();
    this.drawGrid();
  }

  fail(message) {
    this.localError = message;
    this.drawControls();
  }

  async upload(list) {
    const chosen = Array.from(list || []);
    if (!chosen.length || this.uploading) return;
    this.uploading = true;
    this.localError = "";
    this.drawControls();
    const bid = key();
    const rows = chosen.map((file, i) => ({ ...fileRow(file), fid: "f" + i }));
    this.ui.files.replaceChildren(...rows.map((r) => r.row));
    try {
      await this.transfer(bid, rows);
    } catch (err) {
      this.model.send({ kind: "cancel", bid });
      this.localError = "Upload stopped: " + (err && err.message ? err.message : err);
    } finally {
      this.uploading = false;
      this.ui.picker.value = this.ui.dirPicker.value = "";
      this.drawControls();
    }
  }

  // begin -> chunks -> commit; per-file rows show transfer progress, then each file's result.
  async transfer(bid, rows) {
    const entries = rows.map((r) => ({ fid: r.fid, name: r.file.name, size: r.file.size }));
    const begun = this.inbox.wait(bid, ["begun", "failed"], "starting the upload");
    this.model.send({ kind: "begin", bid, files: entries });
    const answer = await begun;
    if (answer.kind === "failed") return;
    const reject = (r, reason) => {
      r.status.textContent = "rejected: " + reason;
      r.row.dataset.status = "rejected";
    };
    const sending = rows.filter((r) => !answer.refused[r.fid]);
    rows.filter((r) => answer.refused[r.fid]).forEach((r) => reject(r, answer.refused[r.fid]));
    for (const r of sending) {
      r.onProgress = (received) => {
        r.bar.value = received;
        r.status.textContent = received >= r.file.size ? "sent" : mib(received) + " / " + mib(r.file.size);
      };
    }
    const refused = await sendFiles(this.model, this.inbox, bid, sending);
    for (const r of sending) {
      if (refused.has(r.fid)) reject(r, refused.get(r.fid));
      else r.bar.value = r.bar.max;
    }
    const done = this.inbox.wait(bid, ["done", "failed"], "processing the files");
    this.model.send({ kind: "commit", bid });
    const result = await done;
    if (result.kind === "done") applyResults(rows, result.results);
  }

  async addFolder() {
    if (this.uploading) return;
    this.uploading = true;
    this.localError = "";
    this.drawControls();
    const bid = key();
    const done = this.inbox.wait(bid, ["done", "failed"], "adding the folder");
    this.model.send({ kind: "folder", bid, path: this.ui.pathBox.value.trim() });
    try {
      await done;
    } catch (err) {
      this.localError = err.message + " The kernel may still add the folder when it gets to it.";
    } finally {
      this.uploading = false;
      this.drawControls();
    }
  }

  drawControls() {
    const { ui, model } = this;
    const open = !!model.get("project_id");
    const blocked = !open || this.uploading || model.get("busy");
    if (open) {
      ui.header.replaceChildren(h("span", "nw-label", "Images of project "), h("b", "nw-project", model.get("project_name")));
    } else {
      ui.header.replaceChildren(h("span", "nw-hint", "Open or create a project (Projects tab) to add images."));
    }
    for (const control of [ui.pickButton, ui.dirButton, ui.pathBox, ui.pathButton]) control.disabled = blocked;
    ui.drop.classList.toggle("nw-disabled", blocked);
    ui.error.textContent = model.get("error") || this.localError;
  }

  drawProgress() {
    const p = this.model.get("progress") || {};
    if (!p.total) return this.ui.ingest.replaceChildren();
    const bar = Object.assign(h("progress", "nw-ingest-progress"), { max: p.total, value: p.done });
    const label = h("span", "nw-label", "Processing " + p.done + " / " + p.total + " ");
    this.ui.ingest.replaceChildren(label, bar, h("span", "nw-file-name", p.name || ""));
  }

  drawNotAdded() {
    const items = (this.model.get("results") || []).filter((r) => r.status !== "accepted").map((r) => {
      const item = h("div", "nw-result");
      item.dataset.status = r.status;
      item.append(h("span", "nw-badge nw-badge-" + r.status, r.status), h("span", "nw-file-name", r.name), h("span", "nw-reason", r.reason));
      return item;
    });
    this.ui.notAdded.replaceChildren(...items);
  }

  drawGrid() {
    const images = this.model.get("images") || [];
    const live = new Set(images.map((i) => i.id));
    for (const [id, url] of this.thumbs) {
      if (live.has(id)) continue;
      URL.revokeObjectURL(url);
      this.thumbs.delete(id);
    }
    const missing = images.filter((i) => !this.thumbs.has(i.id) && !this.requested.has(i.id)).map((i) => i.id);
    if (missing.length) {
      missing.forEach((id) => this.requested.add(id));
      this.model.send({ kind: "thumbs", ids: missing });
    }
    this.ui.gridTitle.textContent = images.length ? images.length + " image" + (images.length === 1 ? "" : "s") : "";
    const remove = (id) => this.model.send({ kind: "remove", id });
    this.ui.grid.replaceChildren(...images.map((image) => thumbCard(image, this.thumbs.get(image.id), remove)));
  }
}

function render({ model, el }) {
  const view = new UploaderView(model, el);
  return () => view.destroy();
}

export default { render };
