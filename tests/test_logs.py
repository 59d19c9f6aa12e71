"""``logs`` and ``exec`` on real processes, through the real entry point (``python -m b00t_graph``)."""

from __future__ import annotations

import json
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from b00t_graph.logstream import Line, ProcessLog, merge, parse_docker_line, parse_duration
from tests.procutil import Reaper, cli, cli_popen, wait_for


def shell_datum(name: str, script: str, deps: tuple[str, ...] = ()) -> str:
    lines = ["[b00t]", f'name = "{name}"', 'type = "process"', f"command = {json.dumps(['sh', '-c', script])}",
             "stop_grace_ms = 1000"]
    if deps:
        lines.append(f"depends_on = {json.dumps(list(deps))}")
    return "\n".join(lines) + "\n"


def rows(stdout: str) -> list[tuple[str, str]]:
    """``node | text`` lines → (node, text)."""
    out = []
    for line in stdout.splitlines():
        node, sep, text = line.partition(" | ")
        if sep:
            out.append((node.strip(), text))
    return out


def _after(marker: str) -> str:
    """Shell: wait until the file ``marker`` exists (in the datum folder, the process's cwd)."""
    return f"while [ ! -e {marker} ]; do sleep 0.05; done; sleep 0.3"


@pytest.fixture
def two(write_datums: Callable[..., Path], state_dir: Path, reaper: Reaper, tmp_path: Path) -> Path:
    """By time a1, b1, a2 however loaded the machine: each waits on the other's file, then 0.3 s more."""
    said = tmp_path / "said"
    said.mkdir()
    wait = "while [ ! -e {} ]; do sleep 0.02; done; sleep 0.3"
    d = write_datums({
        "a.process": shell_datum("a", f"echo a1; touch {said}/a1; {wait.format(said / 'b1')}; echo a2; exec sleep 60"),
        "b.process": shell_datum("b", f"{wait.format(said / 'a1')}; echo b1; touch {said}/b1; exec sleep 60"),
    })
    reaper.down_on_exit(["a.process", "b.process"], d)
    r = cli("up", "a", "b", "-d", str(d), "-q", state_dir=state_dir)
    assert r.returncode == 0, r.stderr
    wait_for(lambda: "a2" in (state_dir / "process" / "a.process.log").read_text(), what="a2 written", timeout=30)
    return d


def _stamps(stdout: str) -> dict[str, float]:
    """``logs -t`` lines → text → the printed time (epoch seconds; printed in local time, to the ms)."""
    import datetime as dt

    out = {}
    for _, text in rows(stdout):
        stamp, _, line = text.partition(" ")
        out[line] = dt.datetime.fromisoformat(stamp).timestamp()
    return out


def test_a_line_carries_its_write_time_for_logs_t_and_since(write_datums: Callable[..., Path], state_dir: Path,
                                                            reaper: Reaper) -> None:
    """A long first line, then two short ones written on cue: an estimate by offset would put the
    middle line near the last one; its stamp is when it was written."""
    d = write_datums({"w.process": shell_datum(
        "w", f"echo {'x' * 2000}; {_after('go2')}; echo middle; {_after('go3')}; echo last; exec sleep 60")})
    reaper.down_on_exit(["w.process"], d)
    assert cli("up", "w", "-d", str(d), "-q", state_dir=state_dir).returncode == 0
    log = state_dir / "process" / "w.process.log"
    times = {}
    for cue, line in (("go2", "middle"), ("go3", "last")):
        time.sleep(1.0)
        before = time.time()
        (d / cue).touch()
        wait_for(lambda line=line: line in log.read_text(), what=f"{line} written", timeout=30)
        times[line] = (before, time.time())

    r = cli("logs", "-t", "w", "-d", str(d), state_dir=state_dir)
    assert r.returncode == 0, r.stderr
    printed = _stamps(r.stdout)
    assert list(printed) == ["x" * 2000, "middle", "last"]
    for line, (before, after) in times.items():
        assert before <= printed[line] + 0.001 and printed[line] <= after + 0.001, (line, before, printed, after)

    async def since(cut: float) -> list[str]:
        src = ProcessLog("w.process", log, log.with_suffix(".json"))
        return [ln.text for ln in await src.history(cut, None)]

    # cut between the middle line's write and the last's: only the last is newer
    assert anyio.run(since, times["last"][0]) == ["last"]
    assert anyio.run(since, times["middle"][0]) == ["middle", "last"]
    r = cli("logs", "w", "-d", str(d), "--since", "1h", state_dir=state_dir)
    assert [t for _, t in rows(r.stdout)] == ["x" * 2000, "middle", "last"]


