"""The shared HTTP client against real servers on localhost: credentials stay on their
origin, every call has a deadline, every operation a budget, and a server's odd
``Retry-After`` is an :class:`AdapterError`, never a crash or a twenty-minute wait."""

import socket
import threading
import time

import pytest
from httpx import Response as HttpxResponse
from pytest_httpserver import HTTPServer
from werkzeug import Response

from adapters import create_registry
from adapters.http import AdapterError, HttpClient, HttpSettings, server_wait
from tests.fake_hub import FakeHub

TOKEN = "hf_secret_token_123"


@pytest.fixture
def other_server():
    server = HTTPServer(host="127.0.0.1", port=0)
    server.start()
    yield server
    server.clear()
    server.stop()


def test_a_next_link_to_another_origin_is_followed_without_the_token(
    httpserver, other_server, monkeypatch
):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    seen: dict[str, list[str | None]] = {"home": [], "other": []}
    hub = FakeHub(httpserver.url_for("").rstrip("/"))
    for minute in range(3):
        hub.add(f"lab/gen-{minute}", minute, sha=f"{minute:040d}")

    def first_page(request):
        seen["home"].append(request.headers.get("Authorization"))
        page = hub(request)
        page.headers["Link"] = f'<{other_server.url_for("/api/models")}?cursor=2>; rel="next"'
        return page

    def elsewhere(request):
        seen["other"].append(request.headers.get("Authorization"))
        return Response("[]", content_type="application/json")

    httpserver.expect_request("/api/models").respond_with_handler(first_page)
    other_server.expect_request("/api/models").respond_with_handler(elsewhere)
    registry = create_registry(
        "huggingface", endpoint=hub.base_url, page_size=2, lookback_days=3650
    )
    registry.poll(None)
    assert seen["home"] and all(value == f"Bearer {TOKEN}" for value in seen["home"])
    assert seen["other"] == [None]  # the link was followed, without the token


def test_a_redirect_to_another_origin_drops_custom_credential_headers(
    httpserver, other_server, monkeypatch
):
    monkeypatch.setenv("API_KEY", TOKEN)
    received = []
    other_server.expect_request("/landing").respond_with_handler(
        lambda request: received.append(dict(request.headers)) or Response("{}")
    )
    httpserver.expect_request("/start").respond_with_response(
        Response(status=302, headers={"Location": other_server.url_for("/landing")})
    )
    client = HttpClient(
        HttpSettings(endpoint=httpserver.url_for(""), token_env="API_KEY"),
        auth_header=lambda token: {"X-Api-Key": token},
    )
    client.json("GET", "/start")
    assert received and not any(TOKEN in value for value in received[0].values())


class DrippingServer:
    """Answers every connection with headers, then one body byte every ``interval`` s."""

    def __init__(self, interval: float = 0.1, length: int = 10_000) -> None:
        self.interval, self.length = interval, length
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent: list[int] = []
        self.stopping = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        self.listener.settimeout(0.2)
        while not self.stopping.is_set():
            try:
                connection, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            threading.Thread(target=self._drip, args=(connection,), daemon=True).start()

    def _drip(self, connection: socket.socket) -> None:
        sent = 0
        with connection:
            try:
                connection.recv(65536)
                connection.sendall(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {self.length}\r\n\r\n".encode()
                )
                while sent < self.length and not self.stopping.is_set():
                    connection.sendall(b" ")
                    sent += 1
                    time.sleep(self.interval)
            except OSError:
                pass  # the client hung up: what the deadline is for
        self.sent.append(sent)

    def close(self) -> None:
        self.stopping.set()
        self.listener.close()


def test_a_dripping_server_is_cut_off_at_the_request_deadline():
    server = DrippingServer(interval=0.05)
    try:
        client = HttpClient(
            HttpSettings(
                endpoint=f"http://127.0.0.1:{server.port}",
                timeout_s=2,  # every byte comes well within it
                deadline_s=0.5,
                retry={"attempts": 2, "backoff_s": 0},
            )
        )
        with pytest.raises(AdapterError, match="ReadTimeout after 2 attempts"):
            client.json("GET", "/api/models")
        for _ in range(50):  # the server notices the hang-up at its next byte
            if len(server.sent) == 2:
                break
            time.sleep(0.1)
        # 10,000 bytes would take the drip 500 s; each attempt was cut off after a fraction
        assert len(server.sent) == 2 and max(server.sent) < server.length // 4
    finally:
        server.close()


