"""Debian's Chromium driven by Playwright, and a page-only harness for the dashboard.

Browser builds cannot be downloaded on these machines (``playwright install`` fails), so the
tests drive the distribution's ``/usr/bin/chromium`` (``scripts/ensure-chromium.sh``, run by
``./test.sh``, installs it).  A missing browser or Playwright fails the tests, never skips them.

Playwright's sync API runs its own asyncio loop, so it runs in a thread of its own: a worker
thread (``trio.to_thread.run_sync``) in trio tests, :func:`in_thread` (:func:`browser_test`)
otherwise — never inside the trio loop, and never on the main thread, where trio-asyncio
(imported by other tests) has replaced asyncio's loop policy and where a loop left behind
would break the trio-asyncio tests that run later.

:class:`MockedDashboard` loads ``web/`` into the browser with no server at all: Playwright
answers the page's HTTP requests from the files and a scripted ``/status``, and stands in for
the WebSocket server (``page.route_web_socket``).  The page's clock is Playwright's fake clock,
paused: timers (reconnect backoff, polls) fire only when a test advances it.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import pytest

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "web"
CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1280, "height": 800}
ORIGIN = "http://dash.test"
_TYPES = {"html": "text/html; charset=utf-8", "js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8"}


def sync_playwright() -> Any:
    """Playwright's sync entry point; fails the test (not skips) when the browser or the package is missing."""
    try:
        from playwright.sync_api import sync_playwright as entry
    except ImportError as exc:  # pragma: no cover - CI installs it through the test extra
        pytest.fail(f"playwright is not installed ({exc}): run ./test.sh, which installs the test extra")
    if not CHROMIUM.is_file():  # pragma: no cover - ./test.sh installs it
        pytest.fail(f"{CHROMIUM} is missing: run scripts/ensure-chromium.sh (./test.sh does) to install Debian's chromium")
    return entry()


@contextmanager
def chromium_page() -> Iterator[tuple[Any, Any, list[str]]]:
    """(context, page, page errors): headless Chromium at 1280x800; uncaught page errors are collected.

    Only in a thread other than the main one (see the module docstring).  Playwright gets a plain
    asyncio loop: once trio-asyncio is imported, ``asyncio.new_event_loop()`` would make one of its
    sync loops, which cannot run Playwright; ``set_event_loop_policy`` is per thread outside trio
    then (trio-asyncio patches it so), and this thread's is reset on the way out.
    """
    assert threading.current_thread() is not threading.main_thread(), "run Playwright in a thread of its own"
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox"])
            try:
                context = browser.new_context(viewport=VIEWPORT)
                page = context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                yield context, page, errors
            finally:
                browser.close()
    finally:
        asyncio.set_event_loop_policy(None)


T = TypeVar("T")


