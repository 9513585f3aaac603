"""One HTTP client for every adapter: explicit timeouts, retries that respect the server.

* ``429``: waits what the server asks, from ``Retry-After`` (seconds or an HTTP date) or the
  IETF ``RateLimit`` header's ``t=`` (seconds to reset, as the Hugging Face Hub sends it);
* ``5xx``, timeouts and dropped connections: exponential backoff with jitter;
* other ``4xx``: no retry, the request itself is wrong;
* a body that is not the JSON expected is a :class:`MalformedResponse`, never a crash deep
  inside an adapter.

Three clocks bound the time spent: ``timeout_s`` for connecting and for each read or write,
``deadline_s`` for one request from its first byte to its last (a server that drips a byte
a second is cut off), and ``budget_s`` for one operation (a poll, an alert) across all its
requests and retries. A server that asks to wait longer than the operation has left fails
it at once with an :class:`AdapterError` (the next poll tries again).

Tokens come from the environment, are sent as headers only to the endpoint's own origin
(scheme, host, port: a pagination link or a redirect elsewhere goes without them) and are
never logged.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import httpcore
import httpx
from pydantic import Field

from eliq.config import StrictModel
from eliq.redaction import redact_url

log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO, and a webhook URL is a credential
logging.getLogger("httpx").setLevel(logging.WARNING)
# the monotonic time by which the request in flight on this thread must have finished
_request_deadline: ContextVar[float | None] = ContextVar("eliq_request_deadline", default=None)


class AdapterError(RuntimeError):
    """A remote service failed in a way retries did not fix."""


class MalformedResponse(AdapterError):
    """The service answered, but not with what its API documents."""


class RetryPolicy(StrictModel):
    attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=1.0, ge=0, description="First wait; doubles each retry.")
    max_wait_s: float = Field(
        default=300.0,
        ge=0,
        description="Longest single wait; a server asking for more fails the operation.",
    )


class HttpSettings(StrictModel):
    """What every HTTP adapter takes: where to go, how long to wait, how to retry (a key it
    does not know, ``timeout`` for ``timeout_s``, is refused by name)."""

    endpoint: str
    timeout_s: float = Field(
        default=30.0, gt=0, description="Longest wait to connect, or for any one read or write."
    )
    deadline_s: float = Field(
        default=120.0, gt=0, description="Longest one request may take, first byte to last."
    )
    budget_s: float = Field(
        default=900.0,
        gt=0,
        description="Longest one operation (a poll, an alert) may take, retries included.",
    )
    retry: RetryPolicy = RetryPolicy()
    token_env: str | None = Field(
        default=None, description="Environment variable holding the API token, if any."
    )


class UsesHttp:
    """An adapter that talks to one service through its :class:`HttpClient`: closing the
    adapter (or leaving a ``with`` block) closes the client's connections."""

    client: HttpClient

    def close(self) -> None:
        self.client.close()

    def __enter__(self):  # noqa: ANN204 - the adapter itself
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def secret_from_env(variable: str, needed_by: str) -> str:
    """A credential from the environment, or a clear error naming the variable."""
    value = os.environ.get(variable)
    if not value:
        raise ValueError(f"{needed_by} needs a secret in ${variable}")
    return value


_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])t=(\d+)")


