// The web chat: pick a persona, talk in dm:<persona>, watch replies stream in.
import {
  Hub, HubError, api, clock, describeStatus, el, forgetToken, randomId, setupSignIn, takeToken,
} from "./os1.js";

const $ = (id) => document.getElementById(id);
const TYPING_EVERY = 3_000; // send `typing` at most this often
const TYPING_SHOWN = 5_000; // hide "is typing…" after this long without news
const PAGE = 50;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$/;

const state = {
  token: null,
  hub: null,
  me: null,
  persona: null, // {id, name, greeting?, online?}
  personas: new Map(),
  room: null, // full room id, dm:<persona>:<me>
  seqs: new Map(), // seq -> <li>, the dedupe of every message shown
  streams: new Map(), // stream id -> <li> being streamed
  outbox: new Map(), // cid -> {frame, li}: sends not acked yet, re-sent after a reconnect
  lastSeq: 0,
  oldest: Infinity,
  lastTyping: 0,
  typingTimer: null,
  personaPoll: null,
};

// -- storage -------------------------------------------------------------------------
const seqKey = (room) => `os1.seq.${room}`;
const storedSeq = (room) => Number(sessionStorage.getItem(seqKey(room))) || 0;

function forgetSeqs() {
  for (const key of Object.keys(sessionStorage)) if (key.startsWith("os1.seq.")) sessionStorage.removeItem(key);
}

// -- views ---------------------------------------------------------------------------
function show(view) {
  for (const id of ["signin-view", "pick-view", "chat-view"]) $(id).hidden = id !== view;
  document.body.dataset.view = view;
}

function signIn(message) {
  state.hub?.stop();
  state.hub = null;
  clearInterval(state.personaPoll);
  $("signin-msg").textContent = message || "";
  $("signout").hidden = true;
  show("signin-view");
  $("signin-token").focus();
}

function setStatus(detail) {
  const [kind, text] = describeStatus(detail);
  $("status").dataset.state = kind;
  $("status").textContent = text;
}

function setPersonaNames(name) {
  for (const node of document.querySelectorAll(".persona-name")) node.textContent = name;
}

// -- connection ----------------------------------------------------------------------
function start(token) {
  state.token = token;
  const hub = new Hub(token);
  state.hub = hub;
  hub.addEventListener("status", (ev) => setStatus(ev.detail));
  hub.addEventListener("fatal", (ev) => {
    forgetToken();
    signIn(`The hub refused this token: ${ev.detail.message}. Paste a new one.`);
  });
  hub.addEventListener("welcome", (ev) => welcomed(ev.detail));
  hub.addEventListener("frame", (ev) => onFrame(ev.detail));
  $("signout").hidden = false;
  hub.start();
}

function welcomed(welcome) {
  state.me = welcome.me;
  if (state.me.role !== "human") {
    forgetToken();
    signIn(`This page is for people: it needs a human token (this one is a ${state.me.role}'s).`);
    return;
  }
  const epoch = welcome.server?.epoch;
  if (epoch !== undefined) {
    const known = sessionStorage.getItem("os1.epoch");
    // a hub that restarted empty counts seqs from 1 again: what we hold is another history
    if (known !== null && known !== String(epoch)) {
      forgetSeqs();
      resetLog();
    }
    sessionStorage.setItem("os1.epoch", String(epoch));
  }
  loadPersonas();
  clearInterval(state.personaPoll);
  state.personaPoll = setInterval(loadPersonas, 15_000);
  const wanted = sessionStorage.getItem("os1.persona");
  if (wanted && ID_RE.test(wanted)) openRoom(wanted);
  else show("pick-view");
}

// -- personas ------------------------------------------------------------------------
async function loadPersonas() {
  const res = await api(state.token, "/api/personas");
  const note = $("personas-note");
  if (!res.ok || !Array.isArray(res.data?.personas)) {
    note.textContent = res.status === 404
      ? "This hub does not list its personas yet: type the id of the one you want to talk to."
      : `Could not load the personas (${res.status || "offline"}): type an id instead.`;
    return;
  }
  note.textContent = res.data.personas.length ? "" : "No persona is known yet: type an id.";
  state.personas = new Map(res.data.personas.map((p) => [p.id, p]));
  renderPersonas();
  if (state.persona) {
    state.persona = { ...state.persona, ...state.personas.get(state.persona.id) };
    renderChatHead();
  }
}

