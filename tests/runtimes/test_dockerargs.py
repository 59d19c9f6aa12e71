"""The ``docker run`` flag parser: pure, no engine needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from b00t_graph.errors import DatumError
from b00t_graph.graph import Node, compile_graph
from b00t_graph.loader import Source, load_catalog
from b00t_graph.model import Datum, Resources
from b00t_graph.runtimes.dockerargs import (
    KEY,
    check,
    container_config,
    parse_bytes,
    parse_cpus,
    parse_duration,
    parse_publish,
    plan,
)

LABELS = {"org.b00t-graph.managed": "1", "org.b00t-graph.node": "web.docker", "org.b00t-graph.config-hash": "h"}


def node(*args: str, env: dict[str, str] | None = None, path: str = "/datums/web.docker.toml",
         **spec: Any) -> Node:
    datum = Datum(name=spec.pop("name", "web"), type="docker", path=path, image=spec.pop("image", "img:1"),
                  docker_args=tuple(args), **spec)
    return Node(spec=datum, deps=(), env=dict(env or {}), exports={}, health=None, config_hash="h")


def cfg(*args: str, **kw: Any) -> dict[str, Any]:
    return container_config(node(*args, **kw), LABELS)


def problems(*args: str, **kw: Any) -> list[str]:
    found = list(check(node(*args, **kw)))
    assert all(p.path == "/datums/web.docker.toml" for p in found)
    return [f"{p.key}: {p.message}" for p in found]


# --- ports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("args", [["-p", "8080:80"], ["-p=8080:80"], ["-p8080:80"], ["--publish", "8080:80"],
                                  ["--publish=8080:80"]])
def test_publish_forms(args: list[str]) -> None:
    c = cfg(*args)
    assert c["ExposedPorts"] == {"80/tcp": {}}
    assert c["HostConfig"]["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}


def test_publish_ip_proto_random_and_ranges() -> None:
    assert parse_publish("127.0.0.1:5353:53/udp") == [("53/udp", "127.0.0.1", "5353")]
    assert parse_publish("[::1]:9000:9000") == [("9000/tcp", "::1", "9000")]
    assert parse_publish("127.0.0.1::80") == [("80/tcp", "127.0.0.1", "")]
    assert parse_publish("80") == [("80/tcp", "", "")]
    assert parse_publish("8000-8001:9000-9001") == [("9000/tcp", "", "8000"), ("9001/tcp", "", "8001")]
    assert parse_publish("8000-8010:80") == [("80/tcp", "", "8000-8010")]


def test_structured_ports_merge_with_flags() -> None:
    c = cfg("-p", "6333:6333", ports=("127.0.0.1:6334:6334",))
    assert set(c["ExposedPorts"]) == {"6333/tcp", "6334/tcp"}
    assert c["HostConfig"]["PortBindings"]["6334/tcp"] == [{"HostIp": "127.0.0.1", "HostPort": "6334"}]


@pytest.mark.parametrize("bad", ["http", "70000:80", "80/xtp", "1-3:5-6", "a:b:c:d"])
def test_bad_ports_are_problems(bad: str) -> None:
    found = problems("-p", bad)
    assert len(found) == 1 and found[0].startswith(f"{KEY}: ") and repr(bad) in found[0]


def test_bad_structured_port_names_its_key() -> None:
    assert problems(ports=("nope",))[0].startswith("b00t.ports[0]: ")


# --- volumes -------------------------------------------------------------------------------------


def test_named_volumes_are_reported_for_creation() -> None:
    p = plan(node("-v", "qdrant_storage:/qdrant/storage:z", "--volume=other:/o:ro"), LABELS)
    assert p.volumes == ("qdrant_storage", "other")
    assert p.config["HostConfig"]["Binds"] == ["qdrant_storage:/qdrant/storage:z", "other:/o:ro"]


def test_bind_mounts_expand_home_and_datum_relative_paths() -> None:
    c = cfg("-v", "~/.n8n:/home/node/.n8n", "-v", "./data:/data", "-v", "/srv/x:/x:ro,Z")
    binds = c["HostConfig"]["Binds"]
    assert binds[0] == f"{Path.home()}/.n8n:/home/node/.n8n"
    assert binds[1] == "/datums/data:/data"
    assert binds[2] == "/srv/x:/x:ro,Z"
    assert plan(node("-v", "/srv/x:/x"), LABELS).volumes == ()


def test_anonymous_volume_and_mount_and_tmpfs() -> None:
    c = cfg("-v", "/cache", "--mount", "type=volume,source=vol1,target=/v,readonly",
            "--mount", "type=bind,src=~/cfg,dst=/cfg", "--mount", "type=tmpfs,target=/t,tmpfs-size=64m",
            "--tmpfs", "/run:size=1m")
    assert c["Volumes"] == {"/cache": {}}
    mounts = c["HostConfig"]["Mounts"]
    assert mounts[0] == {"Type": "volume", "Target": "/v", "ReadOnly": True, "Source": "vol1"}
    assert mounts[1] == {"Type": "bind", "Target": "/cfg", "ReadOnly": False, "Source": f"{Path.home()}/cfg"}
    assert mounts[2]["TmpfsOptions"] == {"SizeBytes": 64 * 1024**2}
    assert c["HostConfig"]["Tmpfs"] == {"/run": "size=1m"}
    assert plan(node("--mount", "type=volume,source=vol1,target=/v"), LABELS).volumes == ("vol1",)


@pytest.mark.parametrize(("bad", "why"), [
    ("data:relative", "the container path 'relative' must be absolute"),
    ("vol:/x:bogus", "unknown volume option(s) bogus (known: Z, cached, consistent, delegated, nocopy, private, ro, "
                     "rprivate, rshared, rslave, rw, shared, slave, z)"),
    ("a:b:c:d", "expected source:destination[:options]"),
    ("relative-only", "an anonymous volume needs an absolute container path"),
    ("bad name!:/x", "'bad name!' is neither a path (/…, ./…, ~/…) nor a volume name"),
])
def test_bad_volumes_are_problems(bad: str, why: str) -> None:
    assert problems("-v", bad) == [f"b00t.docker_args: {bad!r}: {why}"]


# --- environment, labels, name ---------------------------------------------------------------------


def test_env_is_node_env_plus_flags_and_bare_keys_come_from_node_env() -> None:
    c = cfg("-e", "POSTGRES_DB=testdb", "--env", "TOKEN", "-e", "A=override",
            env={"A": "from-deps", "TOKEN": "s3cret", "B": "kept"})
    assert c["Env"] == ["A=override", "TOKEN=s3cret", "B=kept", "POSTGRES_DB=testdb"]


def test_bare_env_key_missing_from_node_env_is_a_problem() -> None:
    (msg,) = problems("-e", "MISSING")
    assert "MISSING" in msg and "[b00t.env]" in msg


def test_labels_ours_win_and_our_namespace_is_reserved() -> None:
    c = cfg("-l", "team=data", "--label=flag")
    assert c["Labels"] == {"team": "data", "flag": "", **LABELS}
    assert "b00t-graph" in problems("-l", "org.b00t-graph.node=evil")[0]


def test_a_differing_name_names_the_container() -> None:
    assert plan(node("--name", "web"), LABELS).name == "web"
    assert problems("--name", "rustfs-quick") == []
    assert plan(node("--name", "rustfs-quick"), LABELS).name == "rustfs-quick"
    assert plan(node(container_name="rustfs-quick"), LABELS).name == "rustfs-quick"
    assert plan(node("--name", "rustfs-quick", container_name="rustfs-quick"), LABELS).name == "rustfs-quick"
    (msg,) = problems("--name", "other", container_name="rustfs-quick")
    assert "'other'" in msg and "'rustfs-quick'" in msg
    assert "not a container name" in problems("--name", "bad name!")[0]


def test_two_datums_of_one_graph_naming_one_container_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "a.docker.toml").write_text('[b00t]\nname = "a"\ntype = "docker"\nimage = "i:1"\n'
                                           'docker_args = ["--name", "shared"]\n')
    (tmp_path / "b.docker.toml").write_text('[b00t]\nname = "b"\ntype = "docker"\nimage = "i:1"\n'
                                           'docker_args = ["--name", "shared"]\ndepends_on = ["a.docker"]\n')
    cat = load_catalog([Source(tmp_path, "test")])
    compile_graph(cat, ["a.docker"], environ={})  # alone, fine
    with pytest.raises(DatumError) as info:
        compile_graph(cat, ["b.docker"], environ={})
    text = str(info.value)
    assert "b.docker.toml" in text and "a.docker" in text and "'shared'" in text


def test_restart_policy_from_the_datum() -> None:
    assert cfg(restart="unless-stopped")["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert cfg(restart="on-failure:3")["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                                           "MaximumRetryCount": 3}
    assert cfg("--restart", "always", restart="always")["HostConfig"]["RestartPolicy"] == {"Name": "always"}
    assert problems(restart="sometimes")[0].startswith("b00t.restart: 'sometimes'")
    assert "contradicts" in problems("--restart", "no", restart="always")[0]


def test_container_dialect_flags() -> None:
    host = cfg("--runtime", "nvidia", "--gpus", "device=0", "--device", "nvidia.com/gpu=all")["HostConfig"]
    assert host["Runtime"] == "nvidia"
    reqs = host["DeviceRequests"]
    assert reqs[0]["DeviceIDs"] == ["0"]
    assert reqs[1]["Driver"] == "cdi" and reqs[1]["DeviceIDs"] == ["nvidia.com/gpu=all"]


def test_run_env_reaches_the_container() -> None:
    c = cfg(env={"A": "1"}, run_env={"TOKEN": "t"})
    assert set(c["Env"]) == {"A=1", "TOKEN=t"}


def test_a_build_without_an_image_gets_a_local_name(tmp_path: Path) -> None:
    from b00t_graph.model import Build
    from b00t_graph.runtimes.dockerbuild import OUTSIDE_NAME, resolve
    from b00t_graph.runtimes.dockerbuild import problems as build_problems

    (tmp_path / "ctx").mkdir()
    (tmp_path / "ctx" / "Containerfile").write_text("FROM scratch\n")
    n = node(image=None, build=Build(context="ctx"), path=str(tmp_path / "web.docker.toml"))
    assert plan(n, LABELS).image == "b00t-graph/web:latest"
    assert list(check(n)) == []
    missing = node(image=None, build=Build(context="nope"), path=str(tmp_path / "web.docker.toml"))
    assert list(check(missing)) == []  # looked at when the image is built, so plan works without it
    (msg,) = [f"{p.key}: {p.message}" for p in build_problems(missing.spec)]
    assert msg.startswith("b00t.docker.build: the build context 'nope' is not a folder")
    (tmp_path / "ctx" / "sub").mkdir()
    (tmp_path / "Dockerfile.outside").write_text("FROM scratch\n")
    for file, expect in (("Containerfile", "Containerfile"), ("ctx/Containerfile", "Containerfile"),
                         ("Dockerfile.outside", OUTSIDE_NAME)):
        ctx = resolve(node(build=Build(context="ctx", file=file), path=str(tmp_path / "web.docker.toml")).spec)
        assert ctx.dockerfile == expect and ctx.folder == tmp_path / "ctx"
    assert resolve(node(build=Build(context="https://example.invalid/x.git", file="D")).spec).remote


def test_the_datum_name_is_the_default_container_name() -> None:
    assert cfg("--name", "web") == cfg()
    assert problems("--name", "web") == []


def test_too_short_a_name_is_a_problem() -> None:
    assert problems(name="x")[0].startswith("b00t.name: ")


# --- networks -------------------------------------------------------------------------------------


def test_user_network_is_created_builtin_ones_are_not() -> None:
    p = plan(node("--network", "b00t", "--network-alias", "db"), LABELS)
    assert p.networks == ("b00t",)
    assert p.config["HostConfig"]["NetworkMode"] == "b00t"
    assert p.config["NetworkingConfig"] == {"EndpointsConfig": {"b00t": {"Aliases": ["db"]}}}
    for builtin in ("host", "bridge", "none", "container:other"):
        q = plan(node(f"--net={builtin}"), LABELS)
        assert q.networks == () and q.config["HostConfig"]["NetworkMode"] == builtin
    assert plan(node(network="shared"), LABELS).networks == ("shared",)


def test_conflicting_networks_are_problems() -> None:
    assert problems("--network", "a", "--network", "b") == [
        "b00t.docker_args: --network 'b': only one network can be joined at creation (already 'a')"]
    assert problems("--network", "a", network="b")[0].startswith("b00t.network: ")
    assert problems("--network-alias", "x") == ["b00t.docker_args: --network-alias needs a user-defined --network"]


# --- resources and the rest -------------------------------------------------------------------------


def test_units() -> None:
    assert parse_bytes("512m") == 512 * 1024**2
    assert parse_bytes("1G") == parse_bytes("1gb") == parse_bytes("1Gi") == 1024**3
    assert parse_bytes("100") == 100
    assert parse_cpus("1.5") == 1_500_000_000
    assert parse_cpus("500m") == 500_000_000
    assert parse_duration("1m30s") == 90 * 10**9
    assert parse_duration("100ms") == 100_000_000


def test_resources_flags_and_structured_keys() -> None:
    h = cfg("-m", "512m", "--cpus=1.5", "--shm-size", "1g", "--memory-swap", "-1")["HostConfig"]
    assert (h["Memory"], h["NanoCpus"], h["ShmSize"], h["MemorySwap"]) == (512 * 1024**2, 1_500_000_000, 1024**3, -1)
    h = cfg(resources=Resources(memory_limit="2Gi", cpu_limit="500m"))["HostConfig"]
    assert (h["Memory"], h["NanoCpus"]) == (2 * 1024**3, 500_000_000)
    assert problems("-m", "1g", resources=Resources(memory_limit="2g"))[0].startswith("b00t.resources.memory_limit")
    assert problems(resources=Resources(cpu_limit="lots"))[0].startswith("b00t.resources.cpu_limit")


def test_restart_policies() -> None:
    assert cfg("--restart", "unless-stopped")["HostConfig"]["RestartPolicy"] == {"Name": "unless-stopped"}
    assert cfg("--restart=on-failure:3")["HostConfig"]["RestartPolicy"] == {"Name": "on-failure",
                                                                            "MaximumRetryCount": 3}
    assert cfg("--restart", "no")["HostConfig"]["RestartPolicy"] == {"Name": ""}
    assert problems("--restart", "sometimes") == [
        "b00t.docker_args: --restart 'sometimes': expected no, always, unless-stopped or on-failure[:N]"]
    assert problems("--restart", "always:3") == [
        "b00t.docker_args: --restart 'always:3': a retry count is only allowed as on-failure:N"]


def test_gpus() -> None:
    (req,) = cfg("--gpus", "all")["HostConfig"]["DeviceRequests"]
    assert req["Count"] == -1 and req["Capabilities"] == [["gpu"]]
    assert cfg("--gpus", "2")["HostConfig"]["DeviceRequests"][0]["Count"] == 2
    (req,) = cfg("--gpus", '"device=0,1"')["HostConfig"]["DeviceRequests"]
    assert req["DeviceIDs"] == ["0", "1"] and req["Count"] == 0
    (req,) = cfg("--gpus", "device=GPU-3a2b,capabilities=compute")["HostConfig"]["DeviceRequests"]
    assert req["DeviceIDs"] == ["GPU-3a2b"]
    (req,) = cfg("--gpus", "count=1,capabilities=compute,driver=nvidia")["HostConfig"]["DeviceRequests"]
    assert req["Capabilities"] == [["compute"]] and req["Driver"] == "nvidia" and req["Count"] == 1
    assert problems("--gpus", "some") == ["b00t.docker_args: --gpus 'some': count must be a number or all"]


def test_ulimits_hosts_user_workdir_entrypoint_command() -> None:
    c = cfg("--ulimit", "nofile=1024:2048", "--ulimit", "nproc=unlimited", "--add-host", "db:10.0.0.2",
            "--add-host=gw:host-gateway", "-u", "1000:1000", "-w", "/app", "--entrypoint", "/bin/sh",
            command=("-c", "echo hi"), args=("extra",))
    h = c["HostConfig"]
    assert h["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                            {"Name": "nproc", "Soft": -1, "Hard": -1}]
    assert h["ExtraHosts"] == ["db:10.0.0.2", "gw:host-gateway"]
    assert (c["User"], c["WorkingDir"], c["Entrypoint"]) == ("1000:1000", "/app", ["/bin/sh"])
    assert c["Cmd"] == ["-c", "echo hi", "extra"]
    assert "Cmd" not in cfg()
    assert problems("--ulimit", "bogus=1") == [
        "b00t.docker_args: --ulimit 'bogus=1': expected NAME=SOFT[:HARD] with NAME one of core, cpu, data, fsize, "
        "locks, memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack"]
    assert problems("--ulimit", "nofile=10:5") == [
        "b00t.docker_args: --ulimit 'nofile=10:5': the soft limit exceeds the hard one"]
    assert problems("--add-host", "nohost") == ["b00t.docker_args: --add-host 'nohost': expected host:ip"]


def test_switches_grouped_and_ignored() -> None:
    c = cfg("-dit", "--rm", "--privileged", "--init=true", "--read-only=false")
    assert c["OpenStdin"] is True and c["Tty"] is True
    assert c["HostConfig"]["Privileged"] is True and c["HostConfig"]["Init"] is True
    assert c["HostConfig"]["ReadonlyRootfs"] is False
    assert "AutoRemove" not in c["HostConfig"]  # --rm is ignored on purpose (see dockerargs' docstring)


def test_healthcheck_flags() -> None:
    c = cfg("--health-cmd", "curl -f localhost", "--health-interval=2s", "--health-retries", "5",
            "--health-start-period", "1m", "--health-timeout", "500ms")
    assert c["Healthcheck"] == {"Test": ["CMD-SHELL", "curl -f localhost"], "Interval": 2 * 10**9, "Retries": 5,
                                "StartPeriod": 60 * 10**9, "Timeout": 500_000_000}
    assert cfg("--no-healthcheck")["Healthcheck"] == {"Test": ["NONE"]}
    assert problems("--health-interval", "2s") == [
        "b00t.docker_args: --health-interval/--health-timeout/--health-retries need --health-cmd"]
    assert problems("--health-interval", "soon", "--health-cmd", "true") == [
        "b00t.docker_args: 'soon' is not a duration (e.g. 500ms, 10s, 1m30s)"]


def test_pull_and_platform() -> None:
    p = plan(node("--pull", "never", "--platform", "linux/arm64"), LABELS)
    assert (p.pull, p.platform) == ("never", "linux/arm64")
    assert problems("--pull", "sometimes") == [
        "b00t.docker_args: --pull 'sometimes': expected missing, never or always"]


# --- what is refused ---------------------------------------------------------------------------------


def test_unsupported_flags_are_named() -> None:
    (msg,) = problems("--frobnicate", "x")
    assert "--frobnicate" in msg and "--publish" in msg  # names the flag and lists what works
    (msg,) = problems("-X")
    assert "-X" in msg
    (msg,) = problems("--env-file", ".env")
    assert "--env-file" in msg and "[b00t.env]" in msg


def test_positional_and_missing_values_are_problems() -> None:
    (msg,) = problems("qdrant/qdrant:latest")
    assert "b00t.image" in msg
    (msg,) = problems("-p")
    assert "-p needs a value" in msg
    (msg,) = problems("--cpus")
    assert "--cpus needs a value" in msg


def test_every_problem_is_reported_not_just_the_first() -> None:
    assert problems("-p", "bad", "-v", "also:bad:worse:x", "--restart", "maybe") == [
        "b00t.docker_args: container port 'bad' is not a port number or range",
        "b00t.docker_args: 'also:bad:worse:x': expected source:destination[:options]",
        "b00t.docker_args: --restart 'maybe': expected no, always, unless-stopped or on-failure[:N]"]


def test_plan_raises_datum_error_for_bad_args() -> None:
    with pytest.raises(DatumError):
        plan(node("--frobnicate"))


def test_a_good_datum_has_no_problems() -> None:
    assert problems("-d", "--name", "web", "-p", "6333:6333", "-v", "qdrant_storage:/qdrant/storage:z",
                    "-e", "A=1", "--restart", "unless-stopped", "--gpus", "all") == []


def test_compile_catches_bad_docker_args(tmp_path: Path) -> None:
    (tmp_path / "rustfs.docker.toml").write_text(
        '[b00t]\nname = "rustfs"\ntype = "docker"\nimage = "rustfs/rustfs:latest"\n'
        'docker_args = ["-d", "--name", "rustfs-quick", "-p", "9000:9000", "--bogus"]\n')
    cat = load_catalog([Source(tmp_path, "test")])
    with pytest.raises(DatumError) as info:
        compile_graph(cat, ["rustfs"], environ={})
    keys = {p.key for p in info.value.problems}
    assert keys == {KEY}
    text = str(info.value)
    # a differing --name is the container name (read by the loader), not an error; --bogus is
    assert "--bogus" in text and "rustfs.docker.toml" in text and "rustfs-quick" not in text
    assert cat.datums["rustfs.docker"].container_name == "rustfs-quick"
