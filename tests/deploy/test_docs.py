"""docs/deploy.md and the Dockerfile against the code: the docker run line, the image's own
settings, the marks that keep a docs runner off commands it cannot run, the sizing quoted."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import yaml

from tests.deploy.deployment_facts import (
    DOCS,
    KUBERNETES,
    dockerfile,
    dockerfile_cmd,
    dockerfile_env,
    markdown_blocks,
    parse_serve,
    setting_env_names,
    shell_commands,
)

NEEDS = {
    "docker": "<!-- not-run: needs docker -->",
    "kubectl": "<!-- not-run: needs a Kubernetes cluster -->",
    "systemctl": "<!-- not-run: needs systemd -->",
}


def docker_runs() -> list[list[str]]:
    runs = []
    for _, _, body in markdown_blocks(DOCS):
        for words in shell_commands(body):
            if words[:2] == ["docker", "run"]:
                runs.append(words[2:])
    assert runs, "docs/deploy.md shows no docker run"
    return runs


def parse_docker_run(words: list[str]) -> tuple[dict[str, str], dict[str, str], dict[int, int]]:
    """(env, volume target → source, container port → host port) of a ``docker run``."""
    env: dict[str, str] = {}
    volumes: dict[str, str] = {}
    ports: dict[int, int] = {}
    flags_with_value = {"--name", "--restart", "-e", "--env", "-v", "--volume", "-p", "--publish"}
    rest = list(words)
    while rest and rest[0].startswith("-"):
        flag = rest.pop(0)
        if flag not in flags_with_value:
            continue  # -d, --rm, ...
        value = rest.pop(0)
        if flag in ("-e", "--env"):
            name, _, val = value.partition("=")
            env[name] = val
        elif flag in ("-v", "--volume"):
            source, target, *_ = value.split(":")
            volumes[target] = source
        elif flag in ("-p", "--publish"):
            host, container = value.rsplit(":", 2)[-2:]
            ports[int(container)] = int(host)
    assert rest, "docker run names no image"
    return env, volumes, ports


def test_dockerfile_serves_on_every_address_on_the_exposed_port() -> None:
    serve = parse_serve(dockerfile_cmd())
    assert serve.host == "0.0.0.0"
    exposed = re.search(r"^EXPOSE (\d+)", dockerfile(), re.MULTILINE)
    assert exposed
    assert serve.port == int(exposed.group(1))
    health = re.search(r"http://127\.0\.0\.1:(\d+)(/\w+)", dockerfile())
    assert health
    assert (int(health.group(1)), health.group(2)) == (serve.port, "/healthz")


def test_dockerfile_env_names_are_settings() -> None:
    assert set(dockerfile_env()) - {"PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"} <= (
        setting_env_names()
    )


def test_docker_run_agrees_with_the_image() -> None:
    image_env = dockerfile_env()
    port = parse_serve(dockerfile_cmd()).port
    known = setting_env_names()
    for words in docker_runs():
        env, volumes, ports = parse_docker_run(words)
        assert set(env) <= known, set(env) - known
        assert port in ports, f"docker run publishes {ports}, the image serves on {port}"
        # Tokens come from files on a mounted, read-only folder, never as values.
        assert {"BALLAST_WEBHOOK_TOKEN_FILE", "BALLAST_API_TOKEN_FILE"} <= set(env)
        for name, path in env.items():
            if name.endswith("_FILE"):
                mounted = [t for t in volumes if PurePosixPath(path).is_relative_to(t)]
                assert mounted, f"{name}={path} is not on a mounted volume"
        assert not {n for n in env if not n.endswith("_FILE")} & {
            "BALLAST_WEBHOOK_TOKEN",
            "BALLAST_API_TOKEN",
            "BALLAST_OFREP_TOKEN",
        }
        database = image_env["BALLAST_DATABASE_URL"].split(":///", 1)[1]
        assert str(PurePosixPath(database).parent) in volumes, "the database is not on a volume"
        assert image_env["BALLAST_RUNBOOKS"] in volumes


def test_blocks_that_need_docker_kubernetes_or_systemd_are_marked() -> None:
    for before, _, body in markdown_blocks(DOCS):
        for words in shell_commands(body):
            tools = {w for w in words[:2] if w in NEEDS}  # `sudo systemctl ...` too
            for tool in tools:
                assert before == NEEDS[tool], f"a block running {tool} lacks {NEEDS[tool]}"


def test_quoted_resources_are_the_deployments() -> None:
    with (KUBERNETES / "deployment.yaml").open(encoding="utf-8") as file:
        deployment = yaml.safe_load(file)
    resources = deployment["spec"]["template"]["spec"]["containers"][0]["resources"]
    text = " ".join(DOCS.read_text(encoding="utf-8").split())

    def spoken(cpu: str, memory: str) -> str:
        return f"{cpu} CPU and {memory.removesuffix('Mi')} MiB"

    requests, limits = resources["requests"], resources["limits"]
    assert spoken(requests["cpu"], requests["memory"]) in text
    assert spoken(str(limits["cpu"]), limits["memory"]) in text