def test_logs_interleaves_two_processes_by_time(two: Path, state_dir: Path) -> None:
    # asked for b first: the order must still be by time, each line prefixed by its node
    r = cli("logs", "b", "a", "-d", str(two), state_dir=state_dir)
    assert r.returncode == 0, r.stderr
    assert rows(r.stdout) == [("a.process", "a1"), ("b.process", "b1"), ("a.process", "a2")]
    # without a target: every process recorded in the state dir, the same order
    r = cli("logs", state_dir=state_dir)
    assert rows(r.stdout) == [("a.process", "a1"), ("b.process", "b1"), ("a.process", "a2")]


def test_logs_tail_is_per_node(two: Path, state_dir: Path) -> None:
    r = cli("logs", "a", "b", "-d", str(two), "--tail", "1", state_dir=state_dir)
    assert r.returncode == 0, r.stderr
    assert rows(r.stdout) == [("b.process", "b1"), ("a.process", "a2")]
    r = cli("logs", "a", "-d", str(two), "--since", "bogus", state_dir=state_dir)
    assert r.returncode == 2 and "duration" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("with_target", [True, False], ids=["target", "everything"])
def test_logs_follow_shows_a_node_started_later(write_datums: Callable[..., Path], state_dir: Path,
                                                reaper: Reaper, with_target: bool) -> None:
    d = write_datums({
        "early.process": shell_datum("early", "echo early-line; exec sleep 60"),
        "late.process": shell_datum("late", "echo late-1; sleep 0.3; echo late-2; exec sleep 60"),
    })
    reaper.down_on_exit(["early.process", "late.process"], d)
    assert cli("up", "early", "-d", str(d), "-q", state_dir=state_dir).returncode == 0
    args = ["logs", "-f", *(["early", "late", "-d", str(d)] if with_target else [])]
    follower = cli_popen(*args, state_dir=state_dir)
    reaper.popens.append(follower)
    assert follower.stdout is not None
    stream = follower.stdout
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in iter(stream.readline, "")] + [lines.put("")],
                     daemon=True).start()

    def ours(count: int) -> list[tuple[str, str]]:
        """The next ``count`` lines of this test's nodes (without a target, every container b00t-graph
        manages on the engine is followed too: other tests' among them)."""
        got: list[tuple[str, str]] = []
        while len(got) < count:
            try:
                line = lines.get(timeout=30)
            except queue.Empty:
                raise AssertionError(f"logs -f printed nothing more of ours in 30 s (got {got})") from None
            assert line, "logs -f ended"
            got += [r for r in rows(line) if r[0] in ("early.process", "late.process")]
        return got

    assert ours(1) == [("early.process", "early-line")]
    # late starts only now, after `logs -f` began
    assert cli("up", "late", "-d", str(d), "-q", state_dir=state_dir).returncode == 0
    assert ours(2) == [("late.process", "late-1"), ("late.process", "late-2")]
    follower.send_signal(signal.SIGINT)
    _, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err  # Ctrl-C ends following normally
    assert "Traceback" not in err


def test_exec_refuses_a_process_node(two: Path, state_dir: Path) -> None:
    r = cli("exec", "a", "-d", str(two), "--", "ls", state_dir=state_dir)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: a.process: exec is for containers (a process node)"


def test_logs_of_a_node_with_nothing_to_run_is_exit_2(write_datums: Callable[..., Path],
                                                      state_dir: Path) -> None:
    d = write_datums({"s.stack": '[b00t]\nname = "s"\ntype = "stack"\n'})
    r = cli("logs", "s", "-d", str(d), state_dir=state_dir)
    assert r.returncode == 2 and "no logs" in r.stderr


def test_pure_helpers() -> None:
    assert parse_duration("90") == 90 and parse_duration("1h30m") == 5400 and parse_duration("250ms") == 0.25
    for bad in ("", "5x", "m5", "1h 2m"):
        with pytest.raises(ValueError):
            parse_duration(bad)
    ts, text = parse_docker_line("2024-05-01T10:00:00.5Z hello world") or (0.0, "")
    assert text == "hello world" and ts == 1714557600.5
    assert parse_docker_line("no stamp") is None
    # a node's own order is kept when two of its lines share a time
    lines = merge([[Line(2.0, "x", "x1"), Line(2.0, "x", "x2")], [Line(1.0, "y", "y1")]])
    assert [ln.text for ln in lines] == ["y1", "x1", "x2"]


def test_followed_process_log_reads_a_restart_from_its_start(tmp_path: Path) -> None:
    import anyio

    from b00t_graph.logstream import ProcessLog

    log = tmp_path / "n.log"
    log.write_text("one\ntwo\npart")
    src = ProcessLog("n", log, tmp_path / "n.json")

    async def go() -> None:
        assert [ln.text for ln in await src.history(None, None)] == ["one", "two"]
        with open(log, "a") as fh:
            fh.write("ial\nthree\n")
        assert [ln.text for ln in await src.poll()] == ["partial", "three"]
        log.write_text("again\n")  # a restart truncates the file
        assert [ln.text for ln in await src.poll()] == ["again"]

    anyio.run(go)


