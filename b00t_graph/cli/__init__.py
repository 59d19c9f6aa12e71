"""The ``b00t-graph`` command: a thin layer over the typed core.

Exit codes: 0 ok; 1 a runtime failure (a node failed, an engine is
unreachable); 2 bad input (a datum, a target, an option); 130 interrupted.
User errors print one message on stderr, never a traceback; ``B00T_DEBUG=1``
adds the traceback and debug logs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ._common import DATUMS_HELP, PROJECT_HELP, STATE_HELP, _debug, _Group, _project_cb
from .catalog import ls_cmd, validate
from .export import export_group
from .lifecycle import down, status, up
from .logs import exec_cmd, logs
from .mcp import mcp_config, mcp_group
from .ops import ps, restart, stop
from .plan import plan
from .supervise import supervise


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="b00t-graph")
@click.option("--datums", "-d", "datums", multiple=True, type=click.Path(file_okay=False, exists=True),
              help=DATUMS_HELP + " For every subcommand; its own -d wins.")
@click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help=STATE_HELP + " For every subcommand; its own wins.")
@click.option("--project", "-p", "project", default=None, metavar="NAME", envvar="B00T_PROJECT",
              callback=_project_cb, help=PROJECT_HELP + " For every subcommand; its own wins.")
@click.pass_context
def main(ctx: click.Context, datums: tuple[str, ...], state_dir: Path | None, project: str | None) -> None:
    """Start services from b00t datums, each the moment its own dependencies are ready.

    \b
    Example:
      b00t-graph up demo.stack          # start it, every node as soon as its dependencies are ready
      b00t-graph -p ci -d ./_b00t_ up grok.stack
      eval "$(b00t-graph up grok -q --env)"

    \b
    Exit codes: 0 ok, 1 runtime failure, 2 bad input, 130 interrupted.
    Set B00T_DEBUG=1 for tracebacks and debug logs.
    Shell completion: eval "$(_B00T_GRAPH_COMPLETE=bash_source b00t-graph)" (zsh_source, fish_source).
    """
    ctx.obj = {"datums": datums, "state_dir": state_dir, "project": project}
    if _debug():
        logging.basicConfig(level=logging.DEBUG, format="%(relativeCreated)8.1fms %(name)s %(message)s")


# --- plan ----------------------------------------------------------------------------------------


for _cmd in (plan, up, down, status, ps, supervise, stop, restart, logs, exec_cmd, validate, ls_cmd, mcp_config,
             mcp_group, export_group):
    main.add_command(_cmd)


def run() -> None:  # pragma: no cover - alias for `python -m b00t_graph`
    main()
