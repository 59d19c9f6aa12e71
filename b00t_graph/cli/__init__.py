"""The ``b00t-graph`` command: a thin layer over the typed core.

Exit codes: 0 ok; 1 a runtime failure (a node failed, an engine is
unreachable); 2 bad input (a datum, a target, an option); 130 interrupted.
User errors print one message on stderr, never a traceback; ``B00T_DEBUG=1``
adds the traceback and debug logs.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path

import click

from ._common import DATUMS_HELP, PROJECT_HELP, STATE_HELP, _debug, _Group, _project_cb

# Each command's module is imported only when that command runs (or help lists them all):
# ``export`` pulls in the Kubernetes exporter, ``ps`` rich's tables, and a warm ``up`` should
# pay for none of it. Command name → (module, attribute), in the order help lists them.
_COMMANDS: dict[str, tuple[str, str]] = {
    "plan": ("plan", "plan"),
    "up": ("lifecycle", "up"),
    "down": ("lifecycle", "down"),
    "status": ("lifecycle", "status"),
    "ps": ("ops", "ps"),
    "supervise": ("supervise", "supervise"),
    "stop": ("ops", "stop"),
    "restart": ("ops", "restart"),
    "logs": ("logs", "logs"),
    "exec": ("logs", "exec_cmd"),
    "validate": ("catalog", "validate"),
    "ls": ("catalog", "ls_cmd"),
    "mcp-config": ("mcp", "mcp_config"),
    "mcp": ("mcp", "mcp_group"),
    "export": ("export", "export_group"),
}


class _LazyGroup(_Group):
    """The top-level group: a subcommand's module is imported on first lookup."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*_COMMANDS, *self.commands})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            cmd = getattr(importlib.import_module(f"{__name__}.{module}"), attr)
            self.add_command(cmd, cmd_name)
        return self.commands.get(cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
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


def run() -> None:  # pragma: no cover - alias for `python -m b00t_graph`
    main()
