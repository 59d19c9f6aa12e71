"""Exporters: a compiled graph written in another system's terms (Kubernetes manifests).

An exporter reads a :class:`~b00t_graph.graph.Graph` and returns data; it is not a runtime and
talks to nothing. The CLI (``b00t-graph export``) decides where the data goes.
"""

from __future__ import annotations

from .k8s import WAIT_IMAGE as WAIT_IMAGE
from .k8s import K8sExport as K8sExport
from .k8s import to_manifests as to_manifests
