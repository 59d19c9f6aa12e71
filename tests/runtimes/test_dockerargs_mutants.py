"""The ``docker run`` flag parser, pinned down flag by flag: the exact Engine API body each flag gives,
the edges of every range, and the exact message each bad value gets (what a user reads)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from b00t_graph.errors import Problem
from b00t_graph.graph import Node
from b00t_graph.model import Datum, Resources
from b00t_graph.runtimes.dockerargs import (
    KEY,
    _appender,
    _Builder,
    _setter,
    _switch,
    check,
    check_names,
    parse_bytes,
    parse_cpus,
    parse_duration,
    parse_publish,
    plan,
    supported_flags,
)

PATH = "/datums/web.docker.toml"


def supported() -> str:
    """The tail of an unsupported-flag message: every supported flag, sorted."""
    return " (b00t-graph supports: " + ", ".join(f"--{n}" for n in supported_flags()) + ")"


def node(*args: str, env: dict[str, str] | None = None, **spec: Any) -> Node:
    datum = Datum(name=spec.pop("name", "web"), type="docker", path=PATH, image=spec.pop("image", "img:1"),
                  docker_args=tuple(args), **spec)
    return Node(spec=datum, deps=(), env=dict(env or {}), exports={}, health=None, config_hash="h")


def body(*args: str, **kw: Any) -> dict[str, Any]:
    """The ``POST /containers/create`` body for these flags (fails the test if there is a problem)."""
    return plan(node(*args, **kw)).config


def host(*args: str, **kw: Any) -> dict[str, Any]:
    h: dict[str, Any] = body(*args, **kw)["HostConfig"]
    return h


def errors(*args: str, **kw: Any) -> list[str]:
    """Every problem as ``key: message``; each must point at the datum's file."""
    found = list(check(node(*args, **kw)))
    assert all(p.path == PATH for p in found)
    return [f"{p.key}: {p.message}" for p in found]


def error(*args: str, **kw: Any) -> str:
    """The one problem these flags have, as ``message`` (under b00t.docker_args)."""
    found = errors(*args, **kw)
    assert len(found) == 1, found
    assert found[0].startswith(f"{KEY}: ")
    return found[0].removeprefix(f"{KEY}: ")


# --- sizes, CPUs, durations ----------------------------------------------------------------------


def test_sizes_use_powers_of_1024_for_every_unit() -> None:
    assert [parse_bytes(f"2{u}") for u in ("", "b", "k", "m", "g", "t", "p")] == \
        [2, 2, 2 * 1024, 2 * 1024**2, 2 * 1024**3, 2 * 1024**4, 2 * 1024**5]


def test_bad_sizes_cpus_and_durations_say_what_was_expected() -> None:
    assert error("--memory", "lots") == "'lots' is not a size (e.g. 512m, 1g, 4Gi)"
    assert error("--cpus", "many") == "'many' is not a number of CPUs (e.g. 2, 0.5, 500m)"
    assert error("--cpus", "0") == "'0': the number of CPUs must be positive"
    assert error("--health-cmd", "true", "--health-interval", "1x") == \
        "'1x' is not a duration (e.g. 500ms, 10s, 1m30s)"


def test_zero_cpus_is_refused_and_the_smallest_fraction_accepted() -> None:
    with pytest.raises(ValueError):
        parse_cpus("0")
    assert parse_cpus("1m") == 1_000_000


def test_a_duration_with_trailing_garbage_is_refused() -> None:
    with pytest.raises(ValueError):
        parse_duration("5s and more")
    assert parse_duration("1h2m3s") == (3600 + 120 + 3) * 10**9


def test_memory_swap_takes_a_size_or_minus_one_for_unlimited() -> None:
    assert host("--memory-swap", "2g")["MemorySwap"] == 2 * 1024**3
    assert host("--memory-swap", "-1")["MemorySwap"] == -1


# --- ports ---------------------------------------------------------------------------------------


