"""Static checks of the container stack: docker-compose.yml, deploy/*, the Dockerfile and docs/docker.md.

No Docker engine is needed. They check that the files agree with each other, with
``orchestrator.settings.Settings`` and with the ``sagaline`` command line, so a renamed setting or command fails here
and not in somebody's ``docker compose up``.
"""

from __future__ import annotations

import functools
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from orchestrator.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
COLLECTOR_CONFIG = ROOT / "deploy" / "otel-collector.yaml"
PROMETHEUS_CONFIG = ROOT / "deploy" / "prometheus.yml"
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
DOCS = ROOT / "docs" / "docker.md"

PREFIX = "SAGALINE_"
PARTICIPANTS = ("order", "inventory", "payment", "shipment")
APP_SERVICES = ("orchestrator", *PARTICIPANTS)
SAGALINE_SERVICES = ("migrate", "admin", *APP_SERVICES)
EXPECTED_COMMANDS: dict[str, list[str]] = {
    "migrate": ["migrate"],
    "admin": ["admin", "serve", "--host", "0.0.0.0", "--port", "8088"],
    "orchestrator": ["orchestrator"],
    **{name: ["participant", name] for name in PARTICIPANTS},
}
DEPENDS_ON_CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
# Standard OpenTelemetry SDK variables a Sagaline service may be given (the SDK reads them, not Settings).
STANDARD_OTEL_VARIABLES = {
    "OTEL_SERVICE_NAME",
    "OTEL_RESOURCE_ATTRIBUTES",
    "OTEL_SDK_DISABLED",
    "OTEL_TRACES_EXPORTER",
    "OTEL_METRICS_EXPORTER",
    "OTEL_LOGS_EXPORTER",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "OTEL_PROPAGATORS",
    "OTEL_METRIC_EXPORT_INTERVAL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_PROTOCOL",
    "OTEL_EXPORTER_OTLP_INSECURE",
    "OTEL_EXPORTER_OTLP_HEADERS",
    "OTEL_EXPORTER_OTLP_TIMEOUT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
    "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT",
}
# OTEL_EXPORTER_OTLP_PROTOCOL value -> the OTLP receiver protocol of the collector that serves it.
OTLP_PROTOCOLS = {"grpc": "grpc", "http/protobuf": "http", "http/json": "http"}
POSTGRES_PORT = 5432


# ---------------------------------------------------------------------------------------------------- loading


def _load_yaml(path: Path) -> dict[str, Any]:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict), f"{path.relative_to(ROOT)} is not a YAML mapping"
    return document


@functools.cache
def _compose() -> dict[str, Any]:
    return _load_yaml(COMPOSE_FILE)


@functools.cache
def _collector() -> dict[str, Any]:
    return _load_yaml(COLLECTOR_CONFIG)


@functools.cache
def _prometheus() -> dict[str, Any]:
    return _load_yaml(PROMETHEUS_CONFIG)


def _services() -> dict[str, dict[str, Any]]:
    services = _compose().get("services")
    assert isinstance(services, dict), "docker-compose.yml has no services mapping"
    return services


def _service(name: str) -> dict[str, Any]:
    services = _services()
    assert name in services, f"docker-compose.yml has no service {name!r}"
    return services[name]


def _env(name: str) -> dict[str, str]:
    """A service's environment as name -> value, from the mapping or the list ("NAME=value") form."""
    raw = _service(name).get("environment") or {}
    if isinstance(raw, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in raw)
        return {str(key): str(value) for key, value in pairs}
    return {str(key): "" if value is None else str(value) for key, value in raw.items()}


def _command(name: str) -> list[str]:
    command = _service(name).get("command")
    if isinstance(command, str):
        return shlex.split(command)
    return [str(part) for part in command or []]


def _depends_on(name: str) -> dict[str, str]:
    """depends_on as target -> condition (the short list form means service_started)."""
    raw = _service(name).get("depends_on") or {}
    if isinstance(raw, list):
        return dict.fromkeys(raw, "service_started")
    return {target: (spec or {}).get("condition", "service_started") for target, spec in raw.items()}


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.strip().rpartition(":")
    return host, int(port)


