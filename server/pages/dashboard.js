// The dashboard: watch every collective room, read-only (the hub enforces it, not this page).
import { Hub, api, clock, describeStatus, el, forgetToken, setupSignIn, takeToken } from "./os1.js";

const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const FEED_MAX = 500; // items kept in the page
const REPLAY = 50; // messages per room replayed on a first load
const CATCH_UP_PAGES = 10; // after a reconnect, at most this many pages of 100 per room
const RATE_WINDOW = 10_000;
const ROOMS_KEY = "os1.dash.rooms";
const THREADS_KEPT = 200; // per room: collective:all opens a thread per greeting, for ever

const state = {
  token: null,
  hub: null,
  rooms: new Map(), // room -> {speakers: Map seq->id, last: seq, ts, threads: Map, current, guard}
  items: new Map(), // "room#seq" -> <li>
  streams: new Map(), // "room#stream" -> <li>
  people: new Map(), // id -> {id, name, online, ...}
  arrivals: [], // ts of live collective msgs, for the rate
  spark: [],
  metrics: null, // {sends, at}
  timers: [],
  graphQueued: false,
};

// -- views and status -------------------------------------------------------------------
function signIn(message) {
  state.hub?.stop();
  state.hub = null;
  for (const timer of state.timers) clearInterval(timer);
  state.timers = [];
  $("dash").hidden = true;
  $("signin-view").hidden = false;
  $("signout").hidden = true;
  $("signin-msg").textContent = message || "";
  $("status").dataset.state = "off";
  $("status").textContent = "not watching";
  $("signin-token").focus();
}

function start(token) {
  state.token = token;
  const hub = new Hub(token);
  state.hub = hub;
  hub.addEventListener("status", (ev) => {
    const [kind, text] = describeStatus(ev.detail);
    $("status").dataset.state = kind;
    $("status").textContent = text;
  });
  hub.addEventListener("fatal", (ev) => {
    forgetToken();
    signIn(`The hub refused this token: ${ev.detail.message}.`);
  });
  hub.addEventListener("welcome", (ev) => {
    checkEpoch(ev.detail.server?.epoch);
    watch();
  });
  hub.addEventListener("frame", (ev) => onFrame(ev.detail));
  $("signin-view").hidden = true;
  $("signout").hidden = false;
  hub.start();
}

/** A hub that restarted empty numbers its messages from 1 again: start the feed over. */
function checkEpoch(epoch) {
  if (epoch === undefined) return;
  if (state.epoch !== undefined && state.epoch !== epoch) {
    state.rooms.clear();
    state.items.clear();
    state.streams.clear();
    $("feed").replaceChildren();
    renderThreads();
    queueGraph();
  }
  state.epoch = epoch;
}

async function watch() {
  try {
    await state.hub.request({ t: "watch", room: "collective:*" });
  } catch (err) {
    if (err.code === "forbidden") {
      forgetToken();
      signIn("This page needs an observer token: the hub does not let this one watch the collective.");
    }
    return; // offline: the next welcome tries again
  }
  $("dash").hidden = false;
  if (state.timers.length === 0) {
    state.timers.push(setInterval(loadPersonas, 5_000), setInterval(tickRates, 1_000),
      setInterval(loadMetrics, 5_000));
    loadPersonas();
    loadMetrics();
  }
  await replayAll();
}

// -- replay: on load and after every reconnect, so the feed has no gap ---------------------
async function knownRooms() {
  const names = new Set(["collective:all", ...JSON.parse(sessionStorage.getItem(ROOMS_KEY) || "[]"),
    ...state.rooms.keys()]);
  const res = await api(state.token, "/api/collective"); // optional: a hub may list its rooms
  const listed = Array.isArray(res.data) ? res.data : res.data?.rooms;
  if (res.ok && Array.isArray(listed)) {
    for (const item of listed) {
      const name = typeof item === "string" ? item : item?.room || item?.id;
      if (typeof name === "string" && name.startsWith("collective:")) names.add(name);
    }
  }
  return names;
}