def test_the_port_range_is_1_to_65535_inclusive() -> None:
    assert parse_publish("1:1") == [("1/tcp", "", "1")]
    assert parse_publish("65535:65535") == [("65535/tcp", "", "65535")]
    assert parse_publish("65534-65535") == [("65534/tcp", "", ""), ("65535/tcp", "", "")]


@pytest.mark.parametrize(("spec", "message"), [
    ("0:80", "'0:80': host port '0' is out of range (1-65535)"),
    ("80:0", "'80:0': container port '0' is out of range (1-65535)"),
    ("65536:80", "'65536:80': host port '65536' is out of range (1-65535)"),
    ("80:65536", "'80:65536': container port '65536' is out of range (1-65535)"),
    ("80-70000", "container port '80-70000' is out of range (1-65535)"),
    ("1-70000:80", "'1-70000:80': host port '1-70000' is out of range (1-65535)"),
    ("90-80", "container port '90-80' is out of range (1-65535)"),  # the spec is named once
    ("x:80", "'x:80': host port 'x' is not a port number or range"),
    ("80/sctx", "'80/sctx': unknown protocol 'sctx' (tcp, udp or sctp)"),
    ("[::1", "'[::1': an IPv6 address is written [addr]:host:container"),
    ("[::1]:80", "'[::1]:80': expected [ip]:host:container"),
    ("[::1]:80]:90", "'[::1]:80]:90': host port '80]' is not a port number or range"),
    ("a:b:c:d", "'a:b:c:d': expected [ip:][host:]container[/proto] (write IPv6 addresses in [])"),
    ("8000-8002:9000-9001", "'8000-8002:9000-9001': host and container port ranges differ in size"),
])
def test_bad_publish_specs_get_a_message_naming_the_spec(spec: str, message: str) -> None:
    assert error("-p", spec) == message


def test_sctp_is_a_protocol() -> None:
    assert parse_publish("9000/sctp") == [("9000/sctp", "", "")]


def test_expose_adds_exposed_ports_without_publishing_them() -> None:
    c = body("--expose", "80", "--expose", "7000-7002/udp")
    assert c["ExposedPorts"] == {"80/tcp": {}, "7000/udp": {}, "7001/udp": {}, "7002/udp": {}}
    assert "PortBindings" not in c["HostConfig"]
    assert error("--expose", "http") == "port 'http' is not a port number or range"


def test_a_structured_port_problem_is_reported_under_its_key_with_its_message() -> None:
    assert errors(ports=("80:0",)) == ["b00t.ports[0]: '80:0': container port '0' is out of range (1-65535)"]


# --- volumes, mounts, tmpfs ------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "message"), [
    ("data", "'data': an anonymous volume needs an absolute container path"),
    ("a:/b:ro:x", "'a:/b:ro:x': expected source:destination[:options]"),
    ("data:rel", "'data:rel': the container path 'rel' must be absolute"),
    ("data:/d:xx,yy", "'data:/d:xx,yy': unknown volume option(s) xx, yy (known: Z, cached, consistent, "
                      "delegated, nocopy, private, ro, rprivate, rshared, rslave, rw, shared, slave, z)"),
    ("-x:/d", "'-x:/d': '-x' is neither a path (/…, ./…, ~/…) nor a volume name"),
])
def test_bad_volumes_get_a_message_naming_the_spec(spec: str, message: str) -> None:
    assert error("-v", spec) == message


def test_structured_volumes_are_bound_and_their_problems_named_by_index() -> None:
    assert host(volumes=("/srv/data:/data:ro",))["Binds"] == ["/srv/data:/data:ro"]
    assert errors(volumes=("/ok:/ok", "rel")) == \
        ["b00t.volumes[1]: 'rel': an anonymous volume needs an absolute container path"]


def test_a_mount_defaults_to_a_volume_without_a_source() -> None:
    p = plan(node("--mount", "target=/data"))
    assert p.config["HostConfig"]["Mounts"] == [{"Type": "volume", "Target": "/data", "ReadOnly": False}]
    assert p.volumes == ()


