// answer-engine chat UI: static, no build step. Talks to POST /api/ask (named SSE events).
// Safety: page text (titles, snippets, URLs) is only ever set as textContent; model output is
// rendered as markdown by marked and then sanitized by DOMPurify before it touches the DOM.
"use strict";

const STORE_KEY = "answer-engine.threads.v1";
const CURRENT_KEY = "answer-engine.current.v1";
const HISTORY_TURNS = 6; // earlier turns sent with a follow-up
const MODE_KEY = "answer-engine.mode.v1";
const MODES = ["auto", "fast", "pro"];
const $ = (id) => document.getElementById(id);

let threads = loadThreads();
let currentId = localStorage.getItem(CURRENT_KEY);
let controller = null;

// ------------------------------------------------------------------ storage

function loadThreads() {
  try {
    const data = JSON.parse(localStorage.getItem(STORE_KEY) || "[]");
    return Array.isArray(data) ? data : [];
  } catch { return []; }
}
function saveThreads() {
  try { localStorage.setItem(STORE_KEY, JSON.stringify(threads)); } catch (err) { showError(`Could not save threads: ${err.message}`); }
  if (currentId) localStorage.setItem(CURRENT_KEY, currentId); else localStorage.removeItem(CURRENT_KEY);
}
function currentThread() { return threads.find((t) => t.id === currentId) || null; }
function newId() { return (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2)); }

// ------------------------------------------------------------------ rendering

function domain(url) {
  // a document added in the library is cited as upload://<id>/<file name>: show the file name
  if (url.startsWith("upload://")) return `uploaded · ${decodeURIComponent(url.split("/").pop())}`;
  try { return new URL(url).hostname.replace(/^www\./, ""); } catch { return url; }
}

DOMPurify.addHook("afterSanitizeAttributes", (node) => {
  if (node.tagName === "A" && node.getAttribute("href") && !node.getAttribute("href").startsWith("#")) {
    node.setAttribute("target", "_blank");
    node.setAttribute("rel", "noopener noreferrer nofollow");
  }
});

