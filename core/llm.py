"""Talking to chat models: `llm_query`, the async engine for many questions, and streaming chat.

One retry policy serves every path (`RetryBudget`, `retry_delay`): 5xx, timeouts, broken connections and garbled
bodies are retried up to `max_retries` times with exponential backoff and jitter; 429s are waited out, honouring
`Retry-After`, for up to `rate_limit_wait` seconds per question; other 4xx are final. A refused key, an unknown
model, or a server that cannot be reached at all (connection refused, DNS, TLS) fails every row alike: the run stops
at once with a `ConfigError` naming the URL and the variable to check. The openai SDK's own retries are turned off
(`max_retries=0`) so that the budget we document is the budget that holds.

`timeout` bounds every request on every path: the whole request in the engine (and so in `llm_query`), and for a
stream the wait for its first piece and between pieces, so that a server trickling bytes cannot hold a caller.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import queue
import random
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from core.config import ModelSpec, Settings, load_settings, resolve_model
from core.errors import ConfigError, LLMError
from core.safety import mask_url, one_line, scrub

BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 120.0
_POST_OPTIONS: dict[str, Any] = {"security": {"bearer_auth": True}}  # as `chat.completions.create` sends it
PUSHBACK_WINDOW = 16  # the engine halves its concurrency when half of the last this-many answers were 429s


@dataclass
class Answer:
    """One question's outcome. `error` is empty when the model answered."""

    key: Any
    question: str
    text: str = ""
    latency_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    error: str = ""
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return not self.error