def server_wait(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait before retrying, if it says; ValueError if what it
    says is not a delay (RFC 9110: a non-negative integer, or an HTTP date)."""
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        value = retry_after.strip()
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is None or when.tzinfo is None:
            raise ValueError(f"Retry-After {retry_after[:40]!r} is neither seconds nor a date")
        return max(0.0, when.timestamp() - time.time())
    match = _RATELIMIT_RESET.search(response.headers.get("RateLimit", ""))
    return float(match.group(1)) if match else None


def origin(url: httpx.URL) -> tuple[str, str, int | None]:
    """Scheme, host and port, the default port spelled out (RFC 6454)."""
    default = {"http": 80, "https": 443}.get(url.scheme)
    return url.scheme, url.host, url.port or default


class HttpClient:
    """An ``httpx.Client`` on ``settings.endpoint`` with the retry rules above."""

    def __init__(
        self,
        settings: HttpSettings,
        headers: dict[str, str] | None = None,
        auth_header: Callable[[str], dict[str, str]] = lambda t: {"Authorization": f"Bearer {t}"},
        sleep: Callable[[float], None] = time.sleep,
        secret_url: bool = False,
    ) -> None:
        """``secret_url``: the endpoint itself is a credential (a Slack webhook), so errors
        and logs name it only as ``<endpoint>``."""
        self.settings = settings
        self.sleep = sleep
        self.secret_url = secret_url
        self.origin = origin(httpx.URL(settings.endpoint))
        all_headers = {"User-Agent": "eliq", **(headers or {})}
        token = os.environ.get(settings.token_env) if settings.token_env else None
        credentials = auth_header(token) if token else {}
        all_headers.update(credentials)
        self._credential_headers = {"authorization", *(k.lower() for k in credentials)}
        self._budget: ContextVar[float | None] = ContextVar("eliq_http_budget", default=None)
        self.client = httpx.Client(
            base_url=settings.endpoint.rstrip("/"),
            headers=all_headers,
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=True,
            transport=_DeadlineTransport(),
            event_hooks={"request": [self._keep_credentials_home]},
        )

    @classmethod
    def create(
        cls,
        endpoint: str,
        http: dict | None = None,
        token_env: str | None = None,
        **options: Any,
    ) -> HttpClient:
        """A client from an adapter's settings: ``http`` holds the timeouts and ``retry``."""
        settings = {**(http or {}), "endpoint": endpoint, "token_env": token_env}
        return cls(HttpSettings.model_validate(settings), **options)

    def close(self) -> None:
        """Close the connection pool; the client is not used after."""
        self.client.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @contextmanager
    def operation(self) -> Iterator[None]:
        """Every request inside shares one ``budget_s`` (a poll of several pages)."""
        if self._budget.get() is not None:  # nested: the outer operation's budget holds
            yield
            return
        token = self._budget.set(time.monotonic() + self.settings.budget_s)
        try:
            yield
        finally:
            self._budget.reset(token)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The response of the first attempt that is not retryable, or AdapterError.
        ``url`` is relative to the endpoint; "" is the endpoint itself (a webhook)."""
        with self.operation():
            return self._request(method, url or self.settings.endpoint, **kwargs)

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        policy = self.settings.retry
        budget_ends = self._budget.get()
        assert budget_ends is not None
        where = self._name(self.client.build_request(method, url, **kwargs).url)
        for attempt in range(1, policy.attempts + 1):
            left = budget_ends - time.monotonic()
            if left <= 0:
                raise AdapterError(
                    f"{method} {where}: over the {self.settings.budget_s:g}s budget "
                    f"after {attempt - 1} attempts"
                )
            ends = time.monotonic() + min(self.settings.deadline_s, left)
            wait: float | None
            try:
                response = self._attempt(method, url, ends, **kwargs)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                problem, wait = f"{type(error).__name__}", None
            else:
                if response.status_code < 400:
                    return response
                if response.status_code != 429 and response.status_code < 500:
                    raise AdapterError(
                        f"{method} {where}: {response.status_code} {response.text[:200]!r}"
                    )
                problem = (
                    "429 Too Many Requests"
                    if response.status_code == 429
                    else f"{response.status_code} server error"
                )
                try:
                    wait = server_wait(response)
                except ValueError as error:
                    raise AdapterError(f"{method} {where}: {problem}; {error}") from error
            if attempt == policy.attempts:
                raise AdapterError(f"{method} {where}: {problem} after {attempt} attempts")
            left = budget_ends - time.monotonic()
            if wait is not None and wait > min(policy.max_wait_s, left):
                raise AdapterError(
                    f"{method} {where}: {problem}; the server asks to wait {wait:.0f}s, more "
                    f"than the {min(policy.max_wait_s, max(left, 0)):.0f}s this operation "
                    "may still wait (a later poll will try again)"
                )
            if wait is None:
                wait = policy.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            wait = max(0.0, min(wait, policy.max_wait_s, left))
            log.warning("%s %s: %s; retry %d in %.1fs", method, where, problem, attempt, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt(self, method: str, url: str, ends: float, **kwargs: Any) -> httpx.Response:
        """One request, its body read whole, all by the monotonic time ``ends``."""
        token = _request_deadline.set(ends)
        try:
            return self.client.request(method, url, **kwargs)
        finally:
            _request_deadline.reset(token)

    def download(self, url: str, target: Path) -> Path:
        """Stream ``url`` into ``target``, written aside and renamed when whole, so a file
        that is there is complete (and not fetched again). The transfer gets the whole
        operation's ``budget_s`` (a checkpoint is gigabytes), each read ``timeout_s``."""
        if target.is_file():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        with self.operation():
            where = self._name(self.client.build_request("GET", url).url)
            token = _request_deadline.set(self._budget.get())
            try:
                with self.client.stream("GET", url) as response:
                    if response.status_code >= 400:
                        raise AdapterError(f"GET {where}: {response.status_code} while downloading")
                    with partial.open("wb") as file:
                        for chunk in response.iter_bytes(1 << 20):
                            file.write(chunk)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                partial.unlink(missing_ok=True)
                raise AdapterError(
                    f"GET {where}: {type(error).__name__} while downloading"
                ) from error
            finally:
                _request_deadline.reset(token)
        partial.rename(target)
        return target

    def json(self, method: str, url: str, **kwargs: Any) -> tuple[Any, httpx.Response]:
        """The decoded JSON body and the response (for its headers)."""
        response = self.request(method, url, **kwargs)
        try:
            return response.json(), response
        except ValueError as error:
            raise MalformedResponse(
                f"{method} {self._name(response.request.url)}: body is not JSON ({error}): "
                f"{response.text[:200]!r}"
            ) from error

    def _keep_credentials_home(self, request: httpx.Request) -> None:
        """A request (or redirect) to another origin goes without the credentials."""
        if origin(request.url) != self.origin:
            for name in self._credential_headers & {k.lower() for k in request.headers}:
                del request.headers[name]
            log.debug("%s: another origin; sent without credentials", self._name(request.url))

    def _name(self, url: httpx.URL) -> str:
        """A URL for logs and errors, without credentials or query values that may be secret."""
        return "<endpoint>" if self.secret_url else redact_url(str(url.copy_with(query=None)))


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write also stops at the request's deadline."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self.stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self.stream.read(max_bytes, _until_deadline(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.stream.write(buffer, _until_deadline(timeout))

    def close(self) -> None:
        self.stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None) -> httpcore.NetworkStream:
        upgraded = self.stream.start_tls(ssl_context, server_hostname, _until_deadline(timeout))
        return _DeadlineStream(upgraded)

    def get_extra_info(self, info: str) -> Any:
        return self.stream.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.backend = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        stream = self.backend.connect_tcp(
            host, port, _until_deadline(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream)

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        stream = self.backend.connect_unix_socket(path, _until_deadline(timeout), socket_options)
        return _DeadlineStream(stream)

    def sleep(self, seconds: float) -> None:
        self.backend.sleep(seconds)


class _DeadlineTransport(httpx.BaseTransport):
    """What ``httpx.HTTPTransport`` does, on an httpcore connection pool whose network
    backend enforces ``_request_deadline``: httpx takes no network backend, so the pool is
    built here, through httpcore's public API, and requests and errors are translated
    between the two libraries' public types."""

    def __init__(self) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(), network_backend=_DeadlineBackend()
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _as_httpx_errors(request):
            response = self._pool.handle_request(core)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream, request),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


