"""Reading runs from an `mlflow server` over its REST API, without importing mlflow: the fast path of core.runs for
a team's shared server (MLFLOW_TRACKING_URI=http(s)://...).

The same questions core.sqlite_runs answers for a local file (an experiment by name, the active experiments, the
active runs of some experiments newest first, one run by id), asked with the standard library (`urllib`, `json`)
instead of `MlflowClient`, whose import alone costs 3-8 s. The answers are the same `RawRun` and `Experiment`
records. The results table of a run is fetched through the server's artifact proxy (`/get-artifact`).

The requests carry what MLflow's own client sends to a plain http(s) server (mlflow/utils/credentials.py and
rest_utils.py): Basic auth from credentials in the URI, else MLFLOW_TRACKING_USERNAME/_PASSWORD (or the
`[mlflow]` section of ~/.mlflow/credentials), else a Bearer MLFLOW_TRACKING_TOKEN; MLFLOW_TRACKING_INSECURE_TLS,
MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_CLIENT_CERT_PATH, and the CA bundle `requests` would use
(REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE). When something else shapes MLflow's requests (an MLFLOW_TRACKING_AUTH or
AWS SigV4 plugin, request-header plugins, a workspace, a ~/.netrc that `requests` would read), `open_server`
returns None and MLflow's client is used. Any answer that is not a clean MLflow answer (another JSON shape, an
HTTP error, a redirect, a dropped connection) raises `StoreUnreadable`: the caller falls back to MlflowClient.
Redirects are not followed: `urllib` would send the credentials on to another host.
"""

from __future__ import annotations

import base64
import configparser
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from core.sqlite_runs import Experiment, RawRun, StoreUnreadable

# Seconds one request may wait: the server answered the store check just before, but a worker's first API request
# opens its store, seconds later at load (core.store.SERVER_ANSWER_TIMEOUT_S says the same).
TIMEOUT_S = 60
# Runs per page of runs/search (MLflow's client asks 1000 at a time too).
PAGE_SIZE = 1000
# Bytes of a JSON answer read at most (a page of 1000 runs with their params is a few MB).
MAX_ANSWER_BYTES = 256 << 20
_API = "/api/2.0/mlflow"


def _credentials_file() -> tuple[str | None, str | None]:
    """User and password from ~/.mlflow/credentials, read as MLflow reads it (its `[mlflow]` section)."""
    path = Path(os.path.expanduser("~/.mlflow/credentials"))
    if not path.exists():
        return None, None
    config = configparser.ConfigParser()
    try:
        config.read(path)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None, None  # unreadable: MLflow's client, if it is ever used, says why
    if "mlflow" not in config:
        return None, None
    return config["mlflow"].get("mlflow_tracking_username"), config["mlflow"].get("mlflow_tracking_password")


def _netrc_exists() -> bool:
    # `requests` reads ~/.netrc (or $NETRC) for a host with no explicit auth, over MLflow's own header.
    names = [os.environ["NETRC"]] if os.environ.get("NETRC") else ["~/.netrc", "~/_netrc"]
    return any(os.path.exists(os.path.expanduser(name)) for name in names)


@functools.cache
def _header_plugins() -> bool:
    """True when an installed package registers MLflow request-header providers (MLflow adds their headers)."""
    for folder in sys.path:
        try:
            entries = list(os.scandir(folder or "."))
        except OSError:
            continue
        for entry in entries:
            if not entry.name.endswith((".dist-info", ".egg-info")):
                continue
            try:
                text = Path(entry.path, "entry_points.txt").read_text(encoding="utf-8", errors="replace")
            except OSError:
                continue
            if "mlflow.request_header_provider" in text or "mlflow.request_auth_provider" in text:
                return True
    return False


def _true(name: str) -> bool:
    return (os.environ.get(name) or "").strip().lower() in ("true", "1")