@pytest.mark.parametrize("target", ["target", "destination", "dst"])
def test_a_mount_target_has_three_spellings(target: str) -> None:
    assert host("--mount", f"type=tmpfs,{target}=/t")["Mounts"] == [{"Type": "tmpfs", "Target": "/t",
                                                                      "ReadOnly": False}]


def test_a_bind_mount_is_relative_to_the_datum_folder_and_keeps_its_options() -> None:
    mounts = host("--mount", "type=bind,src=./d,dst=/d,readonly,bind-propagation=rshared")["Mounts"]
    assert mounts == [{"Type": "bind", "Target": "/d", "ReadOnly": True, "Source": "/datums/d",
                       "BindOptions": {"Propagation": "rshared"}}]


@pytest.mark.parametrize(("flag", "ro"), [("ro", True), ("ro=1", True), ("readonly=false", False),
                                          ("readonly=0", False), ("ro=true", True)])
def test_a_mount_read_only_flag_has_two_spellings(flag: str, ro: bool) -> None:
    assert host("--mount", f"type=volume,src=data,dst=/d,{flag}")["Mounts"][0]["ReadOnly"] is ro


def test_a_named_volume_mount_is_created_and_can_skip_the_copy() -> None:
    p = plan(node("--mount", "type=volume,source=data,dst=/d,volume-nocopy"))
    assert p.volumes == ("data",)
    assert p.config["HostConfig"]["Mounts"] == [{"Type": "volume", "Target": "/d", "ReadOnly": False,
                                                 "Source": "data", "VolumeOptions": {"NoCopy": True}}]


def test_a_tmpfs_mount_takes_a_size_and_an_octal_mode() -> None:
    mounts = host("--mount", "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1770")["Mounts"]
    assert mounts == [{"Type": "tmpfs", "Target": "/t", "ReadOnly": False,
                       "TmpfsOptions": {"SizeBytes": 64 * 1024**2, "Mode": 0o1770}}]


def test_the_macos_consistency_hint_is_accepted_and_dropped() -> None:
    assert host("--mount", "dst=/d,consistency=cached")["Mounts"] == [{"Type": "volume", "Target": "/d",
                                                                       "ReadOnly": False}]


@pytest.mark.parametrize(("spec", "message"), [
    ("type=tmpfs,target=data", "'type=tmpfs,target=data': needs target=/absolute/path"),
    ("type=tmpfs", "'type=tmpfs': needs target=/absolute/path"),
    ("dst=/d,readonly=maybe", "--mount readonly: 'maybe' is not true or false"),
    ("type=bind,dst=/d", "'type=bind,dst=/d': a bind mount needs source="),
    ("type=volume,src=-bad,dst=/d", "'type=volume,src=-bad,dst=/d': '-bad' is not a volume name"),
    ("dst=/d,volume-nocopy=maybe", "volume-nocopy: 'maybe' is not true or false"),
    ("type=tmpfs,dst=/t,tmpfs-mode=9", "'type=tmpfs,dst=/t,tmpfs-mode=9': tmpfs-mode must be octal (e.g. 1777)"),
    ("type=npipe,dst=/d", "'type=npipe,dst=/d': type must be bind, volume or tmpfs"),
    ("dst=/d,foo=1,bar=2", "'dst=/d,foo=1,bar=2': unsupported --mount key(s) bar, foo"),
])
def test_bad_mounts_get_a_message_naming_the_spec(spec: str, message: str) -> None:
    assert error("--mount", spec) == message


def test_tmpfs_options_are_everything_after_the_first_colon() -> None:
    assert host("--tmpfs", "/run:size=64m,mode=1777", "--tmpfs", "/x:a:b")["Tmpfs"] == \
        {"/run": "size=64m,mode=1777", "/x": "a:b"}
    assert error("--tmpfs", "run") == "'run': the tmpfs path must be absolute"


# --- env, labels, name, network, restart -----------------------------------------------------------


