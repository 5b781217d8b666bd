"""Tier 3: the real stack (`python -m serve up`: vLLM CPU engine + gateway) once per test session."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from threading import Thread

import openai
import psutil
import pytest
import yaml
from openai import OpenAI

ROOT = Path(__file__).resolve().parents[2]
ACK_HEADERS = {"HAI-DEF-Acknowledged": "2024-11-15"}
START_TIMEOUT_S = 900
SCRIPTED_TOKENS = "testkit.vllm_plugins.scripted_tokens:ScriptedTokens"  # a test-only vLLM logits processor
ANSWER_TOKENS = 16  # streamed()'s default answer budget: short answers keep the CPU engine's tests quick


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What the gateway logs once it listens: profiles here set gateway.port 0 and the gateway binds a free port itself
# (a port picked here and bound later can be taken by another process in between).
LISTENING = re.compile(r"gateway listening on http://[^\s]+:(\d+)")


class Proc:
    """A child process whose last output lines are kept for failure messages (and for log assertions), and the
    port its gateway announced, if it runs one."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None, keep: int = 400) -> None:
        self.popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self.log: deque[str] = deque(maxlen=keep)
        self.gateway_port: int | None = None
        Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        for line in self.popen.stdout:  # type: ignore[union-attr]
            self.log.append(line.rstrip())
            if self.gateway_port is None and (found := LISTENING.search(line)):
                self.gateway_port = int(found.group(1))


def serve_up(profile: Path) -> Proc:
    """`python -m serve up` on a profile, as `make serve` runs it."""
    return Proc(
        [
            sys.executable,
            "-m",
            "serve",
            "up",
            "--profile",
            str(profile),
            "--cache-dir",
            str(ROOT / ".cache" / "checkpoints"),
        ]
    )


@dataclass
class Stack:
    gateway_url: str
    engine_url: str
    model: str
    proc: subprocess.Popen
    log: deque

    def client(self, *, ack: bool = True, **kw) -> OpenAI:
        headers = ACK_HEADERS if ack else kw.pop("default_headers", {})
        return OpenAI(
            base_url=self.gateway_url + "/v1",
            api_key="local",
            max_retries=0,
            default_headers=headers,
            **{"timeout": 120, **kw},
        )

    def log_tail(self, lines: int = 80) -> str:
        """The stack's last output lines (gateway and engine), for a failure message."""
        return "\n".join(list(self.log)[-lines:])

    def engine_client(self) -> OpenAI:
        return OpenAI(base_url=self.engine_url + "/v1", api_key="local", max_retries=0, timeout=120)


def streamed(stack: Stack, content: list[dict], *, max_tokens: int = ANSWER_TOKENS) -> tuple[str, int]:
    """One greedy streamed chat about `content`: the answer's text and the engine's prompt token count."""
    stream = stack.client(timeout=300).chat.completions.create(  # a volume from a slow PACS takes a while
        model=stack.model,
        messages=[{"role": "user", "content": content}],
        max_tokens=max_tokens,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, prompt_tokens = [], 0
    try:
        for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text.append(chunk.choices[0].delta.content)
            if chunk.usage is not None:
                prompt_tokens = chunk.usage.prompt_tokens
    except openai.APIConnectionError as exc:
        # A stream must end with [DONE], never a cut: say what the stack said.
        raise AssertionError(f"the stream was cut after {len(text)} chunks:\n{stack.log_tail()}") from exc
    return "".join(text), prompt_tokens


def _profile(tmp: Path, dicomweb_url: str | None = None) -> Path:
    raw = yaml.safe_load((ROOT / "configs" / "cpu-demo.yaml").read_text())
    raw["engine"]["port"] = free_port()
    # cpu-demo.yaml itself sets compact JSON (structured-outputs-config) and a tool-call parser: tests need both.
    assert (
        raw["vllm"]["structured-outputs-config"]["disable_any_whitespace"] and raw["vllm"]["tool-call-parser"]
    )
    # Test-only: forces the token ids a request scripts (vllm_xargs.script), so the random model can emit MedGemma's
    # thinking markers in order; inert for every other request. Importable from this clone in vLLM's processes.
    raw["vllm"]["logits-processors"] = [SCRIPTED_TOKENS]
    raw["engine"]["env"] = {**raw["engine"].get("env", {}), "PYTHONPATH": str(ROOT)}
    raw["gateway"] = {
        **raw.get("gateway", {}),
        "port": 0,  # read back from its log (Proc.gateway_port)
        "terms": {"database": str(tmp / "acks.sqlite3")},
    }
    if dicomweb_url:  # the session's PACS (tests/engine/test_pacs_engine.py), allow-listed like a hospital's
        servers = [{"name": "orthanc", "base_url": dicomweb_url}]
        raw["gateway"]["images"] = {**raw["gateway"].get("images", {}), "dicomweb": {"servers": servers}}
    path = tmp / "profile.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def _wait_ready(proc: Proc, url: str | None = None) -> str:
    """The gateway's URL once its /health says 200: `url`, or the port the gateway announced."""
    import urllib.request

    log = proc.log
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            raise RuntimeError("the stack exited during start:\n" + "\n".join(log))
        target = url or (f"http://127.0.0.1:{proc.gateway_port}" if proc.gateway_port else None)
        try:
            if target is not None:
                with urllib.request.urlopen(target + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return target
        except OSError:
            pass
        time.sleep(1)
    raise RuntimeError("the stack did not become healthy:\n" + "\n".join(log))


@pytest.fixture(scope="session")
def pacs(tmp_path_factory):
    """Orthanc on loopback holding CT, MR, CR and whole-slide studies, started before the stack so that its profile
    names it; None where Orthanc is not installed (scripts/install-orthanc.sh; the PACS tests then fail)."""
    from testkit import orthanc, pacs_studies

    if not orthanc.installed():
        yield None
        return
    with pacs_studies.running(tmp_path_factory.mktemp("orthanc")) as loaded:
        yield loaded


@pytest.fixture(scope="session")
def stack(tmp_path_factory, pacs):
    tmp = tmp_path_factory.mktemp("stack")
    profile = _profile(tmp, pacs.dicomweb_url if pacs else None)
    raw = yaml.safe_load(profile.read_text())
    proc = serve_up(profile)
    try:
        url = _wait_ready(proc)
        yield Stack(
            url,
            f"http://127.0.0.1:{raw['engine']['port']}",
            raw["model"]["served_name"],
            proc.popen,
            proc.log,
        )
    finally:
        _stop_and_check_no_orphans(proc.popen)


def _stop_and_check_no_orphans(proc: subprocess.Popen) -> None:
    try:
        tree = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        tree = []
    proc.send_signal(signal.SIGINT)  # what Ctrl-C on `make serve` sends
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    time.sleep(1)
    left = [p.pid for p in tree if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"engine processes outlived the stack: {left}"
