"""An environment printed for people and programs: shell ``export`` lines, dotenv, JSON."""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping

_SHELL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: env names that usually hold a secret: masked where shown, kept apart (a Kubernetes Secret) where exported
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSW|PWD|CREDENTIAL|AUTH|PRIVATE|COOKIE|SESSION|SIGNATURE|SALT", re.I)
#: a password inside a URL (``scheme://user:password@``); group 1 is what comes before the password
URL_PASSWORD = re.compile(r"(://[^/:@\s]+:)[^@/\s]+@")


def looks_secret(name: str, value: str) -> bool:
    """Whether ``name=value`` should be treated as a secret: a secret-looking name or a URL password."""
    return bool(SECRET_NAME.search(name) or URL_PASSWORD.search(value))


def env_text(env: Mapping[str, str], fmt: str = "shell") -> str:
    """``shell``: ``export K='v'`` lines that ``eval "$(…)"`` reads back exactly (spaces, quotes, ``$``);
    ``dotenv``: ``K="v"`` lines (JSON string escapes); ``json``: one object. Sorted by key.

    ``shell`` leaves out keys that are not shell names: ``export`` would fail on them.
    """
    items = sorted(env.items())
    if fmt == "json":
        return json.dumps(dict(items), indent=2) + "\n"
    if fmt == "dotenv":
        return "".join(f"{k}={json.dumps(v)}\n" for k, v in items)
    if fmt != "shell":
        raise ValueError(f"unknown env format {fmt!r}")
    return "".join(f"export {k}={shlex.quote(v)}\n" for k, v in items if _SHELL_NAME.fullmatch(k))
