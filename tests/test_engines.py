"""Named engines without an engine: ``b00t-graph.toml`` and the user config, Docker contexts, ``[b00t] engine``,
``--engine NODE=NAME``, ``${B00T_ENGINE_HOST}``, probes of a remote engine, and bad input (exit 2, one line
naming the file and the key). What talks to real engines is in ``tests/runtimes/test_engines_docker.py``."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from b00t_graph.engines import EngineSpec, address_of, load_engines
from b00t_graph.errors import DatumError, InputError, PortConflictError
from b00t_graph.graph import Graph, compile_graph
from b00t_graph.loader import datum_dirs, load_catalog
from b00t_graph.model import HealthCheck
from tests.procutil import cli

WriteDatums = Callable[..., Path]

DB = """[b00t]
type = "docker"
image = "b00t-graph-test/busybox:1"
ports = ["5432:5432"]
{engine}
[b00t.env]
DB_URL = "postgres://${{B00T_ENGINE_HOST}}:5432"
[b00t.health_check]
tcp = "localhost:5432"
"""
APP = """[b00t]
type = "docker"
image = "b00t-graph-test/busybox:1"
depends_on = ["db.docker"]
ports = ["127.0.0.1:8080:80"]
[b00t.health_check]
http_url = "http://localhost:8080/health"
"""


def graph(folder: Path, targets: tuple[str, ...] = ("app.docker",), env: dict[str, str] | None = None,
          engine_of: dict[str, str] | None = None) -> Graph:
    environ = {"XDG_CONFIG_HOME": str(folder.parent / "no-config"), "HOME": str(folder.parent), **(env or {})}
    cat = load_catalog(datum_dirs([folder], environ))
    return compile_graph(cat, targets, environ, engine_of=engine_of)


def one_line(stderr: str) -> str:
    got = [x for x in stderr.splitlines() if x.strip()]
    assert len(got) == 1 and "Traceback" not in stderr, stderr
    return got[0]


def test_a_node_on_a_named_engine_reads_its_host_address_and_probes_it_there(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu-box.example:2375"\n',
        "db.docker": DB.format(engine='engine = "gpu"'), "app.docker": APP})
    g = graph(folder)
    db, app = g.nodes["db.docker"], g.nodes["app.docker"]
    assert db.engine is not None and db.engine.name == "gpu" and db.engine.url == "tcp://gpu-box.example:2375"
    assert db.runtime_key == "docker@gpu" and app.runtime_key == "docker" and app.engine is None
    assert db.exports == {"DB_URL": "postgres://gpu-box.example:5432"}
    assert app.env["DB_URL"] == "postgres://gpu-box.example:5432"  # the dependent reaches it on its engine
    assert db.health is not None and db.health.tcp == "gpu-box.example:5432"  # not localhost: the engine's host
    assert app.health is not None and app.health.http_url == "http://localhost:8080/health"  # the default engine


def test_an_address_overrides_the_host_part_and_a_unix_engine_is_local(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://10.0.0.9:2376"\naddress = "gpu.lan"\n'
                           '[engines.side]\nhost = "unix:///run/side.sock"\n',
        "db.docker": DB.format(engine='engine = "gpu"'), "app.docker": APP})
    assert graph(folder).nodes["db.docker"].exports["DB_URL"] == "postgres://gpu.lan:5432"
    side = graph(folder, engine_of={"db": "side"}).nodes["db.docker"]
    assert side.runtime_key == "docker@side"
    assert side.exports["DB_URL"] == "postgres://127.0.0.1:5432" and side.health is not None
    assert side.health.tcp == "localhost:5432"
    assert address_of("tcp://[fd00::7]:2375") == "[fd00::7]" and address_of(None) == "127.0.0.1"


def test_engine_host_of_the_default_engine_follows_docker_host(write_datums: WriteDatums) -> None:
    folder = write_datums({"db.docker": DB.format(engine=""), "app.docker": APP})
    assert graph(folder).nodes["db.docker"].exports["DB_URL"] == "postgres://127.0.0.1:5432"
    far = graph(folder, env={"DOCKER_HOST": "tcp://build-box:2375"})
    assert far.nodes["db.docker"].exports["DB_URL"] == "postgres://build-box:5432"
    assert far.nodes["db.docker"].engine is None  # still the default engine: no runtime of its own


def test_engine_override_moves_a_node_and_default_moves_it_back(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
        "db.docker": DB.format(engine='engine = "gpu"'), "app.docker": APP})
    assert graph(folder, engine_of={"app.docker": "gpu"}).nodes["app.docker"].runtime_key == "docker@gpu"
    back = graph(folder, engine_of={"db": "default"}).nodes["db.docker"]
    assert back.engine is None and back.exports["DB_URL"] == "postgres://127.0.0.1:5432"


def test_engine_override_of_a_node_not_in_the_graph_or_without_a_container_is_bad_input(
        write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
        "db.docker": DB.format(engine=""), "app.docker": APP,
        "tool.process": '[b00t]\ncommand = ["true"]\n'})
    with pytest.raises(InputError, match=r"--engine nope=gpu: no node 'nope' in this graph"):
        graph(folder, engine_of={"nope": "gpu"})
    with pytest.raises(InputError, match=r"--engine tool=gpu: tool.process runs no container"):
        graph(folder, ("app.docker", "tool.process"), engine_of={"tool": "gpu"})


def test_an_unknown_engine_names_the_datum_file_the_key_and_the_known_engines(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
        "db.docker": DB.format(engine='engine = "gpu2"'), "app.docker": APP})
    with pytest.raises(DatumError) as exc:
        graph(folder)
    msg = str(exc.value)
    assert msg.startswith(f"{folder / 'db.docker.toml'}: b00t.engine: engine 'gpu2' is not configured")
    assert "known: gpu" in msg and str(folder / "b00t-graph.toml") in msg


def test_engine_on_a_datum_that_runs_no_container_is_a_datum_error(write_datums: WriteDatums) -> None:
    folder = write_datums({"tool.process": '[b00t]\ncommand = ["true"]\nengine = "gpu"\n'})
    with pytest.raises(DatumError, match=r"tool.process.toml: b00t.engine: only a docker datum runs on an engine"):
        graph(folder, ("tool.process",))


@pytest.mark.parametrize(("config", "key", "why"), [
    ('[engines.gpu]\nhost = "ftp://x"\n', "engines.gpu.host", "expected unix:///path or tcp://host:port"),
    ('[engines.gpu]\nhots = "tcp://x:1"\n', "engines.gpu.hots", "unknown key"),
    ('[engines.gpu]\nhost = 2375\n', "engines.gpu.host", "expected a string"),
    ('[engines.gpu]\nhost = "tcp://x:1"\ntls_verify = "no"\n', "engines.gpu.tls_verify", "expected true or false"),
    ('[engines.default]\nhost = "tcp://x:1"\n', "engines.default", "not 'default'"),
    ('[engines]\ngpu = "tcp://x:1"\n', "engines.gpu", "expected a table"),
    ('engines = 3\n', "engines", "expected a table of engines"),
    ('[engines.gpu]\naddress = "x"\n', "engines.gpu", "expected host ="),
])
def test_a_bad_config_file_exits_2_in_one_line_naming_the_file_and_key(
        write_datums: WriteDatums, tmp_path: Path, config: str, key: str, why: str) -> None:
    folder = write_datums({"b00t-graph.toml": config, "db.docker": DB.format(engine="")})
    state = tmp_path / "state"
    proc = cli("plan", "db.docker", "--offline", "-d", str(folder), state_dir=state,
               env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"error: {folder / 'b00t-graph.toml'}: {key}: "), line
    assert why in line, line


def test_an_ssh_engine_is_refused_when_used_with_the_way_to_forward_it(write_datums: WriteDatums,
                                                                       tmp_path: Path) -> None:
    folder = write_datums({"b00t-graph.toml": '[engines.gpu]\nhost = "ssh://me@gpu-box"\n',
                           "db.docker": DB.format(engine='engine = "gpu"'), "app.docker": APP})
    assert graph(folder, ("app.docker",), engine_of={"db": "default"}).nodes  # unused: no error
    proc = cli("plan", "app.docker", "--offline", "-d", str(folder), state_dir=tmp_path / "state",
               env={"XDG_CONFIG_HOME": str(tmp_path / "cfg")})
    assert proc.returncode == 2
    line = one_line(proc.stderr)
    assert line.startswith(f"error: {folder / 'b00t-graph.toml'}: engines.gpu.host: ssh:// engines are not supported")
    assert "ssh -nNT -L /tmp/gpu.sock:/var/run/docker.sock me@gpu-box" in line


def test_a_malformed_engine_option_exits_2(write_datums: WriteDatums, tmp_path: Path) -> None:
    folder = write_datums({"db.docker": DB.format(engine="")})
    proc = cli("plan", "db.docker", "--offline", "--engine", "db", "-d", str(folder), state_dir=tmp_path / "s")
    assert proc.returncode == 2
    assert one_line(proc.stderr) == "error: --engine 'db': expected NODE=NAME (e.g. --engine qdrant=gpu)"


def test_the_datum_folders_config_wins_over_the_users_and_tls_paths_are_relative_to_it(tmp_path: Path) -> None:
    folder, user = tmp_path / "datums", tmp_path / "xdg" / "b00t-graph"
    folder.mkdir()
    user.mkdir(parents=True)
    (folder / "b00t-graph.toml").write_text('[engines.gpu]\nhost = "tcp://near:2376"\ntls_ca = "certs/ca.pem"\n')
    (user / "config.toml").write_text('[engines.gpu]\nhost = "tcp://far:2375"\n[engines.lab]\nhost = "tcp://lab:2375"\n')
    engines = load_engines([folder], {"XDG_CONFIG_HOME": str(tmp_path / "xdg"), "HOME": str(tmp_path)})
    gpu, lab = engines.get("gpu"), engines.get("lab")
    assert gpu is not None and gpu.url == "tcp://near:2376" and gpu.tls_ca == str(folder / "certs" / "ca.pem")
    assert lab is not None and lab.url == "tcp://lab:2375" and lab.origin == f"{user / 'config.toml'}: engines.lab"
    assert engines.files == (str(folder / "b00t-graph.toml"), str(user / "config.toml"))


def _context(docker_dir: Path, name: str, host: str, skip_verify: bool = False) -> None:
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = docker_dir / "contexts" / "meta" / digest
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text(json.dumps(
        {"Name": name, "Endpoints": {"docker": {"Host": host, "SkipTLSVerify": skip_verify}}}))
    tls = docker_dir / "contexts" / "tls" / digest / "docker"
    tls.mkdir(parents=True)
    (tls / "ca.pem").write_text("not read here")


def test_docker_contexts_name_engines_and_choose_the_default_one(tmp_path: Path) -> None:
    docker = tmp_path / "dockercfg"
    _context(docker, "lab", "tcp://lab.example:2376", skip_verify=True)
    _context(docker, "cfg", "tcp://cfg.example:2375")
    env = {"DOCKER_CONFIG": str(docker), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    engines = load_engines([], env)
    lab = engines.get("lab")
    ca = docker / "contexts" / "tls" / hashlib.sha256(b"lab").hexdigest() / "docker" / "ca.pem"
    assert lab == EngineSpec("lab", "tcp://lab.example:2376", "lab.example", "docker context lab", str(ca),
                             None, None, tls_verify=False)
    assert engines.get("nope") is None and engines.default.url is None
    # DOCKER_CONTEXT, else config.json's currentContext, chooses the default engine; DOCKER_HOST wins over both
    assert load_engines([], {**env, "DOCKER_CONTEXT": "lab"}).default.url == "tcp://lab.example:2376"
    (docker / "config.json").write_text(json.dumps({"currentContext": "cfg"}))
    assert load_engines([], env).default.url == "tcp://cfg.example:2375"
    assert load_engines([], {**env, "DOCKER_CONTEXT": "default"}).default.url is None
    assert load_engines([], {**env, "DOCKER_HOST": "unix:///x.sock"}).default.url is None
    assert load_engines([], {**env, "DOCKER_HOST": "unix:///x.sock"}).default.origin == "DOCKER_HOST=unix:///x.sock"


def test_an_engine_may_be_a_context_by_its_key(tmp_path: Path, write_datums: WriteDatums) -> None:
    docker = tmp_path / "dockercfg"
    _context(docker, "lab", "tcp://lab.example:2376")
    folder = write_datums({"b00t-graph.toml": '[engines.gpu]\ncontext = "lab"\n',
                           "db.docker": DB.format(engine='engine = "gpu"'), "app.docker": APP})
    g = graph(folder, env={"DOCKER_CONFIG": str(docker)})
    assert g.nodes["db.docker"].engine is not None and g.nodes["db.docker"].engine.url == "tcp://lab.example:2376"
    assert g.nodes["db.docker"].exports["DB_URL"] == "postgres://lab.example:5432"
    folder2 = write_datums({"b00t-graph.toml": '[engines.gpu]\ncontext = "nope"\n',
                            "db.docker": DB.format(engine='engine = "gpu"'), "app.docker": APP})
    with pytest.raises(DatumError, match=r"b00t-graph.toml: engines.gpu.context: no docker context 'nope'"):
        graph(folder2, env={"DOCKER_CONFIG": str(docker)})


def test_one_host_port_on_two_engines_is_no_conflict_but_on_one_engine_it_is(write_datums: WriteDatums) -> None:
    other = DB.format(engine='engine = "gpu"')
    folder = write_datums({"b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
                           "db.docker": DB.format(engine=""), "db2.docker": other})
    assert set(graph(folder, ("db.docker", "db2.docker")).nodes) == {"db.docker", "db2.docker"}
    with pytest.raises(PortConflictError, match="host port 5432/tcp is claimed by both"):
        graph(folder, ("db.docker", "db2.docker"), engine_of={"db2": "default"})


def test_the_config_file_is_not_read_as_a_datum(write_datums: WriteDatums) -> None:
    folder = write_datums({"b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
                           "db.docker": DB.format(engine="")})
    cat = load_catalog(datum_dirs([folder], {}))
    assert set(cat.datums) == {"db.docker"} and not cat.problems


def test_one_container_name_on_two_engines_is_two_containers(write_datums: WriteDatums) -> None:
    same = '[b00t]\ntype = "docker"\nimage = "b00t-graph-test/busybox:1"\ndocker_args = ["--name", "shared"]\n'
    folder = write_datums({"b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
                           "one.docker": same, "two.docker": same + 'engine = "gpu"\n'})
    assert set(graph(folder, ("one.docker", "two.docker")).nodes) == {"one.docker", "two.docker"}
    with pytest.raises(DatumError, match=r"the container name 'shared' is also the container of one\.docker"):
        graph(folder, ("one.docker", "two.docker"), engine_of={"two": "default"})


def test_a_capability_provider_reading_the_engine_host_is_usable(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu-box:2375"\n',
        "emb.docker": '[b00t]\nimage = "b00t-graph-test/busybox:1"\nengine = "gpu"\nprotocol = "emb-v1"\n'
                      '[b00t.provides]\ncapability = "embeddings"\n'
                      '[b00t.env]\nEMB_URL = "http://${B00T_ENGINE_HOST}:11434"\n',
        "rag.api": '[b00t]\n[b00t.requires.embeddings]\ncapability = "embeddings"\nprotocol = "emb-v1"\n'})
    g = graph(folder, ("rag.api",))
    assert g.nodes["rag.api"].deps == ("emb.docker",)
    assert g.nodes["rag.api"].env["EMB_URL"] == "http://gpu-box:11434"


def test_a_provider_on_a_named_engine_that_does_not_answer_is_passed_over(write_datums: WriteDatums,
                                                                          tmp_path: Path) -> None:
    from b00t_graph.reachability import runtime_reachable

    folder = write_datums({
        "b00t-graph.toml": f'[engines.gone]\nhost = "unix://{tmp_path}/no-engine.sock"\n',
        "gpu-emb.docker": '[b00t]\nimage = "b00t-graph-test/busybox:1"\nengine = "gone"\nprotocol = "emb-v1"\n'
                          '[b00t.provides]\ncapability = "embeddings"\n',
        "local-emb.process": '[b00t]\ncommand = ["true"]\nprotocol = "emb-v1"\n'
                             '[b00t.provides]\ncapability = "embeddings"\n',
        "rag.api": '[b00t]\n[b00t.requires.embeddings]\ncapability = "embeddings"\nprotocol = "emb-v1"\n'
                   'prefer = ["gpu-emb", "local-emb"]\n'})
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "none"), "HOME": str(tmp_path)}
    cat = load_catalog(datum_dirs([folder], environ))
    online = compile_graph(cat, ["rag.api"], environ, reachable=runtime_reachable)
    assert online.nodes["rag.api"].deps == ("local-emb.process",)
    why = dict(online.nodes["rag.api"].choices[0].passed_over)["gpu-emb.docker"]
    assert "docker@gone runtime is unreachable" in why and "no-engine.sock" in why
    offline = compile_graph(cat, ["rag.api"], environ, reachable=None)
    assert offline.nodes["rag.api"].deps == ("gpu-emb.docker",)


@pytest.mark.parametrize(("probe", "expected"), [
    (None, None),
    ("", ""),
    ("http://localhost:8080/x?y=1", "http://gpu-box:8080/x?y=1"),
    ("http://127.0.0.1/health", "http://gpu-box/health"),
    ("http://[::1]:80/", "http://gpu-box:80/"),
    ("http://user:pw@localhost:8080/h", "http://user:pw@gpu-box:8080/h"),
    ("https://db.internal:8443/", "https://db.internal:8443/"),
    ("http://:8080/", "http://:8080/"),
    ("127.0.0.1:5432", "gpu-box:5432"),
    ("localhost:5432", "gpu-box:5432"),
    ("[::1]:6379", "gpu-box:6379"),
    ("db:5432", "db:5432"),
    ("5432", "5432"),
])
def test_a_probe_of_a_loopback_address_goes_to_the_engines_host(probe: str | None, expected: str | None) -> None:
    """A node on a named engine publishes its ports there: a probe the datum writes against
    ``localhost`` is made against the engine's host instead; any other host is left as written."""
    from b00t_graph.graph import _to_host

    assert _to_host(probe, "gpu-box") == expected


