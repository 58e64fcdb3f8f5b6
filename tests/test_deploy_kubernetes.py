"""The Kubernetes manifests (deploy/kubernetes/): kubernetes-validate in strict mode with the
schemas it bundles, for pinned Kubernetes versions (offline), and against the app and the
command they deploy (see ``deploy_support.py`` for the readers)."""

from __future__ import annotations

import ipaddress

import pytest
from deploy_support import (
    KUBERNETES_VERSIONS,
    LIFESPAN_SHUTDOWN_MARGIN,
    compose,
    container_command,
    dockerfile_env,
    kubernetes_validate,
    manifest,
    manifests,
    parse_run,
    pod_spec,
    seconds,
    shop_container,
)

from apps.shop.routes.health import CHECK_TIMEOUT

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
