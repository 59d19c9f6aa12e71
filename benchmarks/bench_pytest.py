"""Services for a pytest session: b00t-graph's plugin against testcontainers-python and pytest-docker.

The same five containers for each tool (same image, command, ports and readiness): a database-like
HTTP service that needs 1 s to boot, two services that depend on it, two independent ones. Each
tool's setup is written the way its documentation shows:

- b00t-graph: ``@pytest.mark.b00t("<stack>")`` and ``--b00t-datums``; the plugin starts each
  container the moment its dependencies are ready and takes them down after the session.
- testcontainers: one session fixture per container (``DockerContainer`` + ``HttpWaitStrategy``),
  dependents taking the database fixture; run with ``TESTCONTAINERS_RYUK_DISABLED=true`` since its
  Ryuk reaper image cannot be pulled here (no registry).
- pytest-docker: a compose file (``depends_on: condition: service_healthy``) and
  ``docker_services.wait_until_responsive`` for every service; ``docker-compose`` 1.29 has no
  ``up --wait``, so setup is ``up -d`` (the plugin's documented override).

Measured per run, from starting ``pytest`` as a process: the moment the first test body runs, and
the end of the session (including each tool's teardown). Tools alternate within the run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import benchlib as bl
from bench_compose import IMAGE, WGET, command, ensure_image

PREFIX = "b00tbenchpy-"
SERVICES: dict[str, tuple[float, tuple[str, ...]]] = {
    "db": (1.0, ()), "api1": (0.3, ("db",)), "api2": (0.3, ("db",)), "w1": (0.3, ()), "w2": (0.3, ()),
}
FIRST_TEST = textwrap.dedent('''
    def test_first({arg}):
        import time, os
        with open(os.environ["BENCH_FIRST"], "w") as fh:
            fh.write(repr(time.time()))
        assert {check}

    def test_second({arg}):
        assert {check}
''')


def _ports(base: int) -> dict[str, int]:
    return {name: base + i for i, name in enumerate(SERVICES)}


def write_b00t(root: Path, ports: dict[str, int]) -> list[str]:
    datums = root / "datums"
    datums.mkdir(parents=True)
    for name, (delay, deps) in SERVICES.items():
        (datums / f"{PREFIX}{name}.docker.toml").write_text("\n".join([
            "[b00t]", f'name = "{PREFIX}{name}"', 'type = "docker"', f'image = "{IMAGE}"',
            f"command = {json.dumps(command(delay))}", f'ports = ["127.0.0.1:{ports[name]}:80"]',
            "depends_on = " + json.dumps([f"{PREFIX}{d}.docker" for d in deps]),
            "[b00t.health_check]", f'http_url = "http://127.0.0.1:{ports[name]}/"', "timeout_ms = 60000",
            "[b00t.env]", f'{name.upper()}_URL = "http://127.0.0.1:{ports[name]}"', ""]))
    members = json.dumps([f"{PREFIX}{n}.docker" for n in SERVICES])
    (datums / f"{PREFIX}set.stack.toml").write_text(f'[b00t]\nname = "{PREFIX}set"\ntype = "stack"\n'
                                                   f"members = {members}\n")
    (root / "test_b00t.py").write_text("import pytest\n\npytestmark = pytest.mark.b00t"
                                       f'("{PREFIX}set.stack")\n' + FIRST_TEST.format(
                                           arg="b00t_env", check='"DB_URL" in b00t_env'))
    return ["--b00t-datums", str(datums), "-p", "no:docker"]


def write_testcontainers(root: Path, ports: dict[str, int]) -> list[str]:
    fixtures = []
    for name, (delay, deps) in SERVICES.items():
        args = ", ".join(deps)
        fixtures.append(textwrap.dedent(f'''
            @pytest.fixture(scope="session")
            def {name}({args}):
                c = (DockerContainer({IMAGE!r}, name="{PREFIX}tc-{name}")
                     .with_command({command(delay)!r})
                     .with_bind_ports(80, {ports[name]})
                     .waiting_for(HttpWaitStrategy(80, "/").for_status_code(200)))
                c.start()
                yield c
                c.stop()
        '''))
    (root / "conftest.py").write_text(
        "import pytest\nfrom testcontainers.core.container import DockerContainer\n"
        "from testcontainers.core.wait_strategies import HttpWaitStrategy\n" + "".join(fixtures))
    arg = ", ".join(SERVICES)
    (root / "test_tc.py").write_text(FIRST_TEST.format(arg=arg, check="db"))
    return ["-p", "no:b00t_graph", "-p", "no:docker"]


def write_pytest_docker(root: Path, ports: dict[str, int], interval: str) -> list[str]:
    lines = ['version: "2.4"', "services:"]
    for name, (delay, deps) in SERVICES.items():
        lines += [f"  {name}:", f"    image: {IMAGE}", f"    command: {json.dumps(command(delay))}",
                  f'    ports: ["127.0.0.1:{ports[name]}:80"]', "    healthcheck:",
                  f"      test: {json.dumps(['CMD', *WGET])}", f"      interval: {interval}", "      timeout: 1s",
                  "      retries: 60"]
        if deps:
            lines.append("    depends_on:")
            for d in deps:
                lines += [f"      {d}:", "        condition: service_healthy"]
    (root / "docker-compose.yml").write_text("\n".join(lines) + "\n")
    checks = "\n".join(
        f"    docker_services.wait_until_responsive(timeout=60.0, pause=0.1, "
        f"check=lambda: up('http://127.0.0.1:{ports[n]}/'))" for n in SERVICES)
    (root / "conftest.py").write_text(textwrap.dedent('''
        import urllib.request
        import pytest

        @pytest.fixture(scope="session")
        def docker_compose_command():
            return "docker-compose"

        @pytest.fixture(scope="session")
        def docker_compose_file(pytestconfig):
            return str(pytestconfig.rootpath / "docker-compose.yml")

        @pytest.fixture(scope="session")
        def docker_compose_project_name():
            return "{prefix}pd"

        @pytest.fixture(scope="session")
        def docker_setup():
            return ["up -d"]

        def up(url):
            try:
                return urllib.request.urlopen(url, timeout=1).status == 200
            except OSError:
                return False

        @pytest.fixture(scope="session")
        def services(docker_services):
        ''').format(prefix=PREFIX) + checks + "\n    return docker_services\n")
    (root / "test_pd.py").write_text(FIRST_TEST.format(arg="services", check="services"))
    return ["-p", "no:b00t_graph"]


def _run(root: Path, args: list[str], state_dir: Path) -> dict[str, float]:
    first = root / "first.txt"
    first.unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update({"BENCH_FIRST": str(first), "B00T_GRAPH_STATE_DIR": str(state_dir),
                "TESTCONTAINERS_RYUK_DISABLED": "true"})
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args], cwd=root,
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    end = time.time()
    if proc.returncode != 0 or not first.exists():
        raise RuntimeError(f"pytest failed in {root}:\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return {"first_test": float(first.read_text()) - t0, "session": end - t0}


def _leftovers() -> list[str]:
    out = subprocess.run(["docker", "ps", "-a", "--filter", f"name={PREFIX}", "--format", "{{.Names}}"],
                         capture_output=True, text=True, check=False).stdout.split()
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--port-base", type=int, default=18700)
    ap.add_argument("--compose-interval", default="500ms", help="pytest-docker's compose health-check interval")
    args = ap.parse_args(argv)
    log: Callable[[str], None] = lambda msg: print(f"[pytest-services] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    ensure_image(log)
    tmp = Path(tempfile.mkdtemp(prefix="b00t-bench-pytest-"))
    ports = _ports(args.port_base)
    tools: dict[str, list[str]] = {}
    for name, write in (("b00t-graph", lambda r: write_b00t(r, ports)),
                        ("testcontainers", lambda r: write_testcontainers(r, ports)),
                        ("pytest-docker", lambda r: write_pytest_docker(r, ports, args.compose_interval))):
        root = tmp / name
        root.mkdir()
        tools[name] = write(root)
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in tools}
    try:
        for i in range(args.runs):
            order = list(tools) if i % 2 == 0 else list(reversed(tools))
            for tool in order:
                res = _run(tmp / tool, tools[tool], tmp / "state")
                runs[tool].append(res)
                log(f"run {i + 1} {tool}: first test {res['first_test']:.2f}s, session {res['session']:.2f}s")
                left = _leftovers()
                if left:
                    raise RuntimeError(f"{tool} left containers behind: {left}")
    finally:
        for name in _leftovers():
            subprocess.run(["docker", "rm", "-f", name], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    result: dict[str, Any] = {"machine": bl.machine(), "runs": args.runs, "compose_interval": args.compose_interval,
                              "services": {k: {"boot_s": v[0], "deps": list(v[1])} for k, v in SERVICES.items()},
                              "tools": {}}
    for tool, rs in runs.items():
        result["tools"][tool] = {k: bl.summary([r[k] for r in rs]) for k in ("first_test", "session")}
    b = result["tools"]["b00t-graph"]
    for peer in ("testcontainers", "pytest-docker"):
        p = result["tools"][peer]
        result["tools"][peer]["ratio_b00t"] = {k: bl.ratio(b[k]["median"], p[k]["median"])
                                              for k in ("first_test", "session")}
    bl.write_result("pytest", result)
    print(table(result))
    return result


def table(result: dict[str, Any]) -> str:
    rows = ["| tool | first test starts | session ends | b00t-graph ÷ tool (first / end) |", "|---|---|---|---|"]
    b = result["tools"]["b00t-graph"]
    for tool, t in result["tools"].items():
        ratio = "" if tool == "b00t-graph" else (
            f"{t['ratio_b00t']['first_test']:.2f}× / {t['ratio_b00t']['session']:.2f}×")
        rows.append(f"| {tool} | {t['first_test']['median']:.2f} s | {t['session']['median']:.2f} s | {ratio} |")
    del b
    return "\n".join(rows)


if __name__ == "__main__":
    main()
