"""``b00t_graph.pytest.services(...)``: the pytest plugin's fixture factory, under the name people type."""

from __future__ import annotations

from .pytest_plugin import services as services

__all__ = ["services"]