async function replayAll() {
  for (const room of await knownRooms()) {
    try {
      await replay(room);
    } catch (err) {
      if (err.code === "not_found") forgetRoom(room);
      else if (err.code === "offline") return;
    }
  }
}

async function replay(room) {
  const since = state.rooms.get(room)?.last ?? 0;
  let msgs = (await history(room, undefined, since > 0 ? 100 : REPLAY)).msgs;
  if (since > 0) { // catch up on everything after what we saw, page by page
    for (let pages = 1; pages < CATCH_UP_PAGES && msgs.length && msgs[0].seq > since + 1; pages++) {
      const older = (await history(room, msgs[0].seq)).msgs;
      if (!older.length) break;
      msgs = older.concat(msgs);
    }
  }
  for (const msg of msgs) if (msg.seq > since) addMsg(msg, false);
}

function history(room, before, limit = 100) {
  const frame = { t: "history", room, limit };
  if (before !== undefined) frame.before = before;
  return state.hub.request(frame);
}

// -- frames ------------------------------------------------------------------------------
function onFrame(frame) {
  if (typeof frame.room !== "string" || !frame.room.startsWith("collective:")) return;
  if (frame.t === "msg") addMsg(frame, true);
  else if (frame.t === "delta") addDelta(frame);
}

function roomOf(name) {
  let room = state.rooms.get(name);
  if (!room) {
    room = { speakers: new Map(), last: 0, ts: 0 };
    state.rooms.set(name, room);
    sessionStorage.setItem(ROOMS_KEY, JSON.stringify([...state.rooms.keys()]));
  }
  return room;
}

function forgetRoom(name) {
  state.rooms.delete(name);
  sessionStorage.setItem(ROOMS_KEY, JSON.stringify([...state.rooms.keys()]));
}

function addMsg(msg, live) {
  const key = `${msg.room}#${msg.seq}`;
  if (state.items.has(key)) return;
  const room = roomOf(msg.room);
  const meta = msg.meta || {};
  const guard = guardLabel(meta);
  // A guard note is no turn: it names no voice in the thread, nor an edge in the graph.
  if (!guard) room.speakers.set(msg.seq, msg.from?.id);
  room.last = Math.max(room.last, msg.seq);
  room.ts = Math.max(room.ts, msg.ts);
  noteThread(room, meta, guard, msg.seq);
  see(msg.from);
  if (live) {
    state.arrivals.push(Date.now());
    $("rate-collective").textContent = collectiveRate().toFixed(1);
  }
  const item = feedItem(msg);
  if (msg.stream) {
    state.streams.get(`${msg.room}#${msg.stream}`)?.remove();
    state.streams.delete(`${msg.room}#${msg.stream}`);
  }
  state.items.set(key, item);
  placeNewestFirst(item);
  trimFeed();
  renderThreads();
  queueGraph();
}

function feedItem(msg) {
  const guard = guardLabel(msg.meta || {});
  const li = el("li", { class: guard ? "item guard" : "item", "data-room": msg.room, "data-seq": String(msg.seq), "data-ts": String(msg.ts) },
    el("p", { class: "meta" },
      el("span", { class: "room", text: msg.room.slice("collective:".length) }),
      guard ? el("span", { class: "guard-tag", text: guard }) : null,
      el("strong", { text: msg.from?.name || msg.from?.id }),
      el("time", { dateTime: new Date(msg.ts).toISOString(), text: clock(msg.ts) })),
    el("p", { class: "text", text: msg.text }));
  if (guard) li.dataset.guard = msg.meta.guard;
  return li;
}

// -- guards: the collective's meta (docs/protocol.md, "What collective messages carry") -----
/** What a guard note says, in a few words; "" for any other message. */
function guardLabel(meta) {
  if (meta.kind !== "guard" || typeof meta.guard !== "string") return "";
  const n = (v) => (Number.isFinite(v) ? String(v) : "?");
  switch (meta.guard) {
    case "echo": return "echo stopped the loop";
    case "max_turns": return `turn budget ${n(meta.turns)}/${n(meta.max_turns)}`;
    case "max_duration": return `time limit ${n(meta.max_duration)} s reached`;
    case "budget": return `${meta.chatter ? "small-talk" : "collective"} budget hit: ${n(meta.used)}/${n(meta.limit)} per ${n(meta.window)} s`;
    default: return `${meta.guard} guard`;
  }
}

