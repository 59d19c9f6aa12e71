"""``export k8s``: manifests that keep the order, checked against the Kubernetes OpenAPI schemas.

No cluster: every object is validated with ``kubernetes-validate`` (its bundled schemas, strict:
unknown fields are errors), offline. The pure function is tested on compiled graphs; the CLI through
CliRunner (stdout, -o DIR, notes, exit codes).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from click.testing import CliRunner, Result

from b00t_graph.cli import main
from b00t_graph.export.k8s import K8sExport, to_manifests, workload_deps
from b00t_graph.graph import Graph, compile_graph
from b00t_graph.loader import datum_dirs, load_catalog

K8S_VERSION = "1.30.0"  # a version clusters in use still run; the latest is checked too
WriteDatums = Callable[..., Path]

# A layered stack: db and cache at the bottom, api over both (cache through a stack), a worker
# process the exporter must leave out, web over api and the mcp group.
DATUMS = {
    "db.docker": """
[b00t]
name = "db"
type = "docker"
image = "postgres:16"
docker_args = ["-p", "5433:5432", "-e", "POSTGRES_PASSWORD=pw", "-v", "pgdata:/var/lib/postgresql/data"]
[b00t.health_check]
tcp = "127.0.0.1:5433"
interval_ms = 2000
probe_timeout_ms = 1500
timeout_ms = 30000
retries = 4
[b00t.env]
DATABASE_URL = "postgres://app:pw@localhost:5433/app"
DB_ADDR = "localhost:5433"
""",
    "cache.docker": """
[b00t]
name = "cache"
type = "docker"
image = "redis:7"
docker_args = ["--expose", "6379"]
[b00t.env]
REDIS_URL = "redis://127.0.0.1:6379/0"
""",
    "infra.stack": """
[b00t]
name = "infra"
type = "stack"
members = ["cache.docker"]
""",
    "worker.process": """
[b00t]
name = "worker"
type = "process"
command = ["python3", "-m", "http.server", "9100"]
[b00t.env]
WORKER_URL = "http://127.0.0.1:9100"
""",
    "api.docker": """
[b00t]
name = "api"
type = "docker"
image = "example/api:1"
depends_on = ["db.docker", "infra.stack"]
docker_args = ["-p", "8080:80", "-m", "512m", "--cpus", "0.5", "--tmpfs", "/tmp"]
command = ["serve", "--port", "80"]
[b00t.health_check]
http_url = "http://localhost:8080/health"
start_period_ms = 3000
[b00t.env]
API_URL = "http://localhost:8080"
""",
    "tools.mcp": """
[b00t]
name = "tools"
type = "mcp"
depends_on = ["api.docker"]
[b00t.env]
TOOLS_API = "${API_URL}/tools"
""",
    "web.docker": """
[b00t]
name = "web"
type = "docker"
image = "example/web:1"
depends_on = ["tools.mcp", "db.docker"]
docker_args = ["-p", "3000:3000"]
[b00t.health_check]
exec = ["test", "-f", "/tmp/ready"]
[b00t.resources]
memory_limit = "1G"
cpu_limit = "2"
""",
    "app.stack": """