// Markdown -> sanitized HTML, with [n] markers as superscript links to the turn's source cards.
function renderMarkdown(text, sources, turnIndex) {
  const known = new Set(sources.map((s) => s.n));
  const withCites = text.replace(/\[(\d{1,3})\](?!\()/g, (m, n) =>
    known.has(Number(n))
      ? `<sup class="cite"><a href="#source-${turnIndex}-${n}" data-n="${n}" aria-label="Source ${n}">[${n}]</a></sup>`
      : m);
  const html = marked.parse(withCites, { async: false, gfm: true, breaks: false });
  // No images or SVG from model output: they would fetch from anywhere (tracking) or lay out blanks.
  return DOMPurify.sanitize(html, {
    ADD_ATTR: ["target"], FORBID_TAGS: ["style", "form", "input", "iframe", "img", "svg", "math", "video", "audio"],
  });
}

function renderSources(el, sources, turnIndex) {
  const list = el.querySelector(".source-list");
  list.replaceChildren();
  for (const s of sources) {
    const li = document.createElement("li");
    li.className = "source-card";
    li.id = `source-${turnIndex}-${s.n}`;
    li.tabIndex = -1;
    const a = document.createElement("a");
    a.href = /^https?:\/\//i.test(s.url) ? s.url : "#";
    a.target = "_blank"; a.rel = "noopener noreferrer nofollow";
    const n = document.createElement("span"); n.className = "n"; n.textContent = `${s.n}`;
    const title = document.createElement("span"); title.className = "title"; title.textContent = s.title;
    const d = document.createElement("span"); d.className = "domain"; d.textContent = domain(s.url);
    a.title = s.snippet || s.title;
    a.append(n, title, d);
    li.appendChild(a);
    list.appendChild(li);
  }
}

// The verifier's outcome: a quiet badge, and the sentences it removed (struck through, collapsed).
const SUPPORT_LABELS = {
  supported: "Supported by the sources",
  partly_supported: "Partly supported: some sentences were not stated by their sources",
  not_supported: "Not supported by the sources",
};
function renderSupport(el, turn) {
  const badge = el.querySelector(".support");
  const label = SUPPORT_LABELS[turn.support];
  badge.hidden = !label || turn.streaming;
  badge.className = `support ${turn.support || ""}`;
  badge.textContent = label || "";
  const removed = (turn.sentences || []).filter((s) => s.supported === false);
  const box = el.querySelector(".removed");
  box.hidden = !removed.length || turn.support === "not_supported";
  box.querySelector("summary").textContent =
    `${removed.length} sentence${removed.length === 1 ? "" : "s"} removed: not stated by the sources cited`;
  const list = box.querySelector(".removed-list");
  list.replaceChildren();
  for (const s of removed) { const li = document.createElement("li"); li.textContent = s.text; list.appendChild(li); }
}

// Hovering, focusing or tapping a citation shows the passage text that states the sentence.
function evidenceFor(link) {
  const turn = currentThread()?.turns[Number(link.closest(".turn")?.dataset.index)];
  const c = (turn?.citations || []).find((x) => String(x.n) === link.dataset.n);
  return c && c.evidence;
}
function showEvidence(link) {
  const sup = link.closest("sup.cite");
  if (!sup || sup.querySelector(".evidence")) return;
  const text = evidenceFor(link);
  if (!text) return;
  const box = document.createElement("span");
  box.className = "evidence"; box.setAttribute("role", "tooltip");
  box.textContent = text; // page text: never parsed as HTML
  sup.appendChild(box);
}
function hideEvidence(link) { link.closest("sup.cite")?.querySelector(".evidence")?.remove(); }

// The steps of the search (each status event) as they happen: open while the answer is being found,
// collapsed once it streams (the reader can open them again).
function renderSteps(el, turn) {
  const box = el.querySelector(".steps");
  const steps = turn.steps || [];
  box.hidden = !steps.length;
  const list = box.querySelector(".step-list");
  list.replaceChildren();
  for (const s of steps) {
    const li = document.createElement("li");
    li.className = `step ${s.stage}`; li.textContent = s.message; // server text: never parsed as HTML
    list.appendChild(li);
  }
  const searches = turn.queries ? turn.queries.length : steps.filter((s) => s.stage === "search").length;
  const kind = turn.searchType === "pro" ? "Pro search" : turn.searchType === "fast" ? "Fast search" : "Search";
  box.querySelector("summary").textContent = turn.streaming && !turn.answer
    ? `Searching… (${steps.length} step${steps.length === 1 ? "" : "s"})`
    : `${kind}: ${searches} search${searches === 1 ? "" : "es"}, ${steps.length} steps`;
  if (!turn.userToggled) box.open = Boolean(turn.streaming && !turn.answer);
}

function renderTurn(turn, index) {
  const el = $("turn-template").content.firstElementChild.cloneNode(true);
  el.dataset.index = String(index);
  el.querySelector(".question").textContent = turn.q;
  el.querySelector(".steps").addEventListener("toggle", (e) => {
    // a toggle the reader made (not ours) sticks
    if (e.target.open !== Boolean(turn.streaming && !turn.answer)) turn.userToggled = true;
  });
  updateTurn(el, turn, index);
  return el;
}

function updateTurn(el, turn, index) {
  renderSteps(el, turn);
  renderSources(el, turn.sources || [], index);
  el.querySelector(".sources").hidden = !(turn.sources && turn.sources.length);
  const answer = el.querySelector(".answer");
  answer.innerHTML = renderMarkdown(turn.answer || "", turn.sources || [], index);
  if (turn.stopped) {
    const p = document.createElement("p"); p.className = "stopped"; p.textContent = "Stopped.";
    answer.appendChild(p);
  }
  const err = el.querySelector(".turn-error");
  err.hidden = !turn.error; err.textContent = turn.error || "";
  el.querySelector(".copy").hidden = !turn.answer || turn.streaming;
  el.querySelector(".timings").textContent = turn.timings
    ? `first token ${(turn.timings.ttft_ms / 1000).toFixed(1)} s · ${Number(turn.timings.tokens_per_s).toFixed(1)} tokens/s · ${(turn.timings.total_ms / 1000).toFixed(1)} s`
    : "";
  renderSupport(el, turn);
  const related = el.querySelector(".related");
  const list = el.querySelector(".related-list");
  list.replaceChildren();
  for (const q of turn.related || []) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button"; b.className = "related-q"; b.textContent = q;
    li.appendChild(b); list.appendChild(li);
  }
  related.hidden = !(turn.related && turn.related.length);
}

function renderThread() {
  const main = $("thread");
  main.replaceChildren();
  const thread = currentThread();
  if (!thread || !thread.turns.length) {
    const p = document.createElement("p"); p.id = "empty"; p.className = "empty";
    p.textContent = "Ask a question. Answers cite the pages they come from.";
    main.appendChild(p);
  } else {
    thread.turns.forEach((turn, i) => main.appendChild(renderTurn(turn, i)));
  }
  renderThreadList();
}