function renderPersonas() {
  const list = $("personas");
  list.replaceChildren();
  for (const p of state.personas.values()) {
    const button = el("button", { type: "button", class: "persona", "data-id": p.id },
      el("span", { class: `dot ${p.online ? "on" : ""}`, "aria-hidden": "true" }),
      el("span", { class: "persona-main" },
        el("strong", { text: p.name || p.id }),
        el("span", { class: "sub", text: p.online ? "online" : "offline" }),
        p.greeting ? el("span", { class: "sub greeting-line", text: p.greeting }) : null));
    button.setAttribute("aria-label", `${p.name || p.id}, ${p.online ? "online" : "offline"}`);
    button.addEventListener("click", () => openRoom(p.id));
    list.append(el("li", {}, button));
  }
}

function renderChatHead() {
  const p = state.persona;
  const name = p.name || p.id;
  $("chat-name").textContent = name;
  $("persona-dot").className = `dot ${p.online ? "on" : ""}`;
  $("persona-dot").title = p.online ? "online" : "offline";
  $("log").setAttribute("aria-label", `Conversation with ${name}`);
  setPersonaNames(name);
  document.title = `${name} — OS1`;
  const greeting = $("greeting");
  greeting.textContent = p.greeting || "";
  greeting.hidden = !p.greeting || state.seqs.size > 0;
}

// -- the room --------------------------------------------------------------------------
function resetLog() {
  $("log").replaceChildren();
  state.seqs.clear();
  state.streams.clear();
  state.outbox.clear();
  state.lastSeq = 0;
  state.oldest = Infinity;
  $("older").hidden = true;
  $("gap-note").hidden = true;
}

async function openRoom(personaId) {
  const room = `dm:${personaId}:${state.me.id}`;
  const arriving = room !== state.room || $("chat-view").hidden; // not a mere reconnect
  if (room !== state.room) {
    resetLog();
    state.room = room;
    state.persona = { id: personaId, ...state.personas.get(personaId) };
  }
  sessionStorage.setItem("os1.persona", personaId);
  renderChatHead();
  show("chat-view");
  try {
    if (state.seqs.size === 0) {
      const seen = storedSeq(room); // read before the history below moves it on
      await loadHistory();
      markUnread(seen);
    }
    // history gave the last page; join replays whatever came after it, then goes live
    const joined = await state.hub.request({ t: "join", room, since: state.lastSeq });
    $("gap-note").hidden = !joined.gap;
    $("gap-note").textContent = joined.gap ? "Some older messages are no longer kept by the hub." : "";
    resend();
  } catch (err) {
    if (err.code !== "offline") flash(`Could not open the conversation: ${err.message}`);
  }
  if (arriving && !matchMedia("(pointer: coarse)").matches) $("text").focus();
}

async function loadHistory(before) {
  const frame = { t: "history", room: state.room, limit: PAGE };
  if (before !== undefined) frame.before = before;
  const reply = await state.hub.request(frame);
  for (const msg of reply.msgs) addMsg(msg, { live: false });
  if (reply.msgs.length) state.oldest = Math.min(state.oldest, reply.msgs[0].seq);
  $("older").hidden = !(state.oldest > 1 && state.oldest !== Infinity);
}

/** A "new" divider above the messages that came while this tab was away. */
function markUnread(seen) {
  if (!seen || seen >= state.lastSeq) return;
  const divider = el("li", { class: "divider", role: "separator", "data-seq": String(seen + 0.5) },
    el("span", { text: "New" }));
  place(divider, seen + 0.5);
}

function resend() {
  for (const { frame, li } of state.outbox.values()) deliver(frame, li);
}

// -- frames --------------------------------------------------------------------------
function onFrame(frame) {
  if (frame.room !== undefined && frame.room !== state.room) return; // another conversation
  switch (frame.t) {
    case "msg":
      addMsg(frame, { live: true });
      break;
    case "delta":
      if (frame.from?.id !== state.me.id) addDelta(frame);
      break;
    case "typing":
      if (frame.from?.id !== state.me.id) showTyping(frame.from);
      break;
    case "error":
      flash(frame.message || frame.code);
      break;
    default: // presence, invited and anything newer: not shown here
  }
}

