"""A small kustomize for the tests: renders a kustomization as `kubectl apply -k` would, for the
fields our manifests use (resources, namespace, labels, secret and config map generators with
fixed names, images). No kustomize binary can be installed where the tests run; a field this
renderer does not know is refused, so a kustomization never renders differently here than in
a cluster without a test noticing."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

KNOWN_FIELDS = {
    "apiVersion",
    "kind",
    "namespace",
    "labels",
    "resources",
    "secretGenerator",
    "configMapGenerator",
    "generatorOptions",
    "images",
}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not do, or points at nothing."""


def render(directory: Path) -> list[dict[str, Any]]:
    """Every object the kustomization in `directory` produces, in order."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text("utf-8"))
    unknown = set(kustomization) - KNOWN_FIELDS
    if unknown:
        raise KustomizeError(f"{directory}: fields this renderer does not do: {sorted(unknown)}")
    objects: list[dict[str, Any]] = []
    for entry in kustomization.get("resources", []):
        path = directory / entry
        if path.is_dir():
            objects += render(path)
        elif path.is_file():
            objects += [doc for doc in yaml.safe_load_all(path.read_text("utf-8")) if doc]
        else:
            raise KustomizeError(f"{directory}: no resource {entry}")
    options = kustomization.get("generatorOptions", {})
    generators = [("Secret", g) for g in kustomization.get("secretGenerator", [])]
    generators += [("ConfigMap", g) for g in kustomization.get("configMapGenerator", [])]
    if generators and options.get("disableNameSuffixHash") is not True:
        raise KustomizeError("name suffix hashes (and rewriting references to them) are not done here")
    objects += [_generate(directory, kind, generator) for kind, generator in generators]
    for obj in objects:
        _apply_labels(obj, kustomization.get("labels", []))
        if kustomization.get("namespace") and obj["kind"] not in CLUSTER_SCOPED:
            obj["metadata"]["namespace"] = kustomization["namespace"]
        _set_images(obj, kustomization.get("images", []))
    return objects


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize reads an `envs` file (blank lines and # comments skipped)."""
    values: dict[str, str] = {}
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, equals, value = line.partition("=")
        if not equals or not key:
            raise KustomizeError(f"{path}:{number}: not KEY=VALUE")
        values[key] = value
    return values


def _generate(directory: Path, kind: str, generator: dict[str, Any]) -> dict[str, Any]:
    unknown = set(generator) - {"name", "envs", "literals"}
    if unknown:
        raise KustomizeError(f"{generator.get('name')}: generator fields not done here: {sorted(unknown)}")
    values: dict[str, str] = {}
    for env in generator.get("envs", []):
        path = directory / env
        if not path.is_file():
            raise KustomizeError(f"{generator['name']}: no env file {env}")
        values.update(read_env_file(path))
    for literal in generator.get("literals", []):
        key, _, value = literal.partition("=")
        values[key] = value
    obj: dict[str, Any] = {"apiVersion": "v1", "kind": kind, "metadata": {"name": generator["name"]}}
    if kind == "Secret":
        obj["type"] = "Opaque"
        obj["data"] = {key: base64.b64encode(value.encode()).decode() for key, value in values.items()}
    else:
        obj["data"] = values
    return obj


def _apply_labels(obj: dict[str, Any], labels: list[dict[str, Any]]) -> None:
    for entry in labels:
        unknown = set(entry) - {"pairs", "includeSelectors", "includeTemplates"}
        if unknown or entry.get("includeSelectors") or entry.get("includeTemplates"):
            raise KustomizeError(f"labels: only pairs on metadata are done here, not {entry}")
        obj["metadata"].setdefault("labels", {}).update(entry["pairs"])


def _set_images(obj: dict[str, Any], images: list[dict[str, Any]]) -> None:
    if obj["kind"] not in WORKLOADS:
        return
    pod = obj["spec"]["template"]["spec"]
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        name, _, tag = container["image"].partition(":")
        for image in images:
            if image["name"] == name:
                container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag or 'latest')}"
