"""core.direct_post: the engine's requests go straight through aiohttp, yet reach the server exactly as the SDK's.

Each test sends one question through the SDK's `chat.completions.create` and one through `DirectPost`, to the fake
server, and compares what the server received; then errors come back as the SDK's own exceptions.
"""

from __future__ import annotations

import asyncio
import json

import openai
import pytest

from core.config import load_settings, resolve_model
from core.direct_post import DirectPost
from core.llm import CallOptions, Engine, make_client
from tests.conftest import TEST_KEY

COMPARED = ("authorization", "api-key", "content-type", "user-agent", "openai-organization", "openai-project",
            "accept")


async def _both_ways(spec) -> tuple[DirectPost | None, bytes]:  # noqa: ANN001 - a core.config.ModelSpec
    client = make_client(spec, 30.0, asynchronous=True)
    try:
        await client.chat.completions.create(model=spec.name, messages=[{"role": "user", "content": "via the SDK"}],
                                             temperature=0)
        direct = await DirectPost.create(client, spec.name)
        assert direct is not None
        body = await direct.post({"model": spec.name, "messages": [{"role": "user", "content": "direct"}],
                                  "temperature": 0})
        return direct, body
    finally:
        await client.close()


async def _post_one(spec) -> None:  # noqa: ANN001 - a core.config.ModelSpec
    """One question through `DirectPost` alone (the errors tests: what it raises is the point)."""
    client = make_client(spec, 30.0, asynchronous=True)
    try:
        direct = await DirectPost.create(client, spec.name)
        await direct.post({"model": spec.name, "messages": [{"role": "user", "content": "q"}]})
    finally:
        await client.close()


def _compare(server) -> None:  # noqa: ANN001 - the FakeLLMServer
    via_sdk, direct = server.log
    assert (via_sdk.question, direct.question) == ("via the SDK", "direct")
    assert direct.status == 200 and direct.route == via_sdk.route and direct.model == via_sdk.model
    assert direct.api_version == via_sdk.api_version
    for name in COMPARED:
        assert direct.headers.get(name) == via_sdk.headers.get(name), name


def test_openai_requests_match_the_sdks(openai_env, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-proctor-test")  # the SDK sends it as a header: so must we
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())
    _, body = asyncio.run(_both_ways(spec))
    _compare(openai_env)
    assert openai_env.log[1].headers["authorization"] == f"Bearer {TEST_KEY}"
    assert openai_env.log[1].headers["openai-organization"] == "org-proctor-test"
    assert json.loads(body)["choices"][0]["message"]["content"] == "Answer from gpt-4.1-mini: direct"


def test_azure_requests_match_the_sdks(azure_env):
    spec = resolve_model("azure:/gpt-4.1-nano", load_settings())
    asyncio.run(_both_ways(spec))
    _compare(azure_env)
    assert azure_env.log[1].route == "azure" and azure_env.log[1].api_version == "2024-02-15-preview"
    assert azure_env.log[1].headers["api-key"] == TEST_KEY


@pytest.mark.parametrize(("status", "error"), [(401, openai.AuthenticationError), (429, openai.RateLimitError),
                                                (500, openai.InternalServerError)])
def test_error_statuses_become_the_sdks_exceptions(openai_env, status, error):
    openai_env.behaviour.fail_first = 1
    openai_env.behaviour.fail_statuses = (status,)
    openai_env.behaviour.retry_after = 7
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())

    with pytest.raises(error) as raised:
        asyncio.run(_post_one(spec))
    assert raised.value.status_code == status
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "7"


def test_a_refused_connection_is_an_api_connection_error_caused_by_it(openai_env, monkeypatch):
    from tests.fake_llm_server import closed_port

    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{closed_port()}/v1")
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())

    with pytest.raises(openai.APIConnectionError) as raised:
        asyncio.run(_post_one(spec))
    from core.llm import connection_fault

    assert connection_fault(raised.value) == "connection refused (is the server running, and on that port?)"


def test_the_engine_uses_it_and_answers_every_question(openai_env):
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())
    engine = Engine(spec, CallOptions(concurrency=4))

    async def run() -> list:
        answers = await engine.ask_many([(i, f"Q{i}?") for i in range(10)])
        assert isinstance(engine._direct, DirectPost)  # the direct path, not the SDK's post
        await engine.aclose()
        return answers

    answers = asyncio.run(run())
    assert sorted(a.text for a in answers) == sorted(f"Answer from gpt-4.1-mini: Q{i}?" for i in range(10))
    assert all(a.prompt_tokens and a.completion_tokens for a in answers)
    assert all(info.headers["authorization"] == f"Bearer {TEST_KEY}" for info in openai_env.log)


@pytest.mark.parametrize(("no_proxy", "direct"), [("", False), ("127.0.0.1", True)])
def test_through_a_proxy_the_sdk_posts_itself(openai_env, monkeypatch, no_proxy, direct):
    # The SDK sends through the proxy the environment names (unless NO_PROXY excepts the host): so must a request.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    spec = resolve_model("openai:/gpt-4.1-mini", load_settings())

    async def create() -> DirectPost | None:
        client = make_client(spec, 30.0, asynchronous=True)
        try:
            return await DirectPost.create(client, spec.name)
        finally:
            await client.close()

    assert (asyncio.run(create()) is not None) is direct