def test_bad_env_names_labels_names_networks_and_restart_policies_say_why() -> None:
    assert error("-e", "1X=2") == "-e '1X=2': '1X' is not a valid variable name"
    assert error("--name", "bad name!").startswith("--name 'bad name!'")  # a differing name names the container
    assert error("--network", "a", "--network", "b") == \
        "--network 'b': only one network can be joined at creation (already 'a')"
    assert error("--restart", "sometimes") == \
        "--restart 'sometimes': expected no, always, unless-stopped or on-failure[:N]"
    assert error("--restart", "always:3") == "--restart 'always:3': a retry count is only allowed as on-failure:N"
    assert error("--pull", "often") == "--pull 'often': expected missing, never or always"


def test_the_same_network_twice_is_joined_once() -> None:
    assert plan(node("--network", "backend", "--net", "backend")).networks == ("backend",)


# --- gpus ----------------------------------------------------------------------------------------


def gpu(*args: str) -> dict[str, Any]:
    requests: list[dict[str, Any]] = host(*args)["DeviceRequests"]
    assert len(requests) == 1
    return requests[0]


def test_all_gpus_is_a_full_device_request() -> None:
    assert gpu("--gpus", "all") == {"Driver": "", "Count": -1, "DeviceIDs": None, "Capabilities": [["gpu"]],
                                    "Options": {}}


@pytest.mark.parametrize("spec", ['"device=0,1"', "device=0,1"])
def test_gpu_devices_quoted_or_not(spec: str) -> None:
    req = gpu("--gpus", spec)
    assert req["DeviceIDs"] == ["0", "1"] and req["Count"] == 0


def test_gpu_fields_after_a_device_list_are_read_too() -> None:
    req = gpu("--gpus", "device=0,1,driver=nvidia")
    assert req["DeviceIDs"] == ["0", "1"] and req["Driver"] == "nvidia"


def test_gpu_capabilities_and_options() -> None:
    req = gpu("--gpus", '"capabilities=gpu,compute",count=2,options=mode=fast')
    assert req == {"Driver": "", "Count": 2, "DeviceIDs": None, "Capabilities": [["gpu", "compute"]],
                   "Options": {"mode": "fast"}}


@pytest.mark.parametrize(("spec", "message"), [
    ("count=some", "--gpus 'count=some': count must be a number or all"),
    ("color=red", "--gpus 'color=red': unknown field 'color' (all, N, device=…, count=…, capabilities=…)"),
    ("count=1,device=0", "--gpus 'count=1,device=0': use either count or device, not both"),
    ("driver=nvidia", "--gpus 'driver=nvidia': no GPUs requested"),
])
def test_bad_gpu_requests_say_why(spec: str, message: str) -> None:
    assert error("--gpus", spec) == message


# --- ulimits, hosts, health checks, pull ---------------------------------------------------------


def test_ulimit_soft_may_equal_hard_and_unlimited_is_minus_one() -> None:
    assert host("--ulimit", "nofile=1:10", "--ulimit", "core=10:10", "--ulimit", "memlock=unlimited")["Ulimits"] \
        == [{"Name": "nofile", "Soft": 1, "Hard": 10}, {"Name": "core", "Soft": 10, "Hard": 10},
            {"Name": "memlock", "Soft": -1, "Hard": -1}]


@pytest.mark.parametrize(("spec", "message"), [
    ("nofile=1=2", "--ulimit 'nofile=1=2': '1=2' is not a number"),
    ("nofile=unlimited:10", "--ulimit 'nofile=unlimited:10': the soft limit exceeds the hard one"),
    ("nofile=11:10", "--ulimit 'nofile=11:10': the soft limit exceeds the hard one"),
    ("files=1", "--ulimit 'files=1': expected NAME=SOFT[:HARD] with NAME one of core, cpu, data, fsize, locks, "
                "memlock, msgqueue, nice, nofile, nproc, rss, rtprio, rttime, sigpending, stack"),
])
def test_bad_ulimits_say_why(spec: str, message: str) -> None:
    assert error("--ulimit", spec) == message


def test_add_host_splits_at_the_first_colon_so_ipv6_addresses_pass() -> None:
    assert host("--add-host", "db:10.0.0.2", "--add-host", "any:::")["ExtraHosts"] == ["db:10.0.0.2", "any:::"]


