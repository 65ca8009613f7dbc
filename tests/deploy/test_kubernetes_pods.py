"""The Deployment's two replicas, as processes: each pod's files (ConfigMaps in the kubelet's
symlink layout, the Secret's token files) laid out under a folder, its command and
environment as the manifest gives them, both started at once on one fresh PostgreSQL
database. They must both migrate (under the advisory lock) and become ready, and share the
work: an alert posted to one is an incident the other shows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path, PurePosixPath
from typing import Any

import httpx
import pytest

from tests.conftest import fresh_database_url
from tests.deploy.deployment_facts import (
    ballast_container,
    incident_tools,
    one,
    pod_spec,
    tool_failure,
)
from tests.e2e.processes import BallastServer, free_port, wait_until

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


class Pod:
    """One replica's filesystem under ``root`` (absolute pod paths are re-rooted there)."""

    def __init__(self, root: Path, deployment: dict[str, Any], database_url: str) -> None:
        self.root = root
        self.deployment = deployment
        self.container = ballast_container(deployment)
        volumes = {v["name"]: v for v in pod_spec(deployment)["volumes"]}
        for mount in self.container["volumeMounts"]:
            self.materialize(mount["mountPath"], volumes[mount["name"]])
        self.env: dict[str, str] = {}
        for item in self.container["env"]:
            if "value" in item:
                value = item["value"]
                self.env[item["name"]] = str(self.path(value)) if value.startswith("/") else value
            else:
                assert item["valueFrom"]["secretKeyRef"]["key"] == "database-url"
                self.env[item["name"]] = database_url

    def path(self, pod_path: str) -> Path:
        return self.root / PurePosixPath(pod_path).relative_to("/")

    def materialize(self, mount_path: str, volume: dict[str, Any]) -> None:
        folder = self.path(mount_path)
        if "configMap" in volume:
            data = one("ConfigMap", volume["configMap"]["name"])["data"]
            data = {k: self.reroot(v) for k, v in data.items()}
        elif "secret" in volume:
            secret = one("Secret", volume["secret"]["secretName"])["stringData"]
            data = {i["path"]: secret[i["key"]] for i in volume["secret"]["items"]}
        else:
            folder.mkdir(parents=True, exist_ok=True)  # emptyDir
            return
        payload = folder / "..2026_12_03_20_00_00.000000001"  # the kubelet's atomic layout
        payload.mkdir(parents=True)
        for key, text in data.items():
            (payload / key).write_text(text, encoding="utf-8")
        (folder / "..data").symlink_to(payload.name)
        for key in data:
            (folder / key).symlink_to(Path("..data") / key)

    def reroot(self, text: str) -> str:
        """Absolute paths inside ballast.yaml point into the pod too."""
        for mount in self.container["volumeMounts"]:
            text = text.replace(mount["mountPath"] + "/", f"{self.path(mount['mountPath'])}/")
        return text

    def start(self, log: Path) -> BallastServer:
        argv = list(self.container["command"])
        port = free_port()
        argv[argv.index("--port") + 1] = str(port)
        assert argv[0] == "ballast"
        server = BallastServer(self.path("/var/lib/ballast"), self.env, log)
        server.port = port
        with log.open("wb") as out:
            server.process = subprocess.Popen(
                [str(Path(sys.executable).with_name("ballast")), *argv[1:]],
                cwd=server.workdir,
                env=server.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return server


def ready(server: BallastServer) -> bool:
    assert server.process is not None
    if server.process.poll() is not None:
        raise AssertionError(f"a replica exited with {server.process.returncode}:\n{server.logs()}")
    return httpx.get(f"{server.url}/readyz", timeout=2).status_code == 200


def test_two_replicas_start_together_and_share_the_work(tmp_path: Path) -> None:
    deployment = one("Deployment", "ballast")
    replicas = deployment["spec"]["replicas"]
    with fresh_database_url("postgres", tmp_path, "ballast_pods") as url:
        servers = [
            Pod(tmp_path / f"pod-{n}", deployment, url).start(tmp_path / f"pod-{n}.log")
            for n in range(replicas)
        ]
        try:
            for server in servers:
                wait_until(lambda s=server: ready(s), 90, "every replica to be ready")
            first, second = servers[0], servers[-1]
            response = httpx.post(
                f"{first.url}/webhooks/alertmanager",
                json=tool_failure("web_search"),
                headers={"Authorization": "Bearer CHANGE-ME-webhook-token"},
                timeout=10,
            )
            assert response.status_code == 200, response.text
            wait_until(lambda: "web_search" in incident_tools(second), 60, "the other replica")

            unauthenticated = httpx.post(
                f"{second.url}/webhooks/alertmanager", json=tool_failure("refund"), timeout=10
            )
            assert unauthenticated.status_code == 401, "BALLAST_WEBHOOK_TOKEN_FILE was not read"
        finally:
            for server in servers:
                server.stop()
