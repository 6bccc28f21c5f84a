"""The model client through the real openai SDK against the fake OpenAI/Azure server: answers, retries, faults."""

from __future__ import annotations

import random
import threading
import time

import pytest

import core
from core.config import load_settings, resolve_model
from core.errors import ConfigError, LLMError
from core.llm import CallOptions, Engine, engine_for, retry_delay, stream_chat


def test_llm_query_openai_style(openai_env):
    assert core.llm_query("What is 2+2?") == "Answer from gpt-4.1-mini: What is 2+2?"
    [request] = openai_env.log
    assert (request.route, request.model, request.stream) == ("openai", "gpt-4.1-mini", False)


def test_llm_query_azure_style(azure_env):
    assert core.llm_query("Capital of France?", "azure:/gpt-4.1-mini") == "Answer from gpt-4.1-mini: Capital of France?"
    [request] = azure_env.log
    assert (request.route, request.model, request.api_version) == ("azure", "gpt-4.1-mini", "2024-02-15-preview")


def test_system_prompt_and_temperature_are_sent(openai_env, monkeypatch):
    seen = {}

    def responder(body, info):
        seen.update(body)
        return "ok"

    openai_env.behaviour.responder = responder
    monkeypatch.setenv("PROCTOR_SYSTEM_PROMPT", "Answer in one word.")
    monkeypatch.setenv("PROCTOR_TEMPERATURE", "0.7")
    core.llm_query("hi")
    assert seen["messages"][0] == {"role": "system", "content": "Answer in one word."}
    assert seen["temperature"] == 0.7
    monkeypatch.setenv("PROCTOR_TEMPERATURE", "none")
    seen.clear()
    core.llm_query("hi")
    assert "temperature" not in seen


def test_engine_answers_many_with_usage_and_latency(openai_env):
    openai_env.behaviour.latency = 0.02
    answers = engine_for(concurrency=8).answer_all([(i, f"question {i}") for i in range(40)])
    assert sorted(a.key for a in answers) == list(range(40))
    for answer in answers:
        assert answer.ok, answer.error
        assert answer.text == f"Answer from gpt-4.1-mini: question {answer.key}"
        assert answer.latency_s is not None and answer.latency_s >= 0.02
        assert answer.prompt_tokens == 2 and answer.completion_tokens == 5
        assert answer.finish_reason == "stop" and answer.attempts == 1


def test_engine_respects_the_concurrency_bound(openai_env):
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def responder(body, info):
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.03)
        with lock:
            in_flight -= 1
        return "ok"

    openai_env.behaviour.responder = responder
    answers = engine_for(concurrency=4).answer_all([(i, f"q{i}") for i in range(24)])
    assert all(a.ok for a in answers)
    assert peak == 4


def test_thirty_percent_failures_all_answered_within_the_retry_budget(openai_env):
    openai_env.behaviour.fail_rate = 0.3
    openai_env.behaviour.fail_statuses = (429, 500)
    max_retries = 6
    answers = engine_for(concurrency=16, max_retries=max_retries).answer_all(
        [(i, f"question {i}") for i in range(200)]
    )
    assert len(answers) == 200
    assert all(a.ok for a in answers), [a.error for a in answers if not a.ok]
    failures = [info for info in openai_env.log if info.status != 200]
    assert 0.2 < len(failures) / len(openai_env.log) < 0.4  # the fault injection really happened
    assert {info.status for info in failures} == {429, 500}
    assert max(openai_env.attempts.values()) <= max_retries + 1
    # Each answer's attempt count matches what the server saw for that question.
    for answer in answers:
        assert openai_env.attempts[("gpt-4.1-mini", answer.question)] == answer.attempts


def test_exhausted_retries_are_reported_not_raised(openai_env):
    openai_env.behaviour.fail_rate = 1.0
    openai_env.behaviour.fail_statuses = (500,)
    [answer] = engine_for(max_retries=2).answer_all([(0, "doomed")])
    assert not answer.ok and answer.error.startswith("HTTP 500")
    assert answer.attempts == 3
    assert openai_env.attempts[("gpt-4.1-mini", "doomed")] == 3
    with pytest.raises(LLMError, match="did not answer"):
        core.llm_query("doomed too")


def test_retry_after_is_honoured(openai_env):
    openai_env.behaviour.fail_first = 1
    openai_env.behaviour.fail_statuses = (429,)
    openai_env.behaviour.retry_after = 0.4
    [answer] = engine_for().answer_all([(0, "slow down")])
    assert answer.ok and answer.attempts == 2
    assert answer.latency_s is not None
    first, second = [info for info in openai_env.log]
    assert (first.status, second.status) == (429, 200)


