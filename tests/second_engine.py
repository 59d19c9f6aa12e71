"""A second, real Docker engine on the test machine, for tests of graphs that span engines.

:func:`second_engine` starts ``dockerd`` with everything of its own: a unix socket and a TCP
listener on ``127.0.0.2`` (so its host address is not the first engine's), ``--data-root``,
``--exec-root``, ``--pidfile``, a containerd namespace, an empty ``--config-file`` (the machine's
``/etc/docker/daemon.json`` sets a data root), ``--iptables=false``, TLS with client certificates on
the TCP listener (a CA made for the run with ``openssl``) and a bridge made for it with a
subnet no other interface or route uses. Never ``--bridge none``: dockerd then deletes the host's
``docker0`` and the first engine's default network stays broken. It loads the test image from the
first engine (``docker save | docker -H … load``).

Teardown is robust to a failed test and to a dockerd the test killed: SIGTERM, wait, SIGKILL;
then its containerd and shims (found by its own namespace), its mounts, the bridge and the folder.
Needs root, ``dockerd``, ``docker`` and ``ip``; :func:`missing` says what is absent.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from tests.dockerutil import Engine

#: where the second engine's TCP listener lives: a loopback address that is not 127.0.0.1
TCP_HOST = "127.0.0.2"


def missing() -> str | None:
    """Why no second engine can be started here, or ``None``."""
    if os.geteuid() != 0:
        return "a second dockerd needs root"
    for tool in ("dockerd", "docker", "ip", "openssl"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    return None


@dataclass
class SecondEngine:
    """A running second dockerd: ``unix`` and ``tcp`` are its two addresses, ``api`` a client of it.

    ``address`` is its bridge's own IP: its published ports answer there, for this host and for the
    first engine's containers alike (``127.0.0.2`` would be their own loopback).
    """

    root: Path
    address: str
    bridge: str
    namespace: str
    unix: str
    tcp: str
    proc: subprocess.Popen[bytes]
    #: the client's TLS files for ``tcp``: ``ca``, ``cert``, ``key``
    tls: dict[str, str]
    api: Engine = field(init=False)

    def __post_init__(self) -> None:
        self.api = Engine(self.unix)

    def kill(self) -> None:
        """SIGKILL the daemon, as a crash or a pulled cable would: its containers stay, it answers no more."""
        with contextlib.suppress(ProcessLookupError):
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def log(self) -> str:
        try:
            return (self.root / "dockerd.log").read_text()[-4000:]
        except OSError:
            return ""


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.231.0.0/16 that overlaps no address or route of this machine (nor docker0's 172.17/16)."""
    used: list[ipaddress.IPv4Network] = [ipaddress.ip_network("172.17.0.0/16")]
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True,
                         check=False).stdout
    out += subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    for word in out.split():
        with contextlib.suppress(ValueError):
            if "/" in word:
                used.append(ipaddress.ip_network(word, strict=False))
    for _ in range(200):
        net = ipaddress.ip_network(f"10.231.{secrets.randbelow(256)}.0/24")
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError("no free 10.231.x.0/24 subnet for the second engine's bridge")


def _certificates(folder: Path) -> tuple[dict[str, str], dict[str, str]]:
    """A CA, a server certificate for ``TCP_HOST`` and a client certificate: (server files, client files)."""
    folder.mkdir()

    def ssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True, timeout=60)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=b00tg-test-ca")
    for who, ext in (("server", f"subjectAltName=IP:{TCP_HOST}\nextendedKeyUsage=serverAuth"),
                     ("client", "extendedKeyUsage=clientAuth")):
        (folder / f"{who}.ext").write_text(ext + "\n")
        ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{who}-key.pem", "-out", f"{who}.csr",
            "-subj", f"/CN={who}")
        ssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem", "-CAcreateserial",
            "-out", f"{who}-cert.pem", "-days", "2", "-extfile", f"{who}.ext")
    files = {who: {"ca": str(folder / "ca.pem"), "cert": str(folder / f"{who}-cert.pem"),
                   "key": str(folder / f"{who}-key.pem")} for who in ("server", "client")}
    return files["server"], files["client"]


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _ours(namespace: str) -> list[psutil.Process]:
    """containerd and shims started for this engine: their command lines carry its own paths or namespace."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or ())
        if namespace in cmd:
            found.append(p)
    return found


def _teardown(root: Path, bridge: str, namespace: str, proc: subprocess.Popen[bytes] | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
    leftovers = _ours(namespace) + _ours(str(root))
    for p in leftovers:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(leftovers, timeout=10)
    # its mounts (netns files, container rootfs, shm), deepest first
    with open("/proc/self/mountinfo") as fh:
        mounts = [line.split()[4] for line in fh]
    for mnt in sorted((m for m in mounts if m.startswith(str(root))), key=len, reverse=True):
        subprocess.run(["umount", "-l", mnt], capture_output=True, check=False)
    subprocess.run(["ip", "link", "del", bridge], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def second_engine(image: str, timeout: float = 90.0) -> Iterator[SecondEngine]:
    """Start a second dockerd with ``image`` loaded in it; stop it and remove all it made afterwards."""
    tag = secrets.token_hex(3)
    root = Path(tempfile.mkdtemp(prefix=f"b00tg-e{tag}-", dir="/tmp"))
    bridge = f"b00tg{tag}"  # within the 15 characters of an interface name
    namespace = f"b00tg-e{tag}"
    proc: subprocess.Popen[bytes] | None = None
    try:
        net = _free_subnet()
        subprocess.run(["ip", "link", "add", bridge, "type", "bridge"], check=True, capture_output=True)
        subprocess.run(["ip", "addr", "add", f"{net[1]}/{net.prefixlen}", "dev", bridge], check=True,
                       capture_output=True)
        subprocess.run(["ip", "link", "set", bridge, "up"], check=True, capture_output=True)
        (root / "daemon.json").write_text("{}")
        unix = f"unix://{root}/docker.sock"
        tcp = f"tcp://{TCP_HOST}:{_free_port(TCP_HOST)}"
        server, client = _certificates(root / "tls")
        argv = ["dockerd", "--host", unix, "--host", tcp, "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"), "--pidfile", str(root / "docker.pid"),
                "--config-file", str(root / "daemon.json"), "--iptables=false", "--ip-masq=false",
                "--bridge", bridge, "--containerd-namespace", namespace,
                "--containerd-plugins-namespace", f"{namespace}-plugins", "--storage-driver", "vfs",
                "--tlsverify", "--tlscacert", server["ca"], "--tlscert", server["cert"], "--tlskey", server["key"]]
        with open(root / "dockerd.log", "wb") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        eng = SecondEngine(root, str(net[1]), bridge, namespace, unix, tcp, proc, client)
        deadline = time.monotonic() + timeout
        while not eng.api.ping():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the second dockerd did not start:\n{eng.log()}")
            time.sleep(0.3)
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        load = subprocess.run(["docker", "-H", unix, "load"], stdin=save.stdout, capture_output=True, timeout=300,
                              check=False)
        assert save.stdout is not None
        save.stdout.close()
        save.wait(timeout=60)
        if load.returncode != 0 or save.returncode != 0:
            raise RuntimeError(f"cannot load {image} into the second engine: {load.stderr.decode()[-2000:]}")
        yield eng
    finally:
        _teardown(root, bridge, namespace, proc)