@pytest.mark.parametrize("spec", ["db", "db:", ":10.0.0.2"])
def test_add_host_needs_both_a_host_and_an_ip(spec: str) -> None:
    assert error("--add-host", spec) == f"--add-host {spec!r}: expected host:ip"


def test_bad_health_retries_say_why() -> None:
    assert error("--health-cmd", "true", "--health-retries", "many") == "--health-retries 'many' is not a number"


def test_health_options_without_a_command_are_a_problem_of_docker_args() -> None:
    assert errors("--health-interval", "5s") == \
        [f"{KEY}: --health-interval/--health-timeout/--health-retries need --health-cmd"]


# --- flags without a structured key --------------------------------------------------------------


def test_log_driver_and_options_form_one_log_config() -> None:
    assert host("--log-driver", "json-file", "--log-opt", "max-size=10m", "--log-opt", "labels=a=b")["LogConfig"] \
        == {"Type": "json-file", "Config": {"max-size": "10m", "labels": "a=b"}}
    assert host("--log-opt", "max-file=3")["LogConfig"] == {"Type": "", "Config": {"max-file": "3"}}
    assert host("--log-driver", "none")["LogConfig"] == {"Type": "none", "Config": {}}
    assert error("--log-opt", "compress") == "--log-opt 'compress': expected key=value"


def test_sysctls_are_key_value_pairs() -> None:
    assert host("--sysctl", "net.core.somaxconn=1024", "--sysctl", "kernel.x=a=b")["Sysctls"] == \
        {"net.core.somaxconn": "1024", "kernel.x": "a=b"}
    assert error("--sysctl", "net.core.somaxconn") == "--sysctl 'net.core.somaxconn': expected key=value"


@pytest.mark.parametrize(("value", "seconds"), [("30", 30), ("0", 0), ("-1", -1)])
def test_stop_timeout_is_whole_seconds(value: str, seconds: int) -> None:
    assert body("--stop-timeout", value)["StopTimeout"] == seconds


@pytest.mark.parametrize("value", ["10s", "5-", ""])
def test_stop_timeout_refuses_anything_but_seconds(value: str) -> None:
    assert error("--stop-timeout", value) == f"--stop-timeout {value!r} is not a number of seconds"