function renderThreadList() {
  const ul = $("threads");
  ul.replaceChildren();
  for (const t of [...threads].sort((a, b) => b.updated - a.updated)) {
    const li = document.createElement("li");
    const b = document.createElement("button");
    b.type = "button"; b.className = "thread-link"; b.dataset.id = t.id;
    b.textContent = t.title || "Untitled";
    if (t.id === currentId) b.setAttribute("aria-current", "true");
    li.appendChild(b); ul.appendChild(li);
  }
}

function showError(message) { const e = $("error"); e.textContent = message; e.hidden = !message; }
function setBusy(busy) {
  $("stop").hidden = !busy; $("ask").disabled = busy;
  $("thread").setAttribute("aria-busy", busy ? "true" : "false");
}

// ------------------------------------------------------------------ asking

async function readEvents(resp, onEvent) {
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value.replace(/\r\n/g, "\n");
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i); buf = buf.slice(i + 2);
      let event = "message", data = "";
      for (const line of frame.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
      }
      if (data) onEvent(event, JSON.parse(data));
    }
  }
}

async function ask(question) {
  question = question.trim();
  if (!question || controller) return;
  showError("");
  let thread = currentThread();
  if (!thread) {
    thread = { id: newId(), title: question.slice(0, 80), created: Date.now(), updated: Date.now(), turns: [] };
    threads.push(thread); currentId = thread.id;
  }
  const history = [];
  for (const t of thread.turns.slice(-HISTORY_TURNS)) {
    if (!t.answer) continue;
    history.push({ role: "user", content: t.q }, { role: "assistant", content: t.answer });
  }
  const mode = $("mode").value;
  const turn = { q: question, sources: [], answer: "", related: [], streaming: true, steps: [], mode };
  thread.turns.push(turn); thread.updated = Date.now();
  saveThreads();
  renderThread();
  const index = thread.turns.length - 1;
  const el = $("thread").lastElementChild;
  el.scrollIntoView({ block: "start" });

  controller = new AbortController();
  setBusy(true);
  $("status").textContent = "Searching…";
  let pending = false;
  const repaint = () => { if (!pending) { pending = true; requestAnimationFrame(() => { pending = false; updateTurn(el, turn, index); }); } };
  try {
    const resp = await fetch("/api/ask", {
      method: "POST",
      headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ query: question, history, options: { related_questions: true, search_type: mode } }),
      signal: controller.signal,
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body?.error?.message || `The server answered ${resp.status}`);
    }
    await readEvents(resp, (event, ev) => {
      if (event === "status") {
        $("status").textContent = ev.message;
        if (ev.stage !== "generate" && ev.stage !== "verify") { turn.steps.push({ stage: ev.stage, message: ev.message }); repaint(); }
      }
      else if (event === "sources") { turn.sources = ev.sources; repaint(); }
      else if (event === "delta") { turn.answer += ev.text; repaint(); }
      else if (event === "citations") {
        turn.answer = ev.answer; turn.citations = ev.citations;
        turn.support = ev.answer_support; turn.sentences = ev.sentences || [];
        $("status").textContent = "Suggesting follow-up questions…"; repaint();
      }
      else if (event === "related") { turn.related = ev.questions; repaint(); }
      else if (event === "done") { turn.timings = ev.timings; turn.searchType = ev.search_type; turn.queries = ev.queries; }
      else if (event === "error") { turn.error = ev.message; }
    });
  } catch (err) {
    if (err.name === "AbortError") turn.stopped = true;
    else turn.error = err.message || String(err);
  } finally {
    controller = null;
    turn.streaming = false;
    thread.updated = Date.now();
    saveThreads();
    setBusy(false);
    $("status").textContent = turn.stopped ? "Stopped." : (turn.error ? "" : "Answer complete.");
    updateTurn(el, turn, index);
    renderThreadList();
  }
}

// ------------------------------------------------------------------ wiring