def _listeners(value: str) -> dict[str, tuple[str, int]]:
    """'NAME://host:port,...' (Kafka listener syntax) as NAME -> (host, port)."""
    result: dict[str, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        name, _, address = item.partition("://")
        result[name] = _host_port(address)
    return result


def _published_host_ports(service: dict[str, Any]) -> list[int]:
    ports: list[int] = []
    for entry in service.get("ports") or []:
        if isinstance(entry, dict):
            published = entry.get("published")
            if published is not None:
                ports.extend(_port_range(str(published)))
            continue
        parts = str(entry).split("/", 1)[0].split(":")
        if len(parts) >= 2:  # "HOST:CONTAINER" or "IP:HOST:CONTAINER"; a lone port gets an ephemeral host port
            ports.extend(_port_range(parts[-2]))
    return ports


def _port_range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def _bind_mounts(service: dict[str, Any]) -> dict[str, str]:
    """Bind mounts of a service as container path -> host path (relative to the repository root)."""
    mounts: dict[str, str] = {}
    for entry in service.get("volumes") or []:
        if isinstance(entry, dict):
            if entry.get("type") == "bind":
                mounts[entry["target"]] = entry["source"]
            continue
        source, _, rest = str(entry).partition(":")
        if source.startswith((".", "/")):
            mounts[rest.split(":", 1)[0]] = source
    return mounts


def _mounted(service: dict[str, Any], path: Path) -> str | None:
    """The container path where ``path`` (a repository file) is bind-mounted, if it is."""
    for target, source in _bind_mounts(service).items():
        if (ROOT / source).resolve() == path.resolve():
            return target
    return None


# --------------------------------------------------------------------------------------------------- settings


def test_every_sagaline_variable_is_a_settings_field() -> None:
    assert Settings.model_config.get("env_prefix") == PREFIX
    fields = set(Settings.model_fields)
    unknown = {
        (service, variable)
        for service in _services()
        for variable in _env(service)
        if variable.startswith(PREFIX) and variable.removeprefix(PREFIX).lower() not in fields
    }
    assert not unknown, f"SAGALINE_* variables that Settings would silently ignore: {sorted(unknown)}"


@pytest.mark.parametrize("service", SAGALINE_SERVICES)
def test_sagaline_services_get_only_settings_and_standard_otel_variables(service: str) -> None:
    fields = set(Settings.model_fields)
    stray = [
        variable
        for variable in _env(service)
        if not (variable.startswith(PREFIX) and variable.removeprefix(PREFIX).lower() in fields)
        and variable not in STANDARD_OTEL_VARIABLES
    ]
    assert not stray, f"{service}: {stray} are neither Settings fields nor standard OTEL_* variables"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_serve_metrics_and_export_telemetry(service: str) -> None:
    env = _env(service)
    for variable in ("SAGALINE_DATABASE_URL", "SAGALINE_KAFKA_BOOTSTRAP_SERVERS", "SAGALINE_METRICS_PORT"):
        assert env.get(variable), f"{service} does not set {variable}"
    assert int(env["SAGALINE_METRICS_PORT"]) > 0
    for variable in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_SERVICE_NAME"):
        assert env.get(variable), f"{service} does not set {variable}"


# ---------------------------------------------------------------------------------------------- image and CLI


def test_sagaline_services_share_one_image_built_from_the_repository() -> None:
    images = set()
    for service in SAGALINE_SERVICES:
        spec = _service(service)
        build = spec.get("build")
        context = build.get("context") if isinstance(build, dict) else build
        assert context in {".", "./"}, f"{service} must build the repository's Dockerfile (build: .), got {build!r}"
        if isinstance(build, dict):
            assert build.get("dockerfile", "Dockerfile") == "Dockerfile"
        assert "entrypoint" not in spec, f"{service} overrides the image's `sagaline` entrypoint"
        images.add(spec.get("image"))
    assert len(images) == 1, f"the Sagaline services tag different images: {images}"


@pytest.mark.parametrize("service", SAGALINE_SERVICES)
def test_commands_are_sagaline_subcommands(service: str) -> None:
    import typer.main  # noqa: PLC0415 - only this test needs the CLI

    from orchestrator.cli import app  # noqa: PLC0415
    from participants.registry import PARTICIPANTS as REGISTERED  # noqa: PLC0415

    command = _command(service)
    assert command == EXPECTED_COMMANDS[service]
    cli = typer.main.get_command(app)
    assert command[0] in getattr(cli, "commands", {}), f"`sagaline {command[0]}` is not a CLI command"
    if command[0] == "participant":
        assert command[1] in REGISTERED, f"no participant {command[1]!r}; the CLI knows {sorted(REGISTERED)}"


def test_dockerfile_installs_the_package_and_runs_sagaline() -> None:
    text = DOCKERFILE.read_text()
    instructions = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    froms = [line.split()[1] for line in instructions if line.upper().startswith("FROM ")]
    assert froms, "Dockerfile has no FROM"
    assert froms[-1].startswith("python:3.11-slim"), f"the final stage should be python:3.11-slim, not {froms[-1]}"
    runs = " ".join(line for line in instructions if not line.upper().startswith(("FROM ", "ENTRYPOINT", "CMD")))
    assert "pip install --no-cache-dir ." in runs
    assert "[embedded]" not in runs, "the image must not install the embedded Postgres/Kafka extra"
    entrypoints = [line for line in instructions if line.upper().startswith("ENTRYPOINT")]
    assert entrypoints, "Dockerfile has no ENTRYPOINT"
    assert json.loads(entrypoints[-1].split(None, 1)[1]) == ["sagaline"]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {line.strip().rstrip("/") for line in DOCKERIGNORE.read_text().splitlines()}
    for required in (".venv", ".git", ".pytest_cache", ".mypy_cache", ".ruff_cache"):
        assert required in patterns, f".dockerignore should exclude {required}"


# ----------------------------------------------------------------------------------------------- dependencies


def test_depends_on_targets_exist_with_valid_conditions() -> None:
    services = _services()
    for name in services:
        for target, condition in _depends_on(name).items():
            assert target in services, f"{name} depends on an unknown service {target!r}"
            assert condition in DEPENDS_ON_CONDITIONS, f"{name} -> {target}: bad condition {condition!r}"
            if condition == "service_healthy":
                assert services[target].get("healthcheck"), f"{name} waits for {target} healthy, it has no healthcheck"
            if condition == "service_completed_successfully":
                restart = str(services[target].get("restart", "no"))
                assert restart == "no", f"{target} is one-shot ({name} waits for it to exit), restart must be 'no'"


@pytest.mark.parametrize("service", APP_SERVICES)
def test_app_services_start_after_migrations_and_a_healthy_broker(service: str) -> None:
    depends = _depends_on(service)
    assert depends.get("migrate") == "service_completed_successfully"
    assert depends.get("kafka") == "service_healthy"
    assert depends.get("otel-collector") in DEPENDS_ON_CONDITIONS
    assert _service(service).get("restart") == "unless-stopped"


def test_migrate_is_one_shot_after_a_healthy_postgres() -> None:
    assert str(_service("migrate").get("restart")) == "no"
    assert _depends_on("migrate").get("postgres") == "service_healthy"


# ------------------------------------------------------------------------------------------------------ kafka


def test_kafka_runs_single_node_kraft() -> None:
    env = _env("kafka")
    roles = {role.strip() for role in env.get("KAFKA_PROCESS_ROLES", "").split(",")}
    assert {"broker", "controller"} <= roles, "kafka must run in KRaft mode as broker and controller"
    assert env.get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS") == "0"
    for variable in (
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ):
        assert env.get(variable) == "1", f"a single broker needs {variable}=1"
    listeners = _listeners(env["KAFKA_LISTENERS"])
    controller_names = env["KAFKA_CONTROLLER_LISTENER_NAMES"].split(",")
    assert all(name in listeners for name in controller_names)
    voter_id, _, voter = env["KAFKA_CONTROLLER_QUORUM_VOTERS"].partition("@")
    assert voter_id == env["KAFKA_NODE_ID"]
    assert _host_port(voter)[1] in {listeners[name][1] for name in controller_names}
    protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocol_map), "every listener needs a security protocol"
    assert _service("kafka").get("healthcheck"), "services wait for kafka to be healthy"