# --- found by mutation testing ----------------------------------------------------------------------


def test_a_node_moved_to_a_named_engine_is_probed_there(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu-box:2375"\n',
        "db.docker": DB.format(engine=""), "app.docker": APP,
        "cache.docker": '[b00t]\ntype = "docker"\nimage = "b00t-graph-test/busybox:1"\n'
                        '[[b00t.requirements]]\nkind = "tcp_port"\nhost = "localhost"\nport = 6379\n',
        "far.docker": '[b00t]\ntype = "docker"\nimage = "b00t-graph-test/busybox:1"\n'
                      '[[b00t.requirements]]\nkind = "tcp_port"\nhost = "10.0.0.5"\nport = 6380\n'})
    targets = ("app.docker", "cache.docker", "far.docker")
    here = graph(folder, targets).nodes
    assert here["cache.docker"].health == HealthCheck(tcp="localhost:6379")  # the default engine: as written
    moved = graph(folder, targets, engine_of={"app": "gpu", "cache": "gpu", "far": "gpu"}).nodes
    assert moved["app.docker"].health == HealthCheck(http_url="http://gpu-box:8080/health")
    # a tcp_port requirement is the probe too: a loopback one goes to the engine, another host stays
    assert moved["cache.docker"].health == HealthCheck(tcp="gpu-box:6379")
    assert moved["far.docker"].health == HealthCheck(tcp="10.0.0.5:6380")


