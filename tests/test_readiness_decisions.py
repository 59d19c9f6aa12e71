"""Readiness decisions without a real service: which probe failed and why, when to try again, when to
give up (deadline, retries, start period). A ProbeHost double stands in for the runtime; the timing
tests run on trio's MockClock, so seconds of waiting cost no wall time."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise
from typing import Any

import anyio
import pytest
from trio.testing import MockClock

from b00t_graph.errors import NodeExited, ReadinessTimeout
from b00t_graph.graph import Node
from b00t_graph.model import Datum, HealthCheck
from b00t_graph.readiness import _split_hostport, probe_now, probe_once, wait_ready


def make_node(hc: HealthCheck | None) -> Node:
    datum = Datum(name="svc", type="process", path="/datums/svc.process.toml", health_check=hc)
    return Node(spec=datum, deps=(), env={}, exports={}, health=hc, config_hash="h")


T0 = 1000.0  # when the virtual clock starts


class Host:
    """A ProbeHost whose exec probe passes ``ready_at`` virtual seconds after the start (it exits at
    ``exited_at``); it checks that it is asked about the right node and records every call."""

    def __init__(self, ready_at: float = float("inf"), code: int = 1, log: str = "", *,
                 exited_at: float = float("inf"), logs_fail: bool = False) -> None:
        self.ready_at = ready_at
        self.code = code
        self.log = log
        self.exited_at = exited_at
        self.logs_fail = logs_fail
        self.probe_times: list[float] = []
        self.exec_calls: list[tuple[list[str], float]] = []
        self.logs_calls: list[int] = []
        self.alive_calls = 0

    async def alive(self, node: Node) -> None:
        assert node.id == "svc.process"
        self.alive_calls += 1
        if anyio.current_time() - T0 >= self.exited_at:
            raise NodeExited(node.id, "exited with code 3", "last words")

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        assert node.id == "svc.process"
        now = anyio.current_time()
        self.probe_times.append(now)
        self.exec_calls.append((argv, timeout))
        return 0 if now - T0 >= self.ready_at else self.code

    async def logs(self, node: Node, lines: int = 0) -> str:  # 0: the caller must say how many lines
        if node.id != "svc.process":
            raise AssertionError(f"logs of {node.id} asked for")
        self.logs_calls.append(lines)
        if self.logs_fail:
            raise RuntimeError("log stream gone")
        return self.log


def run_virtual(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on trio with a clock that jumps whenever every task sleeps.

    The clock starts at 1000 s, not 0, so that nothing can confuse "time since the start" with "time".
    """
    clock = MockClock(autojump_threshold=0)
    clock.jump(T0)
    return anyio.run(fn, backend="trio", backend_options={"clock": clock})


def wait(hc: HealthCheck | None, host: Host) -> tuple[str | BaseException, float]:
    """``wait_ready``'s answer (or its exception) and the virtual time it took."""

    async def main() -> tuple[str | BaseException, float]:
        t0 = anyio.current_time()
        try:
            result: str | BaseException = await wait_ready(make_node(hc), host)
        except (ReadinessTimeout, NodeExited) as exc:
            result = exc
        return result, anyio.current_time() - t0

    out: tuple[str | BaseException, float] = run_virtual(main)
    return out


