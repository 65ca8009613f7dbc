"""``runbooks:`` in ballast.yaml: a folder or a git remote, checked strictly."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.config import BallastConfig, load_config
from bot.errors import ConfigError


def load(tmp_path: Path, text: str) -> BallastConfig:
    path = tmp_path / "ballast.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_the_issue_example_loads(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
runbooks:
  git:
    url: https://git.example.com/ai-platform/runbooks.git
    ref: main
    path: runbooks
    poll_interval: 60s
  web_url: https://github.com/org/repo/blob/{commit}/{path}
""",
    )
    assert config.runbooks is not None
    git = config.runbooks.git
    assert git is not None
    assert git.full_ref == "refs/heads/main"
    assert git.poll_interval == timedelta(seconds=60)
    assert git.path == "runbooks"
    assert config.runbooks.path is None


def test_plain_http_and_git_protocol_on_loopback(tmp_path: Path) -> None:
    for url in ("http://127.0.0.1:8000/r.git", "git://localhost:9418/r.git", "http://[::1]/r.git"):
        config = load(tmp_path, f"runbooks: {{git: {{url: '{url}'}}}}\n")
        assert config.runbooks is not None
        assert config.runbooks.git is not None


def test_a_folder_still_works_as_before(tmp_path: Path) -> None:
    config = load(tmp_path, "runbooks: ops/runbooks\n")
    assert config.runbooks is not None
    assert config.runbooks.path == Path("ops/runbooks")
    assert config.runbooks.git is None


def test_ssh_with_known_hosts(tmp_path: Path) -> None:
    config = load(
        tmp_path,
        """
runbooks:
  git:
    url: ssh://git@git.example.com/ops/runbooks.git
    ssh_key: /etc/ballast/id_ed25519
    known_hosts: /etc/ballast/known_hosts
    ref: refs/heads/release
""",
    )
    assert config.runbooks is not None
    assert config.runbooks.git is not None
    assert config.runbooks.git.full_ref == "refs/heads/release"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("runbooks: {git: {url: 'ftp://x/y.git'}}", "must start with https://"),
        (
            "runbooks: {git: {url: 'https://bob:hunter2@git.example.com/r.git'}}",
            "must not carry credentials",
        ),
        ("runbooks: {git: {url: 'ssh://git@git.example.com/r.git'}}", "needs runbooks.git."),
        (
            "runbooks: {git: {url: 'https://g.example.com/r.git', known_hosts: /k}}",
            "for ssh:// URLs only",
        ),
        ("runbooks: {git: {url: 'file:///srv/r.git', ref: 'a..b'}}", "not a valid branch"),
        ("runbooks: {git: {url: 'file:///srv/r.git', ref: '-x'}}", "not a valid branch"),
        ("runbooks: {git: {url: 'file:///srv/r.git', path: 'a/../../x'}}", "inside the repository"),
        ("runbooks: {git: {url: 'file:///srv/r.git', path: /abs}}", "inside the repository"),
        ("runbooks: {git: {url: 'file:///srv/r.git', poll_interval: 500ms}}", "between 1s and 1d"),
        ("runbooks: {git: {url: 'file:///srv/r.git', pol_interval: 5s}}", "pol_interval"),
        ("runbooks: {path: x, git: {url: 'file:///srv/r.git'}}", "not both"),
        ("runbooks: {web_url: 'https://h/{sha}/{path}'}", "may use only"),
        ("runbooks: {web_url: 'javascript:{path}'}", "https:// or http://"),
        ("runbooks: {git: {url: 'https:///r.git'}}", "names no host"),
        ("runbooks: {git: {url: 'http://git.example.com/r.git'}}", "unencrypted"),
        ("runbooks: {git: {url: 'git://git.example.com/r.git'}}", "loopback only"),
    ],
)
def test_mistakes_are_named(tmp_path: Path, yaml_text: str, message: str) -> None:
    with pytest.raises(ConfigError, match="runbooks") as raised:
        load(tmp_path, yaml_text)
    assert message in str(raised.value)
    assert "hunter2" not in str(raised.value)
