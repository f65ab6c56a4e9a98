"""The hub: sessions, rooms, permissions and routing on top of an engine.

No sockets here: a Connection is a queue of frame bytes. The transport (server/app.py)
feeds decoded frames in and closes connections the hub asks it to close.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

import structlog

from server import __version__, auth
from server.auth import Identity
from server.config import Settings
from server.connection import Connection
from server.engine.base import Appended, Engine, Event
from server.errors import (
    BadRequest,
    CloseCode,
    Forbidden,
    HubError,
    NotFound,
    Unauthorized,
    Unavailable,
)
from server.metrics import Metrics
from server.permissions import Op, Role, allowed
from server.protocol import requests as rq
from server.protocol.codec import Format, encode, encode_frame, ws_frame
from server.rooms import COLLECTIVE_ALL, COLLECTIVE_ANY, Kind, Room, parse_room, valid_id
from server.routing import Routes, channels_for

log = structlog.get_logger("os1.hub")

CloseFn = Callable[[Connection, CloseCode, str], None]  # asks the transport to close


_NO_ECHO = frozenset({"delta", "typing"})
SEND_BATCH = 64  # queued sends of one connection appended in one engine call
SEND_WINDOW = 256  # queued sends of one connection before its reading pauses


def now_ms() -> int:
    return int(time.time() * 1000)


class Hub:
    def __init__(self, settings: Settings, engine: Engine, metrics: Metrics, close: CloseFn) -> None:
        self.settings = settings
        self.engine = engine
        self.metrics = metrics
        self.close_conn = close
        self.routes: Routes[Connection] = Routes()
        self.conns: set[Connection] = set()
        self.draining = False
        self.status: dict[Connection, dict[str, Any]] = {}  # persona self-reports
        self._local: defaultdict[tuple[str, str], int] = defaultdict(int)  # (room, user) -> conns
        self._channels: defaultdict[str, int] = defaultdict(int)
        # Presence changes waiting for the end of this loop iteration: room -> user -> joined.
        # A join storm then costs one `presence` per room and iteration, not one per member
        # and join (1,000 joins of one room: ~500,000 frames otherwise).
        self._presence_out: dict[str, dict[str, bool]] = {}
        self._presence_tasks: set[asyncio.Task[None]] = set()
        engine.set_listener(self.on_event)
        metrics.connections = self._connection_counts
        metrics.rooms = self.routes.count

    def _connection_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {r.value: 0 for r in Role}
        counts["pending"] = 0
        for c in self.conns:
            counts[c.identity.role.value if c.identity else "pending"] += 1
        return counts

    # ---- outgoing ---------------------------------------------------------------------

    def reply(self, conn: Connection, frame: dict[str, Any]) -> None:
        conn.push(encode_frame(frame, conn.fmt))
        self.metrics.frames_out[frame["t"]] += 1

    def error(self, conn: Connection, err: HubError, rid: rq.RequestId = None) -> None:
        frame: dict[str, Any] = {"t": "error", "code": err.code.value, "message": err.message}
        if rid is not None:
            frame["re"] = rid
        self.metrics.errors.labels(err.code.value).inc()
        self.reply(conn, frame)

    def on_event(self, room: str, event: Event) -> None:
        """Engine listener: queue `event` to every local recipient, encoded once per format."""
        t0 = time.perf_counter()
        if room.startswith("user:"):
            targets: Any = self.routes.inbox.get(room[5:], ())
            if event["t"] == "revoked":
                for conn in list(targets):
                    self.close_conn(conn, CloseCode.FORBIDDEN, "token revoked")
                return
            if event["t"] == "invited":  # for the persona of that id, not a namesake
                targets = [c for c in targets if c in self.routes.personas]
        else:
            targets = self.routes.targets(room)
        frames: dict[Format, bytes] = {}
        n = 0
        if event["t"] in _NO_ECHO:  # a writer needs not hear its own stream or typing back
            author = event["from"]["id"]
            targets = [c for c in targets if c.identity is None or c.identity.id != author]
        for conn in targets:
            if conn.joining and room in conn.joining:
                held = conn.joining[room]
                if len(held) >= conn.limit:
                    conn.overflow()
                held.append(event)
                continue
            data = frames.get(conn.fmt)
            if data is None:
                data = frames[conn.fmt] = ws_frame(encode(event, conn.fmt), conn.fmt)
            conn.push(data)
            n += 1
        if n:
            self.metrics.frames_out[event["t"]] += n
            self.metrics.fanout.observe(time.perf_counter() - t0)

    # ---- connection lifecycle ---------------------------------------------------------

    def welcome(self, conn: Connection, identity: Identity, rid: rq.RequestId) -> dict[str, Any]:
        conn.identity = identity
        frame: dict[str, Any] = {
            "t": "welcome",
            "session": conn.id,
            "me": identity.as_from(),
            "server": {
                "version": __version__,
                "protocol": 1,
                "node": self.settings.node,
                "engine": self.engine.name,
                "epoch": self.engine.epoch,
                "max_frame": self.settings.max_frame,
                "max_text": self.settings.max_text,
                "history": self.settings.history,
                "rate": self._rate(identity),
            },
        }
        if rid is not None:
            frame["re"] = rid
        return frame

    def _rate(self, identity: Identity) -> dict[str, float]:
        s = self.settings
        if identity.role is Role.PERSONA:
            return {"per_s": s.persona_rate_limit, "burst": s.persona_rate_burst}
        return {"per_s": s.rate_limit, "burst": s.rate_burst}

    async def from_bearer(self, header: str) -> Identity:
        """The identity in an `Authorization: Bearer <token>` header, or Unauthorized."""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("send Authorization: Bearer <token>")
        identity = auth.verify(self.settings.secret, token.strip())
        await self.check_revoked(identity)
        return identity

    async def check_revoked(self, identity: Identity) -> None:
        if identity.iat <= await self.engine.revoked_upto(identity.id):
            raise Unauthorized("token revoked")

    async def revoke(self, user: str) -> int:
        """Revoke every token of `user` issued so far; its open connections close with 4003."""
        upto = int(time.time())
        await self.engine.revoke(user, upto)
        await self.engine.notify(user, {"t": "revoked"})
        log.info("revoked", revoked_user=user)
        return upto

    async def attach(self, conn: Connection) -> None:
        """After welcome: open the user's inbox (and collective:all for personas)."""
        assert conn.identity is not None  # only called after welcome
        ident = conn.identity
        self.conns.add(conn)
        if self.routes.add_inbox(ident.id, conn):
            # Counted by the routes themselves (first/last connection of the user): no entry
            # in _channels, which would cost every idle connection ~90 bytes more.
            await self.engine.subscribe(f"inbox:{ident.id}")
        if ident.role in (Role.OBSERVER, Role.ADMIN):
            self.routes.others.add(conn)
        if ident.role is Role.PERSONA:
            self.routes.personas.add(conn)
            await self._sub("collective")
            await self._present(COLLECTIVE_ALL, ident.id, conn, joined=True)

    async def detach(self, conn: Connection) -> None:
        conn.stop()
        self.conns.discard(conn)
        if conn.sender is not None and not conn.sender.done():
            # Unacked sends die with the socket: the client resends them (same cid) elsewhere.
            conn.sender.cancel()
            await asyncio.wait([conn.sender])
        ident = conn.identity
        if ident is None:
            return
        for room in list(conn.rooms):
            await self._unsubscribe_room(conn, room)
        for room in list(conn.watching):
            await self._unwatch(conn, room)
        self.routes.others.discard(conn)
        if self.routes.remove_inbox(ident.id, conn):
            await self.engine.unsubscribe(f"inbox:{ident.id}")
        if ident.role is Role.PERSONA:
            self.routes.personas.discard(conn)
            self.status.pop(conn, None)
            await self._present(COLLECTIVE_ALL, ident.id, conn, joined=False)
            await self._unsub("collective")

    async def _sub(self, channel: str) -> None:
        self._channels[channel] += 1
        if self._channels[channel] == 1:
            await self.engine.subscribe(channel)

    async def _unsub(self, channel: str) -> None:
        self._channels[channel] -= 1
        if self._channels[channel] <= 0:
            del self._channels[channel]
            await self.engine.unsubscribe(channel)

    async def _present(self, room: str, user: str, conn: Connection, *, joined: bool) -> None:
        key = (room, user)
        node = self.settings.node
        if joined:
            self._local[key] += 1
            changed = self._local[key] == 1 and await self.engine.presence_add(room, user, node)
        else:
            self._local[key] -= 1
            if self._local[key] > 0:
                return
            del self._local[key]
            changed = await self.engine.presence_remove(room, user, node)
        if changed:
            self._announce(room, user, joined)

    def _announce(self, room: str, user: str, joined: bool) -> None:
        if not self._presence_out:
            asyncio.get_running_loop().call_soon(self._flush_presence)
        batch = self._presence_out.setdefault(room, {})
        if batch.get(user, joined) != joined:
            del batch[user]  # joined and left (or left and came back) unseen: no news
        else:
            batch[user] = joined

    def _flush_presence(self) -> None:
        out, self._presence_out = self._presence_out, {}
        for room, batch in out.items():
            if batch:
                event = {"t": "presence", "room": room,
                         "joined": [u for u, j in batch.items() if j],
                         "left": [u for u, j in batch.items() if not j]}
                task = asyncio.create_task(self._publish_presence(room, event))
                self._presence_tasks.add(task)
                task.add_done_callback(self._presence_tasks.discard)

    async def _publish_presence(self, room: str, event: Event) -> None:
        try:
            await self.engine.publish(room, event)
        except (ConnectionError, TimeoutError, OSError) as err:  # presence is advisory
            log.warning("presence_not_published", room=room, error=repr(err))

    # ---- requests ---------------------------------------------------------------------

    async def submit(self, conn: Connection, req: rq.Request) -> None:
        """Serve ``req`` after the connection's earlier requests (the read loop calls this).

        With an engine that pipelines (Redis), sends do not wait for the store one by one:
        they queue on the connection and a task appends them in batches, one round trip
        each, in order — a fast sender has many appends in flight, and their msgs reach
        the subscribers together. Any other request waits for the sends before it, and a
        full queue stops the reading (backpressure).
        """
        task = conn.sender
        if self.engine.pipelines and isinstance(req, rq.Send):
            if conn.outbox is None:
                conn.outbox = deque()
            conn.outbox.append(req)
            if task is None or task.done():
                conn.sender = asyncio.create_task(self._send_queued(conn))
            elif len(conn.outbox) >= SEND_WINDOW:
                await asyncio.wait([task])
            return
        if task is not None and not task.done():
            await asyncio.wait([task])  # not `await task`: a closing reader must not cancel it
        await self.handle(conn, req)

    async def _send_queued(self, conn: Connection) -> None:
        box = conn.outbox
        while box:
            batch = [box.popleft() for _ in range(min(len(box), SEND_BATCH))]
            try:
                await self._send_batch(conn, batch)
            except Exception:  # a bug must cost these requests, not the connection
                log.exception("request_failed", request="Send", batch=len(batch))
                for req in batch:
                    self.error(conn, HubError("internal error; the request was not completed"), req.id)
        conn.outbox = None

    async def handle(self, conn: Connection, req: rq.Request) -> None:
        """Serve one request of a welcomed connection; HubError becomes an error frame."""
        try:
            match req:
                case rq.Send():
                    await self._send(conn, req)
                case rq.Join():
                    await self._join(conn, req)
                case rq.Delta():
                    await self._delta(conn, req)
                case rq.Typing():
                    await self._typing(conn, req)
                case rq.History():
                    await self._history(conn, req)
                case rq.Leave():
                    await self._leave(conn, req)
                case rq.Invite():
                    await self._invite(conn, req)
                case rq.Watch():
                    await self._watch(conn, req)
                case rq.Unwatch():
                    await self._unwatch_req(conn, req)
                case rq.Status():
                    self._status(conn, req)
                case rq.Inbox():
                    await self._inbox(conn, req)
                case rq.Ping():
                    self.reply(conn, _re({"t": "pong", "ts": now_ms()}, req.id))
                case rq.Hello():
                    raise BadRequest("already authenticated: hello is only the first frame")
        except (HubError, ConnectionError, TimeoutError, OSError) as err:
            self._refuse(conn, req, err)
        except Exception:
            # A bug must cost one request, not the connection: report it and carry on.
            log.exception("request_failed", request=type(req).__name__)
            self.error(conn, HubError("internal error; the request was not completed"), req.id)

    def _refuse(self, conn: Connection, req: rq.Request, err: Exception) -> None:
        """Answer a request that failed with a HubError, or with the store away."""
        if isinstance(err, HubError):
            log.info("request_error", code=err.code.value, request=type(req).__name__,
                     room=getattr(req, "room", None), reason=err.message)
            self.error(conn, err, req.id)
        else:
            log.warning("engine_unavailable", error=repr(err))
            self.error(conn, Unavailable("the store is unavailable; retry shortly"), req.id)

    def _room(self, conn: Connection, raw: str) -> Room:
        ident = conn.identity
        assert ident is not None
        return parse_room(raw, user=ident.id, role=ident.role.value)

    async def _is_member(self, ident: Identity, room: Room) -> bool:
        if room.kind is Kind.DM:
            return ident.id == (room.persona if ident.role is Role.PERSONA else room.human) and (
                ident.role in (Role.PERSONA, Role.HUMAN)
            )
        if room.id == COLLECTIVE_ALL:
            return ident.role is Role.PERSONA
        return await self.engine.is_member(room.id, ident.id)

    async def _check(self, conn: Connection, op: Op, room: Room) -> None:
        ident = conn.identity
        assert ident is not None
        # A room this connection joined needs no store round trip (a send's hot path).
        member = room.id in conn.rooms or await self._is_member(ident, room)
        if not allowed(ident.role, op, room.kind, member=member):
            if room.kind is not Kind.DM and not member and allowed(
                ident.role, op, room.kind, member=True
            ):
                raise Forbidden(f"join {room.id} first: only members may {op.value} there")
            raise Forbidden(f"a {ident.role.value} may not {op.value} in {room.id}")
        # Admins and observers act without membership, so nothing vouches for the room yet:
        # a group or collective room must exist (create it with join) — else not_found.
        if not member and op in _NEEDS_ROOM and room.kind is not Kind.DM \
                and room.id != COLLECTIVE_ALL and not await self.engine.room_exists(room.id):
            raise NotFound(f"{room.id} does not exist; join with create:true to create it")

    async def _send(self, conn: Connection, req: rq.Send) -> None:
        room, msg = await self._prepare_send(conn, req)
        assert conn.identity is not None
        done = await self.engine.append(room.id, msg, sender=conn.identity.id, cid=req.cid)
        self._acked(conn, req, room, done)

    async def _send_batch(self, conn: Connection, reqs: list[rq.Send]) -> None:
        """Several sends of one connection, appended in one engine call, answered in order."""
        ident = conn.identity
        assert ident is not None
        # Per request: the refusal, or (room, stored msg) once appended.
        outcomes: list[Exception | tuple[Room, Appended] | None] = [None] * len(reqs)
        items: list[tuple[int, Room, Event]] = []  # (index in reqs, room, msg) to append
        for i, req in enumerate(reqs):
            try:
                room, msg = await self._prepare_send(conn, req)
                items.append((i, room, msg))
            except (HubError, ConnectionError, TimeoutError, OSError) as err:
                outcomes[i] = err
        try:
            results = await self.engine.append_many(
                [(room.id, msg, ident.id, reqs[i].cid) for i, room, msg in items]) if items else []
            for (i, room, _), result in zip(items, results, strict=True):
                outcomes[i] = (room, result) if isinstance(result, Appended) else result
        except (ConnectionError, TimeoutError, OSError) as err:
            for i, _, _ in items:
                outcomes[i] = err
        for req, outcome in zip(reqs, outcomes, strict=True):
            if isinstance(outcome, tuple):
                self._acked(conn, req, *outcome)
            else:
                assert outcome is not None
                self._refuse(conn, req, outcome)

    async def _prepare_send(self, conn: Connection, req: rq.Send) -> tuple[Room, Event]:
        room = self._room(conn, req.room)
        await self._check(conn, Op.SEND, room)
        ident = conn.identity
        assert ident is not None
        msg: dict[str, Any] = {"t": "msg", "room": room.id, "from": ident.as_from(),
                               "text": req.text, "ts": now_ms()}
        for key in ("cid", "reply_to", "stream", "meta"):
            value = getattr(req, key)
            if value is not None:
                msg[key] = value
        return room, msg

    def _acked(self, conn: Connection, req: rq.Send, room: Room, done: Appended) -> None:
        ack = {"t": "ack", "room": room.id, "seq": done.msg["seq"], "mid": done.msg["mid"]}
        if done.duplicate:
            ack["duplicate"] = True
        self.reply(conn, _re(ack, req.id))
        if not done.duplicate and not self._hears(conn, room):
            # Every sender gets its own msg back, even one that sends without joining (an
            # invited persona, an admin): not through the room, which it does not hear.
            conn.push(encode_frame(done.msg, conn.fmt))

    def _hears(self, conn: Connection, room: Room) -> bool:
        """Whether ``conn`` receives the live events of ``room`` (see server.routing)."""
        if room.id in conn.rooms:
            return True
        ident = conn.identity
        assert ident is not None
        if room.kind is Kind.DM:
            return (ident.role is Role.PERSONA and ident.id == room.persona) or \
                (ident.role is Role.HUMAN and ident.id == room.human)
        if room.kind is Kind.COLLECTIVE:
            return room.id in conn.watching or COLLECTIVE_ANY in conn.watching or \
                (room.id == COLLECTIVE_ALL and ident.role is Role.PERSONA)
        return False

    async def _delta(self, conn: Connection, req: rq.Delta) -> None:
        room = self._room(conn, req.room)
        await self._check(conn, Op.DELTA, room)
        assert conn.identity is not None
        event = {"t": "delta", "room": room.id, "stream": req.stream,
                 "from": conn.identity.as_from(), "text": req.text}
        await self.engine.publish(room.id, event)

    async def _typing(self, conn: Connection, req: rq.Typing) -> None:
        room = self._room(conn, req.room)
        await self._check(conn, Op.TYPING, room)
        assert conn.identity is not None
        await self.engine.publish(room.id, {"t": "typing", "room": room.id,
                                            "from": conn.identity.as_from()})

    async def _history(self, conn: Connection, req: rq.History) -> None:
        room = self._room(conn, req.room)
        await self._check(conn, Op.HISTORY, room)
        msgs = await self.engine.read_before(room.id, req.before, req.limit)
        self.reply(conn, _re({"t": "history", "room": room.id, "msgs": msgs}, req.id))

    async def _ensure_room(self, conn: Connection, room: Room, create: bool) -> None:
        if room.kind is Kind.DM or room.id == COLLECTIVE_ALL:
            return
        if await self.engine.room_exists(room.id):
            return
        if not create:
            raise NotFound(f"{room.id} does not exist; join with create:true to create it")
        await self._check(conn, Op.CREATE, room)
        if await self.engine.create_room(room.id):
            log.info("room_created", room=room.id)

    async def _join(self, conn: Connection, req: rq.Join) -> None:
        room = self._room(conn, req.room)
        ident = conn.identity
        assert ident is not None
        await self._check(conn, Op.JOIN, room)
        await self._ensure_room(conn, room, req.create)
        if room.kind is not Kind.DM and room.id != COLLECTIVE_ALL:
            await self.engine.add_member(room.id, ident.id)
        # Live events that arrive while the replay is read are held, then sent after it.
        if conn.joining is None:
            conn.joining = {}
        conn.joining[room.id] = []
        try:
            fresh = room.id not in conn.rooms
            if fresh:
                conn.add_room(room.id)
                if self.routes.join(room.id, conn):
                    for ch in channels_for(room.id):
                        await self._sub(ch)
            page = await self._replay_page(room.id, req.since)
            members = await self._members(room)
            replayed = page.msgs if page else []
            last = page.last if page else await self._last_seq(room.id)
            gap = bool(page) and req.since is not None and req.since + 1 < page.first_retained \
                and page.last > req.since
            self.reply(conn, _re({"t": "joined", "room": room.id, "seq": last, "members": members,
                                  "replayed": len(replayed), "gap": gap}, req.id))
            for m in replayed:
                conn.push(encode_frame(m, conn.fmt))
            self.metrics.frames_out["msg"] += len(replayed)
        finally:
            held = conn.joining.pop(room.id, []) if conn.joining else []
            if not conn.joining:
                conn.joining = None
        # A since beyond the room's end (a client of a store that was reset) must not hide
        # the live msgs that arrived during the read: they are newer than `last`.
        top = replayed[-1]["seq"] if replayed else min(req.since or 0, last)
        for event in held:
            if event["t"] != "msg" or event["seq"] > top:
                conn.push(encode_frame(event, conn.fmt))
        if fresh:
            await self._present(room.id, ident.id, conn, joined=True)

    async def _replay_page(self, room: str, since: int | None) -> Any:
        if since is None:
            return None
        return await self.engine.read_after(room, since, self.settings.history)

    async def _last_seq(self, room: str) -> int:
        return (await self.engine.read_after(room, 1 << 62, 1)).last

    async def _members(self, room: Room) -> list[str]:
        if room.kind is Kind.DM:
            return [room.persona, room.human]
        if room.id == COLLECTIVE_ALL:
            return await self.engine.present(room.id)
        return await self.engine.members(room.id)

    async def _unsubscribe_room(self, conn: Connection, room: str) -> None:
        conn.drop_room(room)
        if self.routes.leave(room, conn):
            for ch in channels_for(room):
                await self._unsub(ch)
        assert conn.identity is not None
        await self._present(room, conn.identity.id, conn, joined=False)

    async def _leave(self, conn: Connection, req: rq.Leave) -> None:
        room = self._room(conn, req.room)
        await self._check(conn, Op.LEAVE, room)
        assert conn.identity is not None
        if room.id in conn.rooms:
            await self._unsubscribe_room(conn, room.id)
        if room.kind is not Kind.DM and room.id != COLLECTIVE_ALL:
            await self.engine.remove_member(room.id, conn.identity.id)
        self.reply(conn, _re({"t": "left", "room": room.id}, req.id))

    async def _invite(self, conn: Connection, req: rq.Invite) -> None:
        room = self._room(conn, req.room)
        if room.kind is Kind.DM:
            raise Forbidden("dm rooms are private: invite works in group and collective rooms")
        await self._check(conn, Op.INVITE, room)
        if not valid_id(req.persona):
            raise BadRequest("'persona' must be a persona id")
        await self.engine.add_member(room.id, req.persona)
        assert conn.identity is not None
        invited = {"t": "invited", "room": room.id, "by": conn.identity.as_from()}
        await self.engine.notify(req.persona, invited)
        self.reply(conn, _re({"t": "ok", "room": room.id, "persona": req.persona}, req.id))

    async def _inbox(self, conn: Connection, req: rq.Inbox) -> None:
        """The caller's dm rooms, newest activity first: how a persona worker that lost its
        own record (a fresh store) finds the conversations that wrote while it was away."""
        ident = conn.identity
        assert ident is not None
        if ident.role not in (Role.PERSONA, Role.HUMAN):
            raise Forbidden(f"a {ident.role.value} has no dm rooms")
        rooms = await self.engine.inbox(ident.id, persona=ident.role is Role.PERSONA, limit=req.limit)
        self.reply(conn, _re({"t": "inbox", "rooms": rooms}, req.id))

    def _status(self, conn: Connection, req: rq.Status) -> None:
        if conn.identity is None or conn.identity.role is not Role.PERSONA:
            raise Forbidden("only personas report a status")
        self.status[conn] = {"conversations": req.conversations, "mind": req.mind}
        self.reply(conn, _re({"t": "ok"}, req.id))

    def personas(self) -> dict[str, dict[str, Any]]:
        """Online personas on this node: name, workers (connections), conversations, mind."""
        out: dict[str, dict[str, Any]] = {}
        for conn in self.routes.personas:
            ident = conn.identity
            assert ident is not None
            entry = out.setdefault(ident.id, {"id": ident.id, "name": ident.name, "online": True,
                                              "workers": 0, "conversations": 0, "mind": None})
            entry["workers"] += 1
            status = self.status.get(conn, {})
            entry["conversations"] += status.get("conversations", 0)
            entry["mind"] = status.get("mind") or entry["mind"]
        return out

    async def _watch(self, conn: Connection, req: rq.Watch) -> None:
        ident = conn.identity
        assert ident is not None
        if req.room == COLLECTIVE_ANY:
            if ident.role not in (Role.OBSERVER, Role.ADMIN):
                raise Forbidden(f"a {ident.role.value} may not watch the collective")
            target = COLLECTIVE_ANY
        else:
            room = self._room(conn, req.room)
            await self._check(conn, Op.WATCH, room)
            target = room.id
        if target not in conn.watching:
            conn.add_watch(target)
            self.routes.watch(target, conn)
            await self._sub("collective")
        self.reply(conn, _re({"t": "watching", "room": target}, req.id))

    async def _unwatch(self, conn: Connection, target: str) -> None:
        if target in conn.watching:
            conn.drop_watch(target)
            self.routes.unwatch(target, conn)
            await self._unsub("collective")

    async def _unwatch_req(self, conn: Connection, req: rq.Unwatch) -> None:
        if req.room != COLLECTIVE_ANY and self._room(conn, req.room).kind is not Kind.COLLECTIVE:
            raise BadRequest("unwatch names a collective room or collective:*")
        await self._unwatch(conn, req.room)
        self.reply(conn, _re({"t": "unwatched", "room": req.room}, req.id))


# Ops on a room's content: refused with not_found when the room was never created.
_NEEDS_ROOM = frozenset({Op.SEND, Op.DELTA, Op.HISTORY, Op.TYPING, Op.INVITE})


def _re(frame: dict[str, Any], rid: rq.RequestId) -> dict[str, Any]:
    if rid is not None:
        frame["re"] = rid
    return frame
