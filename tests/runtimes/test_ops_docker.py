"""ps, orphans and the safe down on real containers (the CLI in subprocesses, the real engine)."""

from __future__ import annotations

import json

import pytest

from tests.procutil import stack_datum
from tests.runtimes.test_docker_e2e import Stack, no_traceback
from tests.runtimes.test_docker_e2e import stack as stack  # the fixture, shared

pytestmark = pytest.mark.docker


def test_down_keeps_a_shared_container_then_an_orphan_is_listed_and_removed(stack: Stack) -> None:
    stack.web("cache")
    stack.web("api", deps=["cache"])
    stack.web("other", deps=["cache"])
    targets = {}
    for short in ("api", "other"):
        ident = f"{stack.name(short)}s.stack"
        (stack.folder / f"{ident}.toml").write_text(stack_datum(f"{stack.name(short)}s", [stack.ident(short)]))
        stack.targets.append(ident)
        targets[short] = ident
        up = stack.cli("up", ident, "-q")
        assert up.returncode == 0, up.stderr

    down = stack.cli("down", targets["other"])
    assert down.returncode == 0, down.stderr
    no_traceback(down.stderr)
    assert (f"kept {stack.ident('cache')}: {stack.ident('api')} (running, not in this down) depends on it"
            in down.stderr)
    assert stack.engine.container(stack.name("other")) is None
    stack.assert_running_ours("cache", "api")

    (stack.folder / f"{stack.ident('api')}.toml").unlink()  # deleted: its container is now an orphan
    (stack.folder / f"{targets['api']}.toml").unlink()
    stack.targets.remove(targets["api"])
    ps = stack.cli("ps", "--json")
    assert ps.returncode == 0, ps.stderr
    mine = {m["node"]: m for m in json.loads(ps.stdout)["items"] if m["node"].startswith(stack.prefix)}
    assert set(mine) == {stack.ident("cache"), stack.ident("api")}
    api, cache = mine[stack.ident("api")], mine[stack.ident("cache")]
    assert api["orphan"] is True and api["state"] == "running" and api["name"] == stack.name("api")
    assert cache["orphan"] is False and cache["health"] == "ready" and cache["drift"] is False
    assert any(p.endswith("->80/tcp") and f":{stack.ports['cache']}" in p for p in cache["ports"])
    assert f"http://127.0.0.1:{stack.ports['cache']}" in cache["urls"]

    # other tests' containers on this engine are orphans to this folder too: only this test's names
    rm = stack.cli("down", "--orphans", f"{stack.prefix}-*")
    assert rm.returncode == 0, rm.stderr
    assert stack.ident("api") in rm.stderr
    assert stack.engine.container(stack.name("api")) is None
    stack.assert_running_ours("cache")