def authorization(uri: str) -> str | None:
    """The Authorization header MLflow's client would send to the server at `uri`, or None.

    As `requests` under MLflow does: user info in the URI wins (it overrides MLflow's own header); then user and
    password (environment, else ~/.mlflow/credentials); then the token.
    """
    netloc = urlsplit(uri).netloc
    if "@" in netloc:
        user, _, password = netloc.rpartition("@")[0].partition(":")
        pair = f"{unquote(user)}:{unquote(password)}"
        return "Basic " + base64.b64encode(pair.encode("latin-1", "replace")).decode()
    file_user, file_password = _credentials_file()
    user = os.environ.get("MLFLOW_TRACKING_USERNAME") or file_user
    password = os.environ.get("MLFLOW_TRACKING_PASSWORD") or file_password
    if user and password:
        return "Basic " + base64.standard_b64encode(f"{user}:{password}".encode()).decode()
    token = os.environ.get("MLFLOW_TRACKING_TOKEN")
    return f"Bearer {token}" if token else None


def open_server(uri: str) -> RestRuns | None:
    """A reader over the `mlflow server` at `uri` (http or https), or None when MLflow's client must be used:
    another kind of store, or settings this module does not reproduce (see the module docstring)."""
    try:
        parts = urlsplit(uri)
        _ = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    if (os.environ.get("MLFLOW_TRACKING_AUTH") or _true("MLFLOW_TRACKING_AWS_SIGV4")
            or (os.environ.get("MLFLOW_WORKSPACE") or "").strip() or _netrc_exists() or _header_plugins()):
        return None
    insecure = _true("MLFLOW_TRACKING_INSECURE_TLS")
    server_cert = os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None
    if insecure and server_cert:
        return None  # MLflow refuses the pair with its own message
    headers = {"Accept": "application/json", "User-Agent": "proctor"}
    auth = authorization(uri)
    if auth:
        headers["Authorization"] = auth
    netloc = parts.netloc.rpartition("@")[2]  # the credentials travel in the header, never in the request's URL
    base = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    return RestRuns(base, headers, tls_settings() if parts.scheme.lower() == "https" else None)


def tls_settings() -> dict[str, Any]:
    """The TLS settings MLflow's client applies to an https server, from the environment (see `ssl_context`)."""
    return {"insecure": _true("MLFLOW_TRACKING_INSECURE_TLS"),
            "server_cert": os.environ.get("MLFLOW_TRACKING_SERVER_CERT_PATH") or None,
            "client_cert": os.environ.get("MLFLOW_TRACKING_CLIENT_CERT_PATH") or None,
            # `requests` (under MLflow) verifies with this bundle when no server certificate is named.
            "bundle": os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or None}


