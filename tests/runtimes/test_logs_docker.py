"""``logs`` and ``exec`` on a real container (the local busybox test image), through the real CLI."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.procutil import cli, cli_popen, wait_for

pytestmark = pytest.mark.docker


class Setup:
    def __init__(self, root: Path, prefix: str, image: str) -> None:
        self.folder = root / "datums"
        self.state = root / "state"
        self.folder.mkdir()
        self.state.mkdir()
        self.name = f"{prefix}-box"
        self.ident = f"{self.name}.docker"
        script = "echo one; sleep 0.3; echo two >&2; exec sleep 3600"
        (self.folder / f"{self.ident}.toml").write_text(
            f'[b00t]\nname = "{self.name}"\ntype = "docker"\nimage = "{image}"\nstop_grace_ms = 1000\n'
            f'command = {json.dumps(["sh", "-c", script])}\ndocker_args = ["--init"]\n')
        # a process that prints once, a second after the container started: later than both its lines
        (self.folder / "proc.process.toml").write_text(
            '[b00t]\nname = "proc"\ntype = "process"\nstop_grace_ms = 1000\n'
            f'depends_on = ["{self.ident}"]\n'
            f'command = {json.dumps(["sh", "-c", "sleep 1; echo p-line; exec sleep 60"])}\n')

    def cli(self, cmd: str, *args: str, env: dict[str, str] | None = None,
            backend: str = "asyncio") -> tuple[int, str, str]:
        r = cli(cmd, "-d", str(self.folder), *args, state_dir=self.state, env=env, timeout=90, backend=backend)
        assert "Traceback" not in r.stderr, r.stderr
        return r.returncode, r.stdout, r.stderr


@pytest.fixture
def box(tmp_path: Path, prefix: str, test_image: str) -> Iterator[Setup]:
    s = Setup(tmp_path, prefix, test_image)
    try:
        code, _, err = s.cli("up", "proc", "-q")
        assert code == 0, err
        yield s
    finally:
        s.cli("down", "proc", "-q")


def rows(stdout: str) -> list[tuple[str, str]]:
    return [(n.strip(), t) for n, sep, t in (ln.partition(" | ") for ln in stdout.splitlines()) if sep]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_logs_of_a_container_and_a_process_in_one_stream(box: Setup, backend: str) -> None:
    wait_for(lambda: "p-line" in box.cli("logs", "proc")[1], timeout=60, what="the process's line")
    code, out, err = box.cli("logs", "proc", backend=backend)
    assert code == 0, err
    assert rows(out) == [(box.ident, "one"), (box.ident, "two"), ("proc.process", "p-line")]
    code, out, _ = box.cli("logs", box.ident, "--tail", "1", backend=backend)
    assert rows(out) == [(box.ident, "two")]


def test_logs_follow_a_container(box: Setup) -> None:
    follower = cli_popen("logs", box.ident, "-f", "--tail", "0", "-d", str(box.folder), state_dir=box.state)
    try:
        assert follower.stdout is not None
        wait_for(lambda: box.cli("exec", box.ident, "--", "true")[0] == 0, what="exec works")
        # write to the container's own stdout (its PID 1's), as the service would
        code, _, err = box.cli("exec", box.ident, "--", "sh", "-c", "echo followed-line > /proc/1/fd/1")
        assert code == 0, err
        assert rows(follower.stdout.readline()) == [(box.ident, "followed-line")]
    finally:
        follower.send_signal(signal.SIGINT)
        _, err = follower.communicate(timeout=120)
    assert follower.returncode == 0, err


@pytest.mark.parametrize(("route", "backend"), [("docker-cli", "asyncio"), ("engine-api", "asyncio"),
                                               ("engine-api", "trio")])
def test_exec_propagates_the_exit_code_and_output(box: Setup, route: str, backend: str) -> None:
    env = None
    if route == "engine-api":
        # a PATH without the docker CLI: the Engine API's exec with attached output
        env = {"PATH": os.path.dirname(sys.executable)}
    elif shutil.which("docker") is None:
        pytest.skip("no docker CLI installed")
    code, out, err = box.cli("exec", box.ident, "--", "sh", "-c", "echo out-line; echo err-line >&2; exit 3",
                             env=env, backend=backend)
    assert code == 3, err
    assert "out-line" in out
    assert "err-line" in err or "err-line" in out  # `docker exec -i` keeps them apart too


def test_exec_when_the_container_is_not_running(tmp_path: Path, prefix: str, test_image: str) -> None:
    s = Setup(tmp_path, prefix, test_image)
    code, _, err = s.cli("exec", s.ident, "--", "true")
    assert code == 1 and "not running" in err and "b00t-graph up" in err


