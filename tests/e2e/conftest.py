"""Starts the real `hoosh` binary in front of a real mock vendor process.

Binaries come from target/debug (built by scripts/test.sh) unless
HOOSH_BIN / HOOSH_MOCK_BIN point elsewhere.
"""

import os
import pathlib
import signal
import subprocess
import tempfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TARGET = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "debug"


def _binary(env_name: str, name: str) -> str:
    path = os.environ.get(env_name) or str(TARGET / name)
    if not os.path.exists(path):
        pytest.fail(f"{path} not found: run `cargo build --workspace --bins` first (scripts/test.sh does)")
    return path


class _Log:
    """A process's stderr, in a file: a pipe nobody reads fills up (64 KiB)
    and then blocks every write the process makes — its logging included."""

    def __init__(self):
        self.file = tempfile.TemporaryFile(mode="w+")

    def read(self) -> str:
        self.file.seek(0)
        return self.file.read()


def _start(cmd, prefix: str, env=None):
    """Starts `cmd` and waits for the line that announces its URL. The
    process's `stderr` is a `_Log`."""
    log = _Log()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log.file, text=True, env=env)
    proc.stderr = log
    for _ in range(50):
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith(prefix):
            return proc, line.strip().rsplit(" ", 1)[-1]
    proc.kill()
    raise RuntimeError(f"{cmd[0]} did not start: {log.read()}")


@pytest.fixture(scope="session")
def gateway():
    mock, mock_url = _start([_binary("HOOSH_MOCK_BIN", "hoosh-mock-upstream"), "openai"], "mock openai listening on")
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(
            f"""
[health]
interval_secs = 0

[routing]
retry_base_ms = 1
retry_max_ms = 5

[[providers]]
name = "mock"
type = "openai"
base_url = "{mock_url}/v1"
models = ["gpt-*", "text-embedding-*", "mock-*", "whisper-1", "tts-1"]
"""
        )
        config = f.name
    # Each gateway its own data directory: one audit chain has one writer.
    env = dict(os.environ, HOOSH_DATA_DIR=tempfile.mkdtemp(prefix="hoosh-e2e-"))
    proc, url = _start([_binary("HOOSH_BIN", "hoosh"), "serve", "--config", config, "--port", "0"], "hoosh listening on", env)
    yield url
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    mock.kill()
    os.unlink(config)
    assert code == 0, f"hoosh exited with {code} on SIGTERM: {proc.stderr.read()}"


@pytest.fixture(scope="session")
def local_gateway():
    """`hoosh serve` with no config at all: the bundled local models only."""
    models = os.environ.get("HOOSH_TEST_MODELS_DIR")
    if not models or not os.path.isdir(os.path.join(models, "smollm2-135m")):
        pytest.skip("set HOOSH_TEST_MODELS_DIR to a store with the default models (hoosh pull --defaults)")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "OLLAMA_HOST"}
    env["HOOSH_MODELS_DIR"] = models
    env["HOOSH_DATA_DIR"] = tempfile.mkdtemp(prefix="hoosh-e2e-local-")
    env.pop("HOOSH_CONFIG", None)
    proc, url = _start([_binary("HOOSH_BIN", "hoosh"), "serve", "--port", "0"], "hoosh listening on", env)
    yield url
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0


MASTER = "hk-e2e-master-0123456789abcdefghijklmnopqrstuvwxyz"


def admin(url: str, method: str, path: str, body=None):
    """Calls the admin API with the master key; returns the decoded JSON."""
    import json
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(f"{url}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {MASTER}")
    req.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


@pytest.fixture(scope="session")
def governed_gateway():
    """`hoosh serve` that requires keys, in front of the mock vendor, with
    its own data directory. Yields (url, plaintext key, key id)."""
    mock, mock_url = _start([_binary("HOOSH_MOCK_BIN", "hoosh-mock-upstream"), "openai"], "mock openai listening on")
    data = tempfile.mkdtemp(prefix="hoosh-e2e-governed-")
    config = os.path.join(data, "hoosh.toml")
    with open(config, "w") as f:
        f.write(
            f"""
[health]
interval_secs = 0

[governance]
data_dir = "{data}"

[[providers]]
name = "mock"
type = "openai"
base_url = "{mock_url}/v1"
models = ["gpt-*", "mock-*"]
"""
        )
    env = dict(os.environ, HOOSH_MASTER_KEY=MASTER, HOOSH_DATA_DIR=data)
    try:
        proc, url = _start([_binary("HOOSH_BIN", "hoosh"), "serve", "--config", config, "--port", "0"], "hoosh listening on", env)
    except RuntimeError:
        mock.kill()
        raise
    created = admin(url, "POST", "/admin/keys", {"name": "agent-cli"})
    yield url, created["key"], created["id"]
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    mock.kill()
    assert code == 0, f"hoosh exited with {code} on SIGTERM: {proc.stderr.read()}"
