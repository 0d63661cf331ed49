// ocrmill web page: upload images/PDFs as jobs, follow their progress over server-sent
// events, show each result (picture + text boxes + text). No build step, no dependencies.
//
// Stays responsive with hundreds of files: one upload at a time (files are streamed by the
// browser, never read into memory here), result cards are added in small batches per
// animation frame, and a picture is only decoded (downscaled) while its card is near the
// viewport; canvases far off-screen are released.
"use strict";

(() => {
  const MAX_FILES_PER_JOB = 250;
  const MAX_BYTES_PER_JOB = 512 * 1024 * 1024;
  const VIEW_WIDTH = 420; // CSS pixels of a result picture
  const RENDER_CONCURRENCY = 2;
  const CARDS_PER_FRAME = 24;
  const SVG_NS = "http://www.w3.org/2000/svg";

  const $ = (selector, root = document) => root.querySelector(selector);
  const ui = {
    drop: $("#drop"),
    files: $("#files"),
    preset: $("#preset"),
    detLimit: $("#det-limit"),
    noCls: $("#no-cls"),
    outputs: $("#outputs"),
    keyRow: $("#key-row"),
    apiKey: $("#api-key"),
    message: $("#message"),
    jobs: $("#jobs"),
    state: $("#server-state"),
    jobTemplate: $("#job-template"),
    resultTemplate: $("#result-template"),
  };

  // ---------------------------------------------------------------- helpers

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function say(text, bad = false) {
    ui.message.textContent = text;
    ui.message.classList.toggle("bad", bad);
  }

  function apiKey() {
    return localStorage.getItem("ocrmill.apiKey") || "";
  }

  function authHeaders() {
    const key = apiKey();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  let keyChanged = null; // resolves when the user enters a key after a 401
  ui.apiKey.value = apiKey();
  ui.keyRow.hidden = !apiKey();
  ui.apiKey.addEventListener("change", () => {
    localStorage.setItem("ocrmill.apiKey", ui.apiKey.value.trim());
    if (keyChanged) keyChanged();
  });

  function needKey() {
    ui.keyRow.hidden = false;
    ui.apiKey.focus();
    say("This server needs an API key: enter it above.", true);
    return new Promise((resolve) => { keyChanged = resolve; });
  }

  function readQuery() {
    const params = new URLSearchParams();
    if (ui.preset.value) params.set("preset", ui.preset.value);
    if (ui.detLimit.value) params.set("det_limit", ui.detLimit.value);
    if (ui.noCls.checked) params.set("cls", "false");
    if (ui.outputs.value) params.set("outputs", ui.outputs.value);
    return params.toString();
  }

  function errorText(body, status) {
    if (body && body.error) return `${body.error.code}: ${body.error.message}`;
    return `HTTP ${status}`;
  }

  function formatBytes(bytes) {
    if (bytes < 1024 * 1024) return `${Math.max(1, Math.round(bytes / 1024))} KB`;
    return `${(bytes / 1048576).toFixed(1)} MB`;
  }

  function download(name, data) {
    const blob = new Blob([JSON.stringify(data, null, 2)], { type: "application/json" });
    const link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = name;
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  }

  async function copyText(text, button) {
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const area = document.createElement("textarea");
      area.value = text;
      document.body.append(area);
      area.select();
      document.execCommand("copy");
      area.remove();
    }
    const label = button.textContent;
    button.textContent = "Copied";
    setTimeout(() => { button.textContent = label; }, 1200);
  }

  // ---------------------------------------------------------------- server state

  async function pollReady() {
    let ready = false;
    try {
      const response = await fetch("/readyz", { cache: "no-store" });
      const state = await response.json();
      ready = state.ready;
      if (state.ready) {
        ui.state.textContent = `ready · ${state.workers} worker${state.workers > 1 ? "s" : ""}`;
      } else if (state.error) {
        ui.state.textContent = `workers failed: ${state.error}`;
      } else {
        ui.state.textContent = `starting ${state.workers_ready}/${state.workers} workers`;
      }
      ui.state.className = `pill ${ready ? "ready" : state.error ? "down" : ""}`;
    } catch {
      ui.state.textContent = "server unreachable";
      ui.state.className = "pill down";
    }
    setTimeout(pollReady, ready ? 15000 : 2000);
  }

  // ---------------------------------------------------------------- rendering pictures

  const renderQueue = [];
  let rendering = 0;

  const observer = new IntersectionObserver((entries) => {
    for (const entry of entries) {
      const card = entry.target.ocrCard;
      if (!card) continue;
      card.visible = entry.isIntersecting;
      if (entry.isIntersecting) {
        if (!card.rendered && !card.queued) {
          card.queued = true;
          renderQueue.push(card);
        }
      } else if (card.rendered) {
        releaseCard(card);
      }
    }
    pumpRenders();
  }, { rootMargin: "800px 0px" });

  function pumpRenders() {
    while (rendering < RENDER_CONCURRENCY && renderQueue.length) {
      const card = renderQueue.shift();
      card.queued = false;
      if (!card.visible || card.rendered) continue;
      rendering += 1;
      renderCard(card)
        .catch(() => {})
        .finally(() => {
          rendering -= 1;
          pumpRenders();
        });
    }
  }

  function releaseCard(card) {
    card.canvas.width = 0;
    card.canvas.height = 0;
    card.rendered = false;
  }

  async function renderCard(card) {
    const record = card.record;
    const fit = (VIEW_WIDTH * (window.devicePixelRatio || 1)) / record.width;
    let ratio = Math.min(1, fit); // a picture is decoded no larger than it is shown
    let bitmap = null;
    if (card.file && card.page === null) {
      try {
        bitmap = await createImageBitmap(card.file, {
          resizeWidth: Math.max(1, Math.round(record.width * ratio)),
          resizeHeight: Math.max(1, Math.round(record.height * ratio)),
          resizeQuality: "medium",
        });
      } catch {
        bitmap = null; // a format this browser cannot show: draw the layout instead
      }
    }
    if (!card.visible) {
      if (bitmap) bitmap.close();
      return;
    }
    if (!bitmap) ratio = Math.min(fit, 4096 / record.height); // text drawn sharp at any size
    const width = Math.max(1, Math.round(record.width * ratio));
    const height = Math.max(1, Math.round(record.height * ratio));
    const canvas = card.canvas;
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, width, height);
    if (bitmap) {
      ctx.drawImage(bitmap, 0, 0, width, height);
      bitmap.close();
      card.node.dataset.view = "picture";
    } else {
      drawLayout(ctx, record, ratio);
      card.node.dataset.view = "layout";
    }
    card.rendered = true;
  }

  function drawLayout(ctx, record, ratio) {
    // PDF pages (and pictures the browser cannot decode): the text at its place.
    ctx.fillStyle = "#333";
    ctx.textBaseline = "middle";
    for (const line of record.lines) {
      const xs = line.box.map((p) => p[0] * ratio);
      const ys = line.box.map((p) => p[1] * ratio);
      const left = Math.min(...xs);
      const top = Math.min(...ys);
      const boxWidth = Math.max(...xs) - left;
      const boxHeight = Math.max(...ys) - top;
      ctx.font = `${Math.max(6, boxHeight * 0.8)}px system-ui, sans-serif`;
      ctx.fillText(line.text, left, top + boxHeight / 2, boxWidth);
    }
  }

  // ---------------------------------------------------------------- result cards

  function buildCard(job, item) {
    const record = item.result;
    const node = ui.resultTemplate.content.firstElementChild.cloneNode(true);
    node.dataset.index = String(item.index);
    node.dataset.ok = String(record.ok);
    const pageText = item.page === null || item.page === undefined ? "" : ` · page ${item.page + 1}`;
    $(".name", node).textContent = `${item.file}${pageText}`;
    const card = {
      node,
      record,
      page: item.page ?? null,
      file: job.files[item.file_index] || null,
      canvas: $("canvas", node),
      rendered: false,
      queued: false,
      visible: false,
    };
    node.ocrCard = card;
    const lines = $(".lines", node);
    const svg = $("svg", node);
    if (!record.ok) {
      $(".stage", node).hidden = true;
      const error = $(".error", node);
      error.hidden = false;
      error.textContent = `${record.error.code}: ${record.error.message}`;
      $(".copy", node).disabled = true;
    } else {
      $(".stage", node).style.aspectRatio = `${record.width} / ${record.height}`;
      svg.setAttribute("viewBox", `0 0 ${record.width} ${record.height}`);
      record.lines.forEach((line, i) => {
        const polygon = document.createElementNS(SVG_NS, "polygon");
        polygon.setAttribute("points", line.box.map((p) => `${p[0]},${p[1]}`).join(" "));
        polygon.dataset.line = String(i);
        const title = document.createElementNS(SVG_NS, "title");
        title.textContent = line.text;
        polygon.append(title);
        svg.append(polygon);
        const li = document.createElement("li");
        li.dataset.line = String(i);
        li.textContent = line.text;
        const score = document.createElement("span");
        score.className = "score";
        score.textContent = line.score.toFixed(2);
        li.append(score);
        lines.append(li);
      });
      if (!record.lines.length) {
        const empty = document.createElement("p");
        empty.className = "empty";
        empty.textContent = "no text found";
        lines.replaceWith(empty);
      }
      const total = record.timings_ms && record.timings_ms.total;
      $(".meta", node).textContent =
        `${record.width}×${record.height} · ${record.lines.length} line${record.lines.length === 1 ? "" : "s"}` +
        (total ? ` · ${Math.round(total)} ms` : "");
      const highlight = (event, on) => {
        const index = event.target.closest("[data-line]")?.dataset.line;
        if (index === undefined) return;
        node.querySelectorAll(`[data-line="${index}"]`).forEach((el) => el.classList.toggle("hot", on));
      };
      for (const area of [svg, lines]) {
        area.addEventListener("mouseover", (event) => highlight(event, true));
        area.addEventListener("mouseout", (event) => highlight(event, false));
      }
      $(".copy", node).addEventListener("click", (event) => copyText(record.text, event.target));
    }
    $(".json", node).addEventListener("click", () => {
      const base = item.file.replace(/\.[^.]*$/, "") || "result";
      download(`${base}${item.page === null ? "" : `-p${item.page + 1}`}.json`, record);
    });
    return card;
  }

  // ---------------------------------------------------------------- jobs

  class Job {
    constructor(files) {
      this.files = files;
      this.id = null;
      this.finished = false;
      this.cancelled = false;
      this.lastSeq = 0;
      this.indices = []; // sorted item indices of the cards shown
      this.cards = new Map();
      this.incoming = [];
      this.flushScheduled = false;
      this.abort = new AbortController();
      const node = ui.jobTemplate.content.firstElementChild.cloneNode(true);
      this.node = node;
      this.title = $(".job-title", node);
      this.state = $(".job-state", node);
      this.bar = $("progress", node);
      this.count = $(".job-count", node);
      this.results = $(".results", node);
      this.jsonButton = $(".job-json", node);
      this.cancelButton = $(".job-cancel", node);
      const bytes = files.reduce((sum, f) => sum + f.size, 0);
      this.title.textContent = files.length === 1
        ? files[0].name
        : `${files.length} files (${formatBytes(bytes)})`;
      this.setState("waiting to upload");
      this.count.textContent = "";
      this.cancelButton.addEventListener("click", () => this.cancel());
      this.jsonButton.addEventListener("click", () => this.downloadAll());
      ui.jobs.prepend(node);
    }

    setState(text, kind = "") {
      this.state.textContent = text;
      this.state.className = `job-state ${kind}`;
      this.node.dataset.state = kind || "active";
    }

    setProgress(done, total) {
      this.bar.max = Math.max(1, total);
      this.bar.value = done;
      this.count.textContent = `${done} / ${total}`;
    }

    async submit() {
      for (;;) {
        if (this.cancelled) return;
        this.setState("uploading…");
        let reply;
        try {
          reply = await this.upload();
        } catch (err) {
          this.setState(`upload failed: ${err.message}`, "bad");
          return;
        }
        if (reply.status === 202) {
          this.id = reply.body.id;
          this.node.dataset.jobId = this.id;
          const progress = reply.body.progress;
          this.setProgress(progress.done, progress.total);
          this.setState("queued");
          this.follow();
          return;
        }
        if (reply.status === 401) {
          this.setState("waiting for an API key", "bad");
          await needKey();
          continue;
        }
        if (reply.status === 503) {
          const wait = Math.max(1, Number(reply.retryAfter) || 5);
          this.setState(`server busy, retrying in ${wait} s`);
          await sleep(wait * 1000);
          continue;
        }
        this.setState(`refused: ${errorText(reply.body, reply.status)}`, "bad");
        return;
      }
    }

    upload() {
      return new Promise((resolve, reject) => {
        const form = new FormData();
        for (const file of this.files) form.append("file", file, file.name);
        const query = readQuery();
        const xhr = new XMLHttpRequest();
        this.xhr = xhr;
        xhr.open("POST", `/v1/jobs${query ? `?${query}` : ""}`);
        for (const [name, value] of Object.entries(authHeaders())) xhr.setRequestHeader(name, value);
        xhr.upload.onprogress = (event) => {
          if (event.lengthComputable) {
            this.bar.max = 1;
            this.bar.value = event.loaded / event.total;
            this.count.textContent = `upload ${Math.round((100 * event.loaded) / event.total)}%`;
          }
        };
        xhr.onload = () => {
          let body = null;
          try { body = JSON.parse(xhr.responseText); } catch { body = null; }
          resolve({ status: xhr.status, body, retryAfter: xhr.getResponseHeader("Retry-After") });
        };
        xhr.onerror = () => reject(new Error("network error"));
        xhr.onabort = () => reject(new Error("cancelled"));
        xhr.send(form);
      });
    }

    async follow() {
      while (!this.finished && !this.cancelled) {
        try {
          const response = await fetch(`/v1/jobs/${this.id}/events`, {
            headers: { ...authHeaders(), "Last-Event-ID": String(this.lastSeq) },
            signal: this.abort.signal,
            cache: "no-store",
          });
          if (response.status === 404) {
            this.setState("expired or deleted on the server", "bad");
            return;
          }
          if (response.status === 401) {
            await needKey();
            continue;
          }
          if (!response.ok) throw new Error(`HTTP ${response.status}`);
          await this.readEvents(response.body);
        } catch (err) {
          if (this.cancelled) return;
        }
        if (!this.finished) await sleep(1500);
      }
    }

    async readEvents(body) {
      const reader = body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.onEvent(block);
        }
      }
    }

    onEvent(block) {
      let type = "message";
      let data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) type = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (!data) return;
      const payload = JSON.parse(data);
      if (type === "result") {
        this.lastSeq = Math.max(this.lastSeq, payload.seq);
        this.incoming.push(payload);
        this.scheduleFlush();
      } else if (type === "progress" || type === "end") {
        this.onProgress(payload, type === "end");
      }
    }

    onProgress(summary, end) {
      if (summary.status === "deleted") {
        this.finished = true;
        this.setState("deleted", "bad");
        return;
      }
      const p = summary.progress;
      this.setProgress(p.done, p.total);
      const failed = p.failed ? ` · ${p.failed} failed` : "";
      if (summary.status === "done" || end) {
        this.finished = true;
        this.setState(`done${failed}`, p.failed ? "bad" : "done");
        this.jsonButton.disabled = false;
        this.cancelButton.textContent = "Delete";
        this.showDocuments();
      } else {
        this.setState(`${summary.status}${failed}`);
      }
    }

    scheduleFlush() {
      if (this.flushScheduled) return;
      this.flushScheduled = true;
      requestAnimationFrame(() => this.flush());
    }

    flush() {
      this.flushScheduled = false;
      const batch = this.incoming.splice(0, CARDS_PER_FRAME);
      for (const item of batch) this.addCard(item);
      if (this.incoming.length) this.scheduleFlush();
    }

    addCard(item) {
      if (this.cards.has(item.index)) return;
      const card = buildCard(this, item);
      // Keep cards in upload order, whatever order results come in.
      let low = 0;
      let high = this.indices.length;
      while (low < high) {
        const mid = (low + high) >> 1;
        if (this.indices[mid] < item.index) low = mid + 1;
        else high = mid;
      }
      const before = low < this.indices.length ? this.cards.get(this.indices[low]).node : null;
      this.results.insertBefore(card.node, before);
      this.indices.splice(low, 0, item.index);
      this.cards.set(item.index, card);
      if (card.record.ok) observer.observe(card.node); // failures have no picture to draw
    }

    async showDocuments() {
      const response = await fetch(`/v1/jobs/${this.id}?limit=0`, { headers: authHeaders() });
      if (!response.ok) return;
      const { documents } = await response.json();
      if (!documents || !documents.length) return;
      const box = $(".job-docs", this.node);
      box.replaceChildren(document.createTextNode("Documents: "));
      const suffix = { pdf: ".pdf", hocr: ".hocr", alto: ".xml", text: ".txt" };
      for (const doc of documents) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "doc";
        button.textContent = `${doc.file}${suffix[doc.format] || ""}`;
        button.addEventListener("click", () => this.fetchDocument(doc, button.textContent));
        box.append(button);
      }
      box.hidden = false;
    }

    async fetchDocument(doc, name) {
      const response = await fetch(doc.url, { headers: authHeaders() });
      if (!response.ok) {
        say(`download failed: HTTP ${response.status}`, true);
        return;
      }
      const link = document.createElement("a");
      link.href = URL.createObjectURL(await response.blob());
      link.download = name;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    }

    async downloadAll() {
      const results = [];
      let since = 0;
      for (;;) {
        const response = await fetch(`/v1/jobs/${this.id}?since=${since}&limit=1000`, {
          headers: authHeaders(),
        });
        if (!response.ok) {
          say(`download failed: HTTP ${response.status}`, true);
          return;
        }
        const body = await response.json();
        results.push(...body.results);
        if (body.results.length < 1000) {
          body.results = results.sort((a, b) => a.index - b.index);
          download(`ocrmill-${this.id}.json`, body);
          return;
        }
        since = body.next_since;
      }
    }

    async cancel() {
      this.cancelled = !this.finished;
      this.abort.abort();
      if (this.xhr && !this.id) this.xhr.abort();
      if (this.id) {
        await fetch(`/v1/jobs/${this.id}`, { method: "DELETE", headers: authHeaders() });
      }
      for (const card of this.cards.values()) observer.unobserve(card.node);
      this.node.remove();
      jobs.delete(this);
    }
  }

  const jobs = new Set();
  const uploads = [];
  let pumping = false;

  async function pumpUploads() {
    if (pumping) return;
    pumping = true;
    while (uploads.length) {
      const job = uploads.shift();
      await job.submit();
    }
    pumping = false;
  }

  function addFiles(fileList) {
    const files = Array.from(fileList);
    if (!files.length) return;
    let chunk = [];
    let bytes = 0;
    const flush = () => {
      if (!chunk.length) return;
      const job = new Job(chunk);
      jobs.add(job);
      uploads.push(job);
      chunk = [];
      bytes = 0;
    };
    for (const file of files) {
      if (chunk.length >= MAX_FILES_PER_JOB || (chunk.length && bytes + file.size > MAX_BYTES_PER_JOB)) {
        flush();
      }
      chunk.push(file);
      bytes += file.size;
    }
    flush();
    say(`${files.length} file${files.length > 1 ? "s" : ""} added`);
    pumpUploads();
  }

  // ---------------------------------------------------------------- wiring

  ui.files.addEventListener("change", () => {
    addFiles(ui.files.files);
    ui.files.value = "";
  });
  document.addEventListener("dragover", (event) => {
    event.preventDefault();
    ui.drop.classList.add("over");
  });
  document.addEventListener("dragleave", (event) => {
    if (!event.relatedTarget) ui.drop.classList.remove("over");
  });
  document.addEventListener("drop", (event) => {
    event.preventDefault();
    ui.drop.classList.remove("over");
    if (event.dataTransfer && event.dataTransfer.files.length) addFiles(event.dataTransfer.files);
  });

  window.ocrmill = { jobs, renderQueue };
  pollReady();
})();