def gaps(times: Sequence[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


EXEC = ["check", "--ready"]


# --- wait_ready: what it returns ------------------------------------------------------------------


@pytest.mark.parametrize("hc", [None, HealthCheck()], ids=["no-health-check", "health-check-without-probes"])
def test_a_node_without_probes_is_ready_once_alive(hc: HealthCheck | None) -> None:
    host = Host()
    assert wait(hc, host) == ("started (no readiness probe)", 0.0)
    assert host.alive_calls == 1 and host.exec_calls == []


def test_a_node_without_probes_that_died_is_not_ready() -> None:
    result, _ = wait(None, Host(exited_at=0.0))
    assert isinstance(result, NodeExited)


def test_a_passing_probe_returns_the_probes_that_passed_at_once() -> None:
    host = Host(ready_at=0.0, log="booting\nready to serve\n")
    hc = HealthCheck(exec=EXEC, log_regex="^ready", probe_timeout_ms=1500)
    assert wait(hc, host) == ("exec check --ready; log /^ready/", 0.0)
    assert host.exec_calls == [(EXEC, 1.5)]
    assert host.logs_calls == [1000]


# --- wait_ready: when it probes again --------------------------------------------------------------


def test_retries_start_at_10ms_and_grow_by_half_each_time() -> None:
    host = Host(ready_at=0.2)
    result, _ = wait(HealthCheck(exec=EXEC), host)
    assert result == "exec check --ready"
    g = gaps(host.probe_times)
    assert g[:3] == pytest.approx([0.01, 0.015, 0.0225])


def test_the_gap_never_exceeds_a_tenth_of_the_time_waited_nor_the_interval() -> None:
    host = Host(ready_at=30.0)
    result, took = wait(HealthCheck(exec=EXEC, interval_ms=1000), host)
    assert result == "exec check --ready"
    start = host.probe_times[0]
    assert start == T0
    for t, gap in zip(host.probe_times, gaps(host.probe_times), strict=False):
        assert gap <= max(0.05, 0.1 * (t - start)) + 1e-9
        assert gap <= 1.0 + 1e-9
    # well past 10 s the interval is what limits the pace, exactly
    assert gaps(host.probe_times)[-1] == pytest.approx(1.0)
    # and a service that came up at 30 s is seen within the interval
    assert 30.0 <= took <= 31.0


def test_a_service_up_after_3s_is_seen_within_a_third_of_a_second() -> None:
    host = Host(ready_at=3.0)
    result, took = wait(HealthCheck(exec=EXEC), host)
    assert result == "exec check --ready"
    assert 3.0 <= took <= 3.31
    assert len(host.probe_times) < 60  # not hammered


def test_a_small_interval_caps_the_gap() -> None:
    host = Host(ready_at=5.0)
    wait(HealthCheck(exec=EXEC, interval_ms=100), host)
    g = gaps(host.probe_times)
    assert max(g) == pytest.approx(0.1)
    assert g[-1] == pytest.approx(0.1)


def test_the_gap_after_the_first_probes_is_at_least_50ms_while_backing_off() -> None:
    host = Host(ready_at=0.5)
    wait(HealthCheck(exec=EXEC), host)
    g = gaps(host.probe_times)
    # 10, 15, 22.5, 33.75 ms, then the tenth-of-the-wait cap, which is never below 50 ms
    assert g[4] == pytest.approx(0.05)
    assert all(x >= 0.01 - 1e-9 for x in g)


def test_the_node_is_checked_alive_before_every_probe_and_after_the_last() -> None:
    host = Host(ready_at=0.1)
    wait(HealthCheck(exec=EXEC), host)
    # before each try, and once more after the passing one: a probe counts only while the node lives
    assert host.alive_calls == len(host.exec_calls) + 1


def test_a_node_that_exits_while_waited_on_fails_at_once_not_at_the_deadline() -> None:
    host = Host(exited_at=1.0)
    result, took = wait(HealthCheck(exec=EXEC, timeout_ms=60_000), host)
    assert isinstance(result, NodeExited)
    assert 1.0 <= took < 1.2


# --- wait_ready: when it gives up ------------------------------------------------------------------


def test_the_deadline_ends_the_wait_with_the_last_reason_and_the_log_tail() -> None:
    host = Host(code=7, log="listening failed")
    result, took = wait(HealthCheck(exec=EXEC, timeout_ms=2000), host)
    assert isinstance(result, ReadinessTimeout)
    assert result.node == "svc.process"
    tries = len(host.exec_calls)
    assert result.reason == (f"readiness probe exec check --ready did not pass within 2s ({tries} tries); "
                             "last: exec exited 7")
    assert result.log_tail == "listening failed"
    assert host.logs_calls == [20]
    # the last probe runs at the deadline itself, not a backoff step past it
    assert took == pytest.approx(2.0)
    assert host.probe_times[-1] == pytest.approx(T0 + 2.0)


def test_the_deadline_is_met_exactly_even_when_the_next_gap_would_overshoot_it() -> None:
    host = Host()
    _, took = wait(HealthCheck(exec=EXEC, timeout_ms=1234, interval_ms=1000), host)
    assert took == pytest.approx(1.234)


def test_a_fractional_timeout_is_shown_in_seconds() -> None:
    result, _ = wait(HealthCheck(exec=EXEC, timeout_ms=1500), Host())
    assert isinstance(result, ReadinessTimeout)
    assert "did not pass within 1.5s (" in result.reason


def test_an_unreadable_log_does_not_hide_the_timeout() -> None:
    result, _ = wait(HealthCheck(exec=EXEC, timeout_ms=100), Host(logs_fail=True))
    assert isinstance(result, ReadinessTimeout)
    assert result.log_tail == ""


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_retries_bound_the_failed_probes(retries: int) -> None:
    host = Host(code=2, log="tail")
    result, _ = wait(HealthCheck(exec=EXEC, retries=retries), host)
    assert isinstance(result, ReadinessTimeout)
    assert result.node == "svc.process"
    assert host.logs_calls == [20]
    assert len(host.exec_calls) == retries + 1
    assert result.reason == (f"readiness probe exec check --ready failed {retries + 1} times "
                             f"(retries = {retries}); last: exec exited 2")
    assert result.log_tail == "tail"


def test_a_probe_passing_on_its_last_allowed_try_is_ready() -> None:
    host = Host(ready_at=0.02)  # the third probe (at 10 + 15 = 25 ms) passes
    result, _ = wait(HealthCheck(exec=EXEC, retries=2), host)
    assert result == "exec check --ready"
    assert len(host.exec_calls) == 3


def test_failures_in_the_start_period_do_not_count_against_retries() -> None:
    host = Host(code=1)
    result, took = wait(HealthCheck(exec=EXEC, retries=1, start_period_ms=1000), host)
    assert isinstance(result, ReadinessTimeout)
    counted = [t for t in host.probe_times if t >= T0 + 1.0]
    assert len(counted) == 2  # the failure at the end of the period counts, the one after it exceeds retries
    assert len(host.probe_times) > 2
    assert took >= 1.0
    assert "failed 2 times (retries = 1)" in result.reason


def test_a_failure_exactly_at_the_end_of_the_start_period_counts() -> None:
    # with retries = 0 the first failure at or after the period ends the wait
    host = Host(code=1)
    result, took = wait(HealthCheck(exec=EXEC, retries=0, start_period_ms=100), host)
    assert isinstance(result, ReadinessTimeout)
    assert took == host.probe_times[-1] - T0
    assert took >= 0.1
    assert host.probe_times[-2] - T0 < 0.1


def test_the_start_period_is_given_in_milliseconds() -> None:
    host = Host(code=1)
    _, took = wait(HealthCheck(exec=EXEC, retries=0, start_period_ms=10_000, interval_ms=5), host)
    assert 10.0 <= took <= 10.006


def test_every_probe_is_named_when_the_wait_fails() -> None:
    host = Host(code=0, ready_at=float("inf"), log="nothing")
    result, _ = wait(HealthCheck(exec=EXEC, log_regex="ready", timeout_ms=100), host)
    assert isinstance(result, ReadinessTimeout)
    assert result.reason.startswith("readiness probe exec check --ready, log /ready/ did not pass within 0.1s")
    result, _ = wait(HealthCheck(exec=EXEC, log_regex="ready", retries=0), host)
    assert isinstance(result, ReadinessTimeout)
    assert result.reason.startswith("readiness probe exec check --ready, log /ready/ failed 1 times")


def test_without_retries_only_the_deadline_ends_the_wait() -> None:
    host = Host(code=1)
    result, took = wait(HealthCheck(exec=EXEC, timeout_ms=500), host)
    assert isinstance(result, ReadinessTimeout)
    assert "did not pass within" in result.reason
    assert took == pytest.approx(0.5)


# --- probe_once: the decision of one round of probes ----------------------------------------------


class FakeHttp:
    def __init__(self, answer: int | BaseException) -> None:
        self.answer = answer
        self.calls: list[tuple[str, float]] = []

    async def get(self, url: str, timeout: float) -> int:
        self.calls.append((url, timeout))
        if isinstance(self.answer, BaseException):
            raise self.answer
        return self.answer

    async def aclose(self) -> None:
        return None


async def once(hc: HealthCheck, http: FakeHttp | None = None, host: Host | None = None) -> str | None:
    return await probe_once(make_node(hc), hc, host or Host(), http or FakeHttp(200))  # type: ignore[arg-type]



@pytest.mark.anyio
async def test_http_status_must_be_the_expected_one() -> None:
    http = FakeHttp(503)
    hc = HealthCheck(http_url="http://127.0.0.1:8080/health", probe_timeout_ms=2500)
    assert await once(hc, http) == "HTTP 503, expected 200"
    assert http.calls == [("http://127.0.0.1:8080/health", 2.5)]
    assert await once(HealthCheck(http_url="http://x/", expected_status=204), FakeHttp(204)) is None
    assert await once(HealthCheck(http_url="http://x/", expected_status=204), FakeHttp(200)) == \
        "HTTP 200, expected 204"


@pytest.mark.anyio
@pytest.mark.parametrize(("error", "why"), [
    (TimeoutError(), "probe timed out after 2s"),
    (ConnectionRefusedError(111, "Connection refused"), "connection refused"),
    (OSError(), "OSError"),
    (ValueError("unsupported URL 'ftp://x' (http:// or https:// expected)"),
     "ValueError: unsupported URL 'ftp://x' (http:// or https:// expected)"),
    (anyio.EndOfStream(), "connection closed before an HTTP response"),
    (anyio.BrokenResourceError(), "connection closed before an HTTP response"),
])
async def test_a_probe_error_becomes_the_reason_it_failed(error: BaseException, why: str) -> None:
    assert await once(HealthCheck(http_url="http://x/"), FakeHttp(error)) == why


@pytest.mark.anyio
async def test_the_node_exiting_during_a_probe_is_not_a_probe_failure() -> None:
    with pytest.raises(NodeExited):
        await once(HealthCheck(http_url="http://x/"), FakeHttp(NodeExited("svc.process", "gone")))


@pytest.mark.anyio
async def test_exec_probe_passes_only_on_exit_code_zero() -> None:
    host = Host(ready_at=float("inf"), code=3)
    assert await once(HealthCheck(exec=EXEC, probe_timeout_ms=750), host=host) == "exec exited 3"
    assert host.exec_calls == [(EXEC, 0.75)]
    assert await once(HealthCheck(exec=EXEC), host=Host(code=0)) is None


@pytest.mark.anyio
async def test_log_probe_matches_any_line_of_the_last_thousand() -> None:
    host = Host(log="starting\nready on :80\nserving\n")
    assert await once(HealthCheck(log_regex="^ready on"), host=host) is None
    assert host.logs_calls == [1000]
    assert await once(HealthCheck(log_regex="^serving$"), host=host) is None
    assert await once(HealthCheck(log_regex="^on :80"), host=host) == "log has no line matching /^on :80/"


@pytest.mark.anyio
async def test_the_first_failing_probe_is_the_reason_and_later_ones_do_not_run() -> None:
    host = Host(code=1, log="ready")
    hc = HealthCheck(http_url="http://x/", exec=EXEC, log_regex="ready")
    assert await once(hc, FakeHttp(500), host) == "HTTP 500, expected 200"
    assert host.exec_calls == [] and host.logs_calls == []
    assert await once(hc, FakeHttp(200), host) == "exec exited 1"
    assert host.logs_calls == []


@pytest.mark.anyio
async def test_every_probe_must_pass() -> None:
    host = Host(code=0, log="nothing yet")
    hc = HealthCheck(http_url="http://x/", exec=EXEC, log_regex="ready")
    assert await once(hc, FakeHttp(200), host) == "log has no line matching /ready/"


@pytest.mark.anyio
async def test_tcp_probe_passes_when_something_listens_and_fails_when_nothing_does() -> None:
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        assert await once(HealthCheck(tcp=f"127.0.0.1:{port}")) is None
        assert await once(HealthCheck(tcp=f":{port}")) is None  # the host defaults to 127.0.0.1
    why = await once(HealthCheck(tcp=f"127.0.0.1:{port}"))
    assert why is not None and (why == "connection refused" or "Error" in why or why.startswith("probe timed out"))


@pytest.mark.anyio
async def test_an_http_probe_is_made_against_the_real_url() -> None:
    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n")

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            anyio.create_task_group() as tg:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, serve)
        hc = HealthCheck(http_url=f"http://127.0.0.1:{port}/health", expected_status=204)
        assert await wait_ready(make_node(hc), Host()) == f"http http://127.0.0.1:{port}/health → 204"
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_probe_now_tries_every_probe_once_against_the_real_url() -> None:
    """``probe_now`` (a running container's one look before an exit watch): one try, no retry, no wait."""
    answers = [b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n",
               b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"]

    async def serve(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(answers.pop(0))

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener, \
            anyio.create_task_group() as tg:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        tg.start_soon(listener.serve, serve)
        hc = HealthCheck(http_url=f"http://127.0.0.1:{port}/health", exec=EXEC)
        host = Host(ready_at=0.0, code=0)
        assert await probe_now(make_node(hc), hc, host) == "HTTP 503, expected 200"
        assert host.exec_calls == []  # the first failing probe decides
        assert await probe_now(make_node(hc), hc, host) is None
        assert [argv for argv, _ in host.exec_calls] == [EXEC]  # then every probe ran, once
        assert answers == []
        tg.cancel_scope.cancel()


def test_tcp_addresses_split_into_host_and_port() -> None:
    assert _split_hostport("db.local:5432") == ("db.local", 5432)
    assert _split_hostport("X.example:80") == ("X.example", 80)
    assert _split_hostport("[::1]:6379") == ("::1", 6379)
    assert _split_hostport(":80") == ("127.0.0.1", 80)
    assert _split_hostport("[]:80") == ("127.0.0.1", 80)
    with pytest.raises(ValueError):
        _split_hostport("db.local")


# --- mutation testing: the reporter ---------------------------------------------------------------


class Reported(Host):
    """A host with a reporter: every failed try is an event, the passing one is not."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.reporter = self
        self.events: list[tuple[str, str, str]] = []

    def event(self, node: str, phase: str, detail: str = "") -> None:
        self.events.append((node, phase, detail))


def test_each_failed_try_goes_to_the_hosts_reporter() -> None:
    host = Reported(ready_at=0.015)
    result, _ = wait(HealthCheck(exec=EXEC), host)
    assert result == "exec check --ready"
    assert len(host.events) == len(host.probe_times) - 1 >= 1
    assert host.events[0] == ("svc.process", "probe", "try 1: exec exited 1")
