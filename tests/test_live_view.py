"""The live view of ``up`` on a real pseudo-terminal (pexpect), its screen rendered by pyte.

The stack: three quick nodes, ``slow`` (serves HTTP 3 s after it starts, probed meanwhile) and eight
nodes waiting on it, in a stack: thirteen rows and a summary on a 12-row terminal, so finished
rows must collapse for the waiting ones to stay visible.
"""

from __future__ import annotations

import io
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pexpect
import pyte
import pytest
from rich.console import Console

from b00t_graph.graph import compile_graph
from b00t_graph.loader import datum_dirs, load_catalog
from b00t_graph.progress import ProgressReporter
from tests.procutil import Reaper, cli, cli_env, free_port, process_datum, stack_datum

QUICK = ["q1", "q2", "q3"]
PENDING = [f"p{i}" for i in range(1, 9)]


@pytest.fixture
def gate(tmp_path: Path) -> Path:
    """Slow boots 3 s and then until this file exists: a test that must watch it probing opens it when it
    has seen enough, however slow the machine is."""
    return tmp_path / "slow-may-finish-booting"


@pytest.fixture
def stack(write_datums: Callable[..., Path], svc: Path, reaper: Reaper, gate: Path) -> Path:
    files = {f"{n}.process": process_datum(n, svc) for n in QUICK}
    port = free_port()
    files["slow.process"] = process_datum("slow", svc, "--boot=3", f"--wait-for={gate}", port=port,
                                          deps=["q1.process"], env={"SLOW_URL": f"http://127.0.0.1:{port}/"},
                                          timeout_ms=120_000)
    files |= {f"{n}.process": process_datum(n, svc, deps=["slow.process"]) for n in PENDING}
    files["all.stack"] = stack_datum("all", [f"{n}.process" for n in [*QUICK, "slow", *PENDING]])
    d = write_datums(files)
    reaper.down_on_exit(["all.stack"], d)
    return d


def _slow_row(screen: list[str]) -> tuple[float, str] | None:
    for line in screen:
        m = re.match(r"slow\.process\s+probing\s+(\d+\.\d)s\s+(.*)", line.strip())
        if m:
            return float(m.group(1)), m.group(2)
    return None


def test_live_view_ticks_and_keeps_pending_rows_visible(stack: Path, state_dir: Path, gate: Path) -> None:
    screen = pyte.HistoryScreen(80, 12, history=1000)
    feed = pyte.ByteStream(screen)
    env = {**cli_env(state_dir), "TERM": "xterm-256color"}
    for stale in ("COLUMNS", "LINES"):  # pytest-xdist workers carry LINES=24 COLUMNS=80
        env.pop(stale, None)
    child = pexpect.spawn(sys.executable, ["-m", "b00t_graph", "up", "all", "-d", str(stack)], env=env,
                          dimensions=(12, 80), cwd=str(state_dir.parent))
    probing: list[tuple[float, list[str]]] = []  # (when, screen) while slow is probing
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                feed.feed(child.read_nonblocking(65536, timeout=0.1))
            except pexpect.TIMEOUT:
                pass
            except pexpect.EOF:
                break
            shot = list(screen.display)
            # a whole frame only (the summary on the top row), not one read halfway through its redraw
            if shot[0].startswith("b00t-graph up:") and _slow_row(shot) is not None:
                probing.append((time.monotonic(), shot))
                if probing[-1][0] - probing[0][0] >= 1.5 and "try" in (_slow_row(shot) or (0, ""))[1]:
                    gate.touch()
        child.close()
    finally:
        if child.isalive():
            child.terminate(force=True)
    assert child.exitstatus == 0, "\n".join(screen.display)
    assert probing, "the slow node was never seen probing"
    first_t, first = probing[0]
    later = [(t, s) for t, s in probing if t - first_t >= 1.0]
    assert later, "slow was seen probing for less than a second"
    last = later[-1][1]
    t1, _ = _slow_row(first) or (0.0, "")
    t2, detail2 = _slow_row(last) or (0.0, "")
    assert t2 > t1, "elapsed time did not advance:\n" + "\n".join(first) + "\n---\n" + "\n".join(last)
    assert re.search(r"try \d+: connection refused", detail2), detail2
    text = "\n".join(last)
    for name in PENDING:
        assert re.search(rf"{name}\.process\s+waiting\s+\S+\s+waiting on slow\.process", text), text
    assert re.search(r"all\.stack\s+waiting", text), text  # the last row, the first a naive view crops
    assert "3 finished row(s) hidden" in text, text
    # transient: no frame of the live view is left on the screen or in the scrollback
    history = [str("".join(ch.data for ch in line.values())) for line in screen.history.top]
    final = "\n".join([*history, *screen.display])
    assert "b00t-graph up: ready" not in final, final
    assert "next: b00t-graph logs all -f" in final


