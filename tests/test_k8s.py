"""The Kubernetes manifests (deploy/k8s), checked offline: the kustomization is rendered (the
example secrets standing in for real ones), every object is validated against the Kubernetes
API's strict JSON schemas (the kubernetes-validate package ships them) or, for KEDA's kinds,
against tests/schemas/keda-v1alpha1.json, and the objects are checked against each other and
against the code: probes run real commands, each service holds only its own key, KEDA watches
the Redis lists that Celery really uses."""

from __future__ import annotations

import base64
import copy
import json
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jsonschema
import kubernetes_validate
import pytest
from kombu.transport.redis import Channel

from services.cli import _parser
from shared.heartbeat import LOOPS
from shared.queue import PIPELINE_QUEUE, app
from shared.settings import Settings
from shared.store.security import ENV_FILE, SERVICES
from tests.kustomize import KustomizeError, read_env_file, render

ROOT = Path(__file__).parents[1]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.30.0"  # the oldest Kubernetes the manifests are meant for
KEDA_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "keda-v1alpha1.json").read_text("utf-8"))
# The port each service serves metrics on, from the settings every service reads.
METRICS_PORTS = {
    name: Settings.model_fields[f"{name}_metrics_port"].default for name in ("fetcher", "worker", "alerter")
}
UID = 10001


def validate(obj: dict[str, Any]) -> None:
    """Raise when `obj` is not valid for its kind (an unknown field included)."""
    if obj["apiVersion"].startswith("keda.sh/"):
        schema = {**KEDA_SCHEMA, "$ref": f"#/$defs/{obj['kind']}"}
        jsonschema.Draft202012Validator(schema).validate(obj)
    else:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    # The real env files are kept out of git; the examples stand in for them.
    directory = tmp_path_factory.mktemp("k8s") / "k8s"
    shutil.copytree(K8S, directory, ignore=shutil.ignore_patterns("*.env"))
    for example in (directory / "secrets").glob("*.env.example"):
        shutil.copy(example, example.with_suffix(""))
    return render(directory)


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def workloads(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in {"Deployment", "StatefulSet", "Job"}]


def containers(objects: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(w, c) for w in workloads(objects) for c in w["spec"]["template"]["spec"]["containers"]]


def component(workload: dict[str, Any]) -> str:
    return str(workload["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/component"])


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def test_every_object_is_valid_for_its_kind(rendered):
    kinds = sorted({o["kind"] for o in rendered})
    assert kinds == sorted(
        [
            "ConfigMap",
            "Deployment",
            "Job",
            "Namespace",
            "PodDisruptionBudget",
            "ScaledObject",
            "Secret",
            "Service",
            "StatefulSet",
            "TriggerAuthentication",
        ]
    )
    for obj in rendered:
        validate(obj)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == "wirewatch", obj["metadata"]["name"]


@pytest.mark.parametrize(
    ("kind", "name", "path", "field"),
    [
        ("Deployment", "wirewatch-worker", ["spec", "template", "spec", "containers", 0], "livenessProbes"),
        ("StatefulSet", "wirewatch-fetcher", ["spec"], "replica"),
        ("PodDisruptionBudget", "wirewatch-api", ["spec"], "minAvailible"),
        ("ScaledObject", "wirewatch-worker", ["spec"], "minReplicas"),
        ("ScaledObject", "wirewatch-worker", ["spec", "triggers", 0, "metadata"], "listname"),
        ("TriggerAuthentication", "wirewatch-redis", ["spec", "secretTargetRef", 0], "secret"),
    ],
)
def test_a_wrong_field_is_refused(rendered, kind, name, path, field):
    broken = copy.deepcopy(find(rendered, kind, name))
    place = broken
    for step in path:
        place = place[step]
    place[field] = "1"
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)


def test_a_field_the_renderer_does_not_do_is_refused(tmp_path):
    (tmp_path / "kustomization.yaml").write_text("resources: []\npatches:\n  - path: p.yaml\n")
    with pytest.raises(KustomizeError, match="patches"):
        render(tmp_path)


def test_every_service_runs_with_probes_limits_and_no_root(rendered):
    assert {component(w) for w in workloads(rendered)} == {*SERVICES, "setup"}
    for workload, container in containers(rendered):
        name = component(workload)
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == UID, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert pod["automountServiceAccountToken"] is False
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert {"/data", "/tmp"} <= mounts, f"{name}: a read-only root needs writable data and temp dirs"
        for side in ("requests", "limits"):
            assert set(container["resources"][side]) == {"cpu", "memory"}, name
        if name != "setup":
            assert container["livenessProbe"] and container["readinessProbe"], name


