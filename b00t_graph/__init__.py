"""b00t-graph: compile b00t datums into an async DAG and start each service when its dependencies are ready.

Layering, each layer importing only those above it:
  model → loader → graph → scheduler/readiness → engine → runtimes → api/cli
The core imports anyio only; aiodocker is imported by the docker runtime, and
only when a docker node is in the graph.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import B00tGraphError as B00tGraphError
from .errors import CapabilityError as CapabilityError
from .errors import ConflictError as ConflictError
from .errors import CycleError as CycleError
from .errors import DatumError as DatumError
from .errors import EngineUnavailable as EngineUnavailable
from .errors import EnvError as EnvError
from .errors import GraphError as GraphError
from .errors import InputError as InputError
from .errors import MissingDependencyError as MissingDependencyError
from .errors import NodeError as NodeError
from .errors import NodeExited as NodeExited
from .errors import NodePaused as NodePaused
from .errors import PortConflictError as PortConflictError
from .errors import PortInUse as PortInUse
from .errors import PresenceError as PresenceError
from .errors import ReadinessTimeout as ReadinessTimeout
from .errors import RuntimeUnavailable as RuntimeUnavailable
from .errors import StartError as StartError
from .errors import StateDirError as StateDirError
from .errors import UpFailed as UpFailed

if TYPE_CHECKING:  # static tools see every name; at run time they load on first use (see __getattr__)
    from .api import Env as Env
    from .api import down_graph as down_graph
    from .api import ensure as ensure
    from .api import load_graph as load_graph
    from .api import ps as ps
    from .api import restart as restart
    from .api import running as running
    from .api import stop as stop
    from .api import up_graph as up_graph
    from .engine import Engine as Engine
    from .engine import RunResult as RunResult
    from .graph import Graph as Graph
    from .graph import Node as Node
    from .mcpconfig import LaunchSpec as LaunchSpec
    from .mcpconfig import mcp_servers as mcp_servers
    from .runtimes import Runtime as Runtime

#: public name → the module that defines it, imported on first access: `import b00t_graph` (and the CLI,
#: which lives inside the package) costs nothing for what it does not use (the engine, the MCP config).
_LAZY = {
    "Env": ".api",
    "down_graph": ".api",
    "ensure": ".api",
    "load_graph": ".api",
    "ps": ".api",
    "restart": ".api",
    "running": ".api",
    "stop": ".api",
    "up_graph": ".api",
    "Engine": ".engine",
    "RunResult": ".engine",
    "Graph": ".graph",
    "Node": ".graph",
    "LaunchSpec": ".mcpconfig",
    "mcp_servers": ".mcpconfig",
    "Runtime": ".runtimes",
}



def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "B00tGraphError", "CapabilityError", "ConflictError", "CycleError", "DatumError", "Engine", "EngineUnavailable",
    "Env", "EnvError",
    "Graph", "GraphError", "InputError", "LaunchSpec", "MissingDependencyError", "Node", "NodeError", "NodeExited",
    "NodePaused",
    "PortConflictError", "PortInUse", "PresenceError", "ReadinessTimeout", "RunResult", "Runtime",
    "RuntimeUnavailable", "StartError", "StateDirError", "UpFailed", "down_graph", "ensure", "load_graph",
    "mcp_servers", "ps", "restart", "running", "stop", "up_graph",
]
