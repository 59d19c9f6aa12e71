"""Readiness probes (readiness.py) through a ProbeHost of our own, and real sockets for HTTP.

Every health-check option has a test here that fails when that option's code is taken out.
``TestOnAVirtualClock`` runs on trio's MockClock (trio only, by nature: MockClock is trio's): time
jumps ahead whenever every task waits, so the backoff schedule, ``timeout_ms`` and ``start_period_ms``
are checked to the exact instant and no result depends on how loaded the machine is. The rest runs on
asyncio and trio with real time, asserting what happened, never how long it took.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from itertools import pairwise
from pathlib import Path

import anyio
import anyio.abc
import pytest
import trio.testing

from b00t_graph import Node, NodeExited, ReadinessTimeout, load_graph
from b00t_graph.readiness import wait_ready

pytestmark = pytest.mark.anyio

WriteDatums = Callable[..., Path]


class Host:
    """A ProbeHost (what a runtime lends the probe loop) whose service we script.

    ``exec_codes`` are the exit codes the exec probe returns, one per try (the last one repeats);
    ``log_lines`` are the log's lines, revealed one more per read of the log; ``ready_at`` makes exec
    pass from that instant on. Every probe call is recorded with the time it was made.
    """

    def __init__(self, exec_codes: tuple[int, ...] = (0,), log_lines: tuple[str, ...] = (),
                 ready_at: float | None = None, exits_after: int | None = None) -> None:
        self.exec_codes = list(exec_codes)
        self.log_lines = list(log_lines)
        self.ready_at = ready_at
        self.exits_after = exits_after
        self.execs: list[float] = []
        self.log_reads = 0
        self.alive_calls = 0

    async def alive(self, node: Node) -> None:
        self.alive_calls += 1
        if self.exits_after is not None and self.alive_calls > self.exits_after:
            raise NodeExited(node.id, "exited on purpose (test host)", "last words")

    async def exec(self, node: Node, argv: list[str], timeout: float) -> int:
        now = anyio.current_time()
        self.execs.append(now)
        if self.ready_at is not None:
            return 0 if now >= self.ready_at else 1
        return self.exec_codes.pop(0) if len(self.exec_codes) > 1 else self.exec_codes[0]

    async def logs(self, node: Node, lines: int = 20) -> str:
        self.log_reads += 1
        return "\n".join(self.log_lines[:self.log_reads][-lines:])


def node_with(write_datums: WriteDatums, health: str) -> Node:
    """A process node whose ``[b00t.health_check]`` table is ``health`` (TOML lines)."""
    folder = write_datums({"svc.process": f'[b00t]\ncommand = ["true"]\n[b00t.health_check]\n{health}\n'})
    return load_graph(["svc.process"], folder, environ={}).nodes["svc.process"]


@asynccontextmanager
async def http_server(status: int) -> AsyncIterator[int]:
    """A real HTTP server on 127.0.0.1 answering every request with ``status``; yields its port."""
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")

    async def answer(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            try:
                await stream.receive(4096)
                await stream.send(f"HTTP/1.1 {status} Whatever\r\nContent-Length: 0\r\n\r\n".encode())
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                pass

    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, answer)
        yield int(listener.extra(anyio.abc.SocketAttribute.local_port))
        tg.cancel_scope.cancel()


# --- each option, on both backends, real time ----------------------------------------------------


async def test_expected_status_is_what_counts_as_ready(write_datums: WriteDatums) -> None:
    async with http_server(204) as port:
        node = node_with(write_datums, f'http_url = "http://127.0.0.1:{port}/health"\nexpected_status = 204\n'
                                       "timeout_ms = 5000")
        with anyio.fail_after(10):
            how = await wait_ready(node, Host())
    assert how == f"http http://127.0.0.1:{port}/health → 204"


async def test_a_status_other_than_expected_is_not_ready(write_datums: WriteDatums) -> None:
    async with http_server(503) as port:
        node = node_with(write_datums, f'http_url = "http://127.0.0.1:{port}/health"\ntimeout_ms = 300')
        with anyio.fail_after(10), pytest.raises(ReadinessTimeout) as info:
            await wait_ready(node, Host())
    assert info.value.node == "svc.process"
    assert "did not pass within 0.3s" in info.value.reason
    assert info.value.reason.endswith("; last: HTTP 503, expected 200")


async def test_log_regex_waits_for_a_matching_line(write_datums: WriteDatums) -> None:
    node = node_with(write_datums, "log_regex = '^listening on \\d+$'\ntimeout_ms = 5000")
    host = Host(log_lines=("booting", "listening on port 80", "listening on 6333", "more"))
    with anyio.fail_after(10):
        how = await wait_ready(node, host)
    assert how == "log /^listening on \\d+$/"
    assert host.log_reads == 3, "ready at the first read that holds the matching line, not before"


async def test_log_regex_that_never_matches_times_out_naming_the_regex(write_datums: WriteDatums) -> None:
    node = node_with(write_datums, "log_regex = 'ready'\ntimeout_ms = 200")
    with anyio.fail_after(10), pytest.raises(ReadinessTimeout) as info:
        await wait_ready(node, Host(log_lines=("booting", "still booting")))
    assert info.value.reason.endswith("; last: log has no line matching /ready/")
    assert info.value.log_tail == "booting\nstill booting"


async def test_retries_bounds_the_failed_tries(write_datums: WriteDatums) -> None:
    node = node_with(write_datums, 'exec = ["check"]\nretries = 2\ntimeout_ms = 5000')
    host = Host(exec_codes=(1,))
    with anyio.fail_after(10), pytest.raises(ReadinessTimeout) as info:
        await wait_ready(node, host)
    assert len(host.execs) == 3, "retries = 2: one try and two retries"
    assert info.value.reason == "readiness probe exec check failed 3 times (retries = 2); last: exec exited 1"


async def test_retries_left_pass_when_the_probe_passes_in_time(write_datums: WriteDatums) -> None:
    node = node_with(write_datums, 'exec = ["check"]\nretries = 2\ntimeout_ms = 5000')
    host = Host(exec_codes=(1, 1, 0))
    with anyio.fail_after(10):
        assert await wait_ready(node, host) == "exec check"
    assert len(host.execs) == 3


async def test_start_period_does_not_count_failures_against_retries(write_datums: WriteDatums) -> None:
    node = node_with(write_datums, 'exec = ["check"]\nretries = 0\nstart_period_ms = 150\ntimeout_ms = 5000')
    host = Host(exec_codes=(1,))
    with anyio.fail_after(10), pytest.raises(ReadinessTimeout) as info:
        await wait_ready(node, host)
    assert len(host.execs) >= 2, "failures inside the start period are not counted"
    assert host.execs[-2] - host.execs[0] < 0.15  # the exact instants: TestOnAVirtualClock
    assert "failed 1 times (retries = 0)" in info.value.reason


async def test_an_exit_while_probing_is_node_exited_not_a_timeout(write_datums: WriteDatums) -> None:
    node = node_with(write_datums, 'exec = ["check"]\ntimeout_ms = 5000')
    with anyio.fail_after(10), pytest.raises(NodeExited) as info:
        await wait_ready(node, Host(exec_codes=(1,), exits_after=2))
    assert str(info.value) == "svc.process: exited on purpose (test host)\n  last log lines:\n    last words"


# --- timing, on a virtual clock ------------------------------------------------------------------


class TestOnAVirtualClock:
    """trio only: MockClock belongs to trio. autojump_threshold=0 jumps to the next deadline at once."""

    @pytest.fixture
    def anyio_backend(self) -> Iterator[tuple[str, dict[str, object]]]:
        yield "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}

    async def test_backoff_schedule(self, write_datums: WriteDatums) -> None:
        # 10 ms first, ×1.5 each try, capped at interval_ms and at a tenth of the time waited (≥ 50 ms).
        node = node_with(write_datums, 'exec = ["check"]\ninterval_ms = 400\ntimeout_ms = 600000')
        t0 = anyio.current_time()
        host = Host(ready_at=t0 + 10.0)
        await wait_ready(node, host)
        at = [t - t0 for t in host.execs]
        gaps = [b - a for a, b in pairwise(at)]
        assert gaps[:5] == pytest.approx([0.01, 0.015, 0.0225, 0.03375, 0.05])
        for i, gap in enumerate(gaps[1:], 1):
            assert gap <= gaps[i - 1] * 1.5 + 1e-9, i
            assert gap <= max(0.05, 0.1 * at[i]) + 1e-9, (i, at[i], gap)
            assert gap <= 0.4 + 1e-9
        assert max(gaps) == pytest.approx(0.4), "the gap grows up to interval_ms"
        assert 10.0 <= at[-1] <= 10.0 + 0.4, "seen at most one interval late"

    async def test_a_service_ready_after_3s_is_seen_within_about_0_3s(self, write_datums: WriteDatums) -> None:
        node = node_with(write_datums, 'exec = ["check"]')  # interval_ms 1000, the default
        t0 = anyio.current_time()
        host = Host(ready_at=t0 + 3.0)
        await wait_ready(node, host)
        assert 3.0 <= host.execs[-1] - t0 <= 3.3
        assert len(host.execs) < 40, "not hammered"

    async def test_timeout_ms_is_the_whole_wait(self, write_datums: WriteDatums) -> None:
        node = node_with(write_datums, 'exec = ["check"]\ntimeout_ms = 3000')
        t0 = anyio.current_time()
        host = Host(exec_codes=(1,))
        with pytest.raises(ReadinessTimeout) as info:
            await wait_ready(node, host)
        assert anyio.current_time() - t0 == pytest.approx(3.0)
        assert host.execs[-1] - t0 == pytest.approx(3.0), "one last try at the deadline"
        assert info.value.reason == (f"readiness probe exec check did not pass within 3s ({len(host.execs)} tries); "
                                     "last: exec exited 1")

    async def test_start_period_then_retries(self, write_datums: WriteDatums) -> None:
        node = node_with(write_datums, 'exec = ["check"]\nstart_period_ms = 2000\nretries = 3\ntimeout_ms = 60000')
        t0 = anyio.current_time()
        host = Host(exec_codes=(1,))
        with pytest.raises(ReadinessTimeout) as info:
            await wait_ready(node, host)
        at = [t - t0 for t in host.execs]
        counted = [t for t in at if t >= 2.0]
        assert len(counted) == 4, "failures from the end of the start period on: one try and three retries"
        assert at[-1] < 2.0 + 4 * 0.3, "retries run at the backoff pace after the start period"
        assert "failed 4 times (retries = 3)" in info.value.reason

    async def test_a_probe_passing_within_the_start_period_is_ready(self, write_datums: WriteDatums) -> None:
        node = node_with(write_datums, 'exec = ["check"]\nstart_period_ms = 5000\nretries = 0')
        t0 = anyio.current_time()
        host = Host(ready_at=t0 + 4.0)
        assert await wait_ready(node, host) == "exec check"
        assert 4.0 <= host.execs[-1] - t0 <= 4.4