def in_thread(fn: Callable[[], T]) -> T:
    """``fn()`` in a fresh thread (see the module docstring); its exception is re-raised here."""
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the calling thread (pytest.fail included)
            outcome["error"] = exc

    thread = threading.Thread(target=target, name="playwright", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")  # type: ignore[return-value]


def browser_test(scenario: Callable[[Any], None]) -> Callable[[], None]:
    """A test running ``scenario(page)`` in a fresh Chromium page, in a thread of its own; any
    uncaught error in the page fails it."""
    def test() -> None:
        def run() -> None:
            with chromium_page() as (_context, page, errors):
                scenario(page)
                assert errors == [], f"uncaught errors in the page: {errors}"
        in_thread(run)

    test.__name__, test.__qualname__, test.__doc__ = scenario.__name__, scenario.__qualname__, scenario.__doc__
    test.__module__ = scenario.__module__
    return test


def rows(page: Any) -> list[dict[str, str]]:
    """The whale tape as the page shows it, top to bottom."""
    return page.eval_on_selector_all("#whale-rows tr.whale", """rows => rows.map(r => ({
        seq: r.dataset.seq, trade_id: r.dataset.tradeId, text: r.innerText}))""")


def conn(page: Any) -> dict[str, str]:
    """The connection badge's data attributes (state, connections, lastSeq, resumedSince, ...)."""
    return page.eval_on_selector("#conn-state", "e => ({...e.dataset, text: e.textContent})")


def wait_js(page: Any, expression: str, arg: Any = None, timeout: float = 5_000) -> Any:
    """Poll ``expression`` (a JS function body over ``arg``) in the page until truthy."""
    return page.wait_for_function(f"(arg) => {{ {expression} }}", arg=arg, timeout=timeout, polling=25)


class MockedDashboard:
    """The dashboard page with Playwright playing the service (see the module docstring).

    ``status``: the next ``/status`` answer (``status_code`` other than 200 answers that).
    ``sockets``: every WebSocket the page opened (a ``WebSocketRoute``), ``urls`` their URLs,
    ``received[i]``: the JSON messages the page sent on socket ``i``.  ``hello_seq``: the seq
    each new socket's ``hello`` announces.
    """

    T0 = 1_760_000_000  # 2025-10-09 08:53:20 UTC

    def __init__(self, page: Any, *, ws_port: int = 9101, ai: bool = False) -> None:
        self.page = page
        self.status: dict[str, Any] = {
            "service": {"name": "polymarket-insights", "version": "9.9.9", "mode": "replay", "ws_port": ws_port,
                        "started_at": self.T0 - 10, "uptime_seconds": 10},
            "ai": {"enabled": ai}}
        self.status_code = 200
        self.status_requests: list[str] = []
        self.sockets: list[Any] = []
        self.urls: list[str] = []
        self.received: list[list[dict[str, Any]]] = []
        self.hello_seq: int | None = 0    # None: new sockets get no hello
        page.route(f"{ORIGIN}/**", self._http)
        page.route_web_socket(re.compile(r"^wss?://"), self._socket)

    def open(self, query: str = "") -> MockedDashboard:
        clock = self.page.clock
        clock.install(time=self.T0)
        clock.pause_at(self.T0 + 1)          # nothing fires unless the test advances the clock
        self.page.goto(f"{ORIGIN}/{query}")
        return self

    # -- the fake service -----------------------------------------------------------------------

    def _http(self, route: Any) -> None:
        path = route.request.url[len(ORIGIN):].split("?", 1)[0]
        if path == "/status":
            self.status_requests.append(route.request.url)
            if self.status_code != 200:
                route.fulfill(status=self.status_code, content_type="application/json", body='{"error":"no"}')
            else:
                route.fulfill(status=200, content_type="application/json", body=json.dumps(self.status))
            return
        name = "index.html" if path == "/" else path.removeprefix("/static/")
        file = WEB / name
        if "/" in name or not file.is_file():
            route.fulfill(status=404, body="not found")
            return
        route.fulfill(status=200, content_type=_TYPES[name.rsplit(".", 1)[-1]], body=file.read_text())

    def _socket(self, ws: Any) -> None:
        index = len(self.sockets)
        self.sockets.append(ws)
        self.urls.append(ws.url)
        self.received.append([])

        def on_message(text: str | bytes) -> None:
            message = json.loads(text)
            self.received[index].append(message)
            if message.get("type") == "ping":
                ws.send(json.dumps({"type": "pong", "data": {"seq": self.hello_seq}}))

        ws.on_message(on_message)
        if self.hello_seq is not None:
            ws.send(json.dumps({"type": "hello", "data": {"server": "polymarket-insights", "version": "9.9.9",
                                                          "seq": self.hello_seq, "oldest_seq": 1,
                                                          "heartbeat_interval": 20.0}}))

    # -- driving it -----------------------------------------------------------------------------

    def send(self, *messages: dict[str, Any], socket: int = -1) -> None:
        for message in messages:
            self.sockets[socket].send(json.dumps(message))

    def send_batch(self, messages: list[dict[str, Any]], socket: int = -1) -> None:
        self.sockets[socket].send(json.dumps({"type": "batch", "data": messages}))

    def wait_sockets(self, n: int, timeout: float = 5_000) -> None:
        """Until the page has opened ``n`` sockets (the handler runs while Playwright waits)."""
        wait_js(self.page, "return document.querySelector('#conn-state') !== null", timeout=timeout)
        deadline = 0
        while len(self.sockets) < n and deadline < timeout:
            self.page.wait_for_timeout(20)   # lets Playwright dispatch the route handler (page clock unaffected)
            deadline += 20
        assert len(self.sockets) >= n, f"the page opened {len(self.sockets)} sockets, not {n}"

    def wait_received(self, predicate: Any, socket: int = -1, timeout: float = 5_000) -> dict[str, Any]:
        """The first message the page sent on ``socket`` matching ``predicate``."""
        waited = 0
        while waited <= timeout:
            for message in self.received[socket]:
                if predicate(message):
                    return message
            self.page.wait_for_timeout(20)
            waited += 20
        raise AssertionError(f"the page sent no matching message on socket {socket}: {self.received[socket]}")

    def advance(self, ms: int) -> None:
        """Advance the page's (fake, paused) clock, firing the timers due."""
        self.page.clock.run_for(ms)


def whale(seq: int, trade_id: str | None = None, **data: Any) -> dict[str, Any]:
    """A ``whale_trade`` broadcast in the service's shape."""
    body = {"market": f"Will market {seq} happen?", "side": "YES", "amount": 10_000 + seq, "price": 0.42,
            "timestamp": "2025-10-10T08:41:12Z", "action": "BUY", "outcome": "Yes", "size": 1.0,
            "condition_id": f"0xc{seq}", "asset_id": "1", "slug": "s", "event_slug": "e",
            "url": "https://polymarket.com/event/e", "wallet": "0x" + "ab" * 20, "trader": "",
            "transaction_hash": "0x1", "trade_id": trade_id or f"t{seq}", "tier": "whale"}
    body.update(data)
    return {"type": "whale_trade", "seq": seq, "data": body}


def market(seq: int, condition_id: str, price: float, volume: float, **data: Any) -> dict[str, Any]:
    body = {"condition_id": condition_id, "title": f"Market {condition_id}?", "price": price, "volume_24h": volume,
            "timestamp": "2025-10-10T08:41:12Z", "best_bid": price - 0.01, "best_ask": price + 0.01,
            "slug": "s", "url": "https://polymarket.com/event/e"}
    body.update(data)
    return {"type": "market_update", "seq": seq, "data": body}
