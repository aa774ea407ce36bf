"""Unmodified client programs from npm against hoosh: Claude Code (`claude
-p`, Anthropic Messages) and Codex (`codex exec`, OpenAI Responses) each
doing one tool round trip with a virtual key, and one streamed call through
each of the OpenAI and Anthropic Node SDKs.

The programs live in tests/e2e/clients/node_modules (scripts/test.sh runs
`npm ci` there). The mock vendor's `mock-agent` model calls the tool the
prompt names (`call <Tool> <json>`) and, once the tool's result comes back,
answers `tool said: <its output on one line>`.
"""

import os
import pathlib
import subprocess

import pytest

from conftest import admin, MASTER  # noqa: F401  (MASTER documents who calls admin)

CLIENTS = pathlib.Path(__file__).resolve().parent / "clients"
BIN = CLIENTS / "node_modules" / ".bin"


def _need(path: pathlib.Path):
    if not path.exists():
        pytest.fail(f"{path} missing: run `npm ci --prefix tests/e2e/clients` (scripts/test.sh does)")


def _offline_env(home: pathlib.Path, **extra) -> dict:
    """A clean environment: no real vendor keys, a private HOME, no telemetry."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("ANTHROPIC_")}
    env.update(HOME=str(home), CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1", DISABLE_AUTOUPDATER="1", **extra)
    return env


def _agent_round_trip(gateway, cmd, cwd: pathlib.Path, env: dict):
    """Runs an agent CLI in `cwd` (which holds notes.md) and checks that its
    tool read the file, sent the result back through hoosh, and that both
    turns were ledgered under the fixture's key."""
    url, _, key_id = gateway
    before = _requests(url, key_id)
    out = subprocess.run(
        cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180
    )
    assert out.returncode == 0, out.stderr + out.stdout
    assert "tool said:" in out.stdout and "hoosh was here" in out.stdout, out.stdout + out.stderr
    assert _requests(url, key_id) - before >= 2


def test_claude_code_runs_a_tool_round_trip_under_a_virtual_key(governed_gateway, tmp_path):
    claude = BIN / "claude"
    _need(claude)
    url, key, _ = governed_gateway
    notes = tmp_path / "notes.md"
    notes.write_text("hoosh was here\n")
    env = _offline_env(tmp_path / "home", ANTHROPIC_BASE_URL=url, ANTHROPIC_AUTH_TOKEN=key)
    cmd = [str(claude), "-p", f'call Read {{"file_path":"{notes}"}}', "--model", "mock-agent"]
    _agent_round_trip(governed_gateway, cmd, tmp_path, env)


def test_codex_runs_a_tool_round_trip_under_a_virtual_key(governed_gateway, tmp_path):
    codex = BIN / "codex"
    _need(codex)
    url, key, _ = governed_gateway
    home = tmp_path / "codex-home"
    home.mkdir()
    (home / "config.toml").write_text(
        f"""
model = "mock-agent"
model_provider = "hoosh"

[model_providers.hoosh]
name = "hoosh"
base_url = "{url}/v1"
env_key = "HOOSH_KEY"
wire_api = "responses"
"""
    )
    work = tmp_path / "work"
    work.mkdir()
    (work / "notes.md").write_text("hoosh was here\n")
    env = _offline_env(tmp_path / "home", CODEX_HOME=str(home), HOOSH_KEY=key)
    cmd = [str(codex), "exec", "--skip-git-repo-check", 'call exec_command {"cmd":"cat notes.md"}']
    _agent_round_trip(governed_gateway, cmd, work, env)


def _requests(url: str, key_id: str) -> int:
    report = admin(url, "GET", "/admin/usage?group_by=key")
    return sum(row["requests"] for row in report["data"] if row["group"] == key_id)


@pytest.mark.parametrize("sdk", ["openai", "anthropic"])
def test_a_node_sdk_streams_through_hoosh(gateway, sdk):
    node_modules = CLIENTS / "node_modules"
    _need(node_modules / ("openai" if sdk == "openai" else "@anthropic-ai/sdk"))
    out = subprocess.run(
        ["node", str(CLIENTS / "stream.mjs"), sdk, gateway, "gpt-4o"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "echo: hi \u00e9\U0001F600"