function bubble(mine) {
  const li = el("li", { class: `msg ${mine ? "mine" : "theirs"}` },
    el("p", { class: "who" }), el("p", { class: "text" }));
  return li;
}

function fillBubble(li, msg) {
  const mine = msg.from?.id === state.me.id;
  li.className = `msg ${mine ? "mine" : "theirs"}`;
  li.dataset.seq = String(msg.seq);
  li.dataset.mid = msg.mid;
  li.removeAttribute("aria-busy");
  const who = li.querySelector(".who");
  who.replaceChildren(
    el("span", { class: mine ? "sr-only" : "name", text: mine ? "You" : (msg.from?.name || msg.from?.id) }),
    el("time", { dateTime: new Date(msg.ts).toISOString(), text: clock(msg.ts) }));
  li.querySelector(".text").textContent = msg.text;
}

/** Insert `li` among the numbered messages, before anything still pending or streaming. */
function place(li, seq) {
  const log = $("log");
  for (const other of log.children) {
    if (other === li) continue;
    const otherSeq = other.dataset.seq ? Number(other.dataset.seq) : Infinity;
    if (otherSeq > seq) {
      log.insertBefore(li, other);
      return;
    }
  }
  log.append(li);
}

function addMsg(msg, { live }) {
  if (typeof msg.seq !== "number" || state.seqs.has(msg.seq)) {
    if (msg.stream) dropStream(msg.stream); // the final msg was already shown: drop its draft
    return;
  }
  const stick = nearBottom();
  let li = null;
  if (msg.stream && state.streams.has(msg.stream)) {
    li = state.streams.get(msg.stream);
    state.streams.delete(msg.stream);
  } else if (msg.cid && state.outbox.has(msg.cid) && msg.from?.id === state.me.id) {
    li = state.outbox.get(msg.cid).li;
    state.outbox.delete(msg.cid);
  } else {
    li = bubble(false);
  }
  fillBubble(li, msg);
  place(li, msg.seq);
  state.seqs.set(msg.seq, li);
  state.lastSeq = Math.max(state.lastSeq, msg.seq);
  state.oldest = Math.min(state.oldest, msg.seq);
  sessionStorage.setItem(seqKey(state.room), String(state.lastSeq));
  $("greeting").hidden = true;
  if (msg.from?.id !== state.me.id) {
    hideTyping();
    if (live) speak(msg.text);
  }
  if (stick) scrollDown();
}

function addDelta(delta) {
  const stick = nearBottom();
  let li = state.streams.get(delta.stream);
  if (!li) {
    li = bubble(false);
    li.classList.add("streaming");
    li.setAttribute("aria-busy", "true"); // announced once, when complete
    li.dataset.stream = delta.stream;
    li.querySelector(".who").append(el("span", { class: "name", text: delta.from?.name || delta.from?.id }));
    state.streams.set(delta.stream, li);
    $("log").append(li);
  }
  li.querySelector(".text").textContent += delta.text;
  hideTyping();
  if (stick) scrollDown();
}

function dropStream(stream) {
  state.streams.get(stream)?.remove();
  state.streams.delete(stream);
}

// -- sending ---------------------------------------------------------------------------
function sendText(text) {
  const cid = randomId("c-");
  const frame = { t: "send", room: state.room, text, cid };
  const li = bubble(true);
  li.classList.add("pending");
  li.dataset.cid = cid;
  li.querySelector(".who").append(el("span", { class: "sr-only", text: "You (sending)" }));
  li.querySelector(".text").textContent = text;
  $("log").append(li);
  scrollDown();
  state.outbox.set(cid, { frame, li });
  deliver(frame, li);
}

async function deliver(frame, li) {
  try {
    await state.hub.request(frame);
    // the msg event (which may come before or after the ack) finishes the bubble
  } catch (err) {
    if (!(err instanceof HubError) || err.code === "offline" || err.code === "timeout") return; // re-sent later
    state.outbox.delete(frame.cid);
    li.classList.remove("pending");
    li.classList.add("failed");
    li.append(el("p", { class: "error", text: `Not sent: ${err.message}` }));
  }
}