$("ask-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const q = $("q").value;
  $("q").value = "";
  ask(q);
});
$("q").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask-form").requestSubmit(); }
});
$("stop").addEventListener("click", () => { if (controller) controller.abort(); });
$("mode").value = MODES.includes(localStorage.getItem(MODE_KEY)) ? localStorage.getItem(MODE_KEY) : "auto";
$("mode").addEventListener("change", () => localStorage.setItem(MODE_KEY, $("mode").value));
$("new-thread").addEventListener("click", () => {
  if (controller) controller.abort();
  currentId = null; saveThreads(); renderThread(); $("q").focus();
  $("sidebar").classList.remove("open"); $("toggle-threads").setAttribute("aria-expanded", "false");
});
$("toggle-threads").addEventListener("click", () => {
  const open = $("sidebar").classList.toggle("open");
  $("toggle-threads").setAttribute("aria-expanded", String(open));
});
$("threads").addEventListener("click", (e) => {
  const b = e.target.closest("button.thread-link");
  if (!b || controller) return;
  currentId = b.dataset.id; saveThreads(); renderThread();
  $("sidebar").classList.remove("open"); $("toggle-threads").setAttribute("aria-expanded", "false");
});
for (const [type, show] of [["mouseover", true], ["focusin", true], ["mouseout", false], ["focusout", false]]) {
  $("thread").addEventListener(type, (e) => {
    const cite = e.target.closest && e.target.closest("sup.cite a");
    if (cite) (show ? showEvidence : hideEvidence)(cite);
  });
}
$("thread").addEventListener("click", async (e) => {
  const cite = e.target.closest("sup.cite a");
  if (cite) {
    e.preventDefault();
    showEvidence(cite);
    const card = document.querySelector(cite.getAttribute("href"));
    if (card) {
      document.querySelectorAll(".source-card.active").forEach((c) => c.classList.remove("active"));
      card.classList.add("active"); card.scrollIntoView({ block: "nearest" }); card.focus();
    }
    return;
  }
  const related = e.target.closest("button.related-q");
  if (related) { ask(related.textContent); return; }
  const copy = e.target.closest("button.copy");
  if (copy) {
    const turn = currentThread()?.turns[Number(copy.closest(".turn").dataset.index)];
    if (!turn) return;
    try { await navigator.clipboard.writeText(turn.answer); copy.textContent = "Copied"; }
    catch { copy.textContent = "Copy failed"; }
    setTimeout(() => { copy.textContent = "Copy answer"; }, 1500);
  }
});

// ------------------------------------------------------------------ library (POST/GET/DELETE /v1/documents)

function libraryStatus(text, isError = false) {
  const s = $("library-status"); s.textContent = text; s.classList.toggle("error", isError);
}
async function apiError(resp) {
  try { return (await resp.json()).error.message; } catch { return `HTTP ${resp.status}`; }
}
function renderDocuments(docs) {
  const list = $("documents");
  list.replaceChildren();
  if (!docs.length) {
    const li = document.createElement("li"); li.className = "empty"; li.textContent = "No documents added yet.";
    list.appendChild(li);
  }
  for (const d of docs) {
    const li = document.createElement("li"); li.className = "document"; li.dataset.id = d.id;
    const title = document.createElement("span"); title.className = "title"; title.textContent = d.title;
    const meta = document.createElement("span"); meta.className = "meta";
    meta.textContent = `${d.filename || domain(d.url)} · ${Math.max(1, Math.round(d.bytes / 1024))} KB`;
    const del = document.createElement("button"); del.type = "button"; del.className = "delete-doc";
    del.textContent = "Delete"; del.setAttribute("aria-label", `Delete ${d.title}`);
    li.append(title, meta, del);
    list.appendChild(li);
  }
}
async function loadDocuments() {
  const resp = await fetch("/v1/documents");
  if (!resp.ok) { libraryStatus(await apiError(resp), true); return; }
  renderDocuments((await resp.json()).data);
}
async function addDocument(request, what) {
  libraryStatus(`Adding ${what}…`);
  const resp = await fetch("/v1/documents", request);
  if (!resp.ok) { libraryStatus(`Could not add ${what}: ${await apiError(resp)}`, true); return false; }
  const doc = await resp.json();
  await loadDocuments();  // the list shows the document before the status says it is added
  libraryStatus(`Added “${doc.title}”.`);
  return true;
}

$("open-library").addEventListener("click", () => { $("library").showModal(); libraryStatus(""); loadDocuments(); });
$("close-library").addEventListener("click", () => $("library").close());
$("upload-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const file = $("upload-file").files[0];
  if (!file) return;
  const body = new FormData(); body.append("file", file);
  if (await addDocument({ method: "POST", body }, file.name)) $("upload-form").reset();
});
$("url-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const url = $("upload-url").value.trim();
  const request = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ url }) };
  if (await addDocument(request, url)) $("url-form").reset();
});
$("documents").addEventListener("click", async (e) => {
  const del = e.target.closest("button.delete-doc");
  if (!del) return;
  const id = del.closest("li").dataset.id;
  const resp = await fetch(`/v1/documents/${encodeURIComponent(id)}`, { method: "DELETE" });
  if (!resp.ok) { libraryStatus(await apiError(resp), true); return; }
  libraryStatus("Deleted."); loadDocuments();
});

renderThread();
