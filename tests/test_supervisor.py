"""Supervision on real processes: crash → restarted with backoff, then failed; liveness; restart_dependents;
policy "no"; a `down` from another command left alone; ``up --attach`` ended by SIGINT. And the pure
decisions, without an event loop."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from b00t_graph import Engine, load_graph
from b00t_graph.errors import Problem
from b00t_graph.loader import structure_datum
from b00t_graph.model import Datum, RestartPolicy
from b00t_graph.supervisor import TERMINAL, Failure, Supervisor, next_delay, policy_of, supervisable, verdict
from tests.procutil import Reaper, alive, cli_popen, free_port, marks, q, records, wait_for

WriteDatums = Callable[..., Path]

#: Exits with code 3 after ``delay`` seconds (0: never); appends ``start NAME PID`` to the mark file.
#: ``--port`` serves /health: 200 until the file ``--sick`` exists, then 503; a fresh start removes it.
SCRIPT = r'''
import argparse, os, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
ap = argparse.ArgumentParser()
ap.add_argument("name"); ap.add_argument("--mark"); ap.add_argument("--after", type=float, default=0)
ap.add_argument("--port", type=int, default=0); ap.add_argument("--sick")
ap.add_argument("--code", type=int, default=3)
o = ap.parse_args()
with open(o.mark, "a") as fh:
    fh.write(f"start {o.name} {os.getpid()}\n")
if o.sick and os.path.exists(o.sick):
    os.unlink(o.sick)
print(f"{o.name}: up", flush=True)
if o.port:
    class H(BaseHTTPRequestHandler):
        def do_GET(self):
            code = 503 if o.sick and os.path.exists(o.sick) else 200
            self.send_response(code); self.send_header("Content-Length", "0"); self.end_headers()
        def log_message(self, *a): pass
    ThreadingHTTPServer(("127.0.0.1", o.port), H).serve_forever()
time.sleep(o.after or 1e9)
print(f"{o.name}: crashing", flush=True)
sys.exit(o.code)
'''


def datum(name: str, script: Path, mark: Path, *args: str, deps: tuple[str, ...] = (), restart: str = "",
          port: int | None = None, extra: str = "") -> str:
    argv = [str(script), name, f"--mark={mark}", *([f"--port={port}"] if port else []), *args]
    text = (f'[b00t]\nname = {q(name)}\ntype = "process"\ncommand = [{q(sys.executable)}]\n'
            f"args = [{', '.join(q(a) for a in argv)}]\nstop_grace_ms = 2000\n{extra}")
    if deps:
        text += "depends_on = [" + ", ".join(q(d) for d in deps) + "]\n"
    if port:
        text += (f'[b00t.health_check]\nhttp_url = "http://127.0.0.1:{port}/health"\ntimeout_ms = 10000\n'
                 "interval_ms = 100\n")
    if restart:
        text += f"[b00t.restart]\n{restart}\n"
    return text


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "bin" / "crashy.py"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SCRIPT)
    return path


class Events:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, str]] = []

    def event(self, node: str, phase: str, detail: str = "") -> None:
        self.seen.append((node, phase, detail))

    def phases(self, node: str) -> list[str]:
        return [p for n, p, _ in self.seen if n == node and p != "probe"]


async def supervise(folder: Path, target: str, state_dir: Path, *, until: Callable[[Supervisor], bool] | None,
                    limit: float = 180.0) -> tuple[Supervisor, Events]:
    """Bring ``target`` up, supervise until every node is terminal (or ``until`` holds), then stop."""
    graph = load_graph([target], folder)
    events = Events()
    async with Engine(state_dir=state_dir, reporter=events) as engine:
        res = await engine.up(graph)
        assert res.ok, res.failures
        sup = Supervisor(engine, graph, supervisable(res), poll=0.05, rng=random.Random(1))
        with anyio.fail_after(limit):
            async with anyio.create_task_group() as tg:
                async def main() -> None:
                    await sup.run()
                    tg.cancel_scope.cancel()
                tg.start_soon(main)
                if until is not None:
                    while not until(sup):
                        await anyio.sleep(0.05)
                    tg.cancel_scope.cancel()
    return sup, events


# --- pure ------------------------------------------------------------------------------------------

class Fixed:
    def __init__(self, value: float) -> None:
        self.value = value

    def random(self) -> float:
        return self.value


def test_next_delay_doubles_to_the_cap_with_half_of_it_jittered() -> None:
    assert [next_delay(a, 0.5, 4.0, Fixed(1.0)) for a in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert [next_delay(a, 0.5, 4.0, Fixed(0.0)) for a in range(1, 5)] == [0.25, 0.5, 1.0, 2.0]
    rng = random.Random(7)
    for attempt in range(1, 200):
        d = next_delay(attempt, 0.1, 30.0, rng)
        step = min(30.0, 0.1 * 2 ** (attempt - 1))
        assert step / 2 <= d <= step
    assert len({next_delay(3, 1.0, 60.0, rng) for _ in range(20)}) > 1  # jitter: not all the same
    with pytest.raises(ValueError):
        next_delay(0, 1.0, 2.0, rng)


def test_verdict_follows_the_policy() -> None:
    crash, clean, sick = Failure("exited", "x", 3), Failure("exited", "x", 0), Failure("unhealthy", "x")
    assert verdict(RestartPolicy("no"), 0, crash) == "leave"
    assert verdict(RestartPolicy("on-failure"), 0, crash) == "restart"
    assert verdict(RestartPolicy("on-failure"), 0, clean) == "leave"
    assert verdict(RestartPolicy("on-failure"), 0, sick) == "restart"
    assert verdict(RestartPolicy("always"), 0, clean) == "restart"
    assert verdict(RestartPolicy("always", max_restarts=2), 1, crash) == "restart"
    assert verdict(RestartPolicy("always", max_restarts=2), 2, crash) == "failed"
    assert verdict(RestartPolicy("on-failure", max_restarts=0), 0, crash) == "failed"


def test_restart_table_and_b00t_lifecycle_restart_map_onto_the_policy() -> None:
    def load(b00t: dict[str, object]) -> tuple[Datum, list[Problem], list[Problem]]:
        doc = {"b00t": {"name": "a", "type": "process", "command": ["x"], **b00t}}
        d, problems, notes = structure_datum(doc, "a.process.toml")
        return d or Datum("a", "process", ""), problems, notes

    d, problems, _ = load({"restart": {"policy": "on-failure", "max_restarts": 2, "interval_ms": 100}})
    assert not problems and policy_of(d) == RestartPolicy("on-failure", max_restarts=2, interval_ms=100)
    d, _, _ = load({"lifecycle": {"restart": "always"}})
    assert policy_of(d).policy == "always"
    d, _, _ = load({"lifecycle": {"restart": "on-failure:7"}})
    assert policy_of(d) == RestartPolicy("on-failure", max_restarts=7)
    d, _, _ = load({})
    assert policy_of(d).policy == "no"
    _, problems, _ = load({"restart": {"policy": "sometimes"}})
    assert [p.key for p in problems] == ["b00t.restart.policy"]
    _, problems, _ = load({"restart": {"policy": "always", "max_restart": 1}})
    assert "max_restart" in problems[0].message


# --- real processes --------------------------------------------------------------------------------

@pytest.mark.anyio
async def test_a_crashing_process_is_restarted_with_backoff_then_fails(
        write_datums: WriteDatums, script: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    folder = write_datums({"crashy.process": datum(
        "crashy", script, mark, "--after=1", restart='policy = "on-failure"\nmax_restarts = 2\nbackoff_ms = 100')})
    reaper.down_on_exit(["crashy.process"], folder)
    sup, events = await supervise(folder, "crashy.process", state_dir, until=None)
    w = sup.watched["crashy.process"]
    assert w.status == "failed" and w.total_restarts == 2
    assert len(marks(mark)) == 3  # the first start and two restarts
    phases = events.phases("crashy.process")
    assert phases.count("restarting") == 2 and phases.count("restarted") == 2 and phases[-2:] == ["failed", "log"]
    assert "crashing" in w.log_tail
    assert "exited with code 3" in w.reason
    assert not any(alive(pid) for _, _, pid in marks(mark))


@pytest.mark.anyio
async def test_policy_no_leaves_a_crashed_process_alone(
        write_datums: WriteDatums, script: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    folder = write_datums({"once.process": datum("once", script, mark, "--after=1", restart='policy = "no"')})
    reaper.down_on_exit(["once.process"], folder)
    sup, events = await supervise(folder, "once.process", state_dir, until=None)
    assert sup.watched["once.process"].status == "exited"
    assert "restarting" not in events.phases("once.process")
    assert len(marks(mark)) == 1


@pytest.mark.anyio
async def test_a_down_from_another_command_is_not_undone(
        write_datums: WriteDatums, script: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    policy = 'policy = "always"\nbackoff_ms = 50'
    folder = write_datums({
        "db.process": datum("db", script, mark, port=free_port(), restart=policy),
        "app.process": datum("app", script, mark, port=free_port(), deps=("db.process",), restart=policy),
    })
    reaper.down_on_exit(["app.process"], folder)
    down: list[subprocess.Popen[str]] = []

    def taken_down(sup: Supervisor) -> bool:
        if not down:  # while the supervisor polls: it must wait for the down, not race it
            down.append(cli_popen("down", "app.process", "-q", "-d", str(folder), state_dir=state_dir))
            reaper.popens.append(down[0])
        return all(w.status in TERMINAL for w in sup.watched.values())

    sup, events = await supervise(folder, "app.process", state_dir, until=taken_down)
    assert down[0].wait(timeout=30) == 0, down[0].communicate()[1]
    assert {i: w.status for i, w in sup.watched.items()} == {"db.process": "stopped", "app.process": "stopped"}
    assert not any(p in ("restarting", "restarted") for _, p, _ in events.seen), events.seen
    assert sorted(name for _, name, _ in marks(mark)) == ["app", "db"]  # nothing started again
    assert records(state_dir) == {}


@pytest.mark.anyio
async def test_an_unhealthy_process_is_restarted_by_liveness(
        write_datums: WriteDatums, script: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark, sick = tmp_path / "mark", tmp_path / "sick"
    folder = write_datums({"web.process": datum(
        "web", script, mark, f"--sick={sick}", port=free_port(),
        restart='policy = "on-failure"\ninterval_ms = 100\nfailure_threshold = 2\nbackoff_ms = 50')})
    reaper.down_on_exit(["web.process"], folder)

    def sick_then_restarted(sup: Supervisor) -> bool:
        if len(marks(mark)) == 1 and not sick.exists():
            sick.write_text("")  # from now on it answers 503; the next start clears it
        return len(marks(mark)) == 2 and sup.watched["web.process"].status == "running"

    sup, events = await supervise(folder, "web.process", state_dir, until=sick_then_restarted)
    assert events.phases("web.process").count("unhealthy") == 1
    assert any("liveness miss 2/2: HTTP 503" in d for n, p, d in events.seen if p == "probe")
    assert sup.watched["web.process"].total_restarts == 1
    first, second = (pid for _, _, pid in marks(mark))
    assert not alive(first) and alive(second)


@pytest.mark.anyio
async def test_restart_dependents_are_restarted_in_order_others_only_probed(
        write_datums: WriteDatums, script: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    policy = 'policy = "always"\nbackoff_ms = 50'
    folder = write_datums({
        "db.process": datum("db", script, mark, port=free_port(), restart=policy),
        "app.process": datum("app", script, mark, port=free_port(), deps=("db.process",), restart=policy,
                             extra="restart_dependents = true\n"),
        "report.process": datum("report", script, mark, port=free_port(), deps=("db.process",), restart=policy),
        "top.stack": '[b00t]\nname = "top"\ntype = "stack"\nmembers = ["app.process", "report.process"]\n',
    })
    reaper.down_on_exit(["top.stack"], folder)
    db_pid: list[int] = []

    def killed_then_back(sup: Supervisor) -> bool:
        if not db_pid:
            db_pid.append(int(records(state_dir)["db.process"]["pid"]))
            os.kill(db_pid[0], signal.SIGKILL)
        return sup.watched["db.process"].total_restarts == 1 and all(
            w.status == "running" for w in sup.watched.values())

    sup, events = await supervise(folder, "top.stack", state_dir, until=killed_then_back)
    starts = [name for what, name, _ in marks(mark) if what == "start"]
    assert sorted(starts[:3]) == ["app", "db", "report"] and starts[0] == "db"
    assert starts[3:] == ["db", "app"]  # app declares restart_dependents: after db, in order; report only probed
    assert sup.restarted == ["db.process", "app.process"]
    assert "restarted" in events.phases("app.process") and "restarted" not in events.phases("report.process")


# --- up --attach -----------------------------------------------------------------------------------

@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_up_attach_restarts_then_sigint_takes_down_what_it_started(
        write_datums: WriteDatums, script: Path, state_dir: Path, reaper: Reaper, tmp_path: Path,
        backend: str) -> None:
    mark = tmp_path / "mark"
    folder = write_datums({
        "db.process": datum("db", script, mark, port=free_port()),
        "app.process": datum("app", script, mark, port=free_port(), deps=("db.process",),
                             restart='policy = "always"\nbackoff_ms = 50'),
    })
    reaper.down_on_exit(["app.process"], folder)
    proc = cli_popen("up", "app.process", "-d", str(folder), "--attach", state_dir=state_dir, backend=backend)
    reaper.popens.append(proc)
    said: list[str] = []  # stderr as it comes: `up` says when supervision begins
    reader = threading.Thread(target=lambda: said.extend(iter(proc.stderr.readline, "")) if proc.stderr else None,
                              daemon=True)
    reader.start()

    def stderr_when_ended() -> str:
        proc.wait(timeout=120)
        reader.join(timeout=30)
        return "".join(said)

    try:
        wait_for(lambda: any(ln.startswith("supervising ") for ln in said), what="supervision to begin")
        assert len(marks(mark)) == 2 and records(state_dir).get("app.process", {}).get("ready") is True
        os.kill(int(records(state_dir)["app.process"]["pid"]), signal.SIGKILL)
        wait_for(lambda: len(marks(mark)) == 3, what="app restarted by the supervisor")
    except AssertionError:
        proc.send_signal(signal.SIGINT)
        raise AssertionError(stderr_when_ended()) from None
    wait_for(lambda: records(state_dir).get("app.process", {}).get("ready") is True, what="app ready again")
    proc.send_signal(signal.SIGINT)
    stderr = stderr_when_ended()
    assert proc.returncode == 0, stderr
    assert "app.process restarting" in stderr and "app.process restarted" in stderr
    assert not any(alive(pid) for _, _, pid in marks(mark)), stderr
    assert records(state_dir) == {}
