"""server.connection: the bounded queue and the once-per-tick batching writer.

A pure unit: the transport is a fake that records `write` calls, and the protocol a fake
whose `writing_paused` flips by hand (its `_drain_helper` waits for `resume()`).
"""

from __future__ import annotations

import asyncio

import pytest

from server.connection import Connection, Flusher
from server.protocol.codec import Format
from server.ratelimit import TokenBucket


class FakeTransport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closing = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def abort(self) -> None:
        self.aborted = True
        self.closing = True


class FakeProtocol:
    def __init__(self) -> None:
        self.writing_paused = False
        self._resumed = asyncio.Event()
        self.fail_with: BaseException | None = None

    def pause(self) -> None:
        self.writing_paused = True
        self._resumed.clear()

    def resume(self) -> None:
        self.writing_paused = False
        self._resumed.set()

    async def _drain_helper(self) -> None:
        await self._resumed.wait()
        if self.fail_with is not None:
            raise self.fail_with


class Overflows:
    def __init__(self) -> None:
        self.calls: list[Connection] = []

    def __call__(self, conn: Connection) -> None:
        self.calls.append(conn)


def make_conn(flusher: Flusher, *, limit: int = 100, name: str = "c1"
              ) -> tuple[Connection, FakeTransport, FakeProtocol, Overflows]:
    transport, protocol, overflows = FakeTransport(), FakeProtocol(), Overflows()
    conn = Connection(
        name, Format.JSON, transport=transport, protocol=protocol,  # type: ignore[arg-type]
        flusher=flusher, limit=limit, limiter=TokenBucket(1.0, 1, 0.0),
        on_overflow=overflows,
    )
    return conn, transport, protocol, overflows


