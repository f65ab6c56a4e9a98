// What both pages share: the token, the hub socket (hello, requests, reconnect), REST calls.
// Protocol: docs/protocol.md (JSON subprotocol os1.v1.json).

const TOKEN_KEY = "os1.token";

/** The token from ?token= (then dropped from the address bar) or from sessionStorage. */
export function takeToken() {
  const url = new URL(location.href);
  const fromUrl = url.searchParams.get("token");
  if (fromUrl) {
    sessionStorage.setItem(TOKEN_KEY, fromUrl.trim());
    url.searchParams.delete("token");
    history.replaceState(history.state, "", url.pathname + url.search + url.hash);
  }
  return sessionStorage.getItem(TOKEN_KEY);
}

export function saveToken(token) {
  sessionStorage.setItem(TOKEN_KEY, token.trim());
}

export function forgetToken() {
  sessionStorage.removeItem(TOKEN_KEY);
}

/** A random id usable outside secure contexts too (crypto.randomUUID is not). */
export function randomId(prefix) {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return prefix + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

export class HubError extends Error {
  constructor(code, message) {
    super(message || code);
    this.code = code;
  }
}

/** REST call with the bearer token: {ok, status, data} — never throws on an HTTP status. */
export async function api(token, path, { method = "GET", body } = {}) {
  const headers = { Authorization: `Bearer ${token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    return { ok: false, status: 0, data: { message: String(err) } };
  }
  let data = null;
  try {
    data = await res.json();
  } catch {
    data = null;
  }
  return { ok: res.ok, status: res.status, data };
}

const FATAL = new Set([4001, 4003]); // a new token is needed: do not retry
const PING_EVERY = 25_000;
const PING_TIMEOUT = 10_000;

/**
 * One connection to the hub that comes back by itself.
 * Events (CustomEvent, data in .detail): "status" {state, retryIn?}, "welcome" (frame),
 * "frame" (every event and unpaired reply), "fatal" {code, message}.
 */
export class Hub extends EventTarget {
  constructor(token, { path = "/ws", backoff = [500, 15_000] } = {}) {
    super();
    this.token = token;
    this.url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}${path}`;
    this.backoff = backoff;
    this.attempts = 0;
    this.ids = 0;
    this.pending = new Map();
    this.ws = null;
    this.welcome = null;
    this.stopped = true;
    this.timer = null;
    this.pinger = null;
    this.onOnline = () => this.retryNow();
  }

  get open() {
    return this.welcome !== null && this.ws !== null && this.ws.readyState === WebSocket.OPEN;
  }

  start() {
    this.stopped = false;
    addEventListener("online", this.onOnline);
    this.connect();
  }

  stop() {
    this.stopped = true;
    removeEventListener("online", this.onOnline);
    clearTimeout(this.timer);
    this.drop(1000, "closed by the page");
  }

  retryNow() {
    if (!this.stopped && this.ws === null) {
      clearTimeout(this.timer);
      this.connect();
    }
  }

  /** Send a request and wait for its reply; an `error` reply rejects with HubError. */
  request(frame, timeout = 10_000) {
    if (!this.open) return Promise.reject(new HubError("offline", "not connected"));
    const id = `r${++this.ids}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new HubError("timeout", `no reply to ${frame.t}`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...frame, id }));
    });
  }

  /** Send a frame that has no reply (typing, delta); false when offline. */
  fire(frame) {
    if (!this.open) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  connect() {
    this.emit("status", { state: "connecting" });
    const ws = new WebSocket(this.url, "os1.v1.json");
    this.ws = ws;
    ws.onopen = () => ws.send(JSON.stringify({ t: "hello", id: "hello", token: this.token }));
    ws.onmessage = (ev) => this.receive(ev.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) this.closed(ev.code, ev.reason);
    };
  }

  receive(data) {
    let frame;
    try {
      frame = JSON.parse(data);
    } catch {
      return;
    }
    if (frame === null || typeof frame !== "object" || typeof frame.t !== "string") return;
    if (this.welcome === null) {
      this.greet(frame);
      return;
    }
    const waiting = frame.re !== undefined ? this.pending.get(frame.re) : undefined;
    if (waiting) {
      this.pending.delete(frame.re);
      clearTimeout(waiting.timer);
      if (frame.t === "error") waiting.reject(new HubError(frame.code, frame.message));
      else waiting.resolve(frame);
      return;
    }
    this.emit("frame", frame);
  }

  greet(frame) {
    if (frame.t === "welcome") {
      this.welcome = frame;
      this.attempts = 0;
      this.pinger = setInterval(() => this.ping(), PING_EVERY);
      this.emit("status", { state: "open" });
      this.emit("welcome", frame);
    } else if (frame.t === "error") {
      this.fatal(4001, frame.message || frame.code);
    }
  }

  async ping() {
    try {
      await this.request({ t: "ping" }, PING_TIMEOUT);
    } catch (err) {
      // a silent dead link: browsers may take minutes to notice, so cut it ourselves
      if (err.code === "timeout") this.drop(4000, "no pong", true);
    }
  }

  /** Forget the socket now (without waiting for the browser's close handshake). */
  drop(code, reason, reconnect = false) {
    const ws = this.ws;
    if (ws === null) return;
    ws.onopen = ws.onmessage = ws.onclose = null;
    try {
      ws.close(1000);
    } catch {
      /* already closing */
    }
    this.closed(reconnect ? code : 1000, reason);
  }

  closed(code, reason) {
    this.ws = null;
    this.welcome = null;
    clearInterval(this.pinger);
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(new HubError("offline", "connection lost"));
    }
    this.pending.clear();
    if (this.stopped) {
      this.emit("status", { state: "closed" });
    } else if (FATAL.has(code)) {
      this.fatal(code, reason);
    } else {
      this.schedule(code);
    }
  }

  fatal(code, message) {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.drop(code, message);
    this.emit("status", { state: "closed" });
    this.emit("fatal", { code, message: message || "the hub refused this token" });
  }

  schedule(code) {
    const [base, max] = this.backoff;
    let delay = Math.min(max, base * 2 ** this.attempts) * (0.5 + Math.random() / 2);
    if (code === 4029) delay = Math.max(delay, 10_000); // rate limited: slow down
    this.attempts += 1;
    this.emit("status", { state: "waiting", retryIn: delay });
    this.timer = setTimeout(() => this.connect(), delay);
  }
}

/** Show `text` in a status element: live, or a countdown while waiting. */
export function describeStatus(detail) {
  switch (detail.state) {
    case "open":
      return ["live", "connected"];
    case "connecting":
      return ["busy", "connecting…"];
    case "waiting":
      return ["busy", `offline — retrying in ${Math.max(1, Math.round(detail.retryIn / 1000))} s`];
    default:
      return ["off", "disconnected"];
  }
}

/** Wire the sign-in form: a pasted token is kept in sessionStorage and handed to `onToken`. */
export function setupSignIn(form, onToken) {
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const input = form.querySelector("input[name=token]");
    const token = input.value.trim();
    if (!token) return;
    input.value = "";
    saveToken(token);
    onToken(token);
  });
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("data-") || key.startsWith("aria-") || key === "role") node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children) if (child !== null && child !== undefined) node.append(child);
  return node;
}

export function clock(ts) {
  const date = new Date(ts);
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}