class _ResponseStream(httpx.SyncByteStream):
    def __init__(self, stream: Any, request: httpx.Request) -> None:
        self.stream, self.request = stream, request

    def __iter__(self) -> Iterator[bytes]:
        with _as_httpx_errors(self.request):
            yield from self.stream

    def close(self) -> None:
        if hasattr(self.stream, "close"):
            self.stream.close()


@contextmanager
def _as_httpx_errors(request: httpx.Request) -> Iterator[None]:
    """httpcore's errors as httpx's errors of the same name (``ReadTimeout``,
    ``ConnectError``, ``RemoteProtocolError``, ...), which the retry rules know."""
    try:
        yield
    except httpcore.UnsupportedProtocol as error:
        raise httpx.UnsupportedProtocol(str(error), request=request) from error
    except (httpcore.TimeoutException, httpcore.NetworkError, httpcore.ProtocolError) as error:
        kind = getattr(httpx, type(error).__name__, httpx.TransportError)
        raise kind(str(error), request=request) from error


def _until_deadline(timeout: float | None) -> float | None:
    """``timeout``, shortened to what is left before the request's deadline."""
    ends = _request_deadline.get()
    if ends is None:
        return timeout
    left = ends - time.monotonic()
    if left <= 0:
        raise httpcore.ReadTimeout("the request's deadline passed")
    return left if timeout is None else min(timeout, left)