/** Each thread's turns of its budget (from its turns' meta) and the guard that stopped it. */
function noteThread(room, meta, guard, seq) {
  if (typeof meta.thread !== "string") return;
  room.threads ??= new Map();
  const thread = room.threads.get(meta.thread) || { turn: 0, max: 0, guard: "" };
  room.threads.set(meta.thread, thread);
  if (room.threads.size > THREADS_KEPT) room.threads.delete(room.threads.keys().next().value);
  const turn = guard ? meta.turns : meta.turn;
  if (Number.isInteger(turn)) thread.turn = Math.max(thread.turn, turn);
  if (Number.isInteger(meta.max_turns)) thread.max = meta.max_turns;
  if (guard && meta.guard !== "budget") thread.guard = guard; // the budget holds turns, not the thread
  if (seq >= (room.currentSeq || 0)) { // the row shows the thread spoken in last
    room.current = thread;
    room.currentSeq = seq;
  }
  if (guard && seq >= (room.guardSeq || 0)) {
    room.guard = guard;
    room.guardSeq = seq;
  }
}

function placeNewestFirst(item) {
  const ts = Number(item.dataset.ts);
  const seq = Number(item.dataset.seq);
  const feed = $("feed");
  for (const other of feed.children) {
    const otherTs = Number(other.dataset.ts);
    const sameRoom = other.dataset.room === item.dataset.room;
    const older = sameRoom ? Number(other.dataset.seq) < seq : otherTs < ts;
    if (other.classList.contains("streaming") ? false : older) {
      feed.insertBefore(item, other);
      return;
    }
  }
  feed.append(item);
}

function trimFeed() {
  const feed = $("feed");
  while (state.items.size > FEED_MAX && feed.lastElementChild) {
    const last = feed.lastElementChild;
    state.items.delete(`${last.dataset.room}#${last.dataset.seq}`);
    last.remove();
  }
  const count = state.items.size;
  $("feed-empty").hidden = count > 0;
  $("feed-count").textContent = count ? `${count} shown` : "";
}

function addDelta(delta) {
  const key = `${delta.room}#${delta.stream}`;
  let li = state.streams.get(key);
  if (!li) {
    li = el("li", { class: "item streaming", "aria-busy": "true", "data-room": delta.room, "data-ts": String(Date.now()) },
      el("p", { class: "meta" },
        el("span", { class: "room", text: delta.room.slice("collective:".length) }),
        el("strong", { text: delta.from?.name || delta.from?.id }),
        el("span", { class: "sub", text: "writing…" })),
      el("p", { class: "text" }));
    state.streams.set(key, li);
    $("feed").prepend(li);
    see(delta.from);
  }
  li.querySelector(".text").textContent += delta.text;
}

// -- personas ----------------------------------------------------------------------------
function see(from) {
  if (!from?.id || state.people.has(from.id)) return;
  state.people.set(from.id, { id: from.id, name: from.name, seenOnly: true });
  renderPersonas();
  clearTimeout(state.newcomer); // a new voice: ask for its card now rather than at the next poll
  state.newcomer = setTimeout(loadPersonas, 250);
}

async function loadPersonas() {
  const res = await api(state.token, "/api/personas");
  if (!res.ok || !Array.isArray(res.data?.personas)) {
    $("personas-note").textContent = res.status === 404
      ? "This hub does not list personas (GET /api/personas: 404); showing those seen in the feed."
      : `Could not load the personas (${res.status || "offline"}).`;
    renderPersonas();
    return;
  }
  $("personas-note").textContent = "";
  for (const p of res.data.personas) state.people.set(p.id, p);
  renderPersonas();
  queueGraph();
}

