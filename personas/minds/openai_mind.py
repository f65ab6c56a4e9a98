"""The `openai` mind: any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM,
llama.cpp's server, LM Studio) through the official `openai` SDK, streamed.

Where the endpoint comes from, first found wins:

- base URL: the card's ``mind.base_url``, then ``OS1_OPENAI_BASE_URL``, then OpenAI's;
- model: the card's ``mind.model``, then ``OS1_OPENAI_MODEL`` (one of them is required);
- API key: the variable the card's ``mind.api_key_env`` names, then ``OS1_OPENAI_API_KEY``,
  then ``OPENAI_API_KEY``; none is needed for a server other than OpenAI's.

So the environment fills in what a card leaves unset and never overrides what it sets.

Every reply is bounded by one budget (``timeout``): the wait for a turn under the
per-persona concurrency limit, the attempts, the backoff between them and the stream. A
connection error, a 429 or a 5xx is retried with exponential backoff, but only before the
first text arrives — after that a retry could repeat words the person has already seen.
When the endpoint fails the person still gets an answer in the persona's own voice (the
card's ``voice.trouble``), and the failure is logged and counted in ``failures``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

import openai
import structlog
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from personas.card import Card
from personas.minds.base import Mind, MindConfigError, MindError, MindInput, MindUnavailable
from personas.minds.prompt import CUT_OFF, ChatMessage, build_messages, trouble_line
from personas.minds.reflex import CHUNK_WORDS, compose, split_chunks
from personas.understand import Intent

log = structlog.get_logger("os1.persona")

OPENAI_URL = "https://api.openai.com/v1"
NO_KEY = "not-needed"  # the SDK insists on a key; local servers ignore it
# Memory commands and the head count are promises about data ("it is forgotten", "I talk with
# 212 people"): answered from memory itself, word for word, never paraphrased by a model.
EXACT_INTENTS = frozenset({Intent.RECALL, Intent.FORGET, Intent.FORGET_ALL, Intent.COUNT})
MAX_BACKOFF = 4.0
CLOSE_TIMEOUT = 1.0


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str = NO_KEY


@dataclass(frozen=True)
class Limits:
    """How long, how often and how many at once. Env: OS1_OPENAI_TIMEOUT, _RETRIES,
    _CONCURRENCY, _CONTEXT."""

    # The whole reply. Below the worker's mind timeout (20 s) so that the person hears the
    # persona's own apology rather than the worker's generic fallback.
    timeout: float = 15.0
    retries: int = 3  # attempts after the first, all before any text arrived
    backoff: float = 0.25  # first delay; doubles each retry, capped at MAX_BACKOFF
    concurrency: int = 4  # requests of one persona in flight at once
    context_tokens: int = 4096  # the model's context: prompt and reply must fit in it

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **defaults: Any) -> Limits:
        env = os.environ if env is None else env
        values: dict[str, Any] = dict(defaults)
        for key, var, kind in (("timeout", "OS1_OPENAI_TIMEOUT", float),
                               ("retries", "OS1_OPENAI_RETRIES", int),
                               ("concurrency", "OS1_OPENAI_CONCURRENCY", int),
                               ("context_tokens", "OS1_OPENAI_CONTEXT", int)):
            raw = env.get(var)
            if raw is None:
                continue
            try:
                value = kind(raw)
            except ValueError:
                value = -1
            if value < 0 or (value == 0 and key != "retries"):
                raise MindConfigError(f"{var} = {raw!r}: expected a positive {kind.__name__}")
            values[key] = value
        return cls(**values)


def resolve_endpoint(card: Card, env: Mapping[str, str] | None = None) -> Endpoint:
    """The card's endpoint, completed from the environment (see the module docstring)."""
    env = os.environ if env is None else env
    mind = card.mind
    base_url = mind.base_url or env.get("OS1_OPENAI_BASE_URL", "") or OPENAI_URL
    model = mind.model or env.get("OS1_OPENAI_MODEL", "")
    if not model:
        raise MindConfigError(f"persona {card.id!r} uses the openai mind but names no model: "
                              "set mind.model in its card or OS1_OPENAI_MODEL")
    if mind.api_key_env:
        key = env.get(mind.api_key_env, "")
        if not key:
            raise MindConfigError(f"persona {card.id!r} reads its API key from {mind.api_key_env}, "
                                  "which is not set")
    else:
        key = env.get("OS1_OPENAI_API_KEY", "") or env.get("OPENAI_API_KEY", "")
    if not key and base_url.rstrip("/") == OPENAI_URL:
        raise MindConfigError(f"persona {card.id!r} talks to OpenAI without a key: "
                              "set OS1_OPENAI_API_KEY or OPENAI_API_KEY")
    return Endpoint(base_url, model, key or NO_KEY)


