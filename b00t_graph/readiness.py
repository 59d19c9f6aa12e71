"""Readiness probes shared by every runtime: HTTP, TCP, exec and a log-line regex.

Probing runs in b00t-graph itself with a short first interval that backs off
(10 ms, ×1.5 each try, capped at ``interval_ms`` and at a tenth of the time
already waited), so a service that comes up in 50 ms is seen within tens of
milliseconds, one that takes 3 s within ~0.3 s, and none is hammered.
Compose, by contrast, polls dependency health every 500 ms and runs a health
check first only after its interval, adding delay at every hop of a chain.
"""

from __future__ import annotations

import re
import ssl
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import anyio
import anyio.abc

from .errors import NodeError, ReadinessTimeout
from .events import Silent
from .model import HealthCheck

if TYPE_CHECKING:
    from .graph import Node

FIRST_DELAY = 0.01
BACKOFF = 1.5
LAG = 0.1
MIN_CAP = 0.05


class ProbeHost(Protocol):
    """What a runtime lends the probe loop: liveness, exec and logs of one node."""

    async def alive(self, node: Node) -> None:
        """Raise :class:`~b00t_graph.errors.NodeExited` (with the log tail) if the node is gone."""
        ...

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        """Run ``argv`` where the service runs (inside a container, or locally) and return its exit code."""
        ...

    async def logs(self, node: Node, lines: int = 20) -> str:
        ...


class _Http:
    """A minimal HTTP/1.1 GET over anyio sockets: a probe needs only the status line.

    Written here rather than importing an HTTP client: the probe is on every
    start's critical path and a client library's import alone costs more than
    a local service takes to answer.
    """

    # Not mutation-tested (see benchmarks/MUTATION.md): socket I/O, tested against real servers by the
    # process and Docker tests, which are too slow to run once per mutant.
    # pragma: no mutate block
    async def get(self, url: str, timeout: float) -> int:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"unsupported URL {url!r} (http:// or https:// expected)")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.hostname
        with anyio.fail_after(timeout):
            if tls:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False  # a local service's readiness, not its identity, is probed
                ctx.verify_mode = ssl.CERT_NONE
                stream: anyio.abc.ByteStream = await anyio.connect_tcp(host, port, tls=True, ssl_context=ctx,
                                                                       tls_standard_compatible=False)
            else:
                stream = await anyio.connect_tcp(host, port)
            async with stream:
                netloc = parts.netloc.rpartition("@")[2]
                await stream.send(f"GET {path} HTTP/1.1\r\nHost: {netloc}\r\nUser-Agent: b00t-graph\r\n"
                                  "Accept: */*\r\nConnection: close\r\n\r\n".encode())
                head = b""
                while b"\r\n" not in head:
                    chunk = await stream.receive(1024)
                    head += chunk
                    if len(head) > 8192:
                        break
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        proto, _, rest = line.partition(" ")
        if not proto.startswith("HTTP/") or not rest[:3].isdigit():
            raise ValueError(f"not an HTTP response: {line[:60]!r}")
        return int(rest[:3])

    async def aclose(self) -> None:
        return None


def _split_hostport(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return (host.strip("[]") or "127.0.0.1"), int(port)


async def probe_once(node: Node, hc: HealthCheck, host: ProbeHost, http: _Http) -> str | None:
    """Run every configured probe once; ``None`` when all pass, else why the first one failed."""
    timeout = hc.probe_timeout_ms / 1000
    try:
        if hc.tcp:
            h, p = _split_hostport(hc.tcp)
            with anyio.fail_after(timeout):
                stream = await anyio.connect_tcp(h, p)
            await stream.aclose()
        if hc.http_url:
            status = await http.get(hc.http_url, timeout)
            if hc.expected_status and status != hc.expected_status:  # 0: any HTTP response will do
                return f"HTTP {status}, expected {hc.expected_status}"
        if hc.exec:
            code = await host.exec(node, list(hc.exec), timeout)
            if code != 0:
                return f"exec exited {code}"
        if hc.log_regex:
            text = await host.logs(node, lines=1000)
            if not re.search(hc.log_regex, text, re.MULTILINE):
                return f"log has no line matching /{hc.log_regex}/"
    except NodeError:
        raise
    except TimeoutError:
        return f"probe timed out after {timeout:g}s"
    except (OSError, ValueError) as exc:
        # anyio's connect_tcp wraps the refusal of each address in "All connection attempts failed"
        if isinstance(exc, ConnectionRefusedError) or isinstance(exc.__cause__, ConnectionRefusedError):
            return "connection refused"
        return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return "connection closed before an HTTP response"
    return None


async def probe_now(node: Node, hc: HealthCheck, host: ProbeHost) -> str | None:
    """Every configured probe once, now: ``None`` when all pass, else why the first one failed."""
    http = _Http()
    try:
        return await probe_once(node, hc, host, http)
    finally:
        with anyio.CancelScope(shield=True):
            await http.aclose()


async def wait_ready(node: Node, host: ProbeHost) -> str:
    """Wait until ``node.health`` passes; raise :class:`ReadinessTimeout` naming the probe otherwise."""
    hc = node.health
    if hc is None or not hc.probes():
        await host.alive(node)
        return "started (no readiness probe)"
    start = anyio.current_time()
    deadline = start + hc.timeout_ms / 1000
    grace_end = start + hc.start_period_ms / 1000
    delay = FIRST_DELAY
    failures = 0
    tries = 0
    http = _Http()
    why = "not probed"
    # Each failed try goes to the runtime's reporter (the live view shows the count and the last
    # result); nothing is formatted when nobody listens.
    reporter = getattr(host, "reporter", None)
    report = None if reporter is None or isinstance(reporter, Silent) else reporter.event
    try:
        while True:
            await host.alive(node)
            tries += 1
            result = await probe_once(node, hc, host, http)
            if result is None:
                # An answer counts only while the node itself still runs: a probe answered by another
                # program, or by a service on its way out, does not make the node ready.
                await host.alive(node)
                return "; ".join(hc.probes())
            why = result
            if report is not None:
                report(node.id, "probe", f"try {tries}: {why}")
            now = anyio.current_time()
            if now >= grace_end:
                failures += 1
            if hc.retries is not None and failures > hc.retries:
                raise ReadinessTimeout(
                    node.id, f"readiness probe {', '.join(hc.probes())} failed {failures} times "
                    f"(retries = {hc.retries}); last: {why}", await _tail(host, node))
            if now >= deadline:
                raise ReadinessTimeout(
                    node.id, f"readiness probe {', '.join(hc.probes())} did not pass within "
                    f"{hc.timeout_ms / 1000:g}s ({tries} tries); last: {why}", await _tail(host, node))
            await anyio.sleep(min(delay, max(0.0, deadline - now)))
            # Back off, but never let the gap exceed LAG of the time already waited: the moment a
            # service comes up is then seen at most ~LAG late, at a handful of probes a second.
            delay = min(delay * BACKOFF, hc.interval_ms / 1000, max(MIN_CAP, LAG * (now - start)))
    finally:
        with anyio.CancelScope(shield=True):
            await http.aclose()


async def _tail(host: ProbeHost, node: Node) -> str:
    try:
        return await host.logs(node, 20)
    except Exception:  # the log is a courtesy in an error message; never mask the real error
        return ""