/** "warmth 0.904 (+0.004)": drift steps are small, so the step is shown, not only the value. */
function drifted(trait, from, to) {
  const short = (v) => String(Number(Number(v).toFixed(4)));
  const step = Number(to) - Number(from);
  return `${trait} ${short(to)} (${step >= 0 ? "+" : "−"}${short(Math.abs(step))})`;
}

function renderPersonas() {
  const rows = [...state.people.values()].sort((a, b) => (b.online === true) - (a.online === true)
    || (a.name || a.id).localeCompare(b.name || b.id));
  $("personas").replaceChildren(...rows.map((p) => {
    const facts = [];
    if (!p.seenOnly) {
      facts.push(p.online ? "online" : "offline");
      if (p.conversations !== undefined) facts.push(`${p.conversations} conversation${p.conversations === 1 ? "" : "s"}`);
      if (p.workers) facts.push(`${p.workers} worker${p.workers === 1 ? "" : "s"}`);
      if (p.mind) facts.push(`mind: ${p.mind}`);
      const change = p.last_change;
      if (change && change.changes) {  // the newest trait drift from the persona's journal
        const moved = Object.entries(change.changes).map(([trait, v]) => drifted(trait, v.from, v.to));
        if (moved.length) facts.push(`${moved.join(", ")} (${change.why}, ${clock(change.ts)})`);
      }
    } else {
      facts.push("seen in the collective");
    }
    return el("li", { "data-id": p.id },
      el("span", { class: `dot ${p.online ? "on" : ""}`, "aria-hidden": "true" }),
      el("span", {}, el("strong", { text: p.name || p.id }), " ", el("span", { class: "sub", text: facts.join(" · ") })));
  }));
}

// -- threads -----------------------------------------------------------------------------
function renderThreads() {
  const rows = [...state.rooms.entries()].filter(([, r]) => r.speakers.size > 0)
    .sort(([, a], [, b]) => b.ts - a.ts);
  $("threads").replaceChildren(...rows.map(([name, r]) => {
    const t = r.current;
    const budget = el("td", { class: t?.guard ? "budget stopped" : "budget", text: t?.max ? `${t.turn}/${t.max}` : "–" });
    if (t?.guard) budget.title = `stopped: ${t.guard}`;
    return el("tr", { "data-room": name },
      el("th", { scope: "row", text: name }),
      el("td", { text: String(r.last) }),
      el("td", { text: String(new Set(r.speakers.values()).size) }),
      budget,
      el("td", { class: "guard", text: r.guard || "–" }),
      el("td", {}, el("time", { dateTime: new Date(r.ts).toISOString(), text: clock(r.ts) })));
  }));
}

// -- the graph: nodes are personas, an edge counts messages between consecutive speakers ---
function edges() {
  const weights = new Map();
  for (const room of state.rooms.values()) {
    for (const [seq, speaker] of room.speakers) {
      const previous = room.speakers.get(seq - 1);
      if (previous === undefined || previous === speaker) continue;
      const key = [previous, speaker].sort().join("\u0000");
      weights.set(key, (weights.get(key) || 0) + 1);
    }
  }
  return [...weights.entries()].map(([key, weight]) => [...key.split("\u0000"), weight]);
}

function queueGraph() {
  if (state.graphQueued) return;
  state.graphQueued = true;
  requestAnimationFrame(() => {
    state.graphQueued = false;
    renderGraph();
  });
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  node.append(...children);
  return node;
}

function layout(ids) {
  const [cx, cy, r] = [200, 150, ids.length > 1 ? 105 : 0];
  return new Map(ids.map((id, i) => {
    const angle = -Math.PI / 2 + (2 * Math.PI * i) / ids.length;
    return [id, { x: cx + r * Math.cos(angle), y: cy + r * Math.sin(angle), cos: Math.cos(angle) }];
  }));
}

