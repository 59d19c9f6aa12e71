"""Projects (``-p/--project``, ``$B00T_PROJECT``, ``project=``), options before the subcommand, the walk-up
``_b00t_`` folder, target completion, ``--help`` examples and ``up --env`` formats.

Real processes, real subprocesses of the CLI; the API on asyncio and trio. Docker projects are in
``tests/runtimes/test_projects_docker.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.shell_completion import ShellComplete
from click.testing import CliRunner

from b00t_graph import api
from b00t_graph.cli import main
from b00t_graph.errors import InputError
from b00t_graph.loader import Source, datum_dirs
from b00t_graph.projects import check_project, project_state_dir
from tests.procutil import Reaper, alive, cli, free_port, q, records, wait_gone

WriteDatums = Callable[..., Path]


def web_datum(svc: Path) -> str:
    """``web.process`` whose port comes from ``$WEB_PORT``: one datum, a different port per run."""
    return "\n".join([
        "[b00t]", 'name = "web"', 'type = "process"', f"command = [{q(sys.executable)}]",
        f'args = [{q(svc)}, "web", "--port=${{WEB_PORT}}"]', "stop_grace_ms = 2000",
        "[b00t.health_check]", 'http_url = "http://127.0.0.1:${WEB_PORT}/health"', "timeout_ms = 10000",
        "interval_ms = 100",
        "[b00t.env]", 'WEB_URL = "http://127.0.0.1:${WEB_PORT}"',
    ]) + "\n"


@pytest.fixture
def reapers(state_dir: Path) -> Iterator[Callable[[str], Reaper]]:
    """One reaper per project state dir: ``down`` and SIGKILL whatever a test left in any project."""
    made: dict[str, Reaper] = {}

    def get(project: str) -> Reaper:
        return made.setdefault(project, Reaper(project_state_dir(state_dir, project or None)))

    yield get
    leaked = [pid for r in made.values() for pid in r.cleanup()]
    assert leaked == [], "processes were still alive after down"


def pid_of(state_dir: Path, project: str | None) -> int:
    return int(records(project_state_dir(state_dir, project))["web.process"]["pid"])


def status_of(folder: Path, state_dir: Path, *opts: str, env: dict[str, str] | None = None) -> str:
    proc = cli("status", "web", "-d", str(folder), "--json", *opts, state_dir=state_dir, env=env)
    assert proc.returncode == 0, proc.stderr
    return str(json.loads(proc.stdout)["web.process"]["state"])


# --- projects --------------------------------------------------------------------------------------


def test_two_projects_run_the_same_datum_side_by_side_and_down_a_leaves_b(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reapers: Callable[[str], Reaper]) -> None:
    folder = write_datums({"web.process": web_datum(svc)})
    for p in ("a", "b"):
        reapers(p).down_on_exit(["web.process"], folder)
    pa, pb = free_port(), free_port()

    # -p after the subcommand; $B00T_PROJECT for the second; the shared namespace stays empty.
    proc = cli("up", "web", "-d", str(folder), "-p", "a", "-q", state_dir=state_dir, env={"WEB_PORT": str(pa)})
    assert proc.returncode == 0, proc.stderr
    proc = cli("up", "web", "-d", str(folder), "-q", "--env", state_dir=state_dir,
               env={"WEB_PORT": str(pb), "B00T_PROJECT": "b"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == f"export WEB_URL=http://127.0.0.1:{pb}\n"
    a, b = pid_of(state_dir, "a"), pid_of(state_dir, "b")
    assert a != b and alive(a) and alive(b)
    assert records(state_dir) == {}  # nothing in the shared namespace's records
    assert (state_dir / "projects" / "a" / "locks" / "web.process.lock").exists()

    # Each project sees its own; without a project, nothing runs.
    assert status_of(folder, state_dir, "-p", "a", env={"WEB_PORT": str(pa)}) == "running"
    assert status_of(folder, state_dir, env={"WEB_PORT": str(pb), "B00T_PROJECT": "b"}) == "running"
    assert status_of(folder, state_dir, env={"WEB_PORT": str(pa)}) == "absent"

    # up again in a: already running, same pid (it found its own record, not b's).
    proc = cli("up", "web", "-d", str(folder), "-p", "a", "--timings-json", str(state_dir.parent / "t.json"),
               "-q", state_dir=state_dir, env={"WEB_PORT": str(pa)})
    assert proc.returncode == 0, proc.stderr
    assert json.loads((state_dir.parent / "t.json").read_text())["nodes"]["web.process"]["action"] == "none"
    assert pid_of(state_dir, "a") == a

    # down -p a (given before the subcommand this time) leaves b running.
    proc = cli("-p", "a", "down", "web", "-d", str(folder), "-q", state_dir=state_dir, env={"WEB_PORT": str(pa)})
    assert proc.returncode == 0, proc.stderr
    assert wait_gone(a)
    assert alive(b)
    assert status_of(folder, state_dir, "-p", "b", env={"WEB_PORT": str(pb)}) == "running"
    proc = cli("down", "web", "-d", str(folder), "-p", "b", "-q", state_dir=state_dir, env={"WEB_PORT": str(pb)})
    assert proc.returncode == 0, proc.stderr
    assert wait_gone(b)


@pytest.mark.anyio
async def test_ensure_in_two_projects_and_down_graph_of_one(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reapers: Callable[[str], Reaper]) -> None:
    folder = write_datums({"web.process": web_datum(svc)})
    ports = {"a": free_port(), "b": free_port()}
    for p in ports:
        reapers(p).down_on_exit(["web.process"], folder)
    envs = {}
    for p, port in ports.items():
        envs[p] = await api.ensure("web", datums=folder, environ={"WEB_PORT": str(port)}, project=p)
    assert envs["a"]["WEB_URL"] != envs["b"]["WEB_URL"]
    a, b = pid_of(state_dir, "a"), pid_of(state_dir, "b")
    assert a != b and alive(a) and alive(b)
    graph = api.load_graph(["web"], folder, {"WEB_PORT": str(ports["a"])})
    res = await api.down_graph(graph, project="a")
    assert "web.process" in res.timings and res.timings["web.process"].status == "stopped"
    assert wait_gone(a) and alive(b)
    async with api.running("web", datums=folder, environ={"WEB_PORT": str(ports["a"])}, project="a") as env:
        assert env["WEB_URL"].endswith(str(ports["a"]))
        assert alive(b)
    assert alive(b)  # running() took down only what it started, in its own project
    await api.down_graph(api.load_graph(["web"], folder, {"WEB_PORT": str(ports["b"])}), project="b")
    assert wait_gone(b)


@pytest.mark.anyio
async def test_stop_restart_and_ps_of_one_project_leave_the_other(
        write_datums: WriteDatums, svc: Path, state_dir: Path, reapers: Callable[[str], Reaper],
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = write_datums({"web.process": web_datum(svc)})
    ports = {"a": free_port(), "b": free_port()}
    for p in ports:
        reapers(p).down_on_exit(["web.process"], folder)
    for p, port in ports.items():
        await api.ensure("web", datums=folder, environ={"WEB_PORT": str(port)}, project=p)
    a, b = pid_of(state_dir, "a"), pid_of(state_dir, "b")

    env_a = {"WEB_PORT": str(ports["a"])}
    inv = await api.ps(datums=folder, environ=env_a, project="a")
    assert [(m.node, m.project, m.ref) for m in inv.items] == [("web.process", "a", str(a))]
    every = await api.ps(datums=folder, environ=env_a)
    assert {(m.project, m.ref) for m in every.items} >= {("a", str(a)), ("b", str(b))}

    monkeypatch.setenv("WEB_PORT", str(ports["b"]))  # restart and stop compile with the process's env
    out = await api.restart("web.process", datums=folder, project="b")
    assert out.restarted == ["web.process"]
    assert wait_gone(b) and alive(a)
    b2 = pid_of(state_dir, "b")
    assert b2 != b and alive(b2)

    monkeypatch.setenv("WEB_PORT", str(ports["a"]))
    stopped = await api.stop("web.process", datums=folder, project="a")
    assert stopped.result.timings["web.process"].status == "stopped"
    assert wait_gone(a) and alive(b2)
    assert [m.node for m in (await api.ps(datums=folder, environ=env_a, project="a")).items] == []
    with pytest.raises(InputError):
        await api.stop("web.process", datums=folder, project="../x")
    await api.down_graph(api.load_graph(["web"], folder, {"WEB_PORT": str(ports["b"])}), project="b")
    assert wait_gone(b2)


def test_stop_and_restart_cli_take_a_project(write_datums: WriteDatums, svc: Path, state_dir: Path,
                                             reapers: Callable[[str], Reaper]) -> None:
    folder = write_datums({"web.process": web_datum(svc)})
    ports = {"a": free_port(), "b": free_port()}
    for p, port in ports.items():
        reapers(p).down_on_exit(["web.process"], folder)
        proc = cli("up", "web", "-d", str(folder), "-p", p, "-q", state_dir=state_dir, env={"WEB_PORT": str(port)})
        assert proc.returncode == 0, proc.stderr
    a, b = pid_of(state_dir, "a"), pid_of(state_dir, "b")

    proc = cli("restart", "web.process", "-d", str(folder), "-p", "a", "-q", state_dir=state_dir,
               env={"WEB_PORT": str(ports["a"])})
    assert proc.returncode == 0, proc.stderr
    assert wait_gone(a) and alive(b)
    a2 = pid_of(state_dir, "a")
    assert alive(a2)

    proc = cli("-p", "b", "stop", "web.process", "-d", str(folder), state_dir=state_dir,
               env={"WEB_PORT": str(ports["b"])})
    assert proc.returncode == 0, proc.stderr
    assert "stopped 1 node(s)" in proc.stderr
    assert wait_gone(b) and alive(a2)
    assert status_of(folder, state_dir, "-p", "a", env={"WEB_PORT": str(ports["a"])}) == "running"
    proc = cli("down", "web", "-d", str(folder), "-p", "a", "-q", state_dir=state_dir,
               env={"WEB_PORT": str(ports["a"])})
    assert proc.returncode == 0, proc.stderr
    assert wait_gone(a2)


@pytest.mark.parametrize("name", ["a b", "../x", "-x", "x/y", "ä", "x" * 64])
def test_a_bad_project_name_is_exit_2_in_one_line(write_datums: WriteDatums, state_dir: Path, name: str) -> None:
    folder = write_datums({"s.stack": '[b00t]\nname = "s"\ntype = "stack"\n'})
    for argv, env in ((["up", "s", "-d", str(folder), "-p", name], None),
                      (["up", "s", "-d", str(folder)], {"B00T_PROJECT": name}),
                      (["-p", name, "status", "s", "-d", str(folder)], None)):
        proc = cli(*argv, state_dir=state_dir, env=env)
        assert proc.returncode == 2, (argv, proc.stderr)
        assert "project name" in proc.stderr and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    with pytest.raises(InputError):
        check_project(name)


def test_project_names_and_state_dirs() -> None:
    assert check_project(None) is None and check_project("") is None
    assert check_project("ci-42_x") == "ci-42_x"
    assert project_state_dir(Path("/s"), None) == Path("/s")
    assert project_state_dir(Path("/s"), "a") == Path("/s/projects/a")


# --- options before the subcommand ------------------------------------------------------------------


def _plan_ids(result: object) -> list[str]:
    assert getattr(result, "exit_code", None) == 0, getattr(result, "output", "")
    return [n["id"] for n in json.loads(getattr(result, "stdout", ""))["nodes"]]


def test_datums_before_the_subcommand_and_the_subcommands_own_wins(write_datums: WriteDatums) -> None:
    here = write_datums({"s.stack": '[b00t]\nname = "s"\ntype = "stack"\n'})
    other = write_datums({"t.stack": '[b00t]\nname = "t"\ntype = "stack"\n'})
    runner = CliRunner()
    assert _plan_ids(runner.invoke(main, ["-d", str(here), "plan", "s", "--offline", "--json"])) == ["s.stack"]
    assert _plan_ids(runner.invoke(main, ["-d", str(other), "plan", "s", "-d", str(here), "--offline",
                                          "--json"])) == ["s.stack"]
    res = runner.invoke(main, ["-d", str(here), "plan", "s", "-d", str(other), "--offline", "--json"])
    assert res.exit_code == 2  # the subcommand's -d wins: no s there
    res = runner.invoke(main, ["-d", str(here), "ls", "--json"])
    assert [d["id"] for d in json.loads(res.stdout)["datums"]] == ["s.stack"]
    res = runner.invoke(main, ["-d", str(here), "validate"])
    assert res.exit_code == 0 and "1 datum(s) ok" in res.stdout


def test_state_dir_and_project_before_the_subcommand(write_datums: WriteDatums, svc: Path, tmp_path: Path,
                                                     state_dir: Path, reapers: Callable[[str], Reaper]) -> None:
    folder = write_datums({"web.process": web_datum(svc)})
    other_state = tmp_path / "other-state"
    port = free_port()
    reaper = Reaper(project_state_dir(other_state, "g"))
    reaper.down_on_exit(["web.process"], folder)
    try:
        proc = cli("--state-dir", str(other_state), "-p", "g", "up", "web", "-d", str(folder), "-q",
                   state_dir=state_dir, env={"WEB_PORT": str(port)})
        assert proc.returncode == 0, proc.stderr
        assert set(records(other_state / "projects" / "g")) == {"web.process"}
        assert records(state_dir) == {} and not (state_dir / "projects").exists()
        # the subcommand's own -p wins over the group's: project h has nothing running
        proc = cli("--state-dir", str(other_state), "-p", "g", "status", "web", "-d", str(folder), "-p", "h",
                   "--json", state_dir=state_dir, env={"WEB_PORT": str(port)})
        assert json.loads(proc.stdout)["web.process"]["state"] == "absent", proc.stderr
        proc = cli("--state-dir", str(other_state), "down", "web", "-d", str(folder), "-p", "g", "-q",
                   state_dir=state_dir, env={"WEB_PORT": str(port)})
        assert proc.returncode == 0, proc.stderr
    finally:
        assert reaper.cleanup() == []


# --- datum folders ---------------------------------------------------------------------------------


def test_a_b00t_folder_is_found_in_the_nearest_parent(tmp_path: Path) -> None:
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    (tmp_path / "_b00t_").mkdir()
    assert datum_dirs([], environ={}, cwd=deep) == [Source(tmp_path / "_b00t_", "../../../_b00t_")]
    (tmp_path / "a" / "_b00t_").mkdir()
    assert datum_dirs([], environ={}, cwd=deep) == [Source(tmp_path / "a" / "_b00t_", "../../_b00t_")]
    (deep / "_b00t_").mkdir()
    assert datum_dirs([], environ={}, cwd=deep) == [Source(deep / "_b00t_", "./_b00t_")]


def test_the_cli_uses_a_b00t_folder_above_the_current_directory(tmp_path: Path, state_dir: Path) -> None:
    (tmp_path / "_b00t_").mkdir()
    (tmp_path / "_b00t_" / "up-here.stack.toml").write_text('[b00t]\nname = "up-here"\ntype = "stack"\n')
    deep = tmp_path / "src" / "pkg"
    deep.mkdir(parents=True)
    env = {k: v for k, v in os.environ.items() if k != "_B00T_Path"}
    proc = subprocess.run([sys.executable, "-m", "b00t_graph", "ls", "--json"], capture_output=True, text=True,
                          cwd=deep, env=env, timeout=30, check=False)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [d["id"] for d in data["datums"]] == ["up-here.stack"]
    assert data["sources"] == [{"path": str(tmp_path / "_b00t_"), "origin": "../../_b00t_"}]


# --- completion and help ---------------------------------------------------------------------------


def _complete(args: list[str], incomplete: str) -> list[str]:
    comp = ShellComplete(main, {}, "b00t-graph", "_B00T_GRAPH_COMPLETE")
    return [c.value for c in comp.get_completions(args, incomplete)]


def test_targets_complete_to_datum_identities_and_bare_names(write_datums: WriteDatums) -> None:
    folder = write_datums({"web.process": "[b00t]\nname = 'web'\ntype = 'process'\ncommand = ['true']\n",
                           "web.stack": "[b00t]\nname = 'web'\ntype = 'stack'\n",
                           "grok.stack": "[b00t]\nname = 'grok'\ntype = 'stack'\n"})
    assert _complete(["up", "-d", str(folder)], "") == ["grok", "grok.stack", "web.process", "web.stack"]
    assert _complete(["down", "-d", str(folder)], "w") == ["web.process", "web.stack"]  # `web` is ambiguous
    assert _complete(["-d", str(folder), "status"], "gr") == ["grok", "grok.stack"]  # the group's -d
    assert _complete(["-d", str(folder), "plan", "grok"], "") == ["grok", "grok.stack", "web.process", "web.stack"]


def test_bash_completion_script_from_the_installed_command() -> None:
    exe = Path(sys.executable).parent / "b00t-graph"
    if not exe.exists():
        pytest.skip("the b00t-graph entry point is not installed next to this python")
    proc = subprocess.run([str(exe)], capture_output=True, text=True, timeout=30, check=False,
                          env={**os.environ, "_B00T_GRAPH_COMPLETE": "bash_source"})
    assert proc.returncode == 0 and "complete -o nosort -F" in proc.stdout, proc.stderr


@pytest.mark.parametrize("cmd", [["up"], ["down"], ["status"], ["plan"], ["validate"], ["ls"], ["mcp-config"],
                                 ["mcp"], ["mcp", "serve"], ["supervise"], []])
def test_every_command_help_has_an_example(cmd: list[str]) -> None:
    res = CliRunner().invoke(main, [*cmd, "--help"])
    assert res.exit_code == 0
    example = res.stdout.split("Example:", 1)
    assert len(example) == 2, res.stdout
    first = example[1].strip().splitlines()[0]
    assert first.startswith("b00t-graph "), first  # kept verbatim (\b), not rewrapped into a paragraph


def test_project_option_is_on_every_command_that_acts_or_looks() -> None:
    for cmd in (["up"], ["down"], ["status"], ["plan"], ["stop"], ["restart"], ["mcp-config"], ["supervise"], []):
        res = CliRunner().invoke(main, [*cmd, "--help"])
        assert "--project" in res.stdout and "-p," in res.stdout, cmd


# --- up --env formats ------------------------------------------------------------------------------

NASTY = {"PLAIN": "http://127.0.0.1:6333", "SPACES": "a b  c", "QUOTES": "it's \"quoted\"",
         "DOLLAR": "$HOME and `x` and $(echo no)", "BACKSLASH": "C:\\path\\n", "NEWLINE": "one\ntwo", "EMPTY": ""}


def _env_stack(write_datums: WriteDatums) -> Path:
    lines = ['[b00t]', 'name = "e"', 'type = "stack"', "[b00t.env]"]
    lines += [f"{k} = {json.dumps(v)}" for k, v in NASTY.items()]
    return write_datums({"e.stack": "\n".join(lines) + "\n"})


def test_env_shell_lines_survive_eval_in_bash(write_datums: WriteDatums, state_dir: Path) -> None:
    folder = _env_stack(write_datums)
    argv = [sys.executable, "-m", "b00t_graph", "up", "e", "-d", str(folder), "--env", "-q"]
    script = (f'eval "$({" ".join(map(json.dumps, argv))})" || exit 9\n'
              + "".join(f'printf "%s\\0" "${k}"\n' for k in NASTY))
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False,
                          env={**os.environ, "B00T_GRAPH_STATE_DIR": str(state_dir)}, cwd=state_dir.parent)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\0")[:-1] == list(NASTY.values())


def test_env_formats_dotenv_and_json(write_datums: WriteDatums, state_dir: Path) -> None:
    folder = _env_stack(write_datums)
    proc = cli("up", "e", "-d", str(folder), "-q", "--env-format", "json", state_dir=state_dir)
    assert proc.returncode == 0 and json.loads(proc.stdout) == NASTY, proc.stderr
    proc = cli("up", "e", "-d", str(folder), "-q", "--env-format", "dotenv", state_dir=state_dir)
    assert proc.returncode == 0, proc.stderr
    lines = dict(line.split("=", 1) for line in proc.stdout.splitlines())
    assert {k: json.loads(v) for k, v in lines.items()} == NASTY
    assert lines["PLAIN"] == '"http://127.0.0.1:6333"'
    proc = cli("up", "e", "-d", str(folder), "-q", "--env-format", "yaml", state_dir=state_dir)
    assert proc.returncode == 2