def test_not_a_tty_prints_timestamped_lines(stack: Path, state_dir: Path, gate: Path) -> None:
    gate.touch()  # slow boots its 3 s only
    r = cli("up", "all", "-d", str(stack), state_dir=state_dir, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    stamped = [ln for ln in lines if re.match(r"^\s*\d+\.\d\ds \S+ \w+", ln)]
    assert any(re.match(r"^\s*\d+\.\d\ds slow\.process probe: try \d+: connection refused$", ln) for ln in stamped)
    assert any(re.match(r"^\s*\d+\.\d\ds slow\.process ready", ln) for ln in stamped)
    assert "\x1b[" not in r.stderr  # no terminal control codes off a terminal
    # after up: where to reach what runs (its URL exports), then the next useful command
    assert re.search(r"^slow\.process +http://127\.0\.0\.1:\d+/$", r.stderr, re.MULTILINE), r.stderr
    assert lines[-1].startswith("next: b00t-graph logs all -f")


def test_up_logs_prints_a_failed_nodes_last_lines_at_once(write_datums: Callable[..., Path], svc: Path,
                                                          state_dir: Path, reaper: Reaper) -> None:
    d = write_datums({"bad.process": process_datum("bad", svc, "--exit=3", port=free_port()),
                      "ok.process": process_datum("ok", svc, "--boot=1", port=free_port())})
    reaper.down_on_exit(["bad.process", "ok.process"], d)
    r = cli("up", "bad", "ok", "-d", str(d), "--logs", state_dir=state_dir, timeout=60)
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    at = lines.index("bad.process: last 2 log line(s):")
    assert lines[at + 1:at + 3] == ["  bad.process | bad: starting", "  bad.process | boom"]
    # printed when bad failed, while ok was still starting: before ok's readiness and the timings
    ok_ready = next(i for i, ln in enumerate(lines) if re.match(r"^\s*\d+\.\d\ds ok\.process ready", ln))
    assert at < ok_ready


def test_narrow_terminal_cuts_the_detail_not_the_name(write_datums: Callable[..., Path], svc: Path) -> None:
    long = "a-rather-long-service-name"
    d = write_datums({f"{long}.process": process_datum(long, svc),
                      "w.process": process_datum("w", svc, deps=[f"{long}.process"])})
    graph = compile_graph(load_catalog(datum_dirs([str(d)])), ["w.process"])
    rep = ProgressReporter(graph, Console(file=io.StringIO()), live=False, quiet=True)
    rep.event(f"{long}.process", "probing", "http http://127.0.0.1:1/health → 200")
    rep.event(f"{long}.process", "probe", "try 4: connection refused")
    lines = [t.plain for t in rep.lines(width=50, height=12)]
    assert all(len(ln) <= 50 for ln in lines), lines
    assert any(ln.startswith(f"{long}.process  probing") for ln in lines), lines
    assert any(ln.startswith("w.process") and ln.endswith("…") for ln in lines), lines
    wide = [t.plain for t in rep.lines(width=140, height=12)]
    assert any(ln.startswith("w.process") and ln.endswith(f"waiting on {long}.process") for ln in wide), wide
    assert any(ln.endswith("try 4: connection refused · http http://127.0.0.1:1/health → 200") for ln in wide)
    assert lines[0].startswith("b00t-graph up: ready 0/2")


def test_a_failed_node_shows_its_last_lines_in_the_view(write_datums: Callable[..., Path], svc: Path) -> None:
    d = write_datums({"x.process": process_datum("x", svc), "y.process": process_datum("y", svc)})
    graph = compile_graph(load_catalog(datum_dirs([str(d)])), ["x.process", "y.process"])
    rep = ProgressReporter(graph, Console(file=io.StringIO()), live=False, quiet=True)
    rep.event("x.process", "probing", "")
    rep.event("x.process", "failed", "process exited with code 3")
    rep.event("x.process", "log", "one\ntwo\nthree\nboom")
    lines = [t.plain.rstrip() for t in rep.lines(width=80, height=12)]
    at = next(i for i, ln in enumerate(lines) if ln.startswith("x.process  failed"))
    assert [ln.strip() for ln in lines[at + 1:at + 4]] == ["| two", "| three", "| boom"]
    assert "failed 1" in lines[0]
