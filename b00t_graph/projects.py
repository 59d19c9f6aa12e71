"""Project namespaces: two checkouts, or two CI jobs, that never see each other's services.

A project ``NAME`` (``-p/--project``, ``$B00T_PROJECT``; ``project=`` in the API) moves process
records, logs and locks to ``<state_dir>/projects/<NAME>``; the docker runtime prefixes container,
network and volume names with ``<NAME>_`` and labels them ``org.b00t-graph.project=<NAME>``, and
sees only its own project's containers. Without a project nothing changes: one shared namespace,
as b00t's shared services (one qdrant for every agent of the user) expect.
"""

from __future__ import annotations

import re
from pathlib import Path

from .errors import InputError

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")


def check_project(name: str | None) -> str | None:
    """The project name, or ``None`` for none (an empty name is none); raises :class:`InputError` when invalid."""
    if not name:
        return None
    if not _NAME_RE.fullmatch(name):
        raise InputError(f"project name {name!r}: use letters, digits, '-' and '_' (starting with a letter or "
                         "digit, at most 63 characters)")
    return name


def project_state_dir(state_dir: Path, project: str | None) -> Path:
    """Where a project's process records, logs and locks live: ``<state_dir>/projects/<NAME>``."""
    return state_dir if not project else state_dir / "projects" / project
