"""One HTTP client for every adapter: explicit timeouts, retries that respect the server.

* ``429``: waits what the server asks, from ``Retry-After`` (seconds or an HTTP date) or the
  IETF ``RateLimit`` header's ``t=`` (seconds to reset, as the Hugging Face Hub sends it);
* ``5xx``, timeouts and dropped connections: exponential backoff with jitter;
* other ``4xx``: no retry, the request itself is wrong;
* a body that is not the JSON expected is a :class:`MalformedResponse`, never a crash deep
  inside an adapter.

Tokens come from the environment, are sent as headers and never logged.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
from pydantic import BaseModel, Field

log = logging.getLogger(__name__)
# httpx logs every request's full URL at INFO, and a webhook URL is a credential
logging.getLogger("httpx").setLevel(logging.WARNING)


class AdapterError(RuntimeError):
    """A remote service failed in a way retries did not fix."""


class MalformedResponse(AdapterError):
    """The service answered, but not with what its API documents."""


class RetryPolicy(BaseModel):
    attempts: int = Field(default=5, ge=1)
    backoff_s: float = Field(default=1.0, ge=0, description="First wait; doubles each retry.")
    max_wait_s: float = Field(default=300.0, ge=0, description="Longest single wait.")


class HttpSettings(BaseModel):
    """What every HTTP adapter takes: where to go, how long to wait, how to retry."""

    endpoint: str
    timeout_s: float = 30.0
    retry: RetryPolicy = RetryPolicy()
    token_env: str | None = Field(
        default=None, description="Environment variable holding the API token, if any."
    )


def secret_from_env(variable: str, needed_by: str) -> str:
    """A credential from the environment, or a clear error naming the variable."""
    value = os.environ.get(variable)
    if not value:
        raise ValueError(f"{needed_by} needs a secret in ${variable}")
    return value


_RATELIMIT_RESET = re.compile(r"(?:^|[;,\s])t=(\d+)")


def server_wait(response: httpx.Response) -> float | None:
    """Seconds the server asks to wait before retrying, if it says."""
    retry_after = response.headers.get("Retry-After")
    if retry_after:
        if retry_after.strip().isdigit():
            return float(retry_after)
        when = email.utils.parsedate_to_datetime(retry_after)
        if when is not None:
            return max(0.0, when.timestamp() - time.time())
    match = _RATELIMIT_RESET.search(response.headers.get("RateLimit", ""))
    return float(match.group(1)) if match else None


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
        all_headers = {"User-Agent": "eliq", **(headers or {})}
        token = os.environ.get(settings.token_env) if settings.token_env else None
        if token:
            all_headers.update(auth_header(token))
        self.client = httpx.Client(
            base_url=settings.endpoint.rstrip("/"),
            headers=all_headers,
            timeout=httpx.Timeout(settings.timeout_s),
            follow_redirects=True,
        )

    @classmethod
    def create(
        cls,
        endpoint: str,
        http: dict | None = None,
        token_env: str | None = None,
        **options: Any,
    ) -> HttpClient:
        """A client from an adapter's settings: ``http`` holds ``timeout_s`` and ``retry``."""
        settings = {**(http or {}), "endpoint": endpoint, "token_env": token_env}
        return cls(HttpSettings.model_validate(settings), **options)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """The response of the first attempt that is not retryable, or AdapterError.
        ``url`` is relative to the endpoint; "" is the endpoint itself (a webhook)."""
        policy = self.settings.retry
        url = url or self.settings.endpoint
        for attempt in range(1, policy.attempts + 1):
            wait: float | None
            try:
                response = self.client.request(method, url, **kwargs)
            except (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError) as error:
                problem, wait = f"{type(error).__name__}", None
            else:
                if response.status_code == 429:
                    problem, wait = "429 Too Many Requests", server_wait(response)
                elif response.status_code >= 500:
                    problem, wait = f"{response.status_code} server error", server_wait(response)
                elif response.status_code >= 400:
                    raise AdapterError(
                        f"{method} {self._name(response.request.url)}: {response.status_code} "
                        f"{response.text[:200]!r}"
                    )
                else:
                    return response
            where = self._name(self.client.build_request(method, url).url)
            if attempt == policy.attempts:
                raise AdapterError(f"{method} {where}: {problem} after {attempt} attempts")
            if wait is None:
                wait = policy.backoff_s * 2 ** (attempt - 1) * (0.5 + random.random() / 2)
            wait = min(wait, policy.max_wait_s)
            log.warning("%s %s: %s; retry %d in %.1fs", method, where, problem, attempt, wait)
            self.sleep(wait)
        raise AssertionError("unreachable")

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

    def _name(self, url: httpx.URL) -> str:
        """A URL for logs and errors, without credentials or query values that may be secret."""
        return "<endpoint>" if self.secret_url else str(url.copy_with(query=None, userinfo=b""))
