"""The ``toolkit`` command's parsing, app discovery and wiring, in-process (``uvicorn.run`` replaced).

What the server then does with each setting is tried against real processes in ``test_serve.py``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from toolkit.serve import (
    DiscoveryError,
    GuardedHttpToolsProtocol,
    Limits,
    ServeOptions,
    _loader,
    _server,
    cli,
    find_target,
)
from toolkit.serve._discover import load_target

APP_SOURCE = "from toolkit import App\n\n{name} = App()\n"


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test imports fresh modules from its own directory and leaves sys.path/env as they were."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.chdir(tmp_path)
    for name in ("TOOLKIT_APP", "PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", *_server_env()):
        monkeypatch.delenv(name, raising=False)
    yield
    for name, module in list(sys.modules.items()):  # the test's own modules, nothing else
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def _server_env() -> tuple[str, ...]:
    return (_server.APP_ENV, _server.PATH_ENV, _server.FACTORY_ENV, _server.MODE_ENV, "TOOLKIT_SERVE_LIMITS")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """What ``uvicorn.run`` would have been called with."""
    calls: list[dict[str, Any]] = []
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append({"app": app, **kwargs}))
    return calls


# --- discovery -----------------------------------------------------------------------------------


def test_module_and_attribute(tmp_path: Path) -> None:
    write(tmp_path / "svc_a.py", APP_SOURCE.format(name="api_app"))
    target = find_target("svc_a:api_app")
    assert (target.module, target.attr, target.path) == ("svc_a", "api_app", str(tmp_path))
    app, found = load_target(target)
    assert found.import_string == "svc_a:api_app"
    assert type(app).__name__ == "App"


def test_a_file_path_inside_packages_becomes_a_dotted_module(tmp_path: Path) -> None:
    write(tmp_path / "proj" / "pkg_b" / "__init__.py", "")
    write(tmp_path / "proj" / "pkg_b" / "web" / "__init__.py", "")
    write(tmp_path / "proj" / "pkg_b" / "web" / "main.py", APP_SOURCE.format(name="app"))
    target = find_target("proj/pkg_b/web/main.py")
    assert (target.module, target.path) == ("pkg_b.web.main", str(tmp_path / "proj"))
    assert load_target(target)[1].import_string == "pkg_b.web.main:app"


def test_a_package_directory(tmp_path: Path) -> None:
    write(tmp_path / "pkg_c" / "__init__.py", APP_SOURCE.format(name="app"))
    assert load_target(find_target("pkg_c"))[1].import_string == "pkg_c:app"


@pytest.mark.parametrize("name", ["app", "api", "application"])
def test_the_attribute_is_found_by_its_usual_names(tmp_path: Path, name: str) -> None:
    write(tmp_path / f"svc_{name}.py", APP_SOURCE.format(name=name))
    assert load_target(find_target(f"svc_{name}.py"))[1].attr == name


def test_the_only_app_of_a_module_is_found_whatever_its_name(tmp_path: Path) -> None:
    write(tmp_path / "svc_d.py", APP_SOURCE.format(name="shop_service") + "helper = print\n")
    assert load_target(find_target("svc_d"))[1].attr == "shop_service"


def test_two_apps_and_no_usual_name_is_an_error_naming_both(tmp_path: Path) -> None:
    write(tmp_path / "svc_e.py", "from toolkit import App\n\nfirst = App()\nsecond = App()\n")
    with pytest.raises(DiscoveryError, match=r"apps in it: first, second.*svc_e:<attribute>"):
        load_target(find_target("svc_e"))


def test_the_default_files_and_toolkit_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(DiscoveryError, match=r"no app given.*TOOLKIT_APP.*main\.py"):
        find_target(None)
    write(tmp_path / "app" / "__init__.py", "")
    write(tmp_path / "app" / "main.py", APP_SOURCE.format(name="app"))
    assert find_target(None).module == "app.main"
    write(tmp_path / "main.py", APP_SOURCE.format(name="app"))
    assert find_target(None).module == "main"  # main.py comes first
    monkeypatch.setenv("TOOLKIT_APP", "elsewhere:thing")
    assert find_target(None).import_string == "elsewhere:thing"


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        ("missing_module_xyz:app", "no module named 'missing_module_xyz'"),
        ("nothere.py", "does not exist"),
        ("svc_f:nope", "has no attribute 'nope' \\(apps in it: app\\)"),
        ("svc_f:app:extra", "is not an attribute name"),
        (":app", "the module is missing"),
        ("svc_f:helper", "is a function, not an ASGI app: if it builds the app, pass --factory"),
        ("svc_f:NUMBER", r"is not an ASGI app \(its type is int\)"),
        ("plain_dir", "directory without __init__.py"),
    ],
)
def test_mistakes_get_a_message_that_says_what_to_do(tmp_path: Path, argument: str, message: str) -> None:
    write(
        tmp_path / "svc_f.py", APP_SOURCE.format(name="app") + "NUMBER = 3\n\ndef helper():\n    return app\n"
    )
    (tmp_path / "plain_dir").mkdir()
    with pytest.raises(DiscoveryError, match=message):
        load_target(find_target(argument))


def test_a_missing_dependency_of_the_app_is_not_reported_as_a_missing_app(tmp_path: Path) -> None:
    write(tmp_path / "svc_g.py", "import some_dependency_not_installed\n")
    with pytest.raises(ModuleNotFoundError, match="some_dependency_not_installed"):
        load_target(find_target("svc_g"))


def test_a_factory_is_called_only_with_factory(tmp_path: Path) -> None:
    write(
        tmp_path / "svc_h.py", "from toolkit import App\n\ndef create_app():\n    return App(title='made')\n"
    )
    app, _ = load_target(find_target("svc_h:create_app", factory=True))
    assert app.title == "made"
    with pytest.raises(DiscoveryError, match="pass --factory"):
        load_target(find_target("svc_h:create_app"))
    write(tmp_path / "svc_h2.py", APP_SOURCE.format(name="app"))
    with pytest.raises(DiscoveryError, match="svc_h2:app is already an app: drop --factory"):
        load_target(find_target("svc_h2:app", factory=True))


def test_a_plain_asgi_function_is_an_app(tmp_path: Path) -> None:
    write(tmp_path / "svc_i.py", "async def app(scope, receive, send):\n    pass\n")
    assert load_target(find_target("svc_i"))[1].attr == "app"


# --- the command line -----------------------------------------------------------------------------


def usage_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    assert exited.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--workers", "0"], "workers must be at least 1"),
        (["run", "--workers", "many"], "'many' is not a number of workers"),
        (["run", "--port", "70000"], "a port is 0-65535"),
        (["run", "--timeout-header", "0"], "must be greater than 0"),
        (["run", "--limit-header-size", "100"], "header_size must be at least 1024"),
        (["run", "--min-body-rate", "-1"], "min_body_rate must be >= 0"),
        (["run", "--timeout-send", "-3"], "must be greater than 0"),
        (["dev", "--workers", "2"], "unrecognized arguments: --workers"),
        (["serve"], "invalid choice: 'serve'"),
        (["run"], "no app given"),
        (
            ["run", "x:app", "--forwarded-allow-ips", "10.0.0.1,proxy"],
            "'proxy' is not an IP address or network",
        ),
    ],
)
def test_bad_options_are_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert message in usage_error(capsys, *argv)


def test_environment_defaults_are_validated_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WEB_CONCURRENCY", "lots")
    error = usage_error(capsys, "run", "x:app")
    expected = "toolkit run: error: $WEB_CONCURRENCY: 'lots' is not a number of workers (or 'auto')\n"
    assert error.startswith(expected)
    assert "usage:" not in error  # two lines, not the whole usage
    monkeypatch.delenv("WEB_CONCURRENCY")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "bogus")
    assert "$FORWARDED_ALLOW_IPS: 'bogus' is not an IP address" in usage_error(capsys, "run", "x:app")


def test_a_module_that_cannot_be_found_exits_2_before_any_server(
    capsys: pytest.CaptureFixture[str], served: list[dict[str, Any]]
) -> None:
    assert cli.main(["run", "no_such_module_abc:app"]) == 2
    assert "toolkit run: no module named 'no_such_module_abc'" in capsys.readouterr().err
    assert served == []


def test_run_uses_the_production_defaults(tmp_path: Path, served: list[dict[str, Any]]) -> None:
    write(tmp_path / "svc_j.py", APP_SOURCE.format(name="app"))
    assert cli.main(["run", "svc_j.py"]) == 0
    [call] = served
    assert (call["app"], call["factory"]) == ("toolkit.serve._loader:load", True)
    assert call["http"] is GuardedHttpToolsProtocol
    assert call["loop"] == "auto"
    assert call["lifespan"] == "on"
    expected = {"host": "0.0.0.0", "port": 8000, "workers": 1, "server_header": False, "proxy_headers": False}
    expected |= {"limit_concurrency": 1000, "backlog": 2048, "timeout_keep_alive": 5}
    expected |= {"timeout_graceful_shutdown": 25, "reload": False, "access_log": True}
    assert {key: call[key] for key in expected} == expected
    assert Limits.from_env(os.environ["TOOLKIT_SERVE_LIMITS"]) == Limits(32768, 10.0, 10.0, 256, 60.0)
    assert (os.environ[_server.APP_ENV], os.environ[_server.MODE_ENV]) == ("svc_j:app", "run")


def test_dev_reloads_on_localhost_watching_the_app_directory(
    tmp_path: Path, served: list[dict[str, Any]]
) -> None:
    write(tmp_path / "src" / "svc_k.py", APP_SOURCE.format(name="app"))
    assert cli.main(["dev", "src/svc_k.py"]) == 0
    [call] = served
    assert (call["host"], call["reload"], call["reload_dirs"]) == ("127.0.0.1", True, [str(tmp_path / "src")])


def test_options_and_environment_reach_the_server(
    tmp_path: Path, served: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "svc_l.py", APP_SOURCE.format(name="app"))
    monkeypatch.setenv("TOOLKIT_APP", "svc_l:app")
    monkeypatch.setenv("PORT", "9123")
    monkeypatch.setenv("WEB_CONCURRENCY", "3")
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "10.0.0.0/8")
    argv = ["run", "--limit-header-size", "8192", "--timeout-body", "30", "--min-body-rate", "0"]
    argv += ["--timeout-send", "5"]
    assert cli.main([*argv, "--timeout-graceful-shutdown", "50", "--no-access-log"]) == 0
    [call] = served
    assert (call["port"], call["workers"], call["access_log"]) == (9123, 3, False)
    assert (call["proxy_headers"], call["forwarded_allow_ips"]) == (True, "10.0.0.0/8")
    assert call["timeout_graceful_shutdown"] == 50
    assert Limits.from_env(os.environ["TOOLKIT_SERVE_LIMITS"]) == Limits(8192, 10.0, 30.0, 0, 5.0)


def test_workers_auto_is_the_cpus_available(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cpu_max = write(tmp_path / "cpu.max", "max 100000\n")
    monkeypatch.setattr(_server, "_CGROUP_CPU_MAX", cpu_max)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert _server.available_cpus() == 4
    cpu_max.write_text("150000 100000\n")  # a container limited to 1.5 CPUs
    assert _server.available_cpus() == 2
    cpu_max.write_text("50000 100000\n")
    assert _server.available_cpus() == 1
    assert cli._workers("auto") == 1


STORE_APP = "from toolkit.sessions import MemoryStore\n\nstore = MemoryStore()\napp = App(debug=True)\n"
METRICS_APP = "from toolkit.metrics import Metrics\n\nm = Metrics()\napp = App(middleware=[m.middleware()])\n"


@pytest.mark.parametrize(
    ("source", "warnings"),
    [
        (STORE_APP, ["debug is on under `toolkit run`", "MemoryStore, which is per process: with 2 workers"]),
        (METRICS_APP, ["PROMETHEUS_MULTIPROC_DIR is not set: with 2 workers"]),
    ],
    ids=["debug-and-memory-store", "metrics"],
)
def test_run_warns_about_debug_and_per_process_state(
    tmp_path: Path,
    served: list[dict[str, Any]],
    caplog: pytest.LogCaptureFixture,
    source: str,
    warnings: list[str],
) -> None:
    write(tmp_path / "svc_m.py", "from toolkit import App\n" + source)
    with caplog.at_level(logging.WARNING, logger="toolkit.serve"):
        assert cli.main(["run", "svc_m:app", "--workers", "2"]) == 0
    for warning in warnings:
        assert warning in caplog.text


def test_one_worker_and_no_debug_warns_nothing(
    tmp_path: Path, served: list[dict[str, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path / "svc_n.py", APP_SOURCE.format(name="app"))
    with caplog.at_level(logging.WARNING, logger="toolkit.serve"):
        assert cli.main(["run", "svc_n:app"]) == 0
    assert caplog.records == []


def test_the_worker_loader_turns_debug_on_only_in_dev(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path / "svc_o.py", APP_SOURCE.format(name="app"))
    monkeypatch.setenv(_server.APP_ENV, "svc_o:app")
    monkeypatch.setenv(_server.PATH_ENV, str(tmp_path))
    monkeypatch.setenv(_server.MODE_ENV, "run")
    assert _loader.load().debug is False
    monkeypatch.setenv(_server.MODE_ENV, "dev")
    assert _loader.load().debug is True


@pytest.mark.parametrize(
    "fields",
    [
        '{"header_size": 1e9}',
        '{"header_timeout": Infinity}',
        '{"body_timeout": "10"}',
        '{"surprise": 1}',
        "[1, 2]",
        "not json",
    ],
)
def test_bad_limits_in_the_environment_are_refused(fields: str) -> None:
    with pytest.raises(ValueError, match=r"TOOLKIT_SERVE_LIMITS=.* is not valid"):
        Limits.from_env(fields)


def test_loading_the_protocol_refuses_bad_limits(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "from toolkit.serve import GuardedHttpToolsProtocol"]
    env = {**os.environ, "TOOLKIT_SERVE_LIMITS": '{"header_size": Infinity}'}
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "ValueError: TOOLKIT_SERVE_LIMITS=" in done.stderr  # when uvicorn loads it: at startup


def test_the_commands_log_lines_are_aligned_as_uvicorns() -> None:
    record = logging.LogRecord("toolkit.serve", logging.WARNING, __file__, 1, "a %s", ("b",), None)
    assert cli._UvicornStyle().format(record) == "WARNING:  a b"
    record.levelname = "INFO"
    assert cli._UvicornStyle().format(record) == "INFO:     a b"


def test_serve_options_refuse_nonsense() -> None:
    with pytest.raises(ValueError, match="reload serves one worker"):
        ServeOptions(workers=2, reload=True)
    with pytest.raises(ValueError, match="limit_concurrency must be at least 1"):
        ServeOptions(limit_concurrency=0)
    assert ServeOptions.for_mode("dev").host == "127.0.0.1"
