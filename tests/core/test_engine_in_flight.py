"""The engine keeps its places busy: a question leaves as soon as any answer frees a place, never in waves.

Deterministic, not timed: one question's answer is held by the server until every other question has been
answered. An engine that sent in waves (waiting for a whole batch before the next) would never get there.
"""

from __future__ import annotations

import threading

from core.config import load_settings, resolve_model
from core.llm import CallOptions, Engine


def test_one_slow_answer_does_not_hold_the_others(openai_env):
    others = 23
    answered = 0
    lock = threading.Lock()
    all_others_answered = threading.Event()

    def responder(body, info) -> str:  # noqa: ANN001 - the fake server's (body, RequestInfo)
        nonlocal answered
        if info.question == "slow":
            held = all_others_answered.wait(timeout=60)
            return f"slow answered after the others: {held}"
        with lock:
            answered += 1
            if answered == others:
                all_others_answered.set()
        return f"fast {info.question}"

    openai_env.behaviour.responder = responder
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())
    engine = Engine(spec, CallOptions(concurrency=4, timeout=120))
    items = [(0, "slow"), *((i, f"Q{i}") for i in range(1, others + 1))]
    answers = engine.answer_all(items)
    by_key = {a.key: a for a in answers}
    assert by_key[0].text == "slow answered after the others: True"
    assert all(by_key[i].text == f"fast Q{i}" for i in range(1, others + 1))
    assert openai_env.peak_in_flight <= 4


def test_every_place_is_used(openai_env):
    # All four places fill at once: the server holds each answer until four requests are in flight together.
    barrier = threading.Barrier(4, timeout=60)

    def responder(body, info) -> str:  # noqa: ANN001
        if info.attempt == 1 and info.question in {"Q0", "Q1", "Q2", "Q3"}:
            barrier.wait()
        return "ok"

    openai_env.behaviour.responder = responder
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())
    answers = Engine(spec, CallOptions(concurrency=4, timeout=120)).answer_all([(i, f"Q{i}") for i in range(12)])
    assert [a.text for a in answers] == ["ok"] * 12 and not barrier.broken
    assert openai_env.peak_in_flight == 4
