"""deploy/kubernetes: every manifest loads, and agrees with the code it deploys.

Ports, probe paths, environment variable names, mount paths, the user id and the shutdown
timing are read from the code (``Settings``, the CLI, ``bot/cli/serve.py``, the app's routes,
the Dockerfile), so a change there that the manifests miss fails here.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from tests.conftest import REPO, need
from tests.deploy.deployment_facts import (
    KUBERNETES,
    all_manifests,
    ballast_container,
    cli_command,
    dockerfile_uid,
    graceful_shutdown_seconds,
    load,
    one,
    parse_serve,
    pod_spec,
    setting_env_names,
)

NOT_IN_KUSTOMIZATION = {
    "secret.example.yaml": "applying it would overwrite the real tokens with placeholders",
    "db-upgrade-job.yaml": "optional, run by hand before a rolling upgrade",
}


def env_values(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}


def mount_of(workload: dict[str, Any], path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (volumeMount, volume) that provides ``path`` in the ballast container."""
    mounts = ballast_container(workload)["volumeMounts"]
    best = max(
        (m for m in mounts if PurePosixPath(path).is_relative_to(m["mountPath"])),
        key=lambda m: len(m["mountPath"]),
        default=None,
    )
    assert best is not None, f"nothing is mounted at or above {path}"
    volumes = {v["name"]: v for v in pod_spec(workload)["volumes"]}
    return best, volumes[best["name"]]


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load("kustomization.yaml")[0]
    listed = set(kustomization["resources"])
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk - set(NOT_IN_KUSTOMIZATION)
    for name in NOT_IN_KUSTOMIZATION:
        assert (KUBERNETES / name).is_file()
    image_names = {i["name"] for i in kustomization["images"]}
    deployment = one("Deployment", "ballast")
    assert ballast_container(deployment)["image"] in image_names


def test_kustomize_builds() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed (the kustomization is still checked by YAML)")
    built = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    docs = [d for d in yaml.safe_load_all(built) if d]
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in docs)
    assert kinds == [
        "ConfigMap/ballast-config",
        "ConfigMap/ballast-runbooks",
        "Deployment/ballast",
        "PodDisruptionBudget/ballast",
        "Service/ballast",
    ]
    image = load("kustomization.yaml")[0]["images"][0]
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert ballast_container(deployment)["image"] == f"{image['newName']}:{image['newTag']}"


def test_manifests_are_valid_kubernetes() -> None:
    """Strict JSON-schema validation (unknown fields are errors) against Kubernetes 1.30."""
    try:
        import kubernetes_validate
    except ImportError:
        kubernetes_validate = None
    need(kubernetes_validate is not None, "kubernetes-validate (pip install kubernetes-validate)")
    for name, docs in all_manifests().items():
        for doc in docs:
            try:
                kubernetes_validate.validate(doc, "1.30", strict=True)
            except kubernetes_validate.ValidationError as err:
                pytest.fail(f"{name}: {doc['kind']}: {err.message} at {list(err.path)}")


