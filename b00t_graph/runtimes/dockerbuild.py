"""``[b00t.docker.build]``: the build context of an image, its hash and its tar, for the Engine API.

Pure and synchronous (file reads only, no engine): :func:`resolve` says what to send,
:func:`context_hash` names the content (an image labelled with the same hash is not built again),
:func:`context_tar` packs a local folder. :func:`problems` runs when the graph is compiled, so a
missing folder or Dockerfile is bad input (exit 2) before anything starts.

The Dockerfile (``file``) may be written relative to the context or to the datum's folder (b00t
writes both: ``context = "containers/x"``, ``file = "containers/x/Containerfile"``); a file outside
the context is sent inside the tar under :data:`OUTSIDE_NAME`.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import attrs

from ..errors import Problem
from ..model import Build, Datum

#: bump when the hashed content changes meaning, so older images are rebuilt once
HASH_VERSION = "1"
OUTSIDE_NAME = ".b00t-graph.Dockerfile"
KEY = "b00t.docker.build"
_GIT_RE = re.compile(r"^(git@|git://|ssh://|github\.com/)|\.git(#.*)?$|^https?://.*\.git(#.*)?$")


@attrs.frozen
class Context:
    """What to send: a local folder (``folder``) or a URL the engine fetches itself (``remote``)."""

    folder: Path | None
    remote: str | None
    #: the Dockerfile's path inside the context, or None for the engine's default (Dockerfile)
    dockerfile: str | None
    #: a Dockerfile that lives outside the local context, added to the tar as OUTSIDE_NAME
    outside: Path | None = None


def is_remote(context: str) -> bool:
    """A git URL (or an http(s) URL of a tarball) that the engine fetches itself."""
    return bool(_GIT_RE.search(context)) or context.startswith(("http://", "https://"))


def resolve(spec: Datum) -> Context:
    """Where the context and the Dockerfile are; raises ValueError with a message for people."""
    build = spec.build
    assert build is not None
    if is_remote(build.context):
        return Context(None, build.context, build.file)
    base = Path(spec.path).parent
    folder = (base / Path(build.context).expanduser()).resolve()
    if not folder.is_dir():
        raise ValueError(f"the build context {build.context!r} is not a folder ({folder})")
    if build.file is None:
        default = [n for n in ("Dockerfile", "Containerfile") if (folder / n).is_file()]
        if not default:
            raise ValueError(f"no Dockerfile or Containerfile in {folder}; set file = \"...\"")
        return Context(folder, None, default[0])
    written = Path(build.file).expanduser()
    for candidate in ((folder / written), (base / written)) if not written.is_absolute() else (written,):
        path = candidate.resolve()
        if path.is_file():
            if path.is_relative_to(folder):
                return Context(folder, None, path.relative_to(folder).as_posix())
            return Context(folder, None, OUTSIDE_NAME, outside=path)
    raise ValueError(f"the Dockerfile {build.file!r} is found neither in the context ({folder}) "
                     f"nor beside the datum ({base})")


def problems(spec: Datum) -> Iterable[Problem]:
    if spec.build is None:
        return
    try:
        resolve(spec)
    except ValueError as exc:
        yield Problem(spec.path, KEY, str(exc))


def _ignores(folder: Path) -> list[tuple[bool, str]]:
    """``.dockerignore`` as (negated, pattern) pairs, in order (the last match wins, as in docker)."""
    try:
        text = (folder / ".dockerignore").read_text()
    except OSError:
        return []
    out = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        neg = line.startswith("!")
        pat = line[1:] if neg else line
        pat = os.path.normpath(pat.strip().lstrip("/")).replace(os.sep, "/")
        out.append((neg, pat))
    return out


def _ignored(rel: str, rules: list[tuple[bool, str]]) -> bool:
    hit = False
    for neg, pat in rules:
        if fnmatch.fnmatchcase(rel, pat) or fnmatch.fnmatchcase(rel, pat.rstrip("/") + "/*") or (
                pat.startswith("**/") and fnmatch.fnmatchcase(rel.rpartition("/")[2], pat[3:])):
            hit = not neg
    return hit


def files(ctx: Context) -> Iterator[tuple[str, Path]]:
    """``(path in the tar, path on disk)`` of every file sent, sorted, ``.dockerignore`` applied.

    The Dockerfile and ``.dockerignore`` are always sent (the engine needs them even when ignored).
    """
    assert ctx.folder is not None
    rules = _ignores(ctx.folder)
    keep = {".dockerignore", ctx.dockerfile or "Dockerfile"}
    found: list[tuple[str, Path]] = []
    for root, dirs, names in os.walk(ctx.folder):
        dirs.sort()
        rel_root = Path(root).relative_to(ctx.folder).as_posix()
        for name in sorted(names) + [d for d in dirs if (Path(root) / d).is_symlink()]:
            rel = name if rel_root == "." else f"{rel_root}/{name}"
            if rel in keep or not _ignored(rel, rules):
                found.append((rel, Path(root) / name))
        # do not descend into ignored folders unless a negated rule may bring something back
        if not any(neg for neg, _ in rules):
            dirs[:] = [d for d in dirs if not _ignored(d if rel_root == "." else f"{rel_root}/{d}", rules)]
    if ctx.outside is not None:
        found.append((OUTSIDE_NAME, ctx.outside))
    yield from sorted(found)


def context_hash(ctx: Context, build: Build) -> str:
    """A hash of everything the build reads: file names, modes, contents, the Dockerfile's name, build args."""
    h = hashlib.sha256()
    h.update(f"b00t-graph-build {HASH_VERSION}\0{ctx.dockerfile}\0".encode())
    for k, v in sorted(build.args.items()):
        h.update(f"arg {k}={v}\0".encode())
    if ctx.remote is not None:
        h.update(f"remote {ctx.remote}\0".encode())  # the engine fetches it: only the URL is known here
        return h.hexdigest()[:32]
    for rel, path in files(ctx):
        st = path.lstat()
        h.update(f"{rel}\0{st.st_mode & 0o777:o}\0".encode())
        if path.is_symlink():
            h.update(f"-> {os.readlink(path)}\0".encode())
        elif path.is_file():
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()[:32]


def context_tar(ctx: Context) -> bytes:
    """The gzipped tar of the context, as the ``POST /build`` body."""
    import gzip  # only when building: a warm `up` never needs them
    import tarfile

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for rel, path in files(ctx):
            info = tar.gettarinfo(str(path), arcname=rel)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0  # the same content makes the same tar: the engine's layer cache then hits
            if info.isfile():
                with open(path, "rb") as fh:
                    tar.addfile(info, fh)
            else:
                tar.addfile(info)
    return gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