def test_bootstrap_servers_are_advertised_internal_listeners() -> None:
    env = _env("kafka")
    services = _services()
    kafka_names = {"kafka", _service("kafka").get("hostname", "kafka")}
    bound = _listeners(env["KAFKA_LISTENERS"])
    advertised = _listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    internal = {address for name, address in advertised.items() if address[0] in kafka_names}
    assert internal, "kafka advertises no listener under its compose service name"
    for name, (_, port) in advertised.items():
        assert name in bound, f"advertised listener {name} is not bound"
        assert bound[name][1] == port, f"listener {name} is advertised on {port} but bound on {bound[name][1]}"
    checked = 0
    for service in services:
        bootstrap = _env(service).get("SAGALINE_KAFKA_BOOTSTRAP_SERVERS")
        if bootstrap is None:
            continue
        for server in bootstrap.split(","):
            assert _host_port(server) in internal, f"{service}: {server} is not an internal advertised listener"
        checked += 1
    assert checked >= len(APP_SERVICES)


def test_host_clients_reach_kafka_on_a_published_external_listener() -> None:
    advertised = _listeners(_env("kafka")["KAFKA_ADVERTISED_LISTENERS"])
    external = [port for host, port in advertised.values() if host in {"localhost", "127.0.0.1"}]
    assert external, "kafka advertises no listener for clients on the host"
    assert set(external) <= set(_published_host_ports(_service("kafka")))


