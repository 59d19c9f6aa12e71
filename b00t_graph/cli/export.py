"""``export``: a graph written in another system's terms, changing nothing here."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ..export.k8s import WAIT_IMAGE, K8sExport
from ._common import _graph, datums_opt, use_opt


@click.group("export")
def export_group() -> None:
    """Write what `up` would run as another system's files (Kubernetes manifests)."""


def _yaml(docs: list[dict[str, object]] | tuple[dict[str, object], ...]) -> str:
    """Multi-document YAML, keys in the order written, no anchors (a reader edits each object on its own)."""
    import yaml

    class Dumper(yaml.SafeDumper):
        def ignore_aliases(self, data: object) -> bool:
            return True

    return yaml.dump_all(list(docs), Dumper=Dumper, sort_keys=False, default_flow_style=False, width=1000)


def _write(result: K8sExport, out_dir: Path, fmt: str) -> int:
    """Write one file per workload and a kustomization.yaml (or a Helm chart); the number of files."""
    import yaml

    if fmt == "helm":
        chart = {"apiVersion": "v2", "name": result.part_of, "version": "0.1.0", "type": "application",
                 "description": f"{result.part_of}, exported by b00t-graph with its start order kept"}
        (out_dir / "templates").mkdir(parents=True, exist_ok=True)
        (out_dir / "Chart.yaml").write_text(yaml.safe_dump(chart, sort_keys=False))
        (out_dir / "values.yaml").write_text("# The manifests are plain: no values are read yet.\n{}\n")
        for name, docs in result.files.items():
            # Helm renders templates: a literal {{ in a value must reach the cluster as written.
            text = _yaml(docs).replace("{{", '{{ "{{" }}')
            (out_dir / "templates" / f"{name}.yaml").write_text(text)
        return len(result.files) + 2
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, docs in result.files.items():
        (out_dir / f"{name}.yaml").write_text(_yaml(docs))
    (out_dir / "kustomization.yaml").write_text(yaml.safe_dump(result.kustomization(), sort_keys=False))
    return len(result.files) + 1


@export_group.command("k8s")
@click.argument("target")
@click.option("-o", "--output", "output", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write one YAML file per workload and a kustomization.yaml here. Default: one "
                   "multi-document YAML on stdout.")
@click.option("--format", "fmt", type=click.Choice(["yaml", "helm"]), default="yaml",
              help="helm: a chart (Chart.yaml, templates/) in the -o folder.")
@click.option("--wait-image", default=WAIT_IMAGE, show_default=True,
              help="Image of the init containers that wait for dependencies (needs sh, wget and nc).")
@datums_opt
@use_opt
def k8s(target: str, output: Path | None, fmt: str, wait_image: str, datums: tuple[str, ...],
        use: tuple[str, ...]) -> None:
    """Kubernetes manifests for TARGET with its start order kept.

    \b
    Per docker node: a Deployment (a StatefulSet when it has named volumes), a Service, its env
    as a ConfigMap (loopback URLs of dependencies rewritten to their Services), probes from its
    health check, resources as limits, and an init container per dependency that waits for it.
    Process nodes have no image and are left out with a note.

    \b
      b00t-graph export k8s grok.stack | kubectl apply -f -
      b00t-graph export k8s grok.stack -o deploy/ && kubectl apply -k deploy/
    """
    from ..export.k8s import to_manifests

    if fmt == "helm" and output is None:
        raise click.UsageError("--format helm writes a chart folder: give it with -o DIR")
    graph = _graph(datums, (target,), use, offline=True)  # nothing here is asked of a runtime
    result = to_manifests(graph, wait_image=wait_image)
    for note in result.notes:
        click.echo(f"note: {note}", err=True)
    if output is None:
        if result.manifests:
            sys.stdout.write(_yaml(result.manifests))
        else:
            click.echo("note: nothing to export (no docker node in the graph)", err=True)
        return
    try:
        count = _write(result, output, fmt)
    except OSError as exc:
        click.echo(f"error: cannot write {output}: {exc.strerror or exc}", err=True)
        sys.exit(1)
    click.echo(f"wrote {count} files for {len(result.files)} workloads to {output}", err=True)