function onTyping() {
  const now = Date.now();
  if (now - state.lastTyping < TYPING_EVERY || !$("text").value.trim()) return;
  if (state.hub?.fire({ t: "typing", room: state.room })) state.lastTyping = now;
}

// -- typing indicator ------------------------------------------------------------------
function showTyping(from) {
  $("typing").textContent = `${from?.name || from?.id} is typing…`;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, TYPING_SHOWN);
}

function hideTyping() {
  clearTimeout(state.typingTimer);
  $("typing").textContent = "";
}

// -- voice -----------------------------------------------------------------------------
const canSpeak = "speechSynthesis" in window;

function speak(text) {
  if (!canSpeak || !$("voice").checked) return;
  const utterance = new SpeechSynthesisUtterance(text);
  utterance.lang = document.documentElement.lang;
  speechSynthesis.speak(utterance);
}

function setupVoice() {
  const box = $("voice");
  if (!canSpeak) {
    box.disabled = true;
    box.parentElement.title = "This browser cannot speak";
    return;
  }
  box.checked = localStorage.getItem("os1.voice") === "on";
  box.addEventListener("change", () => {
    localStorage.setItem("os1.voice", box.checked ? "on" : "off");
    if (!box.checked) speechSynthesis.cancel();
  });
}

// -- memory and consent ------------------------------------------------------------------
function describe(value) {
  if (value === null || value === undefined) return "";
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value)) return value.map(describe).join(", ");
  return Object.entries(value).map(([k, v]) => `${k}: ${describe(v)}`).join(" · ");
}

function unavailable(res, what) {
  // no such route on this hub, or a hub that keeps no memory (no personas of its own, no Redis)
  if (res.status === 404 && (res.data?.message === "Not Found" || res.data?.error === "not_available")) {
    return `${what} is not available on this hub yet.`;
  }
  if (res.status === 404) return `${what}: nothing here (${res.data?.message || "not found"}).`;
  return `${what} could not be loaded (${res.status || "offline"}${res.data?.message ? `: ${res.data.message}` : ""}).`;
}

async function openMemory() {
  $("memory").showModal();
  await Promise.all([loadMemory(), loadConsent()]);
}

async function loadMemory() {
  const body = $("memory-body");
  const path = `/api/me/memory/${encodeURIComponent(state.persona.id)}`;
  body.replaceChildren(el("p", { class: "note", text: "Loading…" }));
  $("forget-all").hidden = true;
  const res = await api(state.token, path);
  if (!res.ok) {
    body.replaceChildren(el("p", { class: "note", text: unavailable(res, "Memory") }));
    return;
  }
  const facts = Array.isArray(res.data?.facts) ? res.data.facts : [];
  const list = el("ul", { class: "facts" });
  for (const fact of facts) list.append(factItem(path, fact));
  const parts = [facts.length ? list : el("p", { class: "note", text: "Nothing remembered about you." })];
  const prefs = compact(res.data?.preferences);
  if (prefs && (typeof prefs !== "object" || Object.keys(prefs).length)) {
    parts.push(el("h3", { text: "Preferences" }), preferenceList(prefs));
  }
  body.replaceChildren(...parts);
  $("forget-all").hidden = facts.length === 0 && !(prefs && Object.keys(prefs).length);
}

// The hub sends every group (likes, dislikes…) even when empty: show only what has content.
function compact(prefs) {
  if (!prefs || typeof prefs !== "object" || Array.isArray(prefs)) return prefs;
  const empty = (v) => v === null || v === "" || (typeof v === "object" && Object.keys(v).length === 0);
  return Object.fromEntries(Object.entries(prefs).filter(([, v]) => !empty(v)));
}

function sourceText(source) {
  if (typeof source?.seq !== "number") return `from ${describe(source)}`;
  const when = source.ts ? `, ${new Date(source.ts).toLocaleString()}` : "";
  return `from message #${source.seq}${when}`;
}

