"""An OpenAI- and Azure-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It speaks the routes the real openai SDK calls (`/v1/chat/completions`, Azure's
`/openai/deployments/{deployment}/chat/completions?api-version=...`, `/v1/models`), streaming included, and can
inject latency, 429 with Retry-After, 500, hanging requests, HTML 200s, bodies trickled a byte at a time, error
bodies that repeat the request's headers, and a quota (429 beyond N requests in flight). Faults are decided by a
hash of (seed, question, attempt number), so a test sees the same faults whatever order concurrent requests arrive
in. `storm(seed)` is the issue's 30% fault mix; `closed_port()` is an address where nothing listens.

In a test: `with FakeLLMServer() as server: ...` (see `tests/conftest.py` for fixtures). From a shell or a
benchmark: `python tests/fake_llm_server.py --latency 0.1` prints `READY http://127.0.0.1:PORT` and serves.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

Responder = Callable[[dict[str, Any], "RequestInfo"], str]


@dataclass
class RequestInfo:
    """What the server knows about one request, handed to a responder and kept in `FakeLLMServer.log`."""

    route: str  # "openai" or "azure"
    model: str  # the model (OpenAI) or deployment (Azure)
    question: str  # the last user message
    attempt: int  # 1 for the first time this question was asked of this model, 2 for its first retry, ...
    stream: bool
    status: int = 200
    api_version: str | None = None
    received: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic), for benchmarks
    headers: dict[str, str] = field(default_factory=dict)  # the request's headers, names in lower case


@dataclass
class Behaviour:
    """What the server does. Change the fields of `server.behaviour` at any time; requests read them live."""

    latency: float = 0.0  # seconds before answering (before the first chunk when streaming); 429s come at once
    fail_rate: float = 0.0  # share of requests that fail with one of `fail_statuses` (drawn evenly)
    fail_statuses: tuple[int, ...] = (429, 500)
    retry_after: float | None = 0.0  # Retry-After header (seconds) sent with 429; None sends none
    hang_rate: float = 0.0  # share of requests that hang for `hang_s` and then drop the connection
    hang_s: float = 30.0
    non_json_rate: float = 0.0  # share of requests answered 200 with a proxy's HTML page (never with a fail)
    garbled_first: int = 0  # every question's first N attempts are answered 200 with a proxy's HTML page
    trickle_s: float = 0.0  # > 0: answer 200, then send one byte every `trickle_s` seconds and never finish
    capacity: int | None = None  # a quota: requests beyond this many in flight are answered 429 at once
    fail_first: int = 0  # every question fails its first N attempts (with the first of fail_statuses)
    seed: int = 0
    stream_chunk_delay: float = 0.0  # seconds between streamed chunks
    responder: Responder | None = None  # question -> answer text; default `default_answer`
    echo_headers_status: int = 0  # when set, every request fails with this status, the request's headers in the body


def default_answer(body: dict[str, Any], info: RequestInfo) -> str:
    return f"Answer from {info.model}: {info.question}"


def storm(seed: int = 0, *, latency: float = 0.0, retry_after: float = 0.2) -> Behaviour:
    """The issue's rate-limit storm: 15% 429 with Retry-After, 10% 500, 5% HTML 200s, the same for a given seed."""
    return Behaviour(latency=latency, fail_rate=0.25, fail_statuses=(429, 429, 429, 500, 500),
                     retry_after=retry_after, non_json_rate=0.05, seed=seed)