# --------------------------------------------------------------------------------------------------- postgres


@pytest.mark.parametrize("service", SAGALINE_SERVICES)
def test_database_url_matches_the_postgres_service(service: str) -> None:
    postgres = _env("postgres")
    url = urlsplit(_env(service)["SAGALINE_DATABASE_URL"])
    assert url.scheme in {"postgresql", "postgresql+asyncpg"}
    assert url.hostname == "postgres"
    assert "postgres" in _services()
    assert (url.port or POSTGRES_PORT) == int(postgres.get("PGPORT", POSTGRES_PORT))
    user = postgres.get("POSTGRES_USER", "postgres")
    assert url.username == user
    assert url.password == postgres["POSTGRES_PASSWORD"]
    assert url.path.lstrip("/") == postgres.get("POSTGRES_DB", user)
    assert _service("postgres").get("healthcheck"), "migrate waits for postgres to be healthy"


# -------------------------------------------------------------------------------------------------- telemetry


def _receiver_port(protocol: str) -> int:
    endpoint = _collector()["receivers"]["otlp"]["protocols"][protocol]["endpoint"]
    return _host_port(endpoint)[1]


@pytest.mark.parametrize("service", APP_SERVICES)
def test_otel_endpoint_is_a_collector_receiver(service: str) -> None:
    env = _env(service)
    url = urlsplit(env["OTEL_EXPORTER_OTLP_ENDPOINT"])
    assert url.hostname == "otel-collector"
    assert "otel-collector" in _services()
    protocol = env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    assert protocol in OTLP_PROTOCOLS, f"unknown OTLP protocol {protocol!r}"
    assert url.port == _receiver_port(OTLP_PROTOCOLS[protocol])
    pipelines = _collector()["service"]["pipelines"]
    assert "otlp" in pipelines["traces"]["receivers"]
    assert "otlp" in pipelines["metrics"]["receivers"]


def test_collector_mounts_its_config_from_deploy() -> None:
    collector = _service("otel-collector")
    target = _mounted(collector, COLLECTOR_CONFIG)
    assert target, "otel-collector does not mount deploy/otel-collector.yaml"
    command = collector.get("command")
    if command:
        assert f"--config={target}" in command, f"otel-collector is not started with --config={target}"


def test_each_app_service_has_its_own_service_name() -> None:
    names = {service: _env(service).get("OTEL_SERVICE_NAME") for service in APP_SERVICES}
    assert names == {service: f"sagaline-{service}" for service in APP_SERVICES}
    assert len(set(names.values())) == len(names)


