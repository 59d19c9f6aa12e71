"""Helpers shared by the benchmarks: statistics, DAG shapes, result files, machine facts.

The benchmarks are scripts (``python benchmarks/run.py``), so this module is
imported by its bare name from the scripts' own folder; the tests import it as ``benchmarks.benchlib``
(its :class:`ForwardingSocket` watches the requests a client makes to the real engine).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
RESULTS_DIR = HERE / "results"


# --- statistics ----------------------------------------------------------------------------------


def summary(values: Sequence[float]) -> dict[str, Any]:
    """Median, min, max and the raw values (seconds), for the JSON result files."""
    vals = list(values)
    if not vals:
        return {"n": 0, "median": None, "min": None, "max": None, "values": []}
    return {"n": len(vals), "median": statistics.median(vals), "min": min(vals), "max": max(vals),
            "values": vals}


def ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or b == 0:
        return None
    return a / b


# --- DAG shapes ----------------------------------------------------------------------------------
# A DAG is a dict: node → tuple of its dependencies, in a topological order.

Dag = dict[str, tuple[str, ...]]


def chain(n: int, prefix: str = "n") -> Dag:
    names = [f"{prefix}{i:05d}" for i in range(n)]
    return {name: ((names[i - 1],) if i else ()) for i, name in enumerate(names)}


def wide(n: int, prefix: str = "n") -> Dag:
    return {f"{prefix}{i:05d}": () for i in range(n)}


def layered_random(n: int, seed: int = 1, prefix: str = "n", layers: int | None = None) -> Dag:
    """``n`` nodes in about √n/2 layers; each node after the first layer depends on 1–3 nodes of the
    layer above and, one time in three, on one node of any earlier layer (mixed fan-in, long edges)."""
    rnd = random.Random(seed)
    nl = layers or max(3, round(n ** 0.5 / 2))
    sizes = [n // nl + (1 if i < n % nl else 0) for i in range(nl)]
    out: Dag = {}
    levels: list[list[str]] = []
    k = 0
    for li, size in enumerate(sizes):
        level = []
        for _ in range(size):
            name = f"{prefix}{k:05d}"
            k += 1
            deps: list[str] = []
            if li:
                above = levels[li - 1]
                deps = rnd.sample(above, min(len(above), rnd.randint(1, 3)))
                if li > 1 and rnd.random() < 1 / 3:
                    far = rnd.choice(levels[rnd.randrange(0, li - 1)])
                    deps.append(far)
            out[name] = tuple(dict.fromkeys(deps))
            level.append(name)
        levels.append(level)
    return out


def depth(dag: Mapping[str, Sequence[str]]) -> int:
    lv: dict[str, int] = {}
    for n, ds in dag.items():
        lv[n] = 1 + max((lv[d] for d in ds), default=0)
    return max(lv.values(), default=0)


def longest_path(dag: Mapping[str, Sequence[str]], weight: Mapping[str, float]) -> tuple[float, list[str]]:
    """The heaviest chain (sum of node weights) and its nodes; ``dag`` must be in topological order."""
    best: dict[str, float] = {}
    prev: dict[str, str | None] = {}
    for n, ds in dag.items():
        p = max(ds, key=lambda d: best[d], default=None)
        best[n] = weight.get(n, 0.0) + (best[p] if p is not None else 0.0)
        prev[n] = p
    if not best:
        return 0.0, []
    end: str | None = max(best, key=lambda n: best[n])
    total = best[end]  # type: ignore[index]
    path = []
    while end is not None:
        path.append(end)
        end = prev[end]
    return total, path[::-1]


# --- result files and machine facts --------------------------------------------------------------


def write_result(name: str, data: Mapping[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS_DIR / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _cmd(argv: Sequence[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unavailable"


def machine() -> dict[str, Any]:
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    compose = _cmd(["docker-compose", "version", "--short"])
    try:
        load = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        load = []
    return {
        "date": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "docker_engine": _cmd(["docker", "version", "--format", "{{.Server.Version}} (API {{.Server.APIVersion}})"]),
        "docker_compose": compose,
        "loadavg": " ".join(load),
    }


def fmt_s(v: float | None, digits: int = 2) -> str:
    return "–" if v is None else f"{v:.{digits}f}"


def fmt_x(v: float | None) -> str:
    return "–" if v is None else f"{v:.2f}×"


# --- ports and a window on the engine's socket --------------------------------------------------------------

def free_port(taken: set[int]) -> int:
    """A port free now and not in ``taken`` (which it joins): the kernel may hand the same ephemeral
    port to two quick ``bind(0)`` calls, and two services on one port would answer each other's probes."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in taken:
            taken.add(port)
            return port


_METHODS = (b"GET", b"POST", b"DELETE", b"PUT", b"HEAD")


class ForwardingSocket:
    """A unix socket that passes every byte on to the real engine and calls ``on_request(line, when)``
    with each Engine API request's first line and its arrival time (wall clock).

    A client pointed at it (``DOCKER_HOST=unix://<path>``) talks to the real engine; the benchmark
    times its first request, a test reads which requests it made and in which order.
    """

    def __init__(self, path: str | Path, engine: str | None = None,
                 on_request: Callable[[str, float], None] | None = None) -> None:
        self.path = str(path)
        self.engine = (engine or os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix(
            "unix://")
        self.on_request = on_request or (lambda line, when: None)
        self._socks: list[socket.socket] = []  # every connection's pair: closed by close(), never left to the GC
        self._lock = threading.Lock()
        self._srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._srv.bind(self.path)
        self._srv.listen(64)
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._srv.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        with self._lock:
            socks, self._socks = self._socks, []
        for sock in socks:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._srv.accept()
            except OSError:
                return
            up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with self._lock:
                self._socks += [client, up]
            try:
                up.connect(self.engine)
            except OSError:
                client.close()
                up.close()
                continue
            threading.Thread(target=self._pipe, args=(up, client, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(client, up, True), daemon=True).start()

    def _pipe(self, src: socket.socket, dst: socket.socket, from_client: bool) -> None:
        try:
            while data := src.recv(65536):
                if from_client:
                    when = time.time()
                    for line in data.split(b"\r\n"):
                        if line.split(b" ", 1)[0] in _METHODS:
                            self.on_request(line.decode(errors="replace"), when)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
