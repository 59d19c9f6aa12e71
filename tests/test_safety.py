"""What a datum may do to the host is said before it runs: privileged nodes marked in ``plan`` (text and
JSON) and noted by ``validate``, refused by ``up --deny-privileged``; a process's ``cwd`` resolved against
its folder and shown; control characters from datums escaped in everything printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from b00t_graph import safety
from b00t_graph.cli import main
from b00t_graph.graph import compile_graph
from b00t_graph.loader import Source, load_catalog


@pytest.fixture(autouse=True)
def _clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, state_dir: Path) -> None:
    for var in ("_B00T_Path", "B00T_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(tmp_path)


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


def write(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for ident, text in files.items():
        (folder / f"{ident}.toml").write_text(text)
    return folder


def docker(*args: str, volumes: tuple[str, ...] = ()) -> str:
    return (f"[b00t]\nimage = 'busybox'\ndocker_args = {json.dumps(list(args))}\n"
            + (f"volumes = {json.dumps(list(volumes))}\n" if volumes else ""))


def concerns(tmp_path: Path, text: str, ident: str = "svc.docker") -> list[str]:
    folder = write(tmp_path / "d", {ident: text})
    graph = compile_graph(load_catalog([Source(folder, "test")]), [ident])
    return [c.what for c in safety.privileged(graph.nodes[ident])]


@pytest.mark.parametrize("args, volumes, expected", [
    (("--privileged",), (), ["--privileged"]),
    (("--cap-add", "SYS_ADMIN", "--cap-add=NET_ADMIN"), (), ["--cap-add SYS_ADMIN", "--cap-add NET_ADMIN"]),
    (("--pid=host",), (), ["--pid host"]),
    (("--network", "host"), (), ["--network host"]),
    (("--ipc", "host"), (), ["--ipc host"]),
    (("--userns", "host"), (), ["--userns host"]),
    (("--uts", "host"), (), ["--uts host"]),
    (("-v", "/:/host:ro"), (), ["mounts the host's root filesystem (/)"]),
    (("-v", "/var/run/docker.sock:/var/run/docker.sock"), (), ["mounts the container engine's socket "
                                                               "/var/run/docker.sock"]),
    (("--mount", "type=bind,source=/run/docker.sock,target=/s"), (), ["mounts the container engine's socket "
                                                                      "/run/docker.sock"]),
    ((), ("/var/run:/r",), ["mounts /var/run, which holds the container engine's socket"]),
    (("--security-opt", "seccomp=unconfined"), (), ["--security-opt seccomp=unconfined"]),
    (("-v", "/proc:/hostproc"), (), ["mounts the host's /proc"]),
], ids=lambda x: str(x)[:40])
def test_privileged_flags_are_named(tmp_path: Path, args: tuple[str, ...], volumes: tuple[str, ...],
                                    expected: list[str]) -> None:
    assert concerns(tmp_path, docker(*args, volumes=volumes)) == expected


@pytest.mark.parametrize("args", [
    (), ("-p", "8080:80", "-v", "data:/data", "-v", "./conf:/etc/app:ro", "--network", "bridge",
         "--cap-drop", "ALL", "--pid", "container:other", "-v", "/srv/data:/data2"),
], ids=["nothing", "ordinary flags"])
def test_ordinary_containers_are_not_privileged(tmp_path: Path, args: tuple[str, ...]) -> None:
    assert concerns(tmp_path, docker(*args)) == []


def test_sudo_in_a_process_command_is_privileged(tmp_path: Path) -> None:
    assert concerns(tmp_path, "[b00t]\ncommand = 'sudo -n python3 -m http.server'\n", "svc.process") == [
        "runs as another user (root) through sudo"]
    assert concerns(tmp_path, "[b00t]\ncommand = 'python3 -m http.server'\n", "svc.process") == []


HOSTILE = {
    "priv.docker": docker("--privileged", "--pid=host", "-v", "/var/run/docker.sock:/var/run/docker.sock"),
    "plain.docker": docker("-p", "8080:80"),
    "esc.process": "[b00t]\ncommand = ['sh', '-c', \"echo ok\\u001b[2K\\rrm -rf ~\"]\ncwd = '../../..'\n"
                   "hint = \"fine \\u001b[31mred\\u001b[0m \\u202eevil\"\n[b00t.env]\nX = \"a\\u001b]0;t\\u0007b\"\n",
    "sub.process": "[b00t]\ncommand = ['true']\ncwd = 'sub/dir'\n",
}


def node_json(data: dict[str, Any], ident: str) -> dict[str, Any]:
    node: dict[str, Any] = next(n for n in data["nodes"] if n["id"] == ident)
    return node


def test_plan_marks_privileged_nodes_and_shows_cwd(tmp_path: Path) -> None:
    d = write(tmp_path / "datums", HOSTILE)
    res = invoke("plan", "priv.docker", "plain.docker", "esc.process", "sub.process", "-d", str(d), "--offline")
    assert res.exit_code == 0, res.output
    lines = [" ".join(line.replace("│", " ").replace("├──", " ").replace("└──", " ").split())
             for line in res.stdout.splitlines()]
    assert "priv.docker [docker] #1 privileged" in lines
    assert "privileged: --privileged; --pid host; mounts the container engine's socket /var/run/docker.sock" in lines
    assert "plain.docker [docker] #2" in lines  # no marker
    assert f"cwd: {d.parents[2]} (outside the datum's folder)" in lines  # '../../..' from the datum's folder
    assert f"cwd: {d / 'sub' / 'dir'}" in lines

    data = json.loads(invoke("plan", "priv.docker", "plain.docker", "esc.process", "sub.process", "-d", str(d),
                             "--offline", "--json").stdout)
    assert node_json(data, "priv.docker")["privileged"] == [
        "--privileged", "--pid host", "mounts the container engine's socket /var/run/docker.sock"]
    assert node_json(data, "plain.docker")["privileged"] == []
    esc = node_json(data, "esc.process")
    assert esc["cwd"] == str(d.parents[2]) and esc["cwd_outside_folder"] is True
    sub = node_json(data, "sub.process")
    assert sub["cwd"] == str(d / "sub" / "dir") and sub["cwd_outside_folder"] is False
    assert node_json(data, "priv.docker")["cwd"] is None


def test_validate_notes_privileges_and_a_cwd_outside_the_folder(tmp_path: Path) -> None:
    d = write(tmp_path / "datums", HOSTILE)
    res = invoke("validate", str(d))
    assert res.exit_code == 0, res.output  # notes, not errors
    out = res.stdout
    assert f"note: {d}/priv.docker.toml: b00t.docker_args: runs privileged: --privileged" in out
    assert f"note: {d}/priv.docker.toml: b00t.docker_args: runs privileged: --pid host" in out
    assert f"note: {d}/esc.process.toml: b00t.cwd: '../../..' resolves to {d.parents[2]}, outside" in out
    assert "plain.docker.toml: b00t.docker_args: runs privileged" not in out
    assert "sub.process.toml: b00t.cwd" not in out


def test_up_deny_privileged_refuses_before_anything_starts(tmp_path: Path, state_dir: Path) -> None:
    d = write(tmp_path / "datums", {**HOSTILE, "all.stack": "[b00t]\nmembers = ['priv.docker', 'sub.process']\n"})
    res = invoke("up", "all", "-d", str(d), "--deny-privileged")
    assert res.exit_code == 2
    assert res.stderr.strip() == ("error: --deny-privileged: refusing 1 privileged node(s): priv.docker "
                                  "(--privileged; --pid host; mounts the container engine's socket "
                                  "/var/run/docker.sock)")
    assert not (state_dir / "process").exists()  # sub.process was not started either


def test_up_deny_privileged_lets_an_ordinary_graph_through(tmp_path: Path, state_dir: Path) -> None:
    d = write(tmp_path / "datums", {"ok.stack": "[b00t]\nmembers = []\n"})
    assert invoke("up", "ok", "-d", str(d), "--deny-privileged", "-q").exit_code == 0


# --- control characters ------------------------------------------------------------------------------

def no_controls(text: str) -> None:
    bad = sorted({f"{ord(c):#x}" for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f
                  or c == "\u202e"})
    assert not bad, f"control characters printed raw: {bad}"


def test_plan_escapes_control_characters(tmp_path: Path) -> None:
    d = write(tmp_path / "datums", HOSTILE)
    res = invoke("plan", "esc.process", "-d", str(d), "--offline")
    assert res.exit_code == 0, res.output
    no_controls(res.stdout)
    assert "command sh -c 'echo ok\\x1b[2K\\rrm -rf ~'" in res.stdout
    assert "hint: fine \\x1b[31mred\\x1b[0m \\u202eevil" in res.stdout
    assert "X=a\\x1b]0;t\\x07b" in res.stdout
    raw = invoke("plan", "esc.process", "-d", str(d), "--offline", "--json").stdout
    no_controls(raw)
    assert json.loads(raw)["env"]["X"] == "a\x1b]0;t\x07b"  # JSON keeps the value exact, escaped


def test_validate_ls_and_errors_escape_control_characters(tmp_path: Path) -> None:
    d = write(tmp_path / "datums", {
        **HOSTILE,
        "esc\x1bname.process": "[b00t]\ncommand = ['true']\n",  # a file name is datum content too
        "bad.process": "[b00t]\ncommand = ['true']\n\"k\\u001b[2J\" = 1\n[b00t.health_check]\n"
                       "\"typo\\u001b[1A\" = 1\n",
    })
    for args in (("validate", str(d)), ("validate", "-v", str(d)), ("ls", "-d", str(d)),
                 ("plan", "bad", "-d", str(d), "--offline"), ("plan", "escname", "-d", str(d), "--offline")):
        res = invoke(*args)
        no_controls(res.stdout)
        no_controls(res.stderr)
    res = invoke("plan", "bad", "-d", str(d), "--offline")
    assert res.exit_code == 2
    assert "unknown key(s): typo\\x1b[1A" in res.stderr
    assert "esc\\x1bname.process" in invoke("ls", "-d", str(d)).stderr  # a broken datum, named on stderr