[b00t]
name = "app"
type = "stack"
members = ["web.docker"]
""",
}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("_B00T_Path", raising=False)
    monkeypatch.delenv("B00T_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def folder(write_datums: WriteDatums) -> Path:
    return write_datums(DATUMS)


def graph_of(folder: Path, *targets: str) -> Graph:
    return compile_graph(load_catalog(datum_dirs([folder], {})), targets, {}, reachable=None)


def by_kind(export: K8sExport, kind: str) -> dict[str, dict[str, Any]]:
    return {m["metadata"]["name"]: m for m in export.manifests if m["kind"] == kind}


def workload(export: K8sExport, name: str) -> dict[str, Any]:
    found = {**by_kind(export, "Deployment"), **by_kind(export, "StatefulSet")}
    return found[name]


def pod_spec(export: K8sExport, name: str) -> dict[str, Any]:
    spec: dict[str, Any] = workload(export, name)["spec"]["template"]["spec"]
    return spec


def invoke(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result


# --- schema validation ---------------------------------------------------------------------------


@pytest.mark.parametrize("version", [K8S_VERSION, kubernetes_validate.latest_version()])
def test_every_manifest_validates_against_the_kubernetes_schemas(folder: Path, version: str) -> None:
    export = to_manifests(graph_of(folder, "app.stack"))
    kinds = sorted({m["kind"] for m in export.manifests})
    assert kinds == ["ConfigMap", "Deployment", "Secret", "Service", "StatefulSet"]
    for m in export.manifests:
        kubernetes_validate.validate(m, version, strict=True)  # raises on any schema error or unknown field


def test_validation_can_fail() -> None:
    """The validator is not a no-op: a field Kubernetes does not know is refused."""
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": 80, "waitFor": "db"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_the_packaged_grok_stack_exports_and_validates() -> None:
    result = invoke("export", "k8s", "grok.stack")
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.stdout))
    assert {(d["kind"], d["metadata"]["name"]) for d in docs} >= {("StatefulSet", "qdrant"), ("Service", "ollama")}
    for d in docs:
        kubernetes_validate.validate(d, K8S_VERSION, strict=True)


# --- the order: one init container per dependency edge ---------------------------------------------


def _wait_targets(export: K8sExport, name: str) -> dict[str, tuple[str, int]]:
    """init container name → (Service host, port) its loop contacts."""
    out = {}
    for init in pod_spec(export, name).get("initContainers", []):
        script = init["command"][-1]
        m = (re.search(r"http://([a-z0-9-]+):(\d+)/", script)
             or re.search(r"nc -w \d+ ([a-z0-9-]+) (\d+) </dev/null", script))
        assert m, script
        assert script.startswith("until ") and script.endswith("done"), script
        out[init["name"]] = (m.group(1), int(m.group(2)))
    return out


def _expected_waits(graph: Graph, ident: str, exported: set[str]) -> set[str]:
    """Written independently of the exporter: follow edges through anything not exported."""
    found: set[str] = set()
    todo = list(graph.nodes[ident].deps)
    seen: set[str] = set()
    while todo:
        cur = todo.pop()
        if cur in seen:
            continue
        seen.add(cur)
        if cur in exported:
            found.add(cur)
        else:
            todo.extend(graph.nodes[cur].deps)
    return found


def test_each_dependency_edge_is_an_init_container_wait_and_no_other(folder: Path) -> None:
    graph = graph_of(folder, "app.stack", "worker.process")
    export = to_manifests(graph)
    services = by_kind(export, "Service")
    node_of = {name: s["metadata"]["annotations"]["org.b00t-graph/node"] for name, s in services.items()}
    exported = {w["metadata"]["annotations"]["org.b00t-graph/node"]
                for w in [*by_kind(export, "Deployment").values(), *by_kind(export, "StatefulSet").values()]}
    assert exported == {"db.docker", "cache.docker", "api.docker", "web.docker"}
    edges_checked = 0
    for w in [*by_kind(export, "Deployment").values(), *by_kind(export, "StatefulSet").values()]:
        ident = w["metadata"]["annotations"]["org.b00t-graph/node"]
        waits = _wait_targets(export, w["metadata"]["name"])
        waited = [node_of[host] for host, _ in waits.values()]
        assert sorted(waited) == sorted(_expected_waits(graph, ident, exported)), ident
        assert len(waited) == len(set(waited)), f"{ident} waits twice for one dependency"
        for host, port in waits.values():  # each wait dials a port that dependency's Service has
            assert port in {p["port"] for p in services[host]["spec"]["ports"]}
        edges_checked += len(waited)
    assert edges_checked == 4  # api → db, cache (through infra.stack); web → api (through tools.mcp), db
    assert export.waits["web.docker"] == ("db.docker", "api.docker")  # in graph order


def test_waits_use_the_dependency_http_probe_else_a_tcp_connect(folder: Path) -> None:
    export = to_manifests(graph_of(folder, "app.stack"), wait_image="registry.local/busybox:1.36")
    inits = {i["name"]: i for i in pod_spec(export, "web")["initContainers"]}
    assert inits["wait-api"]["command"] == [
        "sh", "-c", "until wget -q -T 2 -O /dev/null http://api:8080/health; do echo waiting for api; sleep 1; done"]
    assert inits["wait-db"]["command"][-1].startswith("until nc -w 2 db 5433 </dev/null;")
    assert {i["image"] for i in inits.values()} == {"registry.local/busybox:1.36"}
    assert "initContainers" not in pod_spec(export, "db")


def test_workload_deps_skip_optional_members(write_datums: WriteDatums) -> None:
    folder = write_datums({
        **{k: DATUMS[k] for k in ("db.docker", "cache.docker")},
        "opt.stack": '[b00t]\nname = "opt"\ntype = "stack"\nmembers = ["db.docker"]\n'
                     '[b00t.stack.components]\nc = { datum = "cache.docker", required = false }\n',
        "top.docker": '[b00t]\nname = "top"\ntype = "docker"\nimage = "x:1"\ndepends_on = ["opt.stack"]\n',
    })
    graph = graph_of(folder, "top.docker")
    exported = {i for i, n in graph.nodes.items() if n.runtime == "docker"}
    assert workload_deps(graph, "top.docker", dict.fromkeys(exported)) == ("db.docker",)


# --- probes, resources, volumes, env ------------------------------------------------------------------


def test_probes_are_mapped_from_the_health_check(folder: Path) -> None:
    export = to_manifests(graph_of(folder, "app.stack"))
    api = pod_spec(export, "api")["containers"][0]
    # http on the host port 8080 → httpGet on the container port 80; start_period → initial delay;
    # the whole wait (60 s default) at a 1 s period → 60 tries.
    assert api["startupProbe"] == {"httpGet": {"path": "/health", "port": 80}, "initialDelaySeconds": 3,
                                   "periodSeconds": 1, "timeoutSeconds": 2, "failureThreshold": 60}
    assert api["readinessProbe"] == {"httpGet": {"path": "/health", "port": 80}, "periodSeconds": 1,
                                     "timeoutSeconds": 2, "failureThreshold": 3}
    db = pod_spec(export, "db")["containers"][0]
    assert db["startupProbe"] == {"tcpSocket": {"port": 5432}, "initialDelaySeconds": 0, "periodSeconds": 2,
                                  "timeoutSeconds": 2, "failureThreshold": 15}
    assert db["readinessProbe"]["failureThreshold"] == 5  # retries = 4 failures allowed
    web = pod_spec(export, "web")["containers"][0]
    assert web["readinessProbe"]["exec"] == {"command": ["test", "-f", "/tmp/ready"]}
    cache = pod_spec(export, "cache")["containers"][0]
    assert "startupProbe" not in cache and "readinessProbe" not in cache


def test_resources_ports_and_volumes(folder: Path) -> None:
    export = to_manifests(graph_of(folder, "app.stack"))
    api = pod_spec(export, "api")
    assert api["containers"][0]["resources"] == {"limits": {"memory": "512Mi", "cpu": "500m"}}
    assert api["containers"][0]["args"] == ["serve", "--port", "80"]
    assert api["volumes"] == [{"name": "scratch-0", "emptyDir": {"medium": "Memory"}}]
    assert pod_spec(export, "web")["containers"][0]["resources"] == {"limits": {"memory": "1Gi", "cpu": "2"}}
    assert by_kind(export, "Service")["api"]["spec"]["ports"] == [
        {"name": "tcp-8080", "port": 8080, "targetPort": 80, "protocol": "TCP"}]
    assert by_kind(export, "Service")["cache"]["spec"]["ports"][0]["port"] == 6379  # --expose: container port
    # A named volume makes a StatefulSet with a claim template; the rest are Deployments.
    assert set(by_kind(export, "StatefulSet")) == {"db"}
    db = workload(export, "db")
    assert db["spec"]["serviceName"] == "db"
    assert [t["metadata"]["name"] for t in db["spec"]["volumeClaimTemplates"]] == ["pgdata"]
    assert db["spec"]["template"]["spec"]["containers"][0]["volumeMounts"] == [
        {"name": "pgdata", "mountPath": "/var/lib/postgresql/data"}]


def test_labels_carry_name_part_of_and_config_hash(folder: Path) -> None:
    graph = graph_of(folder, "app.stack")
    export = to_manifests(graph)
    web = workload(export, "web")
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "web"
    assert labels["app.kubernetes.io/part-of"] == "app"
    assert labels["org.b00t-graph/config-hash"] == graph.nodes["web.docker"].config_hash
    assert web["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_env_configmap_rewrites_dependency_loopback_addresses_to_services(folder: Path) -> None:
    export = to_manifests(graph_of(folder, "app.stack"))
    cms = by_kind(export, "ConfigMap")
    secrets = by_kind(export, "Secret")
    assert cms["web-env"]["data"] == {
        "DB_ADDR": "db:5433",
        "REDIS_URL": "redis://cache:6379/0",
        "API_URL": "http://api:8080",
        "TOOLS_API": "http://api:8080/tools",  # a group's export flows through it
    }
    # a URL with a password and a secret-looking name go to a Secret
    assert secrets["web-env-secret"]["stringData"] == {"DATABASE_URL": "postgres://app:pw@db:5433/app"}
    assert secrets["db-env-secret"]["stringData"] == {"DATABASE_URL": "postgres://app:pw@localhost:5433/app",
                                                      "POSTGRES_PASSWORD": "pw"}
    assert cms["db-env"]["data"] == {"DB_ADDR": "localhost:5433"}  # its own exports are left as written
    env_from = pod_spec(export, "web")["containers"][0]["envFrom"]
    assert env_from == [{"configMapRef": {"name": "web-env"}}, {"secretRef": {"name": "web-env-secret"}}]


# --- the CLI ------------------------------------------------------------------------------------------


def test_a_process_node_is_left_out_with_a_note_and_exit_0(folder: Path, write_datums: WriteDatums) -> None:
    more = write_datums({"svc.docker": '[b00t]\nname = "svc"\ntype = "docker"\nimage = "x:1"\n'
                                       'depends_on = ["worker.process"]\n'
                                       '[b00t.env]\nW = "${WORKER_URL}"\n'})
    result = invoke("export", "k8s", "svc.docker", "-d", str(folder), "-d", str(more))
    assert result.exit_code == 0, result.output
    assert "note: worker.process: a process node has no image: left out" in result.stderr
    assert "note: svc.docker: W='http://127.0.0.1:9100': no dependency serves port 9100" in result.stderr
    docs = list(yaml.safe_load_all(result.stdout))
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [("ConfigMap", "svc-env"), ("Deployment", "svc")]
    assert "initContainers" not in docs[1]["spec"]["template"]["spec"]


def test_only_process_nodes_exports_nothing_with_a_note(folder: Path) -> None:
    result = invoke("export", "k8s", "worker.process", "-d", str(folder))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert "nothing to export" in result.stderr


def test_output_folder_has_a_file_per_workload_and_a_kustomization(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = invoke("export", "k8s", "app.stack", "-d", str(folder), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["api.yaml", "cache.yaml", "db.yaml", "kustomization.yaml",
                                                    "web.yaml"]
    kust = yaml.safe_load((out / "kustomization.yaml").read_text())
    assert kust["resources"][-1] == "web.yaml"  # graph order: web after what it waits for
    assert set(kust["resources"][:2]) == {"db.yaml", "cache.yaml"}
    for name in kust["resources"]:
        text = (out / name).read_text()
        assert "&id" not in text  # no YAML anchors: each object reads on its own
        for d in yaml.safe_load_all(text):
            kubernetes_validate.validate(d, K8S_VERSION, strict=True)


def test_helm_chart(folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "chart"
    result = invoke("export", "k8s", "app.stack", "-d", str(folder), "-o", str(out), "--format", "helm")
    assert result.exit_code == 0, result.output
    chart = yaml.safe_load((out / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "app"
    assert sorted(p.name for p in (out / "templates").iterdir()) == ["api.yaml", "cache.yaml", "db.yaml", "web.yaml"]


def test_bad_input_is_exit_2_in_one_line(folder: Path) -> None:
    result = invoke("export", "k8s", "app.stack", "-d", str(folder), "--format", "helm")
    assert result.exit_code == 2
    assert "--format helm writes a chart folder" in result.stderr
    result = invoke("export", "k8s", "nope.docker", "-d", str(folder))
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