def test_a_retry_after_beyond_the_operation_fails_at_once(httpserver):
    httpserver.expect_request("/api/models").respond_with_response(
        Response("busy", status=429, headers={"Retry-After": "999999"})
    )
    waits: list[float] = []
    client = HttpClient(HttpSettings(endpoint=httpserver.url_for("")), sleep=waits.append)
    with pytest.raises(AdapterError, match="asks to wait 999999s") as error:
        client.request("GET", "/api/models")
    assert "/api/models" in str(error.value) and "later poll" in str(error.value)
    assert waits == [] and len(httpserver.log) == 1


def test_retries_stop_when_the_operation_budget_is_spent(httpserver):
    httpserver.expect_request("/api/models").respond_with_response(
        Response("down", status=503, headers={"Retry-After": "1"})
    )
    client = HttpClient(
        HttpSettings(endpoint=httpserver.url_for(""), budget_s=1.5, retry={"attempts": 10})
    )
    with pytest.raises(AdapterError, match="more than|budget"):
        client.request("GET", "/api/models")
    assert len(httpserver.log) <= 2  # one wait of 1 s fits the budget, a second does not


@pytest.mark.parametrize("value", ["soon", "-1", "1.5e3", "Mon, 99 Foo 2026"])
def test_a_bad_retry_after_is_an_adapter_error_naming_the_url(httpserver, value):
    httpserver.expect_request("/api/models").respond_with_response(
        Response("busy", status=429, headers={"Retry-After": value})
    )
    registry = create_registry(
        "huggingface", endpoint=httpserver.url_for("").rstrip("/"), token_env=None
    )
    with pytest.raises(AdapterError, match="/api/models.*Retry-After"):
        registry.poll(None)


def test_server_wait_reads_seconds_dates_and_ratelimit_resets():
    assert server_wait(HttpxResponse(429, headers={"Retry-After": "7"})) == 7.0
    assert server_wait(HttpxResponse(429, headers={"RateLimit": '"api";r=0;t=12'})) == 12.0
    past = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert server_wait(HttpxResponse(429, headers={"Retry-After": past})) == 0.0
    assert server_wait(HttpxResponse(429)) is None
    with pytest.raises(ValueError, match="neither seconds nor a date"):
        server_wait(HttpxResponse(429, headers={"Retry-After": "soon"}))


def test_clients_and_the_adapters_that_hold_them_close_with_their_block(httpserver):
    """A client and an adapter are context managers; leaving the block closes the
    connection pool, and a closed client refuses further requests."""
    httpserver.expect_request("/ok").respond_with_json({"ok": True})
    with HttpClient.create(httpserver.url_for("/")) as client:
        assert client.json("GET", "/ok")[0] == {"ok": True}
    assert client.client.is_closed
    with pytest.raises(RuntimeError):
        client.request("GET", "/ok")
    with create_registry("huggingface", endpoint=httpserver.url_for("/")) as hub:
        assert not hub.client.client.is_closed
    assert hub.client.client.is_closed


def test_nothing_reaches_into_httpx_internals():
    """The deadline transport is built on httpcore's public pool, not on httpx's private
    attributes, which a minor release may rename."""
    import ast
    from pathlib import Path

    import adapters

    for path in Path(adapters.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in {"_pool", "_transport"}:
                owner = ast.unparse(node.value)
                assert owner == "self", f"{path.name}: {owner}.{node.attr}"


def test_a_mistyped_http_setting_is_refused_by_name():
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="timeout"):
        HttpClient.create("http://127.0.0.1:9", {"timeout": 5})
    with pytest.raises(ValidationError, match="attempt"):
        HttpClient.create("http://127.0.0.1:9", {"retry": {"attempt": 2}})