@pytest.mark.parametrize(("spec", "device"), [
    ("/dev/fuse", {"PathOnHost": "/dev/fuse", "PathInContainer": "/dev/fuse", "CgroupPermissions": "rwm"}),
    ("/dev/a:/dev/b", {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b", "CgroupPermissions": "rwm"}),
    ("/dev/a:/dev/b:r", {"PathOnHost": "/dev/a", "PathInContainer": "/dev/b", "CgroupPermissions": "r"}),
    ("/dev/a::rw", {"PathOnHost": "/dev/a", "PathInContainer": "/dev/a", "CgroupPermissions": "rw"}),
])
def test_devices_default_to_the_same_path_and_rwm(spec: str, device: dict[str, str]) -> None:
    assert host("--device", spec)["Devices"] == [device]


@pytest.mark.parametrize(("flag", "where", "key", "value"), [
    ("--hostname=box", "config", "Hostname", "box"),
    ("--domainname=lan", "config", "Domainname", "lan"),
    ("--user=1000", "config", "User", "1000"),
    ("--workdir=/app", "config", "WorkingDir", "/app"),
    ("--stop-signal=SIGINT", "config", "StopSignal", "SIGINT"),
    ("--pid=host", "host", "PidMode", "host"),
    ("--ipc=host", "host", "IpcMode", "host"),
    ("--cpu-shares=512", "host", "CpuShares", 512),
    ("--shm-size=1g", "host", "ShmSize", 1024**3),
    ("--memory-reservation=1k", "host", "MemoryReservation", 1024),
    ("--dns=1.1.1.1", "host", "Dns", ["1.1.1.1"]),
    ("--dns-search=lan", "host", "DnsSearch", ["lan"]),
    ("--dns-option=ndots:1", "host", "DnsOptions", ["ndots:1"]),
    ("--cap-add=NET_ADMIN", "host", "CapAdd", ["NET_ADMIN"]),
    ("--cap-drop=ALL", "host", "CapDrop", ["ALL"]),
    ("--security-opt=no-new-privileges", "host", "SecurityOpt", ["no-new-privileges"]),
    ("--group-add=audio", "host", "GroupAdd", ["audio"]),
    ("--privileged", "host", "Privileged", True),
    ("--init", "host", "Init", True),
    ("--read-only", "host", "ReadonlyRootfs", True),
    ("-P", "host", "PublishAllPorts", True),
    ("-i", "config", "OpenStdin", True),
    ("--tty=false", "config", "Tty", False),
])
def test_simple_flags_land_on_their_engine_key(flag: str, where: str, key: str, value: Any) -> None:
    c = body(flag)
    assert (c["HostConfig"] if where == "host" else c)[key] == value
    assert key not in (c if where == "host" else c["HostConfig"])


def test_the_setter_appender_and_switch_factories_write_where_they_are_told() -> None:
    b = _Builder(node=node(), base=Path("/datums"))
    _setter("host", "CpuShares", int)(b, "7")
    _setter("config", "User")(b, "app")
    _appender("Dns")(b, "9.9.9.9")
    _appender("Dns")(b, "1.1.1.1")
    _switch("host", "Init")(b, True)
    _switch("config", "Tty")(b, False)
    assert b.host == {"CpuShares": 7, "Dns": ["9.9.9.9", "1.1.1.1"], "Init": True}
    assert b.config == {"User": "app", "Tty": False}


# --- switches written as -x=value / --x=value ------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("1", True), ("true", True), ("t", True), ("yes", True), ("TRUE", True), ("Yes", True), ("T", True),
    ("0", False), ("false", False), ("f", False), ("no", False), ("FALSE", False), ("No", False), ("F", False),
])
def test_switch_values_accept_the_usual_spellings(text: str, value: bool) -> None:
    assert host(f"--privileged={text}")["Privileged"] is value


def test_a_switch_value_that_is_not_a_truth_value_is_refused() -> None:
    assert error("--privileged=maybe") == "--privileged: 'maybe' is not true or false"
    assert error("-t=maybe") == "-t: 'maybe' is not true or false"


def test_a_short_switch_with_a_value_ends_its_group_and_later_tokens_are_read() -> None:
    c = body("-t=false", "--privileged")
    assert c["Tty"] is False and c["HostConfig"]["Privileged"] is True
    c = body("-it=0", "-P")
    assert c["OpenStdin"] is True and c["Tty"] is False and c["HostConfig"]["PublishAllPorts"] is True


# --- tokens that are not flags -------------------------------------------------------------------


@pytest.mark.parametrize("tok", ["--", "-", "nginx"])
def test_a_token_that_is_no_flag_is_refused_with_where_things_go(tok: str) -> None:
    assert error(tok) == (f"unexpected argument {tok!r}: docker_args holds flags only; the image goes in "
                          "b00t.image and the command in b00t.command/b00t.args")


def test_unknown_flags_list_what_is_supported() -> None:
    assert error("--x") == "unsupported flag --x" + supported()
    assert error("-z") == "unsupported flag -z" + supported()
    assert error("-dz") == "unsupported flag -z (in '-dz')" + supported()
    assert error("-a") == "unsupported flag -a: containers always run detached"
    assert error("--env-file", "x.env") == ("unsupported flag --env-file: its contents would not be part of the "
                                            "config hash; put the variables in [b00t.env]")


def test_a_value_flag_at_the_end_needs_its_value() -> None:
    assert error("-p") == "-p needs a value"


def test_a_numeric_flag_with_text_names_the_flag_and_value() -> None:
    assert error("--cpu-shares", "lots") == "--cpu-shares 'lots': invalid literal for int() with base 10: 'lots'"


# --- the whole datum -----------------------------------------------------------------------------


def test_a_two_character_name_is_long_enough_and_one_is_not() -> None:
    assert errors(name="ab") == []
    assert errors(name="a") == ["b00t.name: 'a' is too short for a container name (at least 2 characters)"]


