"""``ensure`` through the MCP server for a graph that already runs: per-call latency as a client sees it.

    python benchmarks/bench_mcp.py [--calls 20] [--backend asyncio|trio]

The SDK's stdio client starts ``python -m b00t_graph mcp serve`` on a folder of three local
process datums (db ← api ← app.stack, HTTP health checks), brings the stack up once, then times
``--calls`` more ``ensure`` calls (each: load and compile the datums, observe, probe every node,
return the env) and prints the median. Everything is taken down after, and the state directory
is a temporary one.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.procutil import free_port, process_datum, stack_datum, write_service  # noqa: E402


async def measure(folder: Path, state: Path, calls: int) -> list[float]:
    env = {**os.environ, "B00T_GRAPH_STATE_DIR": str(state)}
    params = StdioServerParameters(command=sys.executable, args=["-m", "b00t_graph", "mcp", "serve", "-d", str(folder),
                                                                  "--down-on-exit"], env=env)
    async with Client(params) as client:
        first = await client.call_tool("ensure", {"target": "app.stack"})
        if first.is_error:
            raise SystemExit(f"ensure failed: {first.content}")
        times = []
        for _ in range(calls):
            t0 = time.perf_counter()
            res = await client.call_tool("ensure", {"target": "app.stack"})
            times.append(time.perf_counter() - t0)
            assert not res.is_error and res.structured_content and res.structured_content["started"] == []
        return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio", help="the client's backend")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder, state = Path(tmp) / "datums", Path(tmp) / "state"
        folder.mkdir()
        svc = write_service(Path(tmp) / "bin")
        db, api = free_port(), free_port()
        files = {"db.process": process_datum("db", svc, port=db, env={"DB_URL": f"http://127.0.0.1:{db}"}),
                 "api.process": process_datum("api", svc, deps=["db.process"], port=api,
                                              env={"API_URL": f"http://127.0.0.1:{api}"}),
                 "app.stack": stack_datum("app", ["api.process"])}
        for ident, text in files.items():
            (folder / f"{ident}.toml").write_text(text)
        times = anyio.run(measure, folder, state, args.calls, backend=args.backend)
    ms = [t * 1000 for t in times]
    result = {"calls": len(ms), "median_ms": statistics.median(ms), "min_ms": min(ms), "max_ms": max(ms)}
    result["target_ms"] = 50.0
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import benchlib as bl

    bl.write_result("mcp", {**result, "backend": args.backend, "machine": bl.machine()})
    if args.json:
        print(json.dumps(result))
    else:
        print(f"ensure via MCP (stdio), graph already running, {len(ms)} calls: "
              f"median {result['median_ms']:.1f} ms (min {result['min_ms']:.1f}, max {result['max_ms']:.1f})")


if __name__ == "__main__":
    main()