def test_deployment_runs_two_replicas_on_postgresql() -> None:
    deployment = one("Deployment", "ballast")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    env = {e["name"]: e for e in ballast_container(deployment)["env"]}
    ref = env["BALLAST_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    secret = one("Secret", ref["name"])
    url = secret["stringData"][ref["key"]]
    assert url.startswith("postgresql://"), "replicas need PostgreSQL, not a SQLite file"


def test_ports_agree_from_serve_to_service() -> None:
    deployment = one("Deployment", "ballast")
    container = ballast_container(deployment)
    serve = parse_serve(container["command"] + container.get("args", []))
    assert serve.host == "0.0.0.0", "serve binds 127.0.0.1 by default: unreachable in a pod"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert list(ports.values()) == [serve.port]

    service = one("Service", "ballast")
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (port,) = service["spec"]["ports"]
    target = port["targetPort"]
    assert ports.get(target, target) == serve.port

    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        probe_port = container[probe]["httpGet"]["port"]
        assert ports.get(probe_port, probe_port) == serve.port, probe


async def test_probe_paths_answer_on_the_real_app(make_harness: Any) -> None:
    """Liveness is /healthz, readiness /readyz; each answers 200 from the app bot.app builds."""
    container = ballast_container(one("Deployment", "ballast"))
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    harness = await make_harness()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        path = container[probe]["httpGet"]["path"]
        response = await harness.client.get(path)
        assert response.status_code == 200, f"{probe} {path}: {response.status_code}"


def test_every_env_name_is_a_real_setting() -> None:
    known = setting_env_names()
    for name, docs in all_manifests().items():
        for doc in docs:
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            for container in pod_spec(doc)["containers"]:
                for env in container.get("env", []):
                    assert env["name"] in known, f"{name}: {env['name']} is no Ballast setting"


def test_token_files_come_from_the_mounted_secret() -> None:
    deployment = one("Deployment", "ballast")
    env = env_values(ballast_container(deployment))
    file_vars = {k: v for k, v in env.items() if k.endswith("_FILE")}
    assert {"BALLAST_WEBHOOK_TOKEN_FILE", "BALLAST_API_TOKEN_FILE"} <= set(file_vars)
    for variable, path in file_vars.items():
        mount, volume = mount_of(deployment, path)
        assert mount.get("readOnly") is True
        # Secret files belong to root; the non-root user reads them through fsGroup.
        assert (
            pod_spec(deployment)["securityContext"]["fsGroup"]
            == pod_spec(deployment)["securityContext"]["runAsGroup"]
        )
        assert volume["secret"]["defaultMode"] & 0o040, "not readable by the pod's group"
        assert not volume["secret"]["defaultMode"] & 0o007, "readable by every user"
        secret = one("Secret", volume["secret"]["secretName"])
        relative = str(PurePosixPath(path).relative_to(mount["mountPath"]))
        keys = {i["path"]: i["key"] for i in volume["secret"].get("items", [])}
        assert keys.get(relative, relative) in secret["stringData"], variable


def test_example_secret_is_clearly_a_placeholder() -> None:
    secret = one("Secret", "ballast")
    assert secret["stringData"]
    for key, value in secret["stringData"].items():
        assert "CHANGE-ME" in value, f"{key} looks like a real value"
    assert "EXAMPLE ONLY" in (KUBERNETES / "secret.example.yaml").read_text(encoding="utf-8")


def test_runbooks_configmap_is_mounted_at_ballast_runbooks() -> None:
    deployment = one("Deployment", "ballast")
    runbooks = env_values(ballast_container(deployment))["BALLAST_RUNBOOKS"]
    mount, volume = mount_of(deployment, runbooks)
    assert mount["mountPath"] == runbooks
    configmap = one("ConfigMap", volume["configMap"]["name"])
    assert configmap["data"]
    for key, text in configmap["data"].items():
        # Kept identical to the runbook it was generated from, so it never goes stale.
        assert text == (REPO / "runbooks" / key).read_text(encoding="utf-8"), key


def test_runbooks_load_from_a_configmap_volume_layout(tmp_path: Path) -> None:
    """The kubelet mounts a ConfigMap as symlinks into a hidden, timestamped folder."""
    from bot.runbooks.loader import load_catalog

    configmap = one("ConfigMap", "ballast-runbooks")
    folder = tmp_path / "runbooks"
    payload = folder / "..2026_12_03_20_00_00.000000001"
    payload.mkdir(parents=True)
    for key, text in configmap["data"].items():
        (payload / key).write_text(text, encoding="utf-8")
    (folder / "..data").symlink_to(payload.name)
    for key in configmap["data"]:
        (folder / key).symlink_to(Path("..data") / key)
    result = load_catalog([folder])
    errors = [d for d in result.diagnostics if d.severity == "error"]
    assert result.catalog is not None, errors
    assert not errors
    assert len(result.catalog.runbooks) == len(configmap["data"])  # not twice


def test_config_configmap_is_ballast_config_and_valid(tmp_path: Path) -> None:
    from bot.config import load_config

    deployment = one("Deployment", "ballast")
    config_path = env_values(ballast_container(deployment))["BALLAST_CONFIG"]
    mount, volume = mount_of(deployment, config_path)
    configmap = one("ConfigMap", volume["configMap"]["name"])
    key = str(PurePosixPath(config_path).relative_to(mount["mountPath"]))
    local = tmp_path / "ballast.yaml"
    local.write_text(configmap["data"][key], encoding="utf-8")
    config = load_config(local)  # strict: an unknown key raises
    assert config.runbooks is None, "runbooks: in ballast.yaml would override BALLAST_RUNBOOKS"
    # Drafts land on a writable volume (the root filesystem is read-only).
    folder = str(config.postmortem.folder)
    assert folder.startswith("/")
    _, work = mount_of(deployment, folder)
    assert "emptyDir" in work or "persistentVolumeClaim" in work


def test_security_context_matches_the_image() -> None:
    uid = dockerfile_uid()
    for name, docs in all_manifests().items():
        for doc in docs:
            if doc["kind"] not in ("Deployment", "Job"):
                continue
            pod = pod_spec(doc)
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert pod["securityContext"]["runAsUser"] == uid, name
            assert pod["automountServiceAccountToken"] is False, name
            for container in pod["containers"]:
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True, name
                assert context["allowPrivilegeEscalation"] is False, name
                assert context["capabilities"]["drop"] == ["ALL"], name
                tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
                assert tmp, f"{name}: /tmp must be writable on a read-only root"


def test_termination_outlasts_the_graceful_shutdown() -> None:
    deployment = one("Deployment", "ballast")
    container = ballast_container(deployment)
    grace = pod_spec(deployment)["terminationGracePeriodSeconds"]
    pre_stop = container["lifecycle"]["preStop"]["exec"]["command"]
    assert pre_stop[0] == "sleep"
    drain = float(pre_stop[1])
    assert drain >= 3, "endpoints need a few seconds to drop the pod"
    # The grace period counts from the start of preStop; SIGTERM comes after it.
    assert grace > drain + graceful_shutdown_seconds()


def test_resources_requests_and_limits() -> None:
    container = ballast_container(one("Deployment", "ballast"))
    resources = container["resources"]
    for kind in ("cpu", "memory"):
        assert kind in resources["requests"]
        assert kind in resources["limits"]
    # One event loop per pod: a CPU limit above one core would buy nothing (docs/deploy.md).
    assert resources["limits"]["cpu"] in ("1", 1, "1000m")


def test_pod_disruption_budget_keeps_one_replica() -> None:
    deployment = one("Deployment", "ballast")
    budget = one("PodDisruptionBudget", "ballast")
    assert budget["spec"]["minAvailable"] == 1 < deployment["spec"]["replicas"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert budget["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_db_upgrade_job_runs_a_real_command() -> None:
    job = one("Job", "ballast-db-upgrade")
    command = ballast_container(job)["command"]
    assert command[:1] == ["ballast"]
    assert cli_command(*command[1:]) is not None, f"`{' '.join(command)}` is not a CLI command"
    job_labels = job["spec"]["template"]["metadata"]["labels"]
    service = one("Service", "ballast")
    assert not service["spec"]["selector"].items() <= job_labels.items(), "no traffic to the Job"
