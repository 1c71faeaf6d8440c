// medllm web chat: no frameworks, no CDN, works offline. Conversations stay in
// this browser's localStorage; the server keeps only its audit log.
"use strict";
const $ = (id) => document.getElementById(id);
const STORE = "medllm.conversations";
let conversations = JSON.parse(localStorage.getItem(STORE) || "[]");
let current = null;
let controller = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("apikey").value.trim();
  if (key) h["Authorization"] = "Bearer " + key;
  return h;
}

function save() { localStorage.setItem(STORE, JSON.stringify(conversations.slice(-50))); renderHistory(); }

function renderHistory() {
  const ul = $("history");
  ul.innerHTML = "";
  conversations.slice().reverse().forEach((c) => {
    const li = document.createElement("li");
    li.textContent = c.title || "(empty)";
    li.onclick = () => { current = c; renderMessages(); };
    ul.appendChild(li);
  });
}

function addBubble(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("messages").appendChild(div);
  $("messages").scrollTop = $("messages").scrollHeight;
  return div;
}

function renderMessages() {
  $("messages").innerHTML = "";
  if (current) current.messages.forEach((m) => addBubble(m.role, m.content));
}

function newConversation() {
  current = { title: "", messages: [], created: Date.now() };
  conversations.push(current);
  renderMessages();
}

async function loadModels() {
  try {
    const r = await fetch("/v1/models", { headers: headers() });
    if (!r.ok) { $("status").textContent = "Models: " + r.status + " (enter an API key?)"; return; }
    const data = await r.json();
    const sel = $("model");
    sel.innerHTML = "";
    data.data.forEach((m) => {
      const o = document.createElement("option");
      o.value = m.id;
      o.textContent = m.adapter ? m.id + " (adapter)" : m.id;
      sel.appendChild(o);
    });
    if (data.data.length && data.data[0].sampling) {
      for (const k of ["temperature", "top_p", "top_k", "repetition_penalty"]) {
        if (data.data[0].sampling[k] !== undefined) $(k).value = data.data[0].sampling[k];
      }
    }
    $("status").textContent = "";
  } catch (e) { $("status").textContent = "Cannot reach the server: " + e; }
}

async function ask(ev) {
  ev.preventDefault();
  const q = $("question").value.trim();
  if (!q) return;
  if (!current) newConversation();
  current.messages.push({ role: "user", content: q });
  if (!current.title) current.title = q.slice(0, 60);
  addBubble("user", q);
  $("question").value = "";
  const bubble = addBubble("assistant", "");
  const msgs = [];
  const sys = $("system").value.trim();
  if (sys) msgs.push({ role: "system", content: sys });
  current.messages.forEach((m) => { if (m.role !== "error") msgs.push({ role: m.role, content: m.content }); });
  const body = {
    model: $("model").value || undefined, messages: msgs, stream: true,
    temperature: parseFloat($("temperature").value), top_p: parseFloat($("top_p").value),
    top_k: parseInt($("top_k").value, 10), repetition_penalty: parseFloat($("repetition_penalty").value),
    max_tokens: parseInt($("max_tokens").value, 10),
  };
  controller = new AbortController();
  $("send").disabled = true; $("stop").disabled = false; $("status").textContent = "generating…";
  let answer = "";
  try {
    const r = await fetch("/v1/chat/completions", { method: "POST", headers: headers(), body: JSON.stringify(body), signal: controller.signal });
    if (!r.ok) {
      const err = await r.json().catch(() => ({ error: { message: r.statusText } }));
      throw new Error(r.status + ": " + err.error.message);
    }
    const reader = r.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buf += dec.decode(value, { stream: true });
      let cut;
      while ((cut = buf.indexOf("\n\n")) >= 0) {
        const line = buf.slice(0, cut).trim();
        buf = buf.slice(cut + 2);
        if (!line.startsWith("data:")) continue;
        const payload = line.slice(5).trim();
        if (payload === "[DONE]") continue;
        const chunk = JSON.parse(payload);
        if (chunk.error) throw new Error(chunk.error.message);
        for (const c of chunk.choices || []) {
          if (c.delta && c.delta.content) { answer += c.delta.content; bubble.textContent = answer; }
        }
        $("messages").scrollTop = $("messages").scrollHeight;
      }
    }
    current.messages.push({ role: "assistant", content: answer });
    $("status").textContent = "done";
  } catch (e) {
    if (answer) current.messages.push({ role: "assistant", content: answer });
    bubble.className = "msg error";
    bubble.textContent = (answer ? answer + "\n" : "") + "[" + (e.name === "AbortError" ? "stopped" : e.message) + "]";
    $("status").textContent = "";
  } finally {
    $("send").disabled = false; $("stop").disabled = true; controller = null; save();
  }
}

$("ask").addEventListener("submit", ask);
$("stop").onclick = () => controller && controller.abort();
$("new-chat").onclick = () => { newConversation(); save(); };
$("apikey").addEventListener("change", loadModels);
$("question").addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("ask").requestSubmit(); } });
renderHistory();
loadModels();