class _Retry(Exception):
    """An attempt failed in a way the next one may not (connection, 429, 5xx)."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class OpenAIMind(Mind):
    name = "openai"

    def __init__(self, endpoint: Endpoint, *, temperature: float = 0.7, max_tokens: int = 256,
                 frequency_penalty: float = 0.0, limits: Limits | None = None, exact_intents: bool = True,
                 apologize: bool = True) -> None:
        self.endpoint = endpoint
        self.temperature, self.max_tokens = temperature, max_tokens
        # Sent only when set: not every compatible server knows every parameter.
        self._extra: dict[str, Any] = {"frequency_penalty": frequency_penalty} if frequency_penalty else {}
        self.limits = limits or Limits()
        self.exact_intents = exact_intents
        self.apologize = apologize  # False: raise MindUnavailable instead (the caller's fallback)
        self.replies = self.failures = self.retries = 0
        self.in_flight = self.peak_in_flight = 0
        self.last_error = ""
        self._limit = asyncio.Semaphore(self.limits.concurrency)
        self._client: openai.AsyncOpenAI | None = None

    @classmethod
    def for_card(cls, card: Card, env: Mapping[str, str] | None = None, **options: Any) -> OpenAIMind:
        return cls(resolve_endpoint(card, env), temperature=card.mind.temperature,
                   max_tokens=card.mind.max_tokens, limits=Limits.from_env(env), **options)

    @property
    def stats(self) -> dict[str, int]:
        return {"replies": self.replies, "failures": self.failures, "retries": self.retries}

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await client.close()

    def _sdk(self) -> openai.AsyncOpenAI:
        if self._client is None:
            # Retries are ours (bounded by the reply's budget, never after text was streamed),
            # so the SDK's own hidden ones are off.
            self._client = openai.AsyncOpenAI(base_url=self.endpoint.base_url, api_key=self.endpoint.api_key,
                                              max_retries=0, timeout=self.limits.timeout)
        return self._client

    # -- replying -----------------------------------------------------------------------
    async def reply(self, inp: MindInput) -> AsyncIterator[str]:
        if self.exact_intents and inp.reading.intent in EXACT_INTENTS:
            for chunk in split_chunks(compose(inp), CHUNK_WORDS[inp.card.voice.pacing]):
                yield chunk
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.limits.timeout
        said = False
        try:
            async with asyncio.timeout_at(deadline):
                await self.start()
            messages = build_messages(inp, context_tokens=self.limits.context_tokens,
                                      max_tokens=self.max_tokens)
            async with self._turn(deadline), contextlib.aclosing(self._stream(messages, deadline)) as texts:
                async for text in texts:
                    said = True
                    yield text  # outside every timeout scope: the deadline never cancels the caller
            if not said:
                raise MindUnavailable("the model returned no text")
            self.replies += 1
        except (MindError, TimeoutError) as exc:
            error = exc if isinstance(exc, MindError) else MindUnavailable(
                f"out of time ({self.limits.timeout:g} s) before the model was free")
            self._count_failure(inp, error, said)
            if not self.apologize:
                if error is exc:
                    raise
                raise error from exc
            yield CUT_OFF if said else trouble_line(inp.card, inp.memory.known_name, inp.message.seq)

    def _count_failure(self, inp: MindInput, error: BaseException, said: bool) -> None:
        self.failures += 1
        self.last_error = str(error)
        log.warning("mind_failed", persona=inp.card.id, room=inp.message.room, backend=self.name,
                    error=self.last_error, after_text=said, failures=self.failures)

    @contextlib.asynccontextmanager
    async def _turn(self, deadline: float) -> AsyncIterator[None]:
        """A slot under the persona's concurrency limit, waited for within the budget."""
        async with asyncio.timeout_at(deadline):
            await self._limit.acquire()
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            yield
        finally:
            self.in_flight -= 1
            self._limit.release()

    async def _stream(self, messages: list[ChatMessage], deadline: float) -> AsyncGenerator[str, None]:
        stream, first = await self._open(messages, deadline)
        try:
            if first:
                yield first
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        chunk = await stream.__anext__()
                except StopAsyncIteration:
                    return
                except TimeoutError as exc:
                    raise MindUnavailable(f"timed out after {self.limits.timeout:g} s, mid-stream") from exc
                except Exception as exc:  # no retry: text is out already
                    raise MindUnavailable(f"stream broke: {exc!r}") from exc
                if text := _text(chunk):
                    yield text
        finally:
            await _close(stream)

    async def _open(self, messages: list[ChatMessage], deadline: float
                    ) -> tuple[openai.AsyncStream[ChatCompletionChunk], str]:
        """A stream and its first text, retrying what may pass (before any text only)."""
        loop = asyncio.get_running_loop()
        attempt = 0
        while True:
            try:
                return await self._attempt(messages, deadline)
            except _Retry as exc:
                delay = min(self.limits.backoff * 2 ** attempt, MAX_BACKOFF)
                delay = exc.retry_after if exc.retry_after is not None else delay * random.uniform(0.5, 1.0)
                if attempt >= self.limits.retries or loop.time() + delay >= deadline:
                    raise MindUnavailable(f"{exc} (after {attempt + 1} attempts)") from exc
                attempt += 1
                self.retries += 1
                log.info("mind_retry", backend=self.name, attempt=attempt, delay=round(delay, 3),
                         error=str(exc))
                await asyncio.sleep(delay)

    async def _attempt(self, messages: list[ChatMessage], deadline: float
                       ) -> tuple[openai.AsyncStream[ChatCompletionChunk], str]:
        remaining = deadline - asyncio.get_running_loop().time()
        stream: openai.AsyncStream[ChatCompletionChunk] | None = None
        try:
            async with asyncio.timeout_at(deadline):
                stream = await self._sdk().chat.completions.create(
                    model=self.endpoint.model, messages=cast(list[ChatCompletionMessageParam], messages),
                    stream=True, temperature=self.temperature, max_tokens=self.max_tokens,
                    timeout=max(remaining, 0.001), **self._extra)
                while True:  # role-only and empty chunks come first on some servers
                    if text := _text(await stream.__anext__()):
                        return stream, text
        except StopAsyncIteration:
            assert stream is not None  # only the stream's __anext__ ends the iteration
            return stream, ""
        except BaseException as exc:
            if stream is not None:
                await _close(stream)
            mapped = _classify(exc, self.limits.timeout)
            if mapped is exc:
                raise
            raise mapped from exc


