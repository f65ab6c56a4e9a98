"""REST for the person behind a human token: what each persona remembers of them, and what
their conversations may give the collective. The person is always the token's `sub`, never
a parameter, so nobody reads or erases another person's memory.

    GET    /api/me/memory/{persona}             what it knows (below)
    DELETE /api/me/memory/{persona}/{fact_id}   forget one fact    -> {"forgotten": [fact]}
    DELETE /api/me/memory/{persona}             forget everything  -> {"forgotten": [fact, ...]}
    GET    /api/me/consent                      -> {"consent": "none" | "topics" | "full"}
    PUT    /api/me/consent {"consent": ...}     -> the same

A hub that keeps no memory (no personas of its own and no Redis: see create_app) answers
404 with {"error": "not_available"}; an unreachable Redis is 503 `unavailable`. A persona
that never talked with the person has an empty memory, not a 404: the page shows "nothing".
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from aiohttp import web

from personas.memory import StoreFull
from server.api import authenticate, json_body
from server.appkeys import MEMORY
from server.permissions import Role
from server.rooms import valid_id

if TYPE_CHECKING:
    from personas.memory import Fact, MemoryStore, PersonMemory

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class HTTPNotAvailable(web.HTTPNotFound):
    error_code = "not_available"  # json_errors (server/app.py) uses it for "error"


def _store_errors(handler: Handler) -> Handler:
    @functools.wraps(handler)
    async def call(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ConnectionError:
            raise web.HTTPServiceUnavailable(reason="the memory store cannot be reached: "
                                                    "try again in a moment") from None

    return call


async def _caller(request: web.Request) -> tuple[MemoryStore, str]:
    """The store and the person (the human token's sub); checks the token before the store,
    so an anonymous caller learns nothing about this hub."""
    identity = await authenticate(request, Role.HUMAN)
    store = request.app[MEMORY]
    if store is None:
        raise HTTPNotAvailable(reason="this hub keeps no memory of people: it runs no personas "
                                      "and has no Redis")
    return store, identity.id


def _persona(request: web.Request) -> str:
    persona = request.match_info["persona"]
    if not valid_id(persona):
        raise web.HTTPBadRequest(reason=f"{persona[:80]!r} is not a persona id")
    return persona


# -- the view: what the page shows (pure) -------------------------------------------------------
def fact_view(persona: str, person: str, fact: Fact) -> dict[str, Any]:
    said = fact.say()
    return {"id": fact.id, "text": said[:1].upper() + said[1:], "kind": fact.kind, "value": fact.value,
            "subject": fact.subject,
            "source": {"room": f"dm:{persona}:{person}", "seq": fact.seq, "mid": fact.mid, "ts": fact.ts}}


def memory_view(persona: str, person: str, memory: PersonMemory | None) -> dict[str, Any]:
    """Facts with provenance, then the same knowledge as the page groups it."""
    if memory is None:
        return {"persona": persona, "person": person, "name": "", "facts": [],
                "preferences": {"likes": [], "dislikes": [], "favourites": {}}, "habits": [],
                "mood": None, "summary": "", "topics": [], "turns": 0}
    mood = memory.mood
    return {
        "persona": persona, "person": person, "name": memory.known_name,
        "facts": [fact_view(persona, person, f) for f in memory.facts],
        "preferences": {"likes": [f.value for f in memory.all("like")],
                        "dislikes": [f.value for f in memory.dislikes()],
                        "favourites": {f.subject: f.value for f in memory.all("favourite")}},
        "habits": [f.say() for f in memory.habits()],
        "mood": {"label": mood.label, "score": mood.score, "word": mood.word, "seq": mood.seq,
                 "ts": mood.ts} if memory.turns else None,
        "summary": memory.summary,
        "topics": sorted(memory.topics, key=lambda t: memory.topics[t], reverse=True),
        "turns": memory.turns,
    }


# -- handlers -------------------------------------------------------------------------------------
@_store_errors
async def get_memory(request: web.Request) -> web.Response:
    store, person = await _caller(request)
    persona = _persona(request)
    return web.json_response(memory_view(persona, person, await store.get(persona, person)))


@_store_errors
async def forget_fact(request: web.Request) -> web.Response:
    store, person = await _caller(request)
    persona, fact_id = _persona(request), request.match_info["fact_id"]
    gone: list[Fact] = []

    def drop(memory: PersonMemory | None) -> PersonMemory | None:
        gone[:] = [f for f in (memory.facts if memory else []) if f.id == fact_id]
        if memory is None or not gone:
            return None  # nothing to write
        memory.drop(gone)
        return memory

    await store.update(persona, person, drop)
    if not gone:
        raise web.HTTPNotFound(reason=f"{persona} remembers no fact {fact_id[:40]!r} about you")
    return web.json_response({"forgotten": [fact_view(persona, person, f) for f in gone]})


@_store_errors
async def forget_all(request: web.Request) -> web.Response:
    store, person = await _caller(request)
    persona = _persona(request)
    gone: list[Fact] = []

    def wipe(memory: PersonMemory | None) -> PersonMemory | None:
        # forget_all keeps the conversation cursor: without it the persona would answer
        # the whole history again after a restart.
        gone[:] = memory.forget_all() if memory is not None else []
        return memory

    await store.update(persona, person, wipe)
    return web.json_response({"forgotten": [fact_view(persona, person, f) for f in gone]})


@_store_errors
async def get_consent(request: web.Request) -> web.Response:
    store, person = await _caller(request)
    return web.json_response({"consent": await store.consent(person)})


@_store_errors
async def put_consent(request: web.Request) -> web.Response:
    store, person = await _caller(request)
    value = (await json_body(request)).get("consent")
    try:
        if not isinstance(value, str):
            raise ValueError("consent must be one of none, topics, full")
        consent = await store.set_consent(person, value)
    except StoreFull as exc:
        raise web.HTTPServiceUnavailable(reason=str(exc)) from None
    except ValueError as exc:
        raise web.HTTPBadRequest(reason=str(exc)) from None
    return web.json_response({"consent": consent})


def register(app: web.Application) -> None:
    app.router.add_get("/api/me/memory/{persona}", get_memory)
    app.router.add_delete("/api/me/memory/{persona}", forget_all)
    app.router.add_delete("/api/me/memory/{persona}/{fact_id}", forget_fact)
    app.router.add_get("/api/me/consent", get_consent)
    app.router.add_put("/api/me/consent", put_consent)