def closed_port(host: str = "127.0.0.1") -> int:
    """A port on `host` where nothing listens: connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _draw(seed: int, salt: str, question: str, attempt: int) -> float:
    digest = hashlib.sha256(f"{seed}:{salt}:{question}:{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _last_user_text(messages: list[dict[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
            return str(content or "")
    return ""


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else delayed ACKs add ~40 ms to each kept-alive response

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - keep test output quiet
        pass

    # -- helpers
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "type": "fake_error", "code": str(status)}}, headers)

    def _authorised(self, route: str) -> bool:
        expected = self.server.owner.api_key
        if expected is None:
            return True
        if route == "azure":
            return self.headers.get("api-key") == expected
        return self.headers.get("Authorization") == f"Bearer {expected}"

    # -- routes
    def do_GET(self) -> None:  # noqa: N802
        path = urlparse(self.path).path.rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send_json(200, {"object": "list", "data": [{"id": "fake-model", "object": "model"}]})
        elif path == "/health":
            self._send_json(200, {"status": "ok"})
        else:
            self._error(404, f"no route {path}")

    def do_POST(self) -> None:  # noqa: N802
        if self.server.owner._stopping.is_set():
            self.close_connection = True  # stopped: a kept-alive connection is dropped, as by a server going away
            return
        url = urlparse(self.path)
        path = url.path.rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        parts = path.strip("/").split("/")
        api_version = None
        if len(parts) == 5 and parts[0] == "openai" and parts[1] == "deployments" and parts[3:] == [
            "chat", "completions"
        ]:
            route, model = "azure", parts[2]
            api_version = (parse_qs(url.query).get("api-version") or [None])[0]
            if not api_version:
                self._error(400, "api-version is required")
                return
        elif path in ("/v1/chat/completions", "/chat/completions"):
            route, model = "openai", ""
        else:
            self._error(404, f"no route {path}")
            return
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            self._error(400, "body is not JSON")
            return
        model = model or str(body.get("model", ""))
        owner = self.server.owner
        question = _last_user_text(body.get("messages") or [])
        info = owner._register(route, model, question, bool(body.get("stream")), api_version)
        info.headers = {name.lower(): value for name, value in self.headers.items()}
        if not self._authorised(route):
            info.status = 401
            self._error(401, "Incorrect API key provided")
            return
        if model in owner.unknown_models:
            info.status = 404
            self._error(404, f"The model `{model}` does not exist")
            return
        behaviour = owner.behaviour
        if behaviour.echo_headers_status:
            # A careless server or proxy that repeats the request (key included) in its error message.
            info.status = behaviour.echo_headers_status
            self._error(info.status, f"bad request; headers were: {dict(self.headers.items())}")
            return
        if not owner._enter():
            info.status = 429
            self._rate_limited(behaviour)
            return
        try:
            self._answer(body, info, model, question, behaviour)
        finally:
            owner._leave()

    def _rate_limited(self, behaviour: Behaviour) -> None:
        headers = {}
        if behaviour.retry_after is not None:
            headers["Retry-After"] = f"{behaviour.retry_after:g}"
        self._error(429, "Rate limit reached", headers)

    def _answer(self, body: dict[str, Any], info: RequestInfo, model: str, question: str,
                behaviour: Behaviour) -> None:
        # One draw decides the fault, so that the shares of `fail_rate` and `non_json_rate` add up exactly.
        fault = _draw(behaviour.seed, "fail", f"{model}|{question}", info.attempt)
        failing = info.attempt <= behaviour.fail_first or fault < behaviour.fail_rate
        status = 200
        if failing:
            statuses = behaviour.fail_statuses
            status = statuses[0] if info.attempt <= behaviour.fail_first else statuses[
                int(_draw(behaviour.seed, "status", question, info.attempt) * len(statuses))
            ]
        if status != 429 and behaviour.latency:
            time.sleep(behaviour.latency)  # a gateway refuses at once; a server that fails first works a while
        if failing:
            info.status = status
            if status == 429:
                self._rate_limited(behaviour)
            else:
                self._error(status, "Internal server error")
            return
        if _draw(behaviour.seed, "hang", question, info.attempt) < behaviour.hang_rate:
            info.status = 0
            self.server.owner._stopping.wait(behaviour.hang_s)
            self.close_connection = True
            return
        garbled = behaviour.fail_rate <= fault < behaviour.fail_rate + behaviour.non_json_rate
        if garbled or info.attempt <= behaviour.garbled_first:
            info.status = 200
            data = b"<html><body>Bad gateway</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        if behaviour.trickle_s:
            info.status = 200
            self._trickle(info.stream, behaviour.trickle_s)
            return

        text = (behaviour.responder or default_answer)(body, info)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
        completion_tokens = len(text.split())
        if info.stream:
            self._stream(model, text, prompt_tokens, completion_tokens, body)
            return
        self._send_json(200, {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens},
        })

    def _trickle(self, stream: bool, every: float) -> None:
        """Headers, then one byte every `every` seconds: a read timeout never fires, the body never completes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if stream else "application/json")
        self.send_header("Content-Length", str(10**6))
        self.end_headers()
        self.close_connection = True
        try:
            while not self.server.owner._stopping.wait(every):
                self.wfile.write(b" ")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up, as it should

    def _stream(self, model: str, text: str, prompt_tokens: int, completion_tokens: int, body: dict) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True

        def event(payload: Any) -> None:
            self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
            self.wfile.flush()

        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        words = text.split(" ")
        try:
            event({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
            for i, word in enumerate(words):
                piece = word if i == 0 else " " + word
                event({**base, "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]})
                if self.server.owner.behaviour.stream_chunk_delay:
                    if self.server.owner._stopping.wait(self.server.owner.behaviour.stream_chunk_delay):
                        return
            event({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if (body.get("stream_options") or {}).get("include_usage"):
                event({**base, "choices": [], "usage": {
                    "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens}})
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client cancelled the stream


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the default of 5 drops connections when many open at once
    allow_reuse_address = True
    owner: FakeLLMServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return  # the client gave up on the request (a timeout, a cancel): not the server's failure
        super().handle_error(request, client_address)


@dataclass
class FakeLLMServer:
    """The server, run in a background thread. `url` is the OpenAI base URL (with /v1); `root` the Azure one."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    api_key: str | None = "test-key-not-secret"  # None accepts any key
    host: str = "127.0.0.1"
    port: int = 0
    unknown_models: set[str] = field(default_factory=set)
    log: list[RequestInfo] = field(default_factory=list)
    attempts: Counter = field(default_factory=Counter)  # (model, question) -> requests received

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.peak_in_flight = 0  # most requests answered at once (those turned away by `capacity` not counted)
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def _register(self, route: str, model: str, question: str, stream: bool, api_version: str | None) -> RequestInfo:
        with self._lock:
            self.attempts[(model, question)] += 1
            info = RequestInfo(route, model, question, self.attempts[(model, question)], stream,
                               api_version=api_version)
            self.log.append(info)
            return info

    def _enter(self) -> bool:
        """Count a request in; False when a `capacity` quota turns it away."""
        with self._lock:
            capacity = self.behaviour.capacity
            if capacity is not None and self._in_flight >= capacity:
                return False
            self._in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self._in_flight)
            return True

    def _leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def start(self) -> FakeLLMServer:
        self._httpd = _Server((self.host, self.port), _Handler)
        self._httpd.owner = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="fake-llm", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def root(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.root}/v1"

    def reset(self) -> None:
        with self._lock:
            self.log.clear()
            self.attempts.clear()

    def questions(self) -> list[str]:
        """Questions of the successful requests, in arrival order."""
        return [info.question for info in self.log if info.status == 200]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    parser.add_argument("--storm", type=int, metavar="SEED",
                        help="the 30%% fault mix of storm(SEED) instead of --fail-rate")
    parser.add_argument("--retry-after", type=float, default=0.2, help="Retry-After of --storm's 429s (seconds)")
    args = parser.parse_args()
    behaviour = Behaviour(latency=args.latency, fail_rate=args.fail_rate)
    if args.storm is not None:
        behaviour = storm(args.storm, latency=args.latency, retry_after=args.retry_after)
    server = FakeLLMServer(behaviour, api_key=args.api_key, port=args.port).start()
    print(f"READY {server.root}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