def _classify(exc: BaseException, timeout: float) -> BaseException:
    """What a failed attempt means: retry it, give up (MindUnavailable), or pass it on."""
    if isinstance(exc, TimeoutError | openai.APITimeoutError):
        return MindUnavailable(f"timed out after {timeout:g} s")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        if status == 429 or status >= 500:  # busy or loading (llama.cpp says 503 until ready)
            return _Retry(f"HTTP {status}", _retry_after(exc))
        return MindUnavailable(f"HTTP {status}: {exc.message}"[:300])
    if isinstance(exc, openai.APIConnectionError):
        return _Retry(f"cannot reach the endpoint: {exc.__cause__ or exc}"[:300])
    if isinstance(exc, openai.APIError):
        return MindUnavailable(f"endpoint error: {exc.message}"[:300])
    if isinstance(exc, Exception):
        return _Retry(f"transport: {exc!r}"[:300])  # e.g. the connection dropped mid-headers
    return exc  # cancellation and exit: not ours to handle


def _retry_after(exc: openai.APIStatusError) -> float | None:
    try:
        value = float(exc.response.headers.get("retry-after", ""))
    except ValueError:
        return None
    return min(max(value, 0.0), MAX_BACKOFF)


def _text(chunk: ChatCompletionChunk) -> str:
    # Servers differ: some send no choices (usage chunks), some a delta without content.
    if not chunk.choices or chunk.choices[0].delta is None:
        return ""
    return chunk.choices[0].delta.content or ""


async def _close(stream: openai.AsyncStream[ChatCompletionChunk]) -> None:
    # Closing the response is what tells the server to stop generating (llama.cpp cancels).
    with contextlib.suppress(Exception):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await stream.close()
