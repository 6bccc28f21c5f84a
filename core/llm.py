"""Talking to chat models: `llm_query`, the async engine for many questions, and streaming chat.

One retry policy serves all three (`retry_delay`): 429, 5xx, timeouts and connection errors are retried with
exponential backoff and jitter, honouring `Retry-After`; other 4xx are final. The openai SDK's own retries are
turned off (`max_retries=0`) so that the budget we document is the budget that holds.
"""

from __future__ import annotations

import asyncio
import email.utils
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from core.config import ModelSpec, Settings, load_settings, resolve_model
from core.errors import ConfigError, LLMError
from core.safety import one_line, scrub

BACKOFF_MAX_S = 30.0
RETRY_AFTER_MAX_S = 120.0


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
    max_retries: int = 4
    concurrency: int = 8
    max_tokens: int | None = None
    backoff_base: float = 0.5
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


# ---------------------------------------------------------------- retry policy


class _BadResponse(Exception):
    """The server answered 200 with something that is not a chat completion (a proxy's HTML page, say)."""


def _status(exc: BaseException) -> int | None:
    return getattr(exc, "status_code", None)


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
    if hinted is not None:
        return min(hinted, RETRY_AFTER_MAX_S)
    ceiling = min(BACKOFF_MAX_S, base * 2 ** (attempt - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)  # jitter keeps retries of many rows apart


def fatal_for_run(exc: BaseException, spec: ModelSpec) -> ConfigError | None:
    """Errors that will fail every row alike (bad key, unknown deployment): stop the run, name the setting."""
    import openai

    if isinstance(exc, (openai.AuthenticationError, openai.PermissionDeniedError)):
        var = {"azure": "AZURE_OPENAI_API_KEY", "openai": "OPENAI_API_KEY"}.get(spec.provider, "the API key")
        return ConfigError(f"the server refused the key for {spec.uri} (HTTP {_status(exc)}): check {var}")
    if isinstance(exc, openai.NotFoundError):
        what = "deployment" if spec.provider == "azure" else "model or URL"
        hint = "AZURE_OPENAI_ENDPOINT" if spec.provider == "azure" else "OPENAI_BASE_URL"
        return ConfigError(f"{what} {spec.name!r} not found at the server (HTTP 404): check the name and {hint}")
    return None


def describe_error(exc: BaseException) -> str:
    """A short, key-free, one-line description of a failed request."""
    status = _status(exc)
    name = type(exc).__name__
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)) or "Timeout" in name:
        return "timeout"
    # Server words: they may repeat the key we sent, or hold escape sequences.
    text = one_line(scrub(str(exc).splitlines()[0])) if str(exc) else name
    if status:
        return f"HTTP {status}: {text}"[:300]
    return f"{name}: {text}"[:300]


def _parse_completion(answer: Answer, completion: Any) -> None:
    choices = getattr(completion, "choices", None)
    if not choices:
        raise _BadResponse(f"unexpected response: {str(completion)[:80]!r}")
    choice = choices[0]
    answer.text = choice.message.content or ""
    answer.finish_reason = choice.finish_reason
    usage = getattr(completion, "usage", None)
    if usage is not None:
        answer.prompt_tokens = usage.prompt_tokens
        answer.completion_tokens = usage.completion_tokens


# ---------------------------------------------------------------- many questions (async)


class Engine:
    """Sends many questions to one model with bounded concurrency, timeouts and retries.

    Use `answer_all` from synchronous code; `ask` / `ask_many` from a running event loop. `cancel` (a
    threading.Event) stops sending new questions; answers already received are kept and reported.
    """

    def __init__(self, spec: ModelSpec, options: CallOptions | None = None, *, seed: int | None = None) -> None:
        self.spec = spec
        self.options = options or CallOptions()
        self._client: Any = None
        self._rng = random.Random(seed)

    async def _get_client(self) -> Any:
        if self._client is None:
            # Building the client may start the local model's server: keep that off the event loop.
            self._client = await asyncio.to_thread(make_client, self.spec, self.options.timeout, asynchronous=True)
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def ask(self, question: str, key: Any = None) -> Answer:
        """One question, with retries. Never raises for a failed request: the error is in `Answer.error`."""
        client = await self._get_client()
        opts = self.options
        args = _request_args(self.spec, build_messages(question, opts.system_prompt), opts)
        answer = Answer(key=key, question=question)
        for attempt in range(opts.max_retries + 1):
            answer.attempts = attempt + 1
            started = time.perf_counter()
            try:
                # asyncio.timeout bounds the whole request (a server that trickles bytes never trips a read
                # timeout) without the extra task that wait_for creates for every request.
                async with asyncio.timeout(opts.timeout):
                    completion = await client.chat.completions.create(**args)
                _parse_completion(answer, completion)
                answer.latency_s = time.perf_counter() - started
                answer.error = ""
                return answer
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - every failure is classified below
                fatal = fatal_for_run(exc, self.spec)
                if fatal is not None:
                    raise fatal from None
                answer.error = describe_error(exc)
                if not is_retryable(exc) or attempt == opts.max_retries:
                    return answer
                await asyncio.sleep(retry_delay(exc, attempt + 1, opts.backoff_base, self._rng))
        return answer

    async def ask_many(
        self,
        items: Iterable[tuple[Any, str]],
        on_answer: Callable[[Answer], None] | None = None,
        cancel: threading.Event | None = None,
    ) -> list[Answer]:
        """Ask every (key, question); call `on_answer` as each finishes (in completion order)."""
        queue: asyncio.Queue[tuple[Any, str]] = asyncio.Queue()
        for item in items:
            queue.put_nowait(item)
        results: list[Answer] = []
        await self._get_client()

        async def worker() -> None:
            while not (cancel is not None and cancel.is_set()):
                try:
                    key, question = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                answer = await self.ask(question, key)
                results.append(answer)
                if on_answer is not None:
                    on_answer(answer)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.options.concurrency, queue.qsize()) or 1)]
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
        """Synchronous `ask_many`, in a fresh event loop (for the CLI and for Textual thread workers)."""

        async def run() -> list[Answer]:
            try:
                return await self.ask_many(items, on_answer, cancel)
            finally:
                await self.aclose()

        return asyncio.run(run())