def test_an_engine_override_finds_a_dotted_name_and_only_nodes_of_the_graph(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "b00t-graph.toml": '[engines.gpu]\nhost = "tcp://gpu:2375"\n',
        "pg.v2.docker": DB.format(engine=""), "app.docker": APP.replace("db.docker", "pg.v2.docker"),
        "other.docker": DB.format(engine="")})
    assert graph(folder, engine_of={"pg.v2": "gpu"}).nodes["pg.v2.docker"].runtime_key == "docker@gpu"
    # other.docker is a datum, but not a node of this graph
    with pytest.raises(InputError, match=r"^--engine other\.docker=gpu: no node 'other\.docker' in this graph$"):
        graph(folder, engine_of={"other.docker": "gpu"})


def test_every_bad_engine_override_is_reported_at_once(write_datums: WriteDatums) -> None:
    folder = write_datums({
        "db.docker": DB.format(engine=""), "app.docker": APP, "tool.process": '[b00t]\ncommand = ["true"]\n'})
    with pytest.raises(InputError) as bad:
        graph(folder, ("app.docker", "tool.process"), engine_of={"nope": "gpu", "tool": "gpu"})
    assert str(bad.value) == ("--engine nope=gpu: no node 'nope' in this graph; "
                              "--engine tool=gpu: tool.process runs no container")
    # an unknown engine is named by the option that asked for it (no datum key), for every node asking
    with pytest.raises(DatumError) as unknown:
        graph(folder, engine_of={"db": "gpu", "app": "gpu2"})
    assert [str(p).split(" (")[0] for p in unknown.value.problems] == [
        "--engine db=gpu: engine 'gpu' is not configured", "--engine app=gpu2: engine 'gpu2' is not configured"]