def test_probes_run_real_commands_and_check_the_loops_each_service_has(rendered):
    for workload, container in containers(rendered):
        name = component(workload)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
            if "exec" in container.get(probe, {}):
                command = container[probe]["exec"]["command"]
                assert command[0] == "wirewatch"
                _parser().parse_args(command[1:])  # exits on a command the CLI does not have
        if name in LOOPS:
            assert container["livenessProbe"]["exec"]["command"] == ["wirewatch", "health", "--service", name]
        if name == "api":
            assert container["readinessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
        _parser().parse_args(container["args"])


def test_each_service_holds_its_own_key_and_only_setup_the_superuser(rendered):
    keys = read_env_file(K8S / "secrets" / f"{ENV_FILE}.example")
    assert set(keys) == {f"{service.upper()}_ELASTICSEARCH_API_KEY" for service in SERVICES}
    for workload, container in containers(rendered):
        name = component(workload)
        refs = [e["valueFrom"]["secretKeyRef"] for e in container.get("env", []) if "valueFrom" in e]
        from_secrets = [s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s]
        key_refs = [r for r in refs if r["name"] == "wirewatch-elasticsearch-api-keys"]
        if name == "setup":
            assert from_secrets == ["wirewatch-elasticsearch-superuser"] and not key_refs
        else:
            assert not from_secrets, f"{name} must not see the superuser"
            assert key_refs == [
                {"name": "wirewatch-elasticsearch-api-keys", "key": f"{name.upper()}_ELASTICSEARCH_API_KEY"}
            ]
            assert env_of(container)["WIREWATCH_ELASTICSEARCH_API_KEY"] == {"secretKeyRef": key_refs[0]}
        assert env_of(container)["WIREWATCH_REDIS_URL"] == {
            "secretKeyRef": {"name": "wirewatch-redis", "key": "WIREWATCH_REDIS_URL"}
        }


def test_every_reference_points_at_something_rendered(rendered):
    def data(kind: str, name: str) -> dict[str, str]:
        return dict(find(rendered, kind, name)["data"])

    for _, container in containers(rendered):
        for source in container.get("envFrom", []):
            for kind, key in (("ConfigMap", "configMapRef"), ("Secret", "secretRef")):
                if key in source:
                    data(kind, source[key]["name"])
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                assert ref["key"] in data("Secret", ref["name"]), ref
    for ref in find(rendered, "TriggerAuthentication", "wirewatch-redis")["spec"]["secretTargetRef"]:
        assert ref["key"] in data("Secret", ref["name"])
    for workload in workloads(rendered):
        pod = workload["spec"]["template"]["spec"]
        volumes = {v["name"] for v in pod.get("volumes", [])}
        volumes |= {t["metadata"]["name"] for t in workload["spec"].get("volumeClaimTemplates", [])}
        for container in pod["containers"]:
            assert {m["name"] for m in container["volumeMounts"]} <= volumes


def test_every_workload_has_a_disruption_budget_and_every_service_its_pods(rendered):
    for workload in workloads(rendered):
        if workload["kind"] == "Job":
            continue
        labels = workload["spec"]["template"]["metadata"]["labels"]
        assert workload["spec"]["selector"]["matchLabels"].items() <= labels.items()
        budgets = [
            b
            for b in rendered
            if b["kind"] == "PodDisruptionBudget" and b["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(budgets) == 1, workload["metadata"]["name"]
    for service in (o for o in rendered if o["kind"] == "Service"):
        (workload,) = [
            w
            for w in workloads(rendered)
            if service["spec"]["selector"].items() <= w["spec"]["template"]["metadata"]["labels"].items()
        ]
        port_names = {p["name"] for c in workload["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= port_names


def test_fetchers_each_have_their_own_inbox_volume(rendered):
    fetcher = find(rendered, "StatefulSet", "wirewatch-fetcher")
    (claim,) = fetcher["spec"]["volumeClaimTemplates"]
    (container,) = fetcher["spec"]["template"]["spec"]["containers"]
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == claim["metadata"]["name"]]
    assert env_of(container)["WIREWATCH_INBOX"].startswith(mount["mountPath"] + "/")
    assert fetcher["spec"]["template"]["spec"]["securityContext"]["fsGroup"] == UID  # the volume is writable


def test_each_service_exposes_its_metrics_port(rendered):
    for workload, container in containers(rendered):
        name = component(workload)
        if name in METRICS_PORTS:
            assert env_of(container)[f"WIREWATCH_{name.upper()}_METRICS_PORT"] == str(METRICS_PORTS[name])
            assert {"name": "metrics", "containerPort": METRICS_PORTS[name]} in container["ports"]


def test_keda_scales_the_workers_on_the_redis_lists_celery_uses(rendered):
    scaled = find(rendered, "ScaledObject", "wirewatch-worker")
    worker = find(rendered, "Deployment", scaled["spec"]["scaleTargetRef"]["name"])
    assert component(worker) == "worker"
    assert scaled["spec"]["minReplicaCount"] >= 1  # the indexer and retry pump are not in any queue length
    # kombu keeps one list per priority step: the queue's name for 0, name + separator + step otherwise.
    steps = app.conf.broker_transport_options["priority_steps"]
    lists = {PIPELINE_QUEUE if step == 0 else f"{PIPELINE_QUEUE}{Channel.sep}{step}" for step in steps}
    assert app.conf.task_default_queue == PIPELINE_QUEUE
    triggers = scaled["spec"]["triggers"]
    assert {t["metadata"]["listName"] for t in triggers} == lists
    redis_url = read_env_file(K8S / "secrets" / "redis.env.example")["WIREWATCH_REDIS_URL"]
    database = urlparse(redis_url).path.lstrip("/") or "0"
    auth = find(rendered, "TriggerAuthentication", "wirewatch-redis")
    secret = find(rendered, "Secret", "wirewatch-redis")["data"]
    address = {r["parameter"]: base64.b64decode(secret[r["key"]]).decode() for r in auth["spec"]["secretTargetRef"]}
    assert address["address"] == urlparse(redis_url).netloc.rpartition("@")[2]  # the same server as the services
    for trigger in triggers:
        assert trigger["type"] == "redis" and trigger["authenticationRef"] == {"name": "wirewatch-redis"}
        assert trigger["metadata"]["databaseIndex"] == database


def test_the_image_user_owns_what_the_pods_write(rendered):
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text("utf-8")
    assert f"--uid {UID}" in dockerfile
    assert (K8S / "secrets" / ".gitignore").read_text("utf-8").split() == ["*.env"]
