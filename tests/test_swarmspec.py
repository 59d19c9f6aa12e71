"""A docker datum as a Swarm service spec: pure, no engine. ``[b00t] on``, ``[b00t.swarm]``, ``--on swarm``.

The service is built from the same container plan as the container (``dockerargs``), so these tests
check the move into a service spec and what a service refuses, with the datum's file and key named.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from b00t_graph.cli import main
from b00t_graph.errors import DatumError
from b00t_graph.graph import Graph, compile_graph, placed_on
from b00t_graph.loader import datum_dirs, load_catalog
from b00t_graph.runtimes.docker import HASH, MANAGED, NODE, labels_for
from b00t_graph.runtimes.dockerargs import plan
from b00t_graph.runtimes.swarmspec import TASK_NODE, service_spec

WriteDatums = Callable[..., Path]

WEB = """
[b00t]
name = "web"
type = "docker"
image = "example/web:1"
docker_args = ["--init", "--health-cmd", "wget -q -O- http://127.0.0.1/", "--health-interval", "1s",
               "-e", "MODE=prod", "--restart", "on-failure:3", "--cap-drop", "ALL", "-p", "127.0.0.1:8080:80"]
command = ["httpd", "-f"]
depends_on = ["db.docker"]
[b00t.resources]
memory_limit = "256m"
cpu_limit = "0.5"
[b00t.swarm]
replicas = 2
constraints = ["node.role == manager"]
memory_reservation = "64m"
cpu_reservation = "0.25"
"""

DB = """
[b00t]
name = "db"
type = "docker"
image = "example/db:1"
volumes = ["dbdata:/var/lib/db", "./conf:/etc/db:ro"]
network = "backend"
"""


def _graph(write_datums: WriteDatums, files: dict[str, str], target: str = "web.docker") -> Graph:
    folder = write_datums(files)
    return compile_graph(load_catalog(datum_dirs([folder])), [target])


def test_service_spec_carries_the_container_plan(write_datums: WriteDatums) -> None:
    graph = placed_on(_graph(write_datums, {"web.docker": WEB, "db.docker": DB}), "swarm")
    node = graph.nodes["web.docker"]
    assert node.runtime == "swarm"
    spec = service_spec(node, plan(node), labels_for(node, "p1"), "p1_swarm", 7)
    assert spec["Name"] == "web"
    assert spec["Labels"] == {MANAGED: "1", NODE: "web.docker", HASH: node.config_hash,
                              "org.b00t-graph.project": "p1"}
    assert spec["Mode"] == {"Replicated": {"Replicas": 2}}
    task = spec["TaskTemplate"]
    c = task["ContainerSpec"]
    assert c["Image"] == "example/web:1"
    assert c["Args"] == ["httpd", "-f"]
    assert "MODE=prod" in c["Env"]
    assert c["Init"] is True
    assert c["CapabilityDrop"] == ["ALL"]
    assert c["HealthCheck"]["Test"] == ["CMD-SHELL", "wget -q -O- http://127.0.0.1/"]
    assert c["HealthCheck"]["Interval"] == 10**9
    assert c["StopGracePeriod"] == 7 * 10**9
    # the tasks' containers carry no ownership label: the docker runtime must never take them for its own
    assert c["Labels"] == {TASK_NODE: "web.docker"}
    assert task["RestartPolicy"] == {"Condition": "on-failure", "MaxAttempts": 3}
    assert task["Resources"] == {"Limits": {"MemoryBytes": 256 * 2**20, "NanoCPUs": 500_000_000},
                                 "Reservations": {"MemoryBytes": 64 * 2**20, "NanoCPUs": 250_000_000}}
    assert task["Placement"] == {"Constraints": ["node.role == manager"]}
    assert task["Networks"] == [{"Target": "p1_swarm", "Aliases": ["web"]}]
    # host mode, the host IP dropped: Swarm binds every address of the node that runs the task
    assert spec["EndpointSpec"] == {"Mode": "dnsrr", "Ports": [
        {"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080, "PublishMode": "host"}]}


def test_volumes_networks_and_default_restart(write_datums: WriteDatums) -> None:
    folder = write_datums({"db.docker": DB})
    graph = placed_on(compile_graph(load_catalog(datum_dirs([folder])), ["db.docker"]), "swarm")
    node = graph.nodes["db.docker"]
    spec = service_spec(node, plan(node), {}, "b00t-graph_swarm", 10)
    task = spec["TaskTemplate"]
    assert task["RestartPolicy"] == {"Condition": "any"}  # Swarm replaces a task that exits
    assert task["Networks"] == [{"Target": "b00t-graph_swarm", "Aliases": ["db"]},
                                {"Target": "backend", "Aliases": ["db"]}]
    mounts = task["ContainerSpec"]["Mounts"]
    assert {"Type": "volume", "Source": "dbdata", "Target": "/var/lib/db"} in mounts
    assert {"Type": "bind", "Source": str(folder / "conf"), "Target": "/etc/db", "ReadOnly": True} in mounts
    assert spec["EndpointSpec"] == {"Mode": "dnsrr", "Ports": []}
    assert "Placement" not in task


def test_on_swarm_keeps_the_config_hash_and_leaves_other_nodes(write_datums: WriteDatums) -> None:
    proc = '[b00t]\nname = "tool"\ntype = "process"\ncommand = ["true"]\n'
    files = {"web.docker": WEB.replace('depends_on = ["db.docker"]', 'depends_on = ["db.docker", "tool.process"]'),
             "db.docker": DB, "tool.process": proc}
    local = _graph(write_datums, files)
    swarm = placed_on(local, "swarm")
    assert {i: n.runtime for i, n in swarm.nodes.items()} == {
        "db.docker": "swarm", "tool.process": "process", "web.docker": "swarm"}
    assert {i: n.config_hash for i, n in swarm.nodes.items()} == {i: n.config_hash for i, n in local.nodes.items()}
    assert placed_on(local, None) is local


def test_datum_on_swarm(write_datums: WriteDatums) -> None:
    graph = _graph(write_datums, {"db.docker": DB.replace('image =', 'on = "swarm"\nimage =')}, "db.docker")
    assert graph.nodes["db.docker"].runtime == "swarm"


def test_swarm_settings_are_part_of_the_config_hash(write_datums: WriteDatums, tmp_path: Path) -> None:
    one = _graph(write_datums, {"web.docker": WEB, "db.docker": DB})
    folder = write_datums({"web.docker": WEB.replace("replicas = 2", "replicas = 3"), "db.docker": DB},
                          tmp_path / "other")
    two = compile_graph(load_catalog(datum_dirs([folder])), ["web.docker"])
    assert one.nodes["web.docker"].config_hash != two.nodes["web.docker"].config_hash
    assert one.nodes["db.docker"].config_hash == two.nodes["db.docker"].config_hash


@pytest.mark.parametrize(("text", "key", "expected"), [
    ('on = "mars"', "b00t.on", "'mars': expected one of 'swarm'"),
    ("[b00t.swarm]\nreplicas = -1", "b00t.swarm.replicas", "expected a non-negative integer"),
    ('[b00t.swarm]\nreplicas = "two"', "b00t.swarm.replicas", "expected an integer"),
    ('[b00t.swarm]\nmemory_reservation = "lots"', "b00t.swarm.memory_reservation", "is not a size"),
    ('[b00t.swarm]\nzones = 2', "b00t.swarm", "unknown key(s): zones"),
    ('on = "swarm"\ndocker_args = ["--privileged"]', "b00t.docker_args", "Privileged (a container option) has no"),
    ('on = "swarm"\nnetwork = "host"', "b00t.docker_args", "--network host: a Swarm service joins overlay"),
])
def test_bad_swarm_settings_name_file_and_key(write_datums: WriteDatums, text: str, key: str, expected: str) -> None:
    body = DB.replace('network = "backend"\n', "")
    head, _, rest = body.partition("[b00t]\n")
    if text.startswith("["):
        body = body + text + "\n"
    else:
        body = head + "[b00t]\n" + text + "\n" + rest
    folder = write_datums({"db.docker": body})
    res = CliRunner().invoke(main, ["plan", "db.docker", "-d", str(folder), "--offline"])
    assert res.exit_code == 2, res.output
    assert f"db.docker.toml: {key}: " in res.output
    assert expected in res.output
    assert "Traceback" not in res.output


def test_on_swarm_refuses_what_a_service_cannot_do_before_anything_starts(write_datums: WriteDatums) -> None:
    folder = write_datums({"db.docker": DB.replace('network = "backend"', 'docker_args = ["--pid", "host"]')})
    ok = CliRunner().invoke(main, ["plan", "db.docker", "-d", str(folder), "--offline"])
    assert ok.exit_code == 0, ok.output  # a container may
    res = CliRunner().invoke(main, ["plan", "db.docker", "-d", str(folder), "--offline", "--on", "swarm"])
    assert res.exit_code == 2, res.output
    assert "db.docker.toml: b00t.docker_args: PidMode (a container option) has no Swarm service equivalent" \
        in res.output


def test_on_is_only_for_docker_datums(write_datums: WriteDatums) -> None:
    folder = write_datums({"tool.process": '[b00t]\nname = "tool"\ntype = "process"\non = "swarm"\n'
                                           'command = ["true"]\n'})
    res = CliRunner().invoke(main, ["plan", "tool.process", "-d", str(folder), "--offline"])
    assert res.exit_code == 2, res.output
    assert "tool.process.toml: b00t.on: only a docker datum runs on swarm, not a process datum" in res.output


def test_plan_shows_the_swarm_runtime(write_datums: WriteDatums) -> None:
    folder = write_datums({"db.docker": DB})
    res = CliRunner().invoke(main, ["plan", "db.docker", "-d", str(folder), "--offline", "--on", "swarm", "--json"])
    assert res.exit_code == 0, res.output
    assert '"runtime": "swarm"' in res.output


def test_service_spec_refuses_a_plan_it_cannot_run(write_datums: WriteDatums) -> None:
    graph = _graph(write_datums, {"db.docker": DB.replace('network = "backend"', 'docker_args = ["--privileged"]')},
                   "db.docker")
    node = graph.nodes["db.docker"]
    with pytest.raises(DatumError, match="Privileged"):
        service_spec(node, plan(node), {}, "n", 1)