def test_a_provider_on_a_broken_docker_context_is_reported_where_it_is_used(write_datums: WriteDatums,
                                                                             tmp_path: Path) -> None:
    docker = tmp_path / "dockercfg"
    meta = docker / "contexts" / "meta" / hashlib.sha256(b"lab").hexdigest()
    meta.mkdir(parents=True)
    (meta / "meta.json").write_text("{not json")
    folder = write_datums({
        "emb.docker": '[b00t]\nimage = "b00t-graph-test/busybox:1"\nengine = "lab"\n'
                      '[b00t.provides]\ncapability = "embeddings"\n',
        "rag.api": '[b00t]\n[b00t.requires.embeddings]\ncapability = "embeddings"\n'})
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "none"), "HOME": str(tmp_path), "DOCKER_CONFIG": str(docker)}
    asked: list[str] = []

    def reachable(kind: str) -> str | None:
        asked.append(kind)
        return None

    cat = load_catalog(datum_dirs([folder], environ))
    with pytest.raises(DatumError, match=r"emb\.docker\.toml: b00t\.engine: docker context 'lab': cannot read"):
        compile_graph(cat, ["rag.api"], environ, reachable=reachable)
    assert asked == ["docker"]  # the engine cannot be asked: its runtime is, and the datum's engine is reported
