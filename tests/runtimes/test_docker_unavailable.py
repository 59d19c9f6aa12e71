"""No Docker engine where DOCKER_HOST points: the docker runtime and the CLI say so, with what was tried.

Not marked ``docker``: these tests point DOCKER_HOST at a socket or port where nothing listens, so they
need no engine and run (and must pass) on every machine, with or without one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from b00t_graph.errors import EXIT_RUNTIME, RuntimeUnavailable
from b00t_graph.graph import compile_graph
from b00t_graph.loader import Source, load_catalog
from b00t_graph.runtimes.docker import DockerRuntime
from tests.procutil import cli, free_port

DATUM = '[b00t]\nname = "b00tgt-nowhere"\ntype = "docker"\nimage = "busybox"\n'


@pytest.mark.anyio
@pytest.mark.parametrize("host", ["unix:///nonexistent.sock", "tcp://127.0.0.1:{port}"])
async def test_unreachable_engine_is_runtime_unavailable(write_datums: Callable[..., Path],
                                                         monkeypatch: pytest.MonkeyPatch, host: str) -> None:
    host = host.format(port=free_port())
    monkeypatch.setenv("DOCKER_HOST", host)
    folder = write_datums({"b00tgt-nowhere.docker": DATUM})
    node = compile_graph(load_catalog([Source(folder, "test")]), ["b00tgt-nowhere.docker"],
                         environ={}).nodes["b00tgt-nowhere.docker"]
    rt = DockerRuntime()
    t0 = time.monotonic()
    try:
        with pytest.raises(RuntimeUnavailable) as info:
            await rt.observe([node])
    finally:
        await rt.aclose()
    assert time.monotonic() - t0 < 5
    err = info.value
    assert err.runtime == "docker" and err.exit_code == EXIT_RUNTIME
    assert [t.split(" (")[0] for t in err.tried] == [f"DOCKER_HOST={host}"]
    assert str(err).startswith("docker runtime unavailable: ")
    assert f"tried DOCKER_HOST={host}" in str(err)


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_cli_without_an_engine_exits_1_naming_what_was_tried(write_datums: Callable[..., Path], state_dir: Path,
                                                             command: str) -> None:
    folder = write_datums({"b00tgt-nowhere.docker": DATUM})
    host = "unix:///nonexistent.sock"
    proc = cli(command, "b00tgt-nowhere.docker", "-d", str(folder), state_dir=state_dir,
               env={"DOCKER_HOST": host})
    assert proc.returncode == EXIT_RUNTIME, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [f"error: docker runtime unavailable: no Docker or Podman engine answered; "
                      f"tried DOCKER_HOST={host} (No such file or directory)"], proc.stderr