def engine_for(model: str | None = None, settings: Settings | None = None, **overrides: Any) -> Engine:
    """An `Engine` for a model URI (or the default model), options from settings plus overrides."""
    settings = settings or load_settings()
    spec = resolve_model(model, settings)
    return Engine(spec, CallOptions.from_settings(settings, **overrides))


# ---------------------------------------------------------------- one question, and streaming chat (sync)

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


def llm_query(question: str, model: str | None = None, settings: Settings | None = None) -> str:
    """Ask one question; return the answer text. Raises `LLMError` when every retry failed."""
    settings = settings or load_settings()
    spec = resolve_model(model, settings)
    opts = CallOptions.from_settings(settings)
    client = _sync_client(spec, opts.timeout)
    args = _request_args(spec, build_messages(question, opts.system_prompt), opts)
    answer = Answer(key=None, question=question)
    for attempt in range(opts.max_retries + 1):
        try:
            _parse_completion(answer, client.chat.completions.create(**args))
            return answer.text
        except Exception as exc:  # noqa: BLE001
            fatal = fatal_for_run(exc, spec)
            if fatal is not None:
                raise fatal from None
            if not is_retryable(exc) or attempt == opts.max_retries:
                raise LLMError(f"{spec.uri} did not answer: {describe_error(exc)}") from None
            time.sleep(retry_delay(exc, attempt + 1, opts.backoff_base))
    raise LLMError(f"{spec.uri} did not answer")  # pragma: no cover - the loop always returns or raises


class ChatStream:
    """A streamed chat answer. Iterate for text pieces; afterwards read `text`, tokens, `latency_s`.

    `cancel()` (from any thread) stops reading and closes the HTTP stream. Retries happen only before the first
    piece arrives, so that a retried answer never repeats text already shown.
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
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self.cancelled = True
        self._cancel.set()
        stream = self._stream
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing a half-read stream from another thread may complain
                pass

    def _open(self) -> Any:
        client = _sync_client(self.spec, self.options.timeout)
        args = _request_args(self.spec, self.messages, self.options)
        args["stream"] = True
        if self.spec.provider != "azure":
            # Older Azure API versions (2024-02-15-preview) reject stream_options.
            args["stream_options"] = {"include_usage": True}
        for attempt in range(self.options.max_retries + 1):
            if self._cancel.is_set():
                return None
            try:
                return client.chat.completions.create(**args)
            except Exception as exc:  # noqa: BLE001
                fatal = fatal_for_run(exc, self.spec)
                if fatal is not None:
                    raise fatal from None
                if not is_retryable(exc) or attempt == self.options.max_retries:
                    raise LLMError(f"{self.spec.uri} did not answer: {describe_error(exc)}") from None
                self._cancel.wait(retry_delay(exc, attempt + 1, self.options.backoff_base))
        return None

    def __iter__(self) -> Iterator[str]:
        started = time.perf_counter()
        self._stream = self._open()
        if self._stream is None:
            return
        try:
            for chunk in self._stream:
                if self._cancel.is_set():
                    break
                usage = getattr(chunk, "usage", None)
                if usage is not None:
                    self.prompt_tokens = usage.prompt_tokens
                    self.completion_tokens = usage.completion_tokens
                if not chunk.choices:
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
        except Exception as exc:  # noqa: BLE001
            if not self._cancel.is_set():
                raise LLMError(f"{self.spec.uri} stopped answering: {describe_error(exc)}") from None
        finally:
            self.latency_s = time.perf_counter() - started
            try:
                self._stream.close()
            except Exception:  # noqa: BLE001
                pass


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

