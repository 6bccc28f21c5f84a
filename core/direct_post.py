"""Chat completions sent straight through aiohttp, with the URL, headers and errors of the openai SDK's client.

Why: the SDK spends about 3 ms of CPU on every request (it builds an httpx request, then an aiohttp one, and wraps
the response twice). On 2 cores, with 16 requests in flight on one event loop, that CPU is what keeps a run of
short answers from keeping pace with the server. Here the SDK builds the request once, as `chat.completions.create`
would (its auth header, Azure's deployment path and api-version, organisation, project and default headers, its
user agent); each question then only swaps the JSON body, about 0.5 ms of CPU a request.

What comes back is what the SDK would have made of it, so retries and fault names stay the same: a reply of 400 or
more becomes the SDK's own exception (`AuthenticationError`, `RateLimitError` with its `Retry-After`, ...), a
transport failure an `openai.APIConnectionError` raised from the aiohttp error (a refused connection is still found
in its causes), and a 200 is handed back as the bytes received.

`DirectPost.create` returns None when the client is not one it can reproduce faithfully (custom auth, a proxy, a
transport other than the SDK's aiohttp one, credentials in the URL, an SDK whose internals moved): the engine then posts
through the SDK.
"""

from __future__ import annotations

import importlib
import json
from typing import Any
from urllib.parse import urlsplit

CHAT_PATH = "/chat/completions"
_DROPPED_HEADERS = {"content-length", "host", "accept-encoding", "transfer-encoding", "connection"}


class DirectPost:
    """One client's chat-completions endpoint, ready to post bodies to. Make with `create`, in the client's loop."""

    def __init__(self, client: Any, session: Any, request: Any, response_cls: type) -> None:
        self.client = client
        self.session = session
        self.request = request  # the template the SDK built: its URL and headers are used for every question
        self.url = str(request.url)
        self.headers = {k: v for k, v in request.headers.items() if k.lower() not in _DROPPED_HEADERS}
        self._response_cls = response_cls

    @classmethod
    async def create(cls, client: Any, model: str) -> DirectPost | None:
        """The endpoint of `client` (an AsyncOpenAI / AsyncAzureOpenAI on the SDK's aiohttp transport) for `model`."""
        try:
            import aiohttp
            from openai._models import FinalRequestOptions

            if getattr(client, "custom_auth", None) is not None:
                return None
            options = FinalRequestOptions.construct(method="post", url=CHAT_PATH,
                                                    json_data={"model": model, "messages": []},
                                                    security={"bearer_auth": True})
            options = await client._prepare_options(options)
            request = client._build_request(options)
            await client._prepare_request(request)
            if urlsplit(str(request.url)).username is not None:
                return None  # user:password@ in the URL: the SDK's path refuses it, naming the setting
            # The transport the SDK would use for this URL: through a proxy (HTTPS_PROXY, not excepted by NO_PROXY)
            # it is another one, which the SDK's path honours.
            transport = client._client._transport_for_url(request.url)
            if getattr(transport, "proxy", None) is not None or not hasattr(transport, "get_client"):
                return None
            response_cls = importlib.import_module(type(request).__module__.split(".")[0]).Response
            session = transport.client
            if not isinstance(session, aiohttp.ClientSession):
                # The transport's own session, made now and kept by it: the SDK's close() closes it, and the
                # keep-alive connections are one pool whichever way a request goes.
                session = transport.client = transport.get_client()
        except Exception:  # noqa: BLE001 - anything unexpected: the SDK's own path is always there
            return None
        return cls(client, session, request, response_cls)

    async def post(self, body: dict[str, Any]) -> bytes:
        """POST `body` as JSON; the reply's bytes for a status below 400, else raise the SDK's exception for it."""
        import aiohttp

        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        try:
            # No aiohttp timeout (its session's default would cut a request at 300 s, a connection at 30 s): the
            # engine's own PROCTOR_TIMEOUT bounds the whole request, as on the SDK's path.
            async with self.session.post(self.url, data=data, headers=self.headers,
                                         timeout=aiohttp.ClientTimeout(total=None, sock_connect=None)) as response:
                content = await response.read()
                status, headers = response.status, response.raw_headers
        except aiohttp.ClientError as error:
            import openai

            raise openai.APIConnectionError(request=self.request) from error
        if status >= 400:
            reply = self._response_cls(status, headers=list(headers), content=content, request=self.request)
            raise self.client._make_status_error_from_response(reply)
        return content