function renderGraph() {
  const list = edges();
  const ids = [...state.people.keys()].sort();
  const at = layout(ids);
  const name = (id) => state.people.get(id)?.name || id;
  const heaviest = Math.max(1, ...list.map(([, , w]) => w));
  $("edges").replaceChildren(...list.filter(([a, b]) => at.has(a) && at.has(b)).map(([a, b, w]) => {
    const [p, q] = [at.get(a), at.get(b)];
    const line = svg("line", { class: "edge", x1: p.x, y1: p.y, x2: q.x, y2: q.y,
      "stroke-width": (1.5 + 6 * (w / heaviest)).toFixed(1), "data-a": a, "data-b": b, "data-weight": w },
    svg("title", {}, `${name(a)} and ${name(b)}: ${w} message${w === 1 ? "" : "s"}`));
    const label = svg("text", { class: "edge-label", x: (p.x + q.x) / 2, y: (p.y + q.y) / 2 - 4, "text-anchor": "middle" }, String(w));
    return svg("g", {}, line, label);
  }));
  $("nodes").replaceChildren(...ids.map((id) => {
    const p = at.get(id);
    const person = state.people.get(id);
    const anchor = p.cos > 0.3 ? "start" : p.cos < -0.3 ? "end" : "middle";
    const dx = anchor === "start" ? 17 : anchor === "end" ? -17 : 0;
    const dy = anchor === "middle" ? (p.y < 150 ? -20 : 28) : 5;
    return svg("g", { class: `node ${person.online ? "on" : ""}`, "data-id": id },
      svg("circle", { cx: p.x, cy: p.y, r: 12 }),
      svg("text", { x: p.x + dx, y: p.y + dy, "text-anchor": anchor }, name(id)),
      svg("title", {}, `${name(id)}${person.online ? " (online)" : ""}`));
  }));
  $("graph-desc").textContent = list.length
    ? list.map(([a, b, w]) => `${name(a)} and ${name(b)}: ${w}`).join("; ")
    : "No exchange yet.";
  $("edge-rows").replaceChildren(...list.sort((x, y) => y[2] - x[2]).map(([a, b, w]) =>
    el("tr", {}, el("td", { text: `${name(a)} ↔ ${name(b)}` }), el("td", { text: String(w) }))));
}

// -- rates -------------------------------------------------------------------------------
function collectiveRate() {
  const now = Date.now();
  while (state.arrivals.length && state.arrivals[0] < now - RATE_WINDOW) state.arrivals.shift();
  return state.arrivals.length / (RATE_WINDOW / 1000);
}

function tickRates() {
  const rate = collectiveRate();
  $("rate-collective").textContent = rate.toFixed(1);
  state.spark.push(rate);
  if (state.spark.length > 120) state.spark.shift();
  const top = Math.max(1, ...state.spark);
  const step = 120 / 119;
  const offset = 120 - step * (state.spark.length - 1);
  $("spark-line").setAttribute("points", state.spark
    .map((v, i) => `${(offset + i * step).toFixed(1)},${(23 - (22 * v) / top).toFixed(1)}`).join(" "));
  if (state.metrics?.rate !== undefined) {
    $("rate-convo").textContent = Math.max(0, state.metrics.rate - rate).toFixed(1);
  }
}

/** Messages sent on this node: the `send` frames received, from the Prometheus text. */
async function loadMetrics() {
  let text;
  try {
    const res = await fetch("/metrics", { cache: "no-store" });
    if (!res.ok) return;
    text = await res.text();
  } catch {
    return;
  }
  const match = text.match(/^os1_frames_in_total\{type="send"\} ([0-9.e+]+)$/m);
  const sends = match ? Number(match[1]) : 0;
  const at = performance.now();
  const previous = state.metrics;
  state.metrics = { sends, at, rate: previous?.rate };
  if (previous && sends >= previous.sends) {
    state.metrics.rate = (sends - previous.sends) / ((at - previous.at) / 1000);
    $("rate-all").textContent = state.metrics.rate.toFixed(1);
  }
}

// -- start -------------------------------------------------------------------------------
setupSignIn($("signin"), start);
$("signout").addEventListener("click", () => {
  forgetToken();
  signIn("Signed out.");
});
const token = takeToken();
if (token) start(token);
else signIn("");
