"""ps, orphans, safe down, stop and restart on real local processes (the CLI in subprocesses, the API on
asyncio and trio). Order is read from mark files the services append to (``start``/``term NAME PID``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from b00t_graph import restart, stop
from tests.procutil import Reaper, cli, free_port, marks, process_datum, records, stack_datum


def _shared(write_datums: Callable[..., Path], svc: Path, mark: Path) -> Path:
    """cache ← api (in api.stack) and cache ← other (in other.stack): cache is shared by both stacks."""
    m = f"--mark={mark}"
    return write_datums({
        "cache.process": process_datum("cache", svc, m, port=free_port()),
        "api.process": process_datum("api", svc, m, port=free_port(), deps=["cache.process"]),
        "other.process": process_datum("other", svc, m, port=free_port(), deps=["cache.process"]),
        "api.stack": stack_datum("api", ["api.process"]),
        "other.stack": stack_datum("other", ["other.process"]),
    })


def _chain(write_datums: Callable[..., Path], svc: Path, mark: Path, *, c_restarts: bool = False) -> Path:
    """a ← b ← c (c depends on b, b on a); ``c_restarts``: c declares ``restart_dependents = true``."""
    m = f"--mark={mark}"
    c = process_datum("c", svc, m, port=free_port(), deps=["b.process"])
    if c_restarts:
        c = c.replace('type = "process"\n', 'type = "process"\nrestart_dependents = true\n', 1)
    return write_datums({
        "a.process": process_datum("a", svc, m, port=free_port()),
        "b.process": process_datum("b", svc, m, port=free_port(), deps=["a.process"]),
        "c.process": c,
        "all.stack": stack_datum("all", ["c.process"]),
    })


def _up(folder: Path, state_dir: Path, *targets: str) -> None:
    for t in targets:
        proc = cli("up", t, "-q", "-d", str(folder), state_dir=state_dir)
        assert proc.returncode == 0, proc.stderr


def _terms(mark: Path) -> list[str]:
    return [name for what, name, _ in marks(mark) if what == "term"]


def test_down_of_one_stack_keeps_a_dependency_a_running_stack_still_needs(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _shared(write_datums, svc, mark)
    reaper.down_on_exit(["api.stack", "other.stack"], folder)
    _up(folder, state_dir, "api.stack", "other.stack")
    proc = cli("down", "other.stack", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
    assert "kept cache.process: api.process (running, not in this down) depends on it" in proc.stderr
    assert set(records(state_dir)) == {"cache.process", "api.process"}
    assert _terms(mark) == ["other"]


def test_down_force_stops_the_outside_dependent_first(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _shared(write_datums, svc, mark)
    reaper.down_on_exit(["api.stack", "other.stack"], folder)
    _up(folder, state_dir, "api.stack", "other.stack")
    proc = cli("down", "other.stack", "--force", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
    assert "stopped first api.process: depends on cache.process" in proc.stderr
    assert records(state_dir) == {}
    terms = _terms(mark)
    assert sorted(terms) == ["api", "cache", "other"]
    assert terms[-1] == "cache"  # never a dependency under a running dependent


def test_an_orphan_is_listed_by_ps_and_removed_by_down_orphans(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _shared(write_datums, svc, mark)
    reaper.down_on_exit(["api.stack"], folder)
    _up(folder, state_dir, "api.stack", "other.stack")
    (folder / "other.process.toml").unlink()  # its process keeps running: an orphan
    (folder / "other.stack.toml").unlink()
    proc = cli("ps", "--json", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
    items = {m["node"]: m for m in json.loads(proc.stdout)["items"] if m["runtime"] == "process"}
    assert set(items) == {"cache.process", "api.process", "other.process"}
    assert items["other.process"]["orphan"] is True and items["other.process"]["state"] == "running"
    assert items["api.process"]["orphan"] is False and items["api.process"]["health"] == "ready"
    assert items["api.process"]["drift"] is False
    assert "down --orphans" in proc.stderr
    # `status` with no target is the same listing
    st = cli("status", "-d", str(folder), state_dir=state_dir)
    assert st.returncode == 0 and "other.process" in st.stdout and "orphan" in st.stdout, st.stdout + st.stderr
    # containers other tests made on this engine are orphans to this folder too: only this test's names
    proc = cli("down", "--orphans", "*.process", "-d", str(folder), state_dir=state_dir,
               env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert proc.returncode == 0, proc.stderr
    assert "removed 1 orphan(s): other.process" in proc.stderr
    assert set(records(state_dir)) == {"cache.process", "api.process"}
    assert _terms(mark) == ["other"]


def test_ps_lists_processes_when_docker_is_unavailable_and_down_all_removes_everything(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    folder = _shared(write_datums, svc, tmp_path / "marks")
    nowhere = {"DOCKER_HOST": f"unix://{tmp_path}/no.sock"}
    empty = cli("ps", "-d", str(folder), state_dir=state_dir, env=nowhere)
    assert empty.returncode == 1 and "docker is unavailable" in empty.stderr, empty.stderr  # nothing listed
    reaper.down_on_exit(["api.stack", "other.stack"], folder)
    _up(folder, state_dir, "api.stack")
    proc = cli("ps", "-d", str(folder), state_dir=state_dir, env=nowhere)
    assert proc.returncode == 0, proc.stderr
    assert "api.process" in proc.stdout and "cache.process" in proc.stdout
    assert next(ln for ln in proc.stderr.splitlines() if "docker" in ln).startswith("warning: docker is unavailable")
    assert "Traceback" not in proc.stderr
    proc = cli("down", "--all", "*.process", "-d", str(folder), state_dir=state_dir, env=nowhere)
    assert proc.returncode == 0, proc.stderr
    assert records(state_dir) == {}


@pytest.mark.anyio
async def test_stop_stops_running_dependents_first(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _shared(write_datums, svc, mark)
    reaper.down_on_exit(["api.stack", "other.stack"], folder)
    await anyio.to_thread.run_sync(_up, folder, state_dir, "api.stack", "other.stack")
    out = await stop("cache", datums=folder, state_dir=state_dir)
    assert out.node == "cache.process" and sorted(out.dependents) == ["api.process", "other.process"]
    terms = _terms(mark)
    assert sorted(terms[:2]) == ["api", "other"] and terms[2:] == ["cache"]
    assert records(state_dir) == {}


@pytest.mark.anyio
async def test_restart_cascade_restarts_dependents_in_dependency_order(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _chain(write_datums, svc, mark)
    reaper.down_on_exit(["all.stack"], folder)
    reaper.mark_files.append(mark)
    await anyio.to_thread.run_sync(_up, folder, state_dir, "all.stack")
    before = {k: r["pid"] for k, r in records(state_dir).items()}
    mark.write_text("")
    out = await restart("a.process", cascade=True, datums=folder, state_dir=state_dir)
    assert out.restarted == ["a.process", "b.process", "c.process"] and out.reprobed == []
    assert [(what, name) for what, name, _ in marks(mark)] == [
        ("term", "c"), ("term", "b"), ("term", "a"), ("start", "a"), ("start", "b"), ("start", "c")]
    after = {k: r["pid"] for k, r in records(state_dir).items()}
    assert all(after[k] != before[k] for k in before)


@pytest.mark.anyio
async def test_restart_without_cascade_reprobes_dependents_and_restarts_those_that_ask(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _chain(write_datums, svc, mark, c_restarts=True)
    reaper.down_on_exit(["all.stack"], folder)
    reaper.mark_files.append(mark)
    await anyio.to_thread.run_sync(_up, folder, state_dir, "all.stack")
    before = {k: r["pid"] for k, r in records(state_dir).items()}
    mark.write_text("")
    out = await restart("a", datums=folder, state_dir=state_dir)
    assert out.restarted == ["a.process", "c.process"] and out.reprobed == ["b.process"]
    assert out.up is not None and out.up.timings["b.process"].status == "running"  # probed, left running
    assert out.up.timings["b.process"].ready is not None
    assert [(what, name) for what, name, _ in marks(mark)] == [
        ("term", "c"), ("term", "a"), ("start", "a"), ("start", "c")]
    after = {k: r["pid"] for k, r in records(state_dir).items()}
    assert after["b.process"] == before["b.process"] and after["a.process"] != before["a.process"]


def test_restart_cli_and_a_stack_is_not_restartable(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper, tmp_path: Path) -> None:
    mark = tmp_path / "marks"
    folder = _chain(write_datums, svc, mark)
    reaper.down_on_exit(["all.stack"], folder)
    _up(folder, state_dir, "all.stack")
    proc = cli("restart", "b.process", "-d", str(folder), state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
    assert "restarted b.process" in proc.stderr and "probed again: c.process" in proc.stderr
    bad = cli("restart", "all.stack", "-d", str(folder), state_dir=state_dir)
    assert bad.returncode == 2 and "runs nothing of its own to restart" in bad.stderr
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.anyio
async def test_restart_compiles_with_the_callers_environment(
        write_datums: Callable[..., Path], svc: Path, state_dir: Path, reaper: Reaper) -> None:
    folder = write_datums({"t.process": process_datum("t", svc, "--tag=${B00T_TEST_TAG:-unset}", port=free_port())})
    reaper.down_on_exit(["t.process"], folder)
    environ = {"B00T_TEST_TAG": "given"}
    out = await restart("t", datums=folder, state_dir=state_dir, environ=environ)
    assert out.restarted == ["t.process"]
    assert "--tag=given" in records(state_dir)["t.process"]["argv"]
    out_stop = await stop("t", datums=folder, state_dir=state_dir, environ=environ)
    assert out_stop.node == "t.process" and records(state_dir) == {}