@dataclass
class CallOptions:
    """How each request is made. Defaults come from `Settings` (see `CallOptions.from_settings`)."""

    temperature: float | None = 0.0
    system_prompt: str | None = None
    timeout: float = 60.0
    max_retries: int = 6
    concurrency: int = 8
    max_tokens: int | None = None
    backoff_base: float = 0.5
    rate_limit_wait: float = 300.0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> CallOptions:
        values = {
            "temperature": settings.temperature,
            "system_prompt": settings.system_prompt,
            "timeout": settings.timeout,
            "max_retries": settings.max_retries,
            "concurrency": settings.concurrency,
            "backoff_base": settings.backoff_base,
            "rate_limit_wait": settings.rate_limit_wait,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


# ---------------------------------------------------------------- clients


def _base_url(spec: ModelSpec) -> str | None:
    if spec.provider == "local":
        from core.local_model import ensure_server

        return ensure_server(spec.name)
    return spec.base_url


def make_client(spec: ModelSpec, timeout: float, *, asynchronous: bool = False, base_url: str | None = None) -> Any:
    """An openai SDK client for `spec`: AzureOpenAI for azure:/, OpenAI for the others. SDK retries are off."""
    import openai

    base_url = base_url or _base_url(spec)
    common: dict[str, Any] = {"api_key": spec.api_key, "max_retries": 0, "timeout": timeout}
    if asynchronous:
        # aiohttp costs less CPU per request than httpx: it matters on 2 cores at concurrency 16.
        try:
            common["http_client"] = openai.DefaultAioHttpClient(timeout=timeout)
        except RuntimeError:
            pass
    if spec.provider == "azure":
        cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        return cls(azure_endpoint=base_url, api_version=spec.api_version, **common)
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    return cls(base_url=base_url, **common)


def warm_up() -> None:
    """Import the openai SDK now (about 2 s), so that the first question does not pay for it."""
    import openai  # noqa: F401


def build_messages(question: str | list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    messages = [{"role": "user", "content": question}] if isinstance(question, str) else list(question)
    if system_prompt and not any(m.get("role") == "system" for m in messages):
        messages.insert(0, {"role": "system", "content": system_prompt})
    return messages


def _request_args(spec: ModelSpec, messages: list[dict[str, str]], opts: CallOptions) -> dict[str, Any]:
    args: dict[str, Any] = {"model": spec.name, "messages": messages}
    if opts.temperature is not None:
        args["temperature"] = opts.temperature
    if opts.max_tokens is not None:
        args["max_tokens"] = opts.max_tokens
    args.update(opts.extra)
    return args


# ---------------------------------------------------------------- naming faults


class _BadResponse(Exception):
    """The server answered 200 with something that is not a chat completion (a proxy's HTML page, say)."""


class _Timeout(TimeoutError):
    """No answer (or, for a stream, no next piece) within the timeout."""


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from, outermost first (the SDK wraps the transport's errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def connection_fault(exc: BaseException) -> str | None:
    """'connection refused', 'DNS failure ...' or 'TLS error ...' when the server was never reached, else None.

    The cause is read from the exception chain: the SDK's aiohttp transport reports a refused connection as a
    timeout, but the ConnectionRefusedError is still what it was raised from.
    """
    if _status(exc) is not None:
        return None  # the server answered
    for cause in _causes(exc):
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused (is the server running, and on that port?)"
        if isinstance(cause, socket.gaierror):
            return "DNS failure (the host name was not found)"
        if isinstance(cause, ssl.SSLError):
            reason = getattr(cause, "verify_message", None) or getattr(cause, "reason", None) or cause
            return f"TLS error ({reason})"
    return None


def endpoint_variable(spec: ModelSpec) -> str:
    """The setting that holds `spec`'s URL."""
    return {"azure": "AZURE_OPENAI_ENDPOINT", "openai": "OPENAI_BASE_URL"}.get(
        spec.provider, "the local model's log in PROCTOR_STATE_DIR")


def unreachable(spec: ModelSpec, fault: str, client: Any = None) -> ConfigError:
    """The error for a server that cannot be reached: the URL (masked) and the setting to check."""
    if spec.provider == "local":
        url = str(getattr(client, "base_url", "the local model's server"))
    else:
        url = spec.base_url or "https://api.openai.com/v1"
    return ConfigError(f"cannot reach {mask_url(url)} for {spec.uri}: {fault}: check {endpoint_variable(spec)}")


def describe_error(exc: BaseException, timeout: float | None = None) -> str:
    """A short, key-free, one-line description of a failed request."""
    status = _status(exc)
    fault = connection_fault(exc)
    if fault:
        return fault
    if isinstance(exc, _BadResponse):
        return one_line(scrub(str(exc)))[:300]  # it may quote the server's page
    name = type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in name:
        return f"timeout: no answer within {timeout:g} s (PROCTOR_TIMEOUT)" if timeout else "timeout"
    # Server words: they may repeat the key we sent, or hold escape sequences.
    text = one_line(scrub(str(exc).splitlines()[0])) if str(exc) else name
    if status:
        return f"HTTP {status}: {text}"[:300]
    return f"{name}: {text}"[:300]


def fatal_for_run(exc: BaseException, spec: ModelSpec) -> ConfigError | None:
    """Errors that will fail every row alike (bad key, unknown deployment): stop the run, name the setting."""
    import openai

    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        var = {"azure": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}.get(spec.provider, "the API key")
        return ConfigError(f"the server refused the key for {spec.uri} (HTTP {_status(exc)}): check {var}")
    if isinstance(exc, openai.NotFoundError):
        what = "deployment" if spec.provider == "azure" else "model or URL"
        hint = endpoint_variable(spec)
        return ConfigError(f"{what} {spec.name!r} not found at the server (HTTP 404): check the name and {hint}")
    if isinstance(exc, ValueError) and "credentials encoded in URL" in str(exc):
        # aiohttp will not send a URL's user:password along with the key's header: no request can ever go out.
        return ConfigError(f"{endpoint_variable(spec)} holds a user name or password (user:password@): the key is "
                           "sent in a header, so remove them from the URL")
    return None


# ---------------------------------------------------------------- the retry policy


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return float(raw_ms) / 1000
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return float(raw)
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(raw) if raw else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def is_rate_limit(exc: BaseException) -> bool:
    return _status(exc) == 429


def is_retryable(exc: BaseException) -> bool:
    """429, 408, 409, 5xx, timeouts, broken connections and garbled bodies are worth another try."""
    import openai

    if isinstance(exc, (asyncio.TimeoutError, TimeoutError, _BadResponse)):
        return True
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        return status in (408, 409, 429) or status >= 500
    return isinstance(exc, (openai.APIConnectionError, openai.APIResponseValidationError, ValueError))


def retry_delay(exc: BaseException, attempt: int, base: float = 0.5, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1-based): Retry-After if the server said, else backoff."""
    hinted = _retry_after(exc)
    if hinted:  # `Retry-After: 0` is no hint: backing off keeps a storm of them from spinning
        return min(hinted, RETRY_AFTER_MAX_S)
    ceiling = min(BACKOFF_MAX_S, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)  # jitter keeps retries of many rows apart


class RetryBudget:
    """Whether one question is tried again, and after how long.

    Failures (5xx, timeouts, garbled bodies) have a count, `max_retries`. 429s have a time budget instead,
    `rate_limit_wait` seconds of waiting per question: a quota storm slows a run rather than failing its rows.
    """

    def __init__(self, options: CallOptions, rng: random.Random | None = None) -> None:
        self.options = options
        self.rng = rng
        self.failures = 0
        self.rate_limits = 0
        self.rate_limit_waited_s = 0.0

    def next_delay(self, exc: BaseException) -> float | None:
        """Seconds to wait before the next attempt, or None when the question is given up."""
        if not is_retryable(exc):
            return None
        opts = self.options
        if is_rate_limit(exc):
            self.rate_limits += 1
            delay = retry_delay(exc, self.rate_limits, opts.backoff_base, self.rng)
            if self.rate_limit_waited_s + delay > opts.rate_limit_wait:
                return None
            self.rate_limit_waited_s += delay
            return delay
        self.failures += 1
        if self.failures > opts.max_retries:
            return None
        return retry_delay(exc, self.failures, opts.backoff_base, self.rng)

    def gave_up(self, exc: BaseException, timeout: float) -> str:
        """The error to record for a question given up after `exc`."""
        text = describe_error(exc, timeout)
        if is_rate_limit(exc):
            text += f" (still rate-limited after waiting {self.rate_limit_waited_s:.0f} s: PROCTOR_RATE_LIMIT_WAIT)"
        return text


def _parse_completion(answer: Answer, body: bytes) -> None:
    """Fill `answer` from a chat completion's JSON body, as received. Anything else is a `_BadResponse`."""
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = choice["message"].get("content")
        if text is not None and not isinstance(text, str):
            raise TypeError("content is not text")
        usage = data.get("usage") or {}
        prompt_tokens, completion_tokens = usage.get("prompt_tokens"), usage.get("completion_tokens")
    except (ValueError, LookupError, TypeError, AttributeError):
        shown = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        raise _BadResponse(f"the reply was not a chat completion: {shown[:80]!r}") from None
    answer.text = text or ""
    answer.finish_reason = choice.get("finish_reason")
    answer.prompt_tokens = prompt_tokens if isinstance(prompt_tokens, int) else None
    answer.completion_tokens = completion_tokens if isinstance(completion_tokens, int) else None


# ---------------------------------------------------------------- many questions (async)


class AdaptiveLimit:
    """How many requests may be in flight: fewer while the server answers 429, more again as requests succeed.

    AIMD, as TCP does it: the limit halves when the server pushes back and grows by one for every `limit`
    successes, between 1 and `ceiling` (the configured concurrency). A lone 429 among successes is noise, not
    pushback: the limit halves only when half of the last PUSHBACK_WINDOW answers were 429s, and that window then
    starts afresh, so that one burst halves it once.
    """

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = float(self.ceiling)
        self.lowest = self.limit  # for tests and benchmarks: how far the limit fell
        self.in_flight = 0
        self._recent: deque[bool] = deque(maxlen=PUSHBACK_WINDOW)  # True for a 429
        self._changed = asyncio.Condition()

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one of the `limit` places for the duration of one request."""
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
        try:
            yield
        finally:
            async with self._changed:
                self.in_flight -= 1
                # Wake as many waiters as there are free places (a waiter re-checks, so a spare wake is harmless):
                # waking every waiting worker on every answer costs CPU that the requests in flight need.
                self._changed.notify(max(1, int(self.limit) - self.in_flight))

    def record(self, rate_limited: bool) -> None:
        """Count an answer from the server (any status but 429 is a success for this purpose)."""
        self._recent.append(rate_limited)
        if not rate_limited:
            self.limit = min(self.ceiling, self.limit + 1 / self.limit)
        elif sum(self._recent) * 2 >= PUSHBACK_WINDOW:
            self.limit = max(1.0, self.limit / 2)
            self.lowest = min(self.lowest, self.limit)
            self._recent.clear()


class _Stopped(Exception):
    """`cancel` was set before the request was sent."""


class Engine:
    """Sends many questions to one model with adaptive concurrency, timeouts and retries.

    Use `answer_all` from synchronous code; `ask` / `ask_many` from a running event loop. `cancel` (a
    threading.Event) stops sending requests; answers already received are kept and reported.
    """

    def __init__(self, spec: ModelSpec, options: CallOptions | None = None, *, seed: int | None = None) -> None:
        self.spec = spec
        self.options = options or CallOptions()
        self.limit: AdaptiveLimit | None = None  # made with the client, in the event loop that uses it
        self._client: Any = None
        self._direct: Any = None  # core.direct_post.DirectPost for the client, when it can be had
        self._rng = random.Random(seed)
        self._cancel: threading.Event | None = None
        self._stopping = False  # a failure every row would share was seen: send nothing more
        self._reached_server = False  # any HTTP answer, even an error status, proves the URL is right
        self._unreachable = 0  # requests that could not connect, before any reached the server
        self._first_wave = 1

    async def _get_client(self) -> Any:
        if self._client is None:
            # Building the client may start the local model's server: keep that off the event loop.
            self._client = await asyncio.to_thread(make_client, self.spec, self.options.timeout, asynchronous=True)
            # A new client means a new event loop (answer_all runs each in its own): the limit's Condition belongs
            # to the loop, so it is made afresh with the client. After the run it stays, for a look at `lowest`.
            self.limit = AdaptiveLimit(self.options.concurrency)
            from core.direct_post import DirectPost

            # The SDK builds the request once; each question then costs a sixth of the CPU (see core.direct_post).
            self._direct = await DirectPost.create(self._client, self.spec.name)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None
            self._direct = None

    async def ask(self, question: str, key: Any = None) -> Answer:
        """One question, with retries. Never raises for a failed request: the error is in `Answer.error`.

        Raises `ConfigError` when the run should stop (refused key, unknown model, server unreachable).
        """
        client = await self._get_client()
        opts = self.options
        args = _request_args(self.spec, build_messages(question, opts.system_prompt), opts)
        answer = Answer(key=key, question=question)
        budget = RetryBudget(opts, self._rng)
        while True:
            try:
                await self._request(client, args, answer)
                answer.error = ""
                return answer
            except (asyncio.CancelledError, _Stopped):
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                self._stop_if_hopeless(exc)
                delay = budget.next_delay(exc)
                if delay is None:
                    answer.error = budget.gave_up(exc, opts.timeout)
                    return answer
                answer.error = describe_error(exc, opts.timeout)
                await asyncio.sleep(delay)

    async def _request(self, client: Any, args: dict[str, Any], answer: Answer) -> None:
        """One attempt: wait for a place in the limit, send, parse. The place is not held while backing off."""
        assert self.limit is not None
        async with self.limit.slot():
            if self._stopping or (self._cancel is not None and self._cancel.is_set()):
                raise _Stopped
            answer.attempts += 1
            started = time.perf_counter()
            try:
                # asyncio.timeout bounds the whole request (a server that trickles bytes never trips a read
                # timeout) without the extra task that wait_for creates for every request.
                async with asyncio.timeout(self.options.timeout):
                    if self._direct is not None:
                        body = await self._direct.post(args)
                    else:
                        # The SDK's documented raw POST: the same URL, headers, auth and errors as
                        # `chat.completions.create`, without its per-request walk of the parameters' types and its
                        # pydantic models, which cost more CPU than the rest of the request (2 cores, 16 in flight).
                        body = await client.post("/chat/completions", body=args, cast_to=bytes, options=_POST_OPTIONS)
            except Exception as exc:
                if _status(exc) is not None:
                    self._reached_server = True
                    self.limit.record(rate_limited=is_rate_limit(exc))
                raise
            self._reached_server = True
            self.limit.record(rate_limited=False)
        _parse_completion(answer, body)
        answer.latency_s = time.perf_counter() - started

    def _stop_if_hopeless(self, exc: BaseException) -> None:
        """Raise `ConfigError` for failures every row would share, so that the run stops now, like a 401."""
        fatal = fatal_for_run(exc, self.spec)
        fault = connection_fault(exc)
        if fatal is None and fault is not None and not self._reached_server:
            self._unreachable += 1
            if self._unreachable >= self._first_wave:
                fatal = unreachable(self.spec, fault, self._client)
        if fatal is not None:
            # Set before any other task runs, so that a question waiting for the place this one freed sends nothing.
            self._stopping = True
            raise fatal from None

    async def ask_many(
        self,
        items: Iterable[tuple[Any, str]],
        on_answer: Callable[[Answer], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Answer]:
        """Ask every (key, question); call `on_answer` as each finishes (in completion order)."""
        pending: asyncio.Queue[tuple[Any, str]] = asyncio.Queue()
        for item in items:
            pending.put_nowait(item)
        results: list[Answer] = []
        await self._get_client()
        self._cancel = cancel
        # If the whole first wave of requests cannot connect, the URL is wrong: there is no point in more.
        self._first_wave = max(1, min(self.options.concurrency, pending.qsize()))

        async def worker() -> None:
            while not (cancel is not None and cancel.is_set()):
                try:
                    key, question = pending.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    answer = await self.ask(question, key)
                except _Stopped:
                    return
                results.append(answer)
                if on_answer is not None:
                    on_answer(answer)

        # Twice as many workers as places: a question waiting out a Retry-After does not hold a place, and another
        # question takes it meanwhile. The limit, not the worker count, bounds the requests in flight.
        n_workers = min(2 * self.options.concurrency, pending.qsize()) or 1
        workers = [asyncio.create_task(worker()) for _ in range(n_workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
        return results

    def answer_all(
        self,
        items: Iterable[tuple[Any, str]],
        on_answer: Callable[[Answer], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Answer]:
        """Synchronous `ask_many`, in a fresh event loop (for the CLI, notebooks and Textual thread workers)."""

        async def run() -> list[Answer]:
            try:
                return await self.ask_many(items, on_answer, cancel)
            finally:
                await self.aclose()

        return run_sync(run)


def run_sync(make_coroutine: Callable[[], Any]) -> Any:
    """Run a coroutine to its end from synchronous code, in a thread of its own if this one runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(_quiet_on_stop(make_coroutine()))
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(_quiet_on_stop(make_coroutine()))).result()


async def _quiet_on_stop(coroutine: Any) -> Any:
    """`coroutine`, in a loop that does not print the traceback of a task stopped by Ctrl-C, SIGTERM or SIGHUP.

    The signal handler raises in the main thread wherever it is, so under load the KeyboardInterrupt often lands in
    one request's task rather than the main one; asyncio then reports that task's "exception never retrieved" with a
    traceback, after the command has already said what it kept.
    """

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if not isinstance(context.get("exception"), KeyboardInterrupt):
            loop.default_exception_handler(context)

    asyncio.get_running_loop().set_exception_handler(handler)
    return await coroutine


def engine_for(model: str | None = None, settings: Settings | None = None, **overrides: Any) -> Engine:
    """An `Engine` for a model URI (or the default model), options from settings plus overrides."""
    settings = settings or load_settings()
    spec = resolve_model(model, settings)
    return Engine(spec, CallOptions.from_settings(settings, **overrides))


# ---------------------------------------------------------------- one question, and streaming chat (sync)


def llm_query(question: str, model: str | None = None, settings: Settings | None = None) -> str:
    """Ask one question; return the answer text.

    It goes through the engine (one question), so it has the engine's timeout, retries and fault names. Raises
    `LLMError` when every retry failed, `ConfigError` for a refused key, an unknown model or an unreachable server.
    """
    settings = settings or load_settings()
    spec = resolve_model(model, settings)
    [answer] = Engine(spec, CallOptions.from_settings(settings, concurrency=1)).answer_all([(None, question)])
    if not answer.ok:
        raise LLMError(f"{spec.uri} did not answer: {answer.error}")
    return answer.text


_sync_clients: dict[tuple[str, str | None, float], Any] = {}
_sync_lock = threading.Lock()


def _sync_client(spec: ModelSpec, timeout: float) -> Any:
    # Keyed by the URL in force: the local model's server may have been restarted on another port.
    base_url = _base_url(spec)
    key = (spec.uri, base_url, timeout)
    with _sync_lock:
        if key not in _sync_clients:
            _sync_clients[key] = make_client(spec, timeout, base_url=base_url)
        return _sync_clients[key]


_END = object()  # the reader thread's "the stream is over"


class ChatStream:
    """A streamed chat answer. Iterate for text pieces; afterwards read `text`, tokens, `latency_s`.

    `cancel()` (from any thread) stops reading and closes the HTTP stream. Retries happen only before the first
    piece arrives, so that a retried answer never repeats text already shown. A stream that ends without a single
    chat chunk (a proxy's HTML page) is a garbled answer: retried, then an `LLMError`, never an empty answer.
    """

    def __init__(self, spec: ModelSpec, messages: list[dict[str, str]], options: CallOptions) -> None:
        self.spec = spec
        self.messages = build_messages(messages, options.system_prompt)
        self.options = options
        self.text = ""
        self.finish_reason: str | None = None
        self.prompt_tokens: int | None = None
        self.completion_tokens: int | None = None
        self.latency_s: float | None = None
        self.first_token_s: float | None = None
        self.cancelled = False
        self._stream: Any = None
        self._chunks: queue.Queue[Any] | None = None
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self.cancelled = True
        self._cancel.set()
        if self._chunks is not None:
            self._chunks.put(_END)  # wake the reader of the queue at once
        self._close_http()

    def _close_http(self) -> None:
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing a half-read stream from another thread may complain
                pass

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        client = _sync_client(self.spec, self.options.timeout)
        args = _request_args(self.spec, self.messages, self.options)
        args["stream"] = True
        if self.spec.provider != "azure":
            # Older Azure API versions (2024-02-15-preview) reject stream_options.
            args["stream_options"] = {"include_usage": True}
        budget = RetryBudget(self.options)
        try:
            while not self._cancel.is_set():
                try:
                    yield from self._one_attempt(client, args, started)
                    return
                except Exception as exc:  # noqa: BLE001 - every failure is classified below
                    if self._cancel.is_set():
                        return
                    self._raise_if_final(exc, client)
                    delay = budget.next_delay(exc)
                    if delay is None:
                        reason = budget.gave_up(exc, self.options.timeout)
                        raise LLMError(f"{self.spec.uri} did not answer: {reason}") from None
                    self._cancel.wait(delay)
        finally:
            self.latency_s = time.perf_counter() - started

    def _raise_if_final(self, exc: BaseException, client: Any) -> None:
        """Raise at once for what another try cannot mend, or when text was already shown."""
        fatal = fatal_for_run(exc, self.spec)
        if fatal is not None:
            raise fatal from None
        fault = connection_fault(exc)
        if fault is not None:
            # One question is its own first wave: a server that cannot be reached is named now, not in a minute.
            raise unreachable(self.spec, fault, client) from None
        if self.text:
            raise LLMError(f"{self.spec.uri} stopped answering: {describe_error(exc, self.options.timeout)}") from None

    def _one_attempt(self, client: Any, args: dict[str, Any], started: float) -> Iterator[str]:
        """One request's text pieces. Raises for a failed request, a timeout, or a stream with no chat chunk."""
        chunks_seen = 0
        for chunk in self._chunks_within_timeout(client, args):
            chunks_seen += 1
            usage = getattr(chunk, "usage", None)
            if usage is not None:
                self.prompt_tokens = usage.prompt_tokens
                self.completion_tokens = usage.completion_tokens
            if not getattr(chunk, "choices", None):
                continue
            choice = chunk.choices[0]
            if choice.finish_reason:
                self.finish_reason = choice.finish_reason
            piece = choice.delta.content if choice.delta else None
            if piece:
                if self.first_token_s is None:
                    self.first_token_s = time.perf_counter() - started
                self.text += piece
                yield piece
        if not chunks_seen and not self._cancel.is_set():
            raise _BadResponse("the reply was not a chat completion stream")

    def _chunks_within_timeout(self, client: Any, args: dict[str, Any]) -> Iterator[Any]:
        """The stream's chunks, read in a thread of their own so that each one is waited for at most `timeout`.

        The HTTP client's read timeout restarts with every byte, so a server trickling bytes would never trip it;
        waiting on a queue with a deadline bounds the wait for the first chunk and between chunks whatever the
        server does. On a timeout the stream is closed, which ends the reader thread.
        """
        chunks: queue.Queue[Any] = queue.Queue()
        self._chunks = chunks
        abandoned = threading.Event()

        def read() -> None:
            try:
                stream = client.chat.completions.create(**args)
                self._stream = stream
                if abandoned.is_set():
                    stream.close()
                    return
                for chunk in stream:
                    if abandoned.is_set():
                        break
                    chunks.put(chunk)
                chunks.put(_END)
            except BaseException as exc:  # noqa: BLE001 - handed to the consuming thread, which decides
                chunks.put(exc)

        threading.Thread(target=read, name="proctor-chat-stream", daemon=True).start()
        try:
            while True:
                try:
                    item = chunks.get(timeout=self.options.timeout)
                except queue.Empty:
                    raise _Timeout(f"no answer within {self.options.timeout:g} s") from None
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            abandoned.set()
            self._close_http()
            self._stream = None
            self._chunks = None


def stream_chat(
    messages: list[dict[str, str]] | str,
    model: str | None = None,
    *,
    settings: Settings | None = None,
    **overrides: Any,
) -> ChatStream:
    """Start a streamed chat answer for a conversation (or one question). Iterate the result for text."""
    settings = settings or load_settings()
    spec = resolve_model(model, settings)
    return ChatStream(spec, build_messages(messages, None), CallOptions.from_settings(settings, **overrides))
