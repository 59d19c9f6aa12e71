"""The ``b00t-graph`` command: a thin layer over the typed core.

Exit codes: 0 ok; 1 a runtime failure (a node failed, an engine is
unreachable); 2 bad input (a datum, a target, an option); 130 interrupted.
User errors print one message on stderr, never a traceback; ``B00T_DEBUG=1``
adds the traceback and debug logs.
"""

from __future__ import annotations

import logging

import click

from ._common import _debug
from .catalog import ls_cmd, validate
from .lifecycle import down, status, up
from .logs import exec_cmd, logs
from .mcp import mcp_config, mcp_group
from .plan import plan


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="b00t-graph")
def main() -> None:
    """Start services from b00t datums, each the moment its own dependencies are ready.

    \b
    Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted.
    Set B00T_DEBUG=1 for tracebacks and debug logs.
    """
    if _debug():
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)8.1fms %(name)s %(message)s")


# --- plan ----------------------------------------------------------------------------------------


for _cmd in (plan, up, down, status, logs, exec_cmd, validate, ls_cmd, mcp_config, mcp_group):
    main.add_command(_cmd)


def run() -> None:  # pragma: no cover - alias for `python -m b00t_graph`
    main()