async def tick(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.fixture
def flusher() -> Flusher:
    return Flusher()


async def test_frames_queued_in_one_tick_go_out_in_one_write(flusher: Flusher) -> None:
    conn, transport, _, _ = make_conn(flusher)
    for frame in (b"one", b"two", b"three"):
        conn.push(frame)
    assert transport.writes == []  # push never writes synchronously
    assert conn.queued == 3
    await tick()
    assert transport.writes == [b"onetwothree"]
    assert conn.queued == 0


async def test_single_frame_is_written_as_is(flusher: Flusher) -> None:
    conn, transport, _, _ = make_conn(flusher)
    conn.push(b"solo")
    await tick()
    assert transport.writes == [b"solo"]


async def test_each_tick_is_one_write(flusher: Flusher) -> None:
    conn, transport, _, _ = make_conn(flusher)
    conn.push(b"a")
    conn.push(b"b")
    await tick()
    conn.push(b"c")
    await tick()
    assert transport.writes == [b"ab", b"c"]
    await tick()
    assert transport.writes == [b"ab", b"c"]  # nothing queued: no empty writes


async def test_one_write_per_connection_per_tick(flusher: Flusher) -> None:
    conns = [make_conn(flusher, name=f"c{i}") for i in range(3)]
    for round_ in range(4):
        for i, (conn, _, _, _) in enumerate(conns):
            conn.push(f"{i}.{round_};".encode())
    await tick()
    for i, (_, transport, _, _) in enumerate(conns):
        assert transport.writes == [f"{i}.0;{i}.1;{i}.2;{i}.3;".encode()]


async def test_after_flush_callbacks_run_once_after_writing(flusher: Flusher) -> None:
    conn, transport, _, _ = make_conn(flusher)
    seen: list[list[bytes]] = []
    flusher.after_flush.append(lambda: seen.append(list(transport.writes)))
    conn.push(b"x")
    await tick()
    conn.push(b"y")
    await tick()
    assert seen == [[b"x"]]


async def test_limit_frames_fit(flusher: Flusher) -> None:
    conn, transport, _, overflows = make_conn(flusher, limit=3)
    for frame in (b"1", b"2", b"3"):
        conn.push(frame)
    await tick()
    assert overflows.calls == []
    assert transport.writes == [b"123"]


async def test_overflow_calls_on_overflow_once_and_drops_the_queue(flusher: Flusher) -> None:
    conn, transport, protocol, overflows = make_conn(flusher, limit=3)
    protocol.pause()  # the peer is not reading
    for i in range(10):
        conn.push(b"%d" % i)
    assert overflows.calls == [conn]
    assert conn.queued == 0
    assert conn.closed
    protocol.resume()
    await tick(5)
    assert transport.writes == []
    conn.push(b"late")
    await tick()
    assert overflows.calls == [conn] and transport.writes == []


async def test_a_burst_past_limit_on_a_writable_transport_is_written_not_dropped(
        flusher: Flusher) -> None:
    # Many frames within one tick while the peer reads fine is a burst, not a slow reader.
    conn, transport, _, overflows = make_conn(flusher, limit=3)
    frames = [b"%d;" % i for i in range(10)]
    for frame in frames:
        conn.push(frame)
    await tick()
    assert overflows.calls == []
    assert b"".join(transport.writes) == b"".join(frames)


async def test_paused_protocol_defers_writing_until_resumed(flusher: Flusher) -> None:
    conn, transport, protocol, _ = make_conn(flusher)
    protocol.pause()
    conn.push(b"a")
    await tick()
    conn.push(b"b")
    await tick()
    assert transport.writes == []
    assert conn.queued == 2
    protocol.resume()
    await tick(5)
    assert transport.writes == [b"ab"]
    assert conn.queued == 0


async def test_pause_then_overflow_closes_the_slow_reader(flusher: Flusher) -> None:
    conn, transport, protocol, overflows = make_conn(flusher, limit=4)
    protocol.pause()
    for i in range(4):
        conn.push(b"%d" % i)
        await tick()
    assert overflows.calls == []
    conn.push(b"over")
    assert overflows.calls == [conn]
    protocol.resume()
    await tick(5)
    assert transport.writes == []


async def test_failed_drain_drops_the_queue(flusher: Flusher) -> None:
    conn, transport, protocol, _ = make_conn(flusher)
    protocol.pause()
    conn.push(b"a")
    await tick()
    protocol.fail_with = ConnectionResetError()
    protocol.resume()
    await tick(5)
    assert conn.queued == 0
    assert transport.writes == []


async def test_closing_transport_gets_no_writes(flusher: Flusher) -> None:
    conn, transport, _, _ = make_conn(flusher)
    conn.push(b"a")
    transport.closing = True
    await tick()
    assert transport.writes == []
    assert conn.queued == 0


async def test_stop_discards_and_cancels_a_pending_drain(flusher: Flusher) -> None:
    conn, transport, protocol, overflows = make_conn(flusher)
    protocol.pause()
    conn.push(b"a")
    await tick()
    conn.stop()
    assert conn.closed and conn.queued == 0
    protocol.resume()
    conn.push(b"b")
    await tick(5)
    assert transport.writes == []
    assert overflows.calls == []


async def test_abort_aborts_the_transport(flusher: Flusher) -> None:
    conn, transport, _, _ = make_conn(flusher)
    conn.push(b"a")
    conn.abort()
    await tick()
    assert transport.aborted and transport.writes == []


async def test_one_slow_connection_does_not_hold_up_the_others(flusher: Flusher) -> None:
    slow, slow_t, slow_p, _ = make_conn(flusher, name="slow")
    fast, fast_t, _, _ = make_conn(flusher, name="fast")
    slow_p.pause()
    for c in (slow, fast):
        c.push(b"m1")
    await tick()
    for c in (slow, fast):
        c.push(b"m2")
    await tick()
    assert fast_t.writes == [b"m1", b"m2"]
    assert slow_t.writes == []
    slow_p.resume()
    await tick(5)
    assert slow_t.writes == [b"m1m2"]


def test_repr_names_session(flusher: Flusher) -> None:
    conn, *_ = make_conn(flusher, name="sess-1")
    assert "sess-1" in repr(conn)


async def test_push_after_stop_is_ignored(flusher: Flusher) -> None:
    conn, *_ = make_conn(flusher)
    conn.stop()
    conn.push(b"x")  # closed: returns before touching the flusher
    assert conn.queued == 0