def test_retry_delay_policy():
    class FakeResponse:
        def __init__(self, headers):
            self.headers = headers

    class Limited(Exception):
        def __init__(self, headers):
            self.response = FakeResponse(headers)

    rng = random.Random(1)
    assert retry_delay(Limited({"retry-after": "3"}), 1) == 3
    assert retry_delay(Limited({"retry-after-ms": "250"}), 1) == 0.25
    assert retry_delay(Limited({"retry-after": "9999"}), 1) == 120  # capped
    for attempt, ceiling in ((1, 0.5), (2, 1.0), (3, 2.0), (10, 30.0)):
        delays = [retry_delay(Exception(), attempt, 0.5, rng) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1  # jitter


def test_hanging_requests_time_out_and_are_retried(openai_env):
    openai_env.behaviour.hang_rate = 1.0
    openai_env.behaviour.hang_s = 5
    started = time.perf_counter()
    [answer] = engine_for(timeout=0.3, max_retries=1).answer_all([(0, "hello?")])
    assert answer.error == "timeout" and answer.attempts == 2
    assert time.perf_counter() - started < 3


def test_non_json_bodies_are_errors_not_crashes(openai_env):
    openai_env.behaviour.non_json_rate = 1.0
    [answer] = engine_for(max_retries=1).answer_all([(0, "html please")])
    assert not answer.ok and answer.attempts == 2


def test_connection_refused_is_retried_then_reported(monkeypatch):
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("OPENAI_API_KEY", "k")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    [answer] = engine_for("openai:/m", max_retries=1).answer_all([(0, "anyone?")])
    # (the SDK's aiohttp transport reports a refused connection as a timeout)
    assert not answer.ok and answer.attempts == 2 and answer.error


def test_bad_key_and_unknown_deployment_stop_the_run(azure_env, monkeypatch):
    azure_env.unknown_models.add("nope")
    with pytest.raises(ConfigError, match="deployment 'nope' not found"):
        engine_for("azure:/nope").answer_all([(0, "q")])
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "wrong-key")
    with pytest.raises(ConfigError, match="AZURE_OPENAI_API_KEY"):
        core.llm_query("q")
    # Neither the 404 nor the 401 was retried: they would fail the same way every time.
    assert [info.status for info in azure_env.log] == [404, 401]


def test_cancel_stops_sending(openai_env):
    openai_env.behaviour.latency = 0.02
    cancel = threading.Event()
    done = []

    def on_answer(answer):
        done.append(answer)
        if len(done) == 5:
            cancel.set()

    answers = engine_for(concurrency=2).answer_all([(i, f"q{i}") for i in range(50)], on_answer, cancel)
    assert 5 <= len(answers) <= 7
    assert len(openai_env.log) == len(answers)


def test_streaming_openai_reports_text_and_usage(openai_env):
    stream = stream_chat("Tell me a story")
    pieces = list(stream)
    assert len(pieces) > 3
    assert "".join(pieces) == stream.text == "Answer from gpt-4.1-mini: Tell me a story"
    assert stream.finish_reason == "stop"
    assert (stream.prompt_tokens, stream.completion_tokens) == (4, 7)
    assert stream.first_token_s is not None and stream.latency_s >= stream.first_token_s


def test_streaming_azure_and_multi_turn(azure_env):
    seen = {}

    def responder(body, info):
        seen["messages"] = body["messages"]
        seen["stream_options"] = body.get("stream_options")
        return f"turn {len(body['messages'])}"

    azure_env.behaviour.responder = responder
    conversation = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "again"},
    ]
    stream = stream_chat(conversation, system_prompt="Be brief.")
    assert "".join(stream) == "turn 4"
    assert seen["messages"][0] == {"role": "system", "content": "Be brief."}
    assert seen["messages"][1:] == conversation
    assert seen["stream_options"] is None  # 2024-02-15-preview does not know it
    assert azure_env.log[0].route == "azure"


def test_streaming_can_be_cancelled(openai_env):
    openai_env.behaviour.responder = lambda body, info: " ".join(["word"] * 200)
    openai_env.behaviour.stream_chunk_delay = 0.01
    stream = stream_chat("long")
    received = []
    for piece in stream:
        received.append(piece)
        if len(received) == 3:
            threading.Timer(0.01, stream.cancel).start()
    assert stream.cancelled
    assert 3 <= len(received) < 150


def test_streaming_retries_before_the_first_token(openai_env):
    openai_env.behaviour.fail_first = 2
    openai_env.behaviour.fail_statuses = (503,)
    assert "".join(stream_chat("retry me")) == "Answer from gpt-4.1-mini: retry me"
    assert openai_env.attempts[("gpt-4.1-mini", "retry me")] == 3


def test_engine_can_be_built_from_explicit_settings(fake_server):
    from core.config import Settings

    settings = Settings(openai_api_key="test-key-not-secret", openai_base_url=fake_server.url)
    fake_server.api_key = None
    engine = Engine(resolve_model("openai:/x", settings), CallOptions.from_settings(settings, concurrency=2))
    assert engine.options.concurrency == 2 and engine.options.temperature == 0.0
    assert engine.answer_all([(1, "a")])[0].text == "Answer from x: a"
    assert load_settings().default_model == "local:/smollm2"  # the environment was not touched