class RestRuns:
    """Read-only queries on one `mlflow server`. Thread-safe (each call is its own request).

    `page_size`: runs per page of runs/search (small in tests, to page through a few runs).
    """

    def __init__(self, base: str, headers: dict[str, str], tls: dict[str, Any] | None = None,
                 page_size: int = PAGE_SIZE) -> None:
        self.base = base
        self.headers = headers
        self.tls = tls
        self.page_size = page_size
        self._opener: Any = None

    # -- HTTP

    def answers(self, timeout: float = 3.0) -> bool:
        """True when the server answers `/health` within `timeout` seconds (any HTTP answer shows it is up)."""
        import urllib.error

        try:
            with self._open("/health", timeout=timeout) as response:
                response.read(1 << 10)
        except urllib.error.HTTPError:
            return True
        except (OSError, ValueError):
            return False
        return True

    def _open(self, path: str, body: dict[str, Any] | None = None, timeout: float = TIMEOUT_S) -> Any:
        """The response to GET `path` (POST `body` as JSON when given); HTTPError is left to the caller."""
        import urllib.request

        if self._opener is None:
            self._opener = _build_opener(self.tls)
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, headers=headers)
        return self._opener.open(request, timeout=timeout)

    def _call(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """The JSON object the API answers, or None when it answers RESOURCE_DOES_NOT_EXIST."""
        import urllib.error

        try:
            with self._open(_API + path, body) as response:
                raw = response.read(MAX_ANSWER_BYTES + 1)
        except urllib.error.HTTPError as error:
            try:
                code = json.loads(error.read(1 << 16) if error.fp else b"").get("error_code")
            except (ValueError, AttributeError, OSError):
                code = None
            if error.code == 404 and code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise StoreUnreadable(f"{path}: HTTP {error.code} {code or ''}".strip()) from None
        except (OSError, ValueError) as error:  # URLError is an OSError; a timeout, a dropped connection too
            raise StoreUnreadable(f"{path}: {type(error).__name__}") from None
        if len(raw) > MAX_ANSWER_BYTES:
            raise StoreUnreadable(f"{path}: answer larger than {MAX_ANSWER_BYTES} bytes")
        try:
            answer = json.loads(raw or b"{}")
        except ValueError:
            raise StoreUnreadable(f"{path}: the answer is not JSON") from None
        if not isinstance(answer, dict):
            raise StoreUnreadable(f"{path}: the answer is not a JSON object")
        return answer

    def _search(self, path: str, key: str, body: dict[str, Any]) -> list[Any]:
        """Every item under `key` of a paged search (`path` asked with `body`, then each `next_page_token`)."""
        found: list[Any] = []
        token = None
        while True:
            answer = self._call(path, {**body, "page_token": token} if token else body) or {}
            found.extend(_list(answer, key))
            token = answer.get("next_page_token")
            if not token:
                return found

    # -- experiments

    def experiment_by_name(self, name: str) -> Experiment | None:
        """The experiment named `name`, deleted or not (as `MlflowClient.get_experiment_by_name`)."""
        answer = self._call(f"/experiments/get-by-name?experiment_name={quote(name, safe='')}")
        return None if answer is None else _experiment(answer.get("experiment"))

    def active_experiments(self) -> list[Experiment]:
        """Every experiment not deleted (as `MlflowClient.search_experiments()`)."""
        found = [_experiment(e) for e in self._search("/experiments/search", "experiments",
                                                      {"max_results": self.page_size, "view_type": "ACTIVE_ONLY"})]
        return sorted(found, key=lambda e: (len(e.experiment_id), e.experiment_id))

    def experiment_name(self, experiment_id: str) -> str:
        answer = self._call(f"/experiments/get?experiment_id={quote(experiment_id, safe='')}")
        return "" if answer is None else _experiment(answer.get("experiment")).name

    # -- runs

    def runs(self, experiment_ids: list[str], where: str = "") -> list[RawRun]:
        """The active runs of these experiments, newest first, with their params, tags and latest metrics.

        `where`: an MLflow search filter (`attributes.run_name = 'x'`), applied by the server.
        """
        if not experiment_ids:
            return []
        body: dict[str, Any] = {"experiment_ids": [str(i) for i in experiment_ids], "max_results": self.page_size,
                                "run_view_type": "ACTIVE_ONLY", "order_by": ["attributes.start_time DESC"]}
        if where:
            body["filter"] = where
        return [_raw_run(r) for r in self._search("/runs/search", "runs", body)]

    def candidates(self, ref: str, experiment_ids: list[str]) -> list[RawRun]:
        """The active runs `ref` may name, newest first: those whose id starts with it and those named it, found by
        the server (two filtered searches) instead of listing every run of a shared server. Everything `_match` in
        core.runs looks at, in the same order (start time descending, then run id, as the server sorts)."""
        if any(c in ref for c in "'\"\\"):
            return self.runs(experiment_ids)  # not quotable in a search filter: list them all
        found = {r.run_id: r for r in self.runs(experiment_ids, f"attributes.run_name = '{ref}'")}
        if ref and all(c in "0123456789abcdefABCDEF" for c in ref):  # run ids are lowercase hex
            found.update((r.run_id, r) for r in self.runs(experiment_ids, f"attributes.run_id LIKE '{ref.lower()}%'"))
        return sorted(found.values(), key=lambda r: (-(r.start_time or 0), r.run_id))

    def run(self, run_id: str) -> RawRun | None:
        """One run by its full id, deleted or not (as `MlflowClient.get_run`), or None."""
        answer = self._call(f"/runs/get?run_id={quote(run_id, safe='')}")
        return None if answer is None else _raw_run(answer.get("run"))

    # -- artifacts

    def download_artifact(self, run_id: str, path: str, destination: Path) -> bool:
        """Save artifact `path` of the run to `destination` through the server's artifact proxy (`/get-artifact`,
        as the MLflow UI reads it); False when the server does not give it (none, no proxy, any error)."""
        import urllib.error

        query = f"/get-artifact?path={quote(path, safe='/')}&run_id={quote(run_id, safe='')}"
        try:
            with self._open(query) as response:
                if response.headers.get_content_type() == "text/html":
                    return False  # a proxy's page (a login, an error), not the file
                with open(destination, "wb") as out:
                    while chunk := response.read(1 << 16):
                        out.write(chunk)
        except (urllib.error.HTTPError, OSError, ValueError):
            return False
        return True


def _build_opener(tls: dict[str, Any] | None) -> Any:
    """A urllib opener that refuses redirects (urllib would send the credentials on to another host; MLflow's
    client, through `requests`, strips them: a redirect is left to it) and applies the TLS settings."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # urllib then raises the 3xx as an HTTPError

    handlers: list[Any] = [NoRedirect()]
    if tls is not None:
        handlers.append(urllib.request.HTTPSHandler(context=ssl_context(tls)))
    return urllib.request.build_opener(*handlers)


def ssl_context(tls: dict[str, Any]) -> Any:
    """An `ssl.SSLContext` for `tls_settings()`. Raises OSError (ssl.SSLError, a missing file) on a bad setting."""
    import ssl

    if tls["insecure"]:
        context = ssl._create_unverified_context()  # the user asked MLflow not to verify this server
    else:
        context = ssl.create_default_context(cafile=tls["server_cert"] or tls["bundle"])
    if tls["client_cert"]:
        context.load_cert_chain(tls["client_cert"])  # one file with the certificate and its key, as `requests`
    return context


def _list(answer: dict[str, Any], key: str) -> list[Any]:
    value = answer.get(key, [])
    if not isinstance(value, list):
        raise StoreUnreadable(f"{key} is not a list")
    return value


def _experiment(data: Any) -> Experiment:
    try:
        return Experiment(str(data["experiment_id"]), str(data["name"]), str(data.get("lifecycle_stage", "active")))
    except (TypeError, KeyError, AttributeError) as error:
        raise StoreUnreadable(f"unexpected experiment: {type(error).__name__}") from None


def _pairs(data: dict[str, Any], key: str) -> dict[str, str]:
    return {str(item["key"]): "" if item.get("value") is None else str(item["value"]) for item in data.get(key, [])}


def _raw_run(data: Any) -> RawRun:
    """A run as the API gives it (`{"info": ..., "data": {"params": [...], ...}}`) as a RawRun."""
    try:
        info, values = data["info"], data.get("data") or {}
        start = info.get("start_time")
        return RawRun(
            run_id=str(info.get("run_id") or info["run_uuid"]), name=str(info.get("run_name") or ""),
            experiment_id=str(info["experiment_id"]), status=str(info.get("status") or ""),
            start_time=int(start) if start not in (None, "") else None,
            artifact_uri=str(info.get("artifact_uri") or ""),
            params=_pairs(values, "params"), tags=_pairs(values, "tags"),
            # A NaN or infinite metric comes as the string "NaN" / "Infinity" (protobuf's JSON), which float() reads.
            metrics={str(m["key"]): float(m.get("value", 0.0)) for m in values.get("metrics", [])},
        )
    except (TypeError, KeyError, AttributeError, ValueError) as error:
        raise StoreUnreadable(f"unexpected run: {type(error).__name__}") from None
