// Minimal client for POST /api/ask: reads named SSE frames from a fetch() stream.
// Everything from the server is inserted as text (textContent), never as HTML.
"use strict";
const $ = (id) => document.getElementById(id);
let controller = null;
let sources = [];

function domain(url) { try { return new URL(url).hostname; } catch { return url; } }

function renderSources(list) {
  sources = list;
  const box = $("sources");
  box.replaceChildren();
  for (const s of list) {
    const card = document.createElement("div");
    card.className = "card";
    card.id = `source-${s.n}`;
    const a = document.createElement("a");
    a.href = s.url; a.target = "_blank"; a.rel = "noopener noreferrer";
    a.textContent = `[${s.n}] ${s.title}`;
    const d = document.createElement("span");
    d.className = "domain"; d.textContent = domain(s.url);
    a.appendChild(d); card.appendChild(a); box.appendChild(card);
  }
}

// Render answer text with [n] markers as superscript links to their sources.
function renderAnswer(text) {
  const box = $("answer");
  box.replaceChildren();
  const re = /\[(\d+)\]/g;
  let last = 0, m;
  while ((m = re.exec(text)) !== null) {
    box.appendChild(document.createTextNode(text.slice(last, m.index)));
    const src = sources.find((s) => s.n === Number(m[1]));
    const sup = document.createElement("sup");
    const a = document.createElement("a");
    a.textContent = `[${m[1]}]`;
    if (src) { a.href = src.url; a.target = "_blank"; a.rel = "noopener noreferrer"; a.title = src.title; }
    sup.appendChild(a); box.appendChild(sup);
    last = re.lastIndex;
  }
  box.appendChild(document.createTextNode(text.slice(last)));
}

async function ask(query) {
  controller = new AbortController();
  $("stop").hidden = false; $("ask").disabled = true;
  $("error").hidden = true; $("timings").textContent = ""; $("status").textContent = "";
  renderSources([]); renderAnswer("");
  let answer = "";
  try {
    const resp = await fetch("/api/ask", {
      method: "POST", headers: { "Content-Type": "application/json", "Accept": "text/event-stream" },
      body: JSON.stringify({ query }), signal: controller.signal,
    });
    if (!resp.ok) {
      const body = await resp.json().catch(() => ({}));
      throw new Error(body?.error?.message || `HTTP ${resp.status}`);
    }
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += value.replace(/\r\n/g, "\n");
      let i;
      while ((i = buf.indexOf("\n\n")) >= 0) {
        const frame = buf.slice(0, i); buf = buf.slice(i + 2);
        let event = "message", data = "";
        for (const line of frame.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data += line.slice(5).replace(/^ /, "");
        }
        if (!data) continue;
        const ev = JSON.parse(data);
        if (event === "status") $("status").textContent = ev.message;
        else if (event === "sources") renderSources(ev.sources);
        else if (event === "delta") { answer += ev.text; renderAnswer(answer); }
        else if (event === "citations") { answer = ev.answer; renderAnswer(answer); }
        else if (event === "done") {
          const t = ev.timings;
          $("status").textContent = "";
          $("timings").textContent = `first token ${(t.ttft_ms / 1000).toFixed(1)} s · ${t.tokens_per_s} tokens/s · total ${(t.total_ms / 1000).toFixed(1)} s`;
        } else if (event === "error") throw new Error(ev.message);
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") { $("error").textContent = err.message; $("error").hidden = false; }
  } finally {
    controller = null; $("stop").hidden = true; $("ask").disabled = false; $("status").textContent = "";
  }
}

$("ask-form").addEventListener("submit", (e) => { e.preventDefault(); const q = $("q").value.trim(); if (q) ask(q); });
$("stop").addEventListener("click", () => controller && controller.abort());