function factItem(path, fact) {
  const { id, source, ...rest } = fact;
  const text = typeof fact.text === "string" ? fact.text : describe(rest);
  const button = el("button", { type: "button", class: "quiet", text: "Forget" });
  button.setAttribute("aria-label", `Forget: ${text}`);
  const li = el("li", {}, el("span", { class: "fact-text", text }),
    source ? el("small", { class: "sub", text: sourceText(source) }) : null, button);
  button.addEventListener("click", async () => {
    const res = await api(state.token, `${path}/${encodeURIComponent(id)}`, { method: "DELETE" });
    if (res.ok) {
      li.remove();
      $("consent-msg").textContent = "Forgotten.";
    } else {
      $("consent-msg").textContent = unavailable(res, "Forgetting");
    }
  });
  return li;
}

function preferenceList(prefs) {
  if (typeof prefs !== "object") return el("p", { text: String(prefs) });
  const dl = el("dl", { class: "prefs" });
  for (const [key, value] of Object.entries(prefs)) dl.append(el("dt", { text: key }), el("dd", { text: describe(value) }));
  return dl;
}

async function forgetAll() {
  const name = state.persona.name || state.persona.id;
  if (!confirm(`Make ${name} forget everything about you?`)) return;
  const res = await api(state.token, `/api/me/memory/${encodeURIComponent(state.persona.id)}`, { method: "DELETE" });
  $("consent-msg").textContent = res.ok ? `${name} forgot everything about you.` : unavailable(res, "Forgetting");
  await loadMemory();
}

async function loadConsent() {
  const fieldset = $("consent");
  const res = await api(state.token, "/api/me/consent");
  fieldset.disabled = !res.ok;
  $("consent-msg").textContent = res.ok ? "" : unavailable(res, "The consent setting");
  for (const radio of fieldset.querySelectorAll("input")) radio.checked = res.ok && radio.value === res.data?.consent;
}

async function saveConsent(value) {
  const res = await api(state.token, "/api/me/consent", { method: "PUT", body: { consent: value } });
  $("consent-msg").textContent = res.ok ? `Saved: ${value}.` : unavailable(res, "The consent setting");
  if (!res.ok) await loadConsent();
}

// -- helpers -------------------------------------------------------------------------------
function nearBottom() {
  const s = $("scroller");
  return s.scrollHeight - s.scrollTop - s.clientHeight < 80;
}

function scrollDown() {
  const s = $("scroller");
  s.scrollTop = s.scrollHeight;
}

function flash(text) {
  $("typing").textContent = text;
  clearTimeout(state.typingTimer);
  state.typingTimer = setTimeout(hideTyping, TYPING_SHOWN);
}

function autosize() {
  const t = $("text");
  t.style.height = "auto";
  t.style.height = `${Math.min(t.scrollHeight, 160)}px`;
}

// -- wiring ------------------------------------------------------------------------------
function wire() {
  setupSignIn($("signin"), start);
  setupVoice();
  $("signout").addEventListener("click", () => {
    forgetToken();
    forgetSeqs();
    sessionStorage.removeItem("os1.persona");
    resetLog();
    state.room = null;
    state.persona = null;
    signIn("Signed out.");
  });
  $("pick-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const id = $("persona-id").value.trim();
    if (ID_RE.test(id)) openRoom(id);
  });
  $("back").addEventListener("click", () => {
    sessionStorage.removeItem("os1.persona");
    show("pick-view");
    loadPersonas();
  });
  $("composer").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const text = $("text").value.trim();
    if (!text) return;
    $("text").value = "";
    autosize();
    sendText(text);
  });
  $("text").addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      $("composer").requestSubmit();
    }
  });
  $("text").addEventListener("input", () => {
    autosize();
    onTyping();
  });
  $("older").addEventListener("click", async () => {
    const s = $("scroller");
    const fromBottom = s.scrollHeight - s.scrollTop;
    try {
      await loadHistory(state.oldest);
    } catch (err) {
      flash(err.message);
    }
    s.scrollTop = s.scrollHeight - fromBottom;
  });
  $("memory-open").addEventListener("click", openMemory);
  $("memory-close").addEventListener("click", () => $("memory").close());
  $("forget-all").addEventListener("click", forgetAll);
  $("consent").addEventListener("change", (ev) => saveConsent(ev.target.value));
}

wire();
const asked = new URL(location.href).searchParams.get("persona"); // a link may name one
if (asked && ID_RE.test(asked)) sessionStorage.setItem("os1.persona", asked);
const token = takeToken();
if (token) start(token);
else signIn("");