def test_collector_pipelines_reference_defined_components() -> None:
    config = _collector()
    for pipeline, spec in config["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for component in spec.get(kind, []):
                assert component in (config.get(kind) or {}), f"pipeline {pipeline}: {kind[:-1]} {component} undefined"
    for extension in config["service"].get("extensions", []):
        assert extension in (config.get("extensions") or {})


def test_traces_pipeline_exports_to_jaeger() -> None:
    config = _collector()
    jaeger = [
        config["exporters"][name]
        for name in config["service"]["pipelines"]["traces"]["exporters"]
        if name.split("/")[0] == "otlp" and _host_port(config["exporters"][name]["endpoint"])[0] == "jaeger"
    ]
    assert jaeger, "the traces pipeline does not export to jaeger over OTLP"
    assert "jaeger" in _services()
    assert _host_port(jaeger[0]["endpoint"])[1] == 4317, "jaeger takes OTLP gRPC on 4317"
    assert jaeger[0].get("tls", {}).get("insecure") is True, "jaeger's OTLP port has no TLS in the stack"
    assert str(_env("jaeger").get("COLLECTOR_OTLP_ENABLED", "true")).lower() == "true"


def _scrape_targets() -> set[str]:
    return {
        target
        for job in _prometheus()["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static.get("targets", [])
    }


def test_prometheus_scrapes_every_service_and_the_collector() -> None:
    targets = _scrape_targets()
    for service in APP_SERVICES:
        port = _env(service)["SAGALINE_METRICS_PORT"]
        assert f"{service}:{port}" in targets, f"prometheus does not scrape {service}:{port}"
    prometheus_exporters = [
        spec for name, spec in _collector()["exporters"].items() if name.split("/")[0] == "prometheus"
    ]
    assert prometheus_exporters, "the collector exposes no Prometheus endpoint for pushed metrics"
    port = _host_port(prometheus_exporters[0]["endpoint"])[1]
    assert f"otel-collector:{port}" in targets
    assert _mounted(_service("prometheus"), PROMETHEUS_CONFIG), "prometheus does not mount deploy/prometheus.yml"


# ---------------------------------------------------------------------------------------- host ports and docs


def test_published_host_ports_do_not_collide() -> None:
    seen: dict[int, str] = {}
    for name, service in _services().items():
        for port in _published_host_ports(service):
            assert port not in seen, f"host port {port} is published by both {seen[port]} and {name}"
            seen[port] = name
    assert seen, "the stack publishes no port at all"


def test_docs_list_every_setting() -> None:
    rows = [line for line in DOCS.read_text().splitlines() if line.lstrip().startswith("|")]
    documented = {match for row in rows for match in re.findall(r"`(SAGALINE_[A-Z0-9_]+)`", row)}
    expected = {f"{PREFIX}{field.upper()}" for field in Settings.model_fields}
    assert expected <= documented, f"docs/docker.md's table lacks {sorted(expected - documented)}"
    assert documented <= expected, f"docs/docker.md documents unknown settings {sorted(documented - expected)}"


# --------------------------------------------------------------------------------------------- docker compose


def _compose_cli() -> list[str] | None:
    """`docker compose` (the v2 plugin) or a standalone Compose v2 binary, whichever answers `version`."""
    candidates = []
    if shutil.which("docker"):
        candidates.append(["docker", "compose"])
    if shutil.which("docker-compose"):
        candidates.append(["docker-compose"])
    for candidate in candidates:
        try:
            result = subprocess.run([*candidate, "version"], capture_output=True, text=True, timeout=30, check=False)
        except (OSError, subprocess.TimeoutExpired):
            continue
        major = re.search(r"version v?(\d+)\.", result.stdout)
        if result.returncode == 0 and major and int(major.group(1)) >= 2:
            return candidate
    return None


def test_docker_compose_config_accepts_the_file() -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.skip(
            "no Docker Compose v2 here (neither the `docker compose` plugin nor a standalone docker-compose v2): "
            "`docker compose config` cannot validate docker-compose.yml"
        )
    result = subprocess.run(
        [*cli, "-f", str(COMPOSE_FILE), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=ROOT,
    )
    assert result.returncode == 0, f"`{' '.join(cli)} config` rejected docker-compose.yml:\n{result.stderr}"
