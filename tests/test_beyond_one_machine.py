"""The README's "Beyond one machine" table, claim by claim, where no engine is needed.

What needs a real swarm (order, updates, Swarm replacing a task) is in tests/runtimes/test_swarm.py.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from click.testing import CliRunner

from b00t_graph.cli import main
from b00t_graph.engine import NodeTiming, RunResult
from b00t_graph.export.k8s import to_manifests
from b00t_graph.graph import Graph, compile_graph, placed_on
from b00t_graph.loader import datum_dirs, load_catalog
from b00t_graph.runtimes import Action
from b00t_graph.runtimes.dockerargs import plan
from b00t_graph.runtimes.swarmspec import service_spec
from b00t_graph.supervisor import supervisable

WriteDatums = Callable[..., Path]

API = """
[b00t]
name = "api"
type = "docker"
image = "example/api:1"
ports = ["8080:80"]
{extra}
[b00t.health_check]
http_url = "http://127.0.0.1:8080/health"
interval_ms = 250
probe_timeout_ms = 300
"""


def _graph(write_datums: WriteDatums, extra: str = "") -> Graph:
    folder = write_datums({"api.docker": API.replace("{extra}", extra)})
    return compile_graph(load_catalog(datum_dirs([folder])), ["api.docker"])


def test_kubernetes_probes_at_whole_second_periods(write_datums: WriteDatums) -> None:
    export = to_manifests(_graph(write_datums))
    deployment = next(m for m in export.manifests if m["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    # b00t-graph probes a 250 ms interval as such; the cluster's smallest period is a second
    assert container["readinessProbe"]["periodSeconds"] == 1
    assert container["readinessProbe"]["timeoutSeconds"] == 1
    assert container["startupProbe"]["periodSeconds"] == 1


def test_swarm_restarts_tasks_itself_unless_the_datum_says_no(write_datums: WriteDatums) -> None:
    for extra, condition in (("", "any"), ('docker_args = ["--restart", "no"]', "none"),
                             ('docker_args = ["--restart", "on-failure"]', "on-failure")):
        node = placed_on(_graph(write_datums, extra), "swarm").nodes["api.docker"]
        spec = service_spec(node, plan(node), {}, "net", 10)
        assert spec["TaskTemplate"]["RestartPolicy"]["Condition"] == condition, extra


def test_up_attach_leaves_swarm_services_to_swarm(write_datums: WriteDatums) -> None:
    local = _graph(write_datums, 'restart = "always"')
    for graph, expected in ((local, ["api.docker"]), (placed_on(local, "swarm"), [])):
        res = RunResult(graph=graph, timings={"api.docker": NodeTiming("api.docker", Action.CREATE, status="ready")})
        assert supervisable(res) == expected


def test_swarm_publishes_in_host_mode_without_the_host_ip(write_datums: WriteDatums) -> None:
    extra = 'docker_args = ["-p", "127.0.0.1:8080:80"]'  # and `ports = ["8080:80"]`: one port for Swarm
    node = placed_on(_graph(write_datums, extra), "swarm").nodes["api.docker"]
    spec = service_spec(node, plan(node), {}, "net", 10)
    assert spec["EndpointSpec"]["Ports"] == [{"Protocol": "tcp", "TargetPort": 80, "PublishedPort": 8080,
                                              "PublishMode": "host"}]


def test_exec_is_for_containers_not_swarm_services(write_datums: WriteDatums) -> None:
    folder = write_datums({"api.docker": API.replace("{extra}", 'on = "swarm"')})
    res = CliRunner().invoke(main, ["exec", "api.docker", "-d", str(folder), "--", "true"])
    assert res.exit_code == 2, res.output
    assert "api.docker: exec is for containers (a swarm node)" in res.output
