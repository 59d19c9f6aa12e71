"""Bad options with a real engine: a state dir under a file is refused before the engine is asked to do
anything, so no container, network or volume is left behind (it used to leave a Created container),
and ``down`` afterwards says the same one line instead of printing an exception group."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dockerutil import Engine
from tests.procutil import cli

pytestmark = pytest.mark.docker


def test_bad_state_dir_creates_nothing_in_the_engine(engine: Engine, test_image: str, prefix: str,
                                                     tmp_path: Path) -> None:
    folder = tmp_path / "datums"
    folder.mkdir()
    (folder / f"{prefix}-box.docker.toml").write_text(
        f"[b00t]\nimage = '{test_image}'\ncommand = ['sleep', '30']\n"
        f"docker_args = ['--network', '{prefix}-net', '-v', '{prefix}-vol:/data']\n")
    afile = tmp_path / "afile"
    afile.write_text("")
    bad = afile / "x"
    state = tmp_path / "state"
    for command in ("up", "down"):
        proc = cli(command, f"{prefix}-box", "-d", str(folder), "--state-dir", str(bad), state_dir=state,
                   timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip() == f"error: bad option --state-dir {bad}: {afile} is not a directory"
    assert engine.filtered("containers/json", {"name": [f"^/{prefix}"]}) == []
    assert engine.network(f"{prefix}-net") is None
    assert engine.volume(f"{prefix}-vol") is None
