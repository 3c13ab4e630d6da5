"""The compose files, checked offline (there is no Docker engine here): after YAML merge keys
are resolved, each wirewatch service has what it needs and holds only its own Elasticsearch
key, and only setup holds the superuser's password."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared.store.security import ENV_FILE, KEY_FILE, SERVICES

ROOT = Path(__file__).parents[1]
NEEDED = {"WIREWATCH_REDIS_URL", "WIREWATCH_ELASTICSEARCH_URL"}
SUPERUSER_VARIABLES = {"WIREWATCH_ELASTICSEARCH_USERNAME", "WIREWATCH_ELASTICSEARCH_PASSWORD"}


def load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / name).read_text("utf-8"))  # resolves `<<:` merge keys
    assert isinstance(loaded, dict)
    return loaded


def wirewatch_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in compose["services"].items()
        if str(service.get("image", "")).split(":")[0].endswith("wirewatch") or "WIREWATCH_IMAGE" in service["image"]
    }


def run_service(service: dict[str, Any]) -> str:
    return str(service["command"][-1])


def key_mount(service: dict[str, Any], target: str) -> dict[str, Any]:
    (mount,) = [m for m in service["volumes"] if isinstance(m, dict) and m["target"] == target]
    return mount


def test_every_service_of_the_stack_runs_with_its_own_key_read_only():
    services = wirewatch_services(load("docker-compose.yml"))
    running = {name: service for name, service in services.items() if name != "setup"}
    assert sorted(run_service(service) for service in running.values()) == sorted(SERVICES)
    for name, service in running.items():
        environment = service["environment"]
        assert set(environment) >= NEEDED, name
        assert not SUPERUSER_VARIABLES & set(environment), f"{name} must not log in as the superuser"
        assert "WIREWATCH_ELASTICSEARCH_API_KEY" not in environment
        key_file = Path(environment["WIREWATCH_ELASTICSEARCH_API_KEY_FILE"])
        assert key_file.name == KEY_FILE
        mount = key_mount(service, str(key_file.parent))
        assert mount == {
            "type": "volume",
            "source": "es-keys",
            "target": str(key_file.parent),
            "read_only": True,
            "volume": {"subpath": run_service(service)},  # its own key, no other service's
        }
        assert service["depends_on"]["setup"] == {"condition": "service_completed_successfully"}
        assert service["healthcheck"]["test"][:3] == ["CMD", "wirewatch", "health"]


def test_only_setup_holds_the_superuser_and_it_writes_the_keys_the_services_mount():
    compose = load("docker-compose.yml")
    setup = compose["services"]["setup"]
    assert setup["environment"]["WIREWATCH_ELASTICSEARCH_USERNAME"] == "elastic"
    command = setup["command"]
    assert command[0] == "setup" and "--security" in command
    keys_dir = command[command.index("--keys-dir") + 1]
    assert f"es-keys:{keys_dir}" in setup["volumes"]  # writable: no `:ro`
    assert "es-keys" in compose["volumes"]

    holders = {name for name, service in compose["services"].items() if "ELASTIC_PASSWORD" in yaml.safe_dump(service)}
    # Elasticsearch itself, the job that sets kibana_system's password, Kibana's fallback, setup.
    assert holders == {"elasticsearch", "kibana-password", "kibana", "setup"}


def made_for_the_service_user(dockerfile: str) -> set[str]:
    """The directories the image makes and hands to its user right before switching to it."""
    user = re.search(r"useradd .*--uid 10001 (\w+)", dockerfile)
    made = re.search(r"RUN mkdir ([/\w ]+) && chown (\w+):(\w+) ([/\w ]+)\nUSER (\w+)", dockerfile)
    assert user and made, "the directories are made and handed over right before USER"
    assert made.group(2) == made.group(3) == made.group(5) == user.group(1)
    assert made.group(1).split() == made.group(4).split()
    return set(made.group(1).split())


def test_the_image_lets_setup_write_into_a_fresh_keys_volume():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text("utf-8")
    assert "/keys" in made_for_the_service_user(dockerfile)


def test_remote_workers_take_their_keys_from_the_env_file_setup_writes():
    services = wirewatch_services(load("deploy/compose.worker.yml"))
    assert sorted(services) == ["alerter", "worker"]
    for name, service in services.items():
        environment = service["environment"]
        assert set(environment) >= NEEDED
        assert not SUPERUSER_VARIABLES & set(environment)
        variable = f"{run_service(service).upper()}_ELASTICSEARCH_API_KEY"  # a line of the env file
        assert environment["WIREWATCH_ELASTICSEARCH_API_KEY"].startswith("${" + variable + ":?"), name
        assert environment["WIREWATCH_ELASTICSEARCH_CA_CERTS"].startswith("${ELASTICSEARCH_CA_CERTS:-}")
        assert service["healthcheck"]["test"] == ["CMD", "wirewatch", "health", "--service", name]
    assert ENV_FILE in (ROOT / "deploy" / "compose.worker.yml").read_text("utf-8")


@pytest.mark.parametrize("name", ["docker-compose.yml", "deploy/compose.worker.yml"])
def test_every_required_variable_says_what_to_set(name):
    text = (ROOT / name).read_text("utf-8")
    for required in re.findall(r"\$\{[A-Z_]+:\?([^}]*)\}", text):
        assert required.strip(), f"{name}: a required variable without a message"


def test_every_service_keeps_the_shared_settings_beside_its_own():
    # A service's own `environment:` replaces a merged one whole; each must merge the shared block in.
    compose = load("docker-compose.yml")
    shared = compose["x-wirewatch-environment"]
    for name, service in wirewatch_services(compose).items():
        environment = service["environment"]
        assert environment.items() >= shared.items(), f"{name} lost shared settings"
        assert len(environment) > len(shared), f"{name} has no settings of its own (its key)"


@pytest.mark.parametrize("name", ["docker-compose.yml", "deploy/compose.worker.yml"])
def test_every_service_has_elasticsearch_credentials(name):
    credentials = {"WIREWATCH_ELASTICSEARCH_API_KEY", "WIREWATCH_ELASTICSEARCH_API_KEY_FILE"}
    for service_name, service in wirewatch_services(load(name)).items():
        environment = service["environment"]
        if service_name == "setup":
            assert environment["WIREWATCH_ELASTICSEARCH_PASSWORD"]
        else:
            assert len(credentials & set(environment)) == 1, f"{name}: {service_name} cannot log in"


def test_the_image_makes_its_data_and_inbox_dirs_for_the_service_user():
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text("utf-8")
    assert {"/data", "/inbox"} <= made_for_the_service_user(dockerfile)
    environment = dict(re.findall(r"(WIREWATCH_\w+)=(\S+)", dockerfile))
    assert environment == {"WIREWATCH_DATA_DIR": "/data", "WIREWATCH_INBOX": "/inbox"}
    # Compose mounts the data volume and the inbox where the image made them.
    for service in wirewatch_services(load("docker-compose.yml")).values():
        assert service["environment"]["WIREWATCH_DATA_DIR"] == environment["WIREWATCH_DATA_DIR"]
        assert service["environment"]["WIREWATCH_INBOX"] == environment["WIREWATCH_INBOX"]
        assert "wirewatch-data:/data" in service["volumes"]