def test_a_structured_network_must_agree_with_the_flag() -> None:
    assert errors("--network", "b", network="a") == ["b00t.network: 'a' differs from --network 'b' in docker_args"]


def test_every_bad_resource_is_reported_and_contradictions_named() -> None:
    assert errors(resources=Resources(memory_limit="lots", cpu_limit="none")) == [
        "b00t.resources.memory_limit: 'lots' is not a size (e.g. 512m, 1g, 4Gi)",
        "b00t.resources.cpu_limit: 'none' is not a number of CPUs (e.g. 2, 0.5, 500m)",
    ]
    assert errors("--memory", "1g", resources=Resources(memory_limit="2g")) == \
        ["b00t.resources.memory_limit: '2g' contradicts the limit given in docker_args"]


def test_a_missing_image_is_the_one_problem_reported() -> None:
    assert list(check(node(image=None))) == [Problem(PATH, "b00t.image", "required for a docker datum")]


def test_a_network_alias_without_a_user_network_is_a_problem() -> None:
    assert list(check(node("--network-alias", "db"))) == \
        [Problem(PATH, KEY, "--network-alias needs a user-defined --network")]


def test_the_plan_names_the_container_and_image_after_the_datum() -> None:
    p = plan(node(name="cache", image="redis:7"))
    assert (p.name, p.image, p.config["Image"]) == ("cache", "redis:7", "redis:7")


def test_a_duration_with_a_gap_between_its_parts_is_refused() -> None:
    with pytest.raises(ValueError, match="is not a duration"):
        parse_duration("5s x 3s")


def test_a_port_range_may_not_end_past_65535() -> None:
    assert error("-p", "65535-65536") == "container port '65535-65536' is out of range (1-65535)"


def test_gpu_driver_options_keep_everything_after_the_first_equals() -> None:
    assert gpu("--gpus", "count=1,options=a=b=c")["Options"] == {"a": "b=c"}


def test_stop_timeout_refuses_a_value_with_letters_before_the_digits() -> None:
    assert error("--stop-timeout", "X5") == "--stop-timeout 'X5' is not a number of seconds"


def test_a_mount_key_without_a_value_reads_as_true() -> None:
    assert error("--mount", "type=tmpfs,dst=/t,tmpfs-size") == "'true' is not a size (e.g. 512m, 1g, 4Gi)"


def test_a_cdi_device_name_becomes_a_device_request() -> None:
    assert host("--device", "nvidia.com/gpu=all")["DeviceRequests"] == [
        {"Driver": "cdi", "Count": 0, "DeviceIDs": ["nvidia.com/gpu=all"], "Capabilities": None, "Options": {}}]
    # a path with an equals sign is a device file, not a CDI name
    assert host("--device", "/dev/a=b")["Devices"] == [
        {"PathOnHost": "/dev/a=b", "PathInContainer": "/dev/a=b", "CgroupPermissions": "rwm"}]


def test_name_given_twice() -> None:
    assert errors("--name", "ab", "--name", "ab") == []  # the same name again is no problem
    assert error("--name", "ab", "--name", "cd") == "--name 'cd': the container is already named 'ab'"


def test_two_datums_naming_one_container() -> None:
    a, b = node("--name", "shared", name="a"), node("--name", "shared", name="b")
    assert [(p.path, p.key, p.message) for p in check_names([a, b, node(name="c")])] == [
        (PATH, "b00t.container_name", f"the container name 'shared' is also the container of a.docker ({PATH}); "
         "two datums cannot share one container: rename one (--name)")]


def test_an_invalid_container_name_in_the_datum() -> None:
    assert errors(container_name="x") == [
        "b00t.container_name: 'x' is not a container name (letters, digits, _ . -; at least 2 characters)"]


def test_restart_in_the_datum_problems() -> None:
    assert errors(restart="--restart x") == [
        "b00t.restart: '--restart x': expected no, always, unless-stopped or on-failure[:N]"]
    assert errors("--restart", "always", restart="no") == ["b00t.restart: 'no' contradicts --restart in docker_args"]
