"""The LiteLLM setup is equivalent to our gateway: same upstream, same disclaimer, same header check."""

import shutil
import subprocess
import sys
import types

import pytest
import yaml

from benchmarks.capacity import litellm_proxy as L
from serve import terms


class Forbidden(Exception):
    def __init__(self, status_code, detail):
        self.status_code = status_code


@pytest.fixture
def hook(monkeypatch):
    """The generated hook module, run against stand-ins for fastapi and litellm (not project dependencies)."""
    fastapi = types.ModuleType("fastapi")
    fastapi.HTTPException = Forbidden
    logger = types.ModuleType("litellm.integrations.custom_logger")
    logger.CustomLogger = object
    for name, module in {
        "fastapi": fastapi,
        "litellm": types.ModuleType("litellm"),
        "litellm.integrations": types.ModuleType("litellm.integrations"),
        "litellm.integrations.custom_logger": logger,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    from prometheus_client import REGISTRY

    namespace = {}
    exec(compile(L.hook_source(terms.DISCLAIMER), "disclaimer_hook.py", "exec"), namespace)
    yield namespace["proxy_handler_instance"]
    REGISTRY.unregister(namespace["HOOK_SECONDS"])


def request(messages, ack=terms.TERMS_VERSION):
    headers = {"hai-def-acknowledged": ack} if ack else {}
    return {"messages": messages, "proxy_server_request": {"headers": headers}}


async def test_hook_merges_the_disclaimer_into_the_system_turn(hook):
    data = await hook.async_pre_call_hook(
        None, None, request([{"role": "user", "content": "hi"}]), "completion"
    )
    assert data["messages"] == [
        {"role": "system", "content": terms.DISCLAIMER},
        {"role": "user", "content": "hi"},
    ]
    own = request([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}])
    data = await hook.async_pre_call_hook(None, None, own, "completion")
    assert data["messages"][0]["content"] == terms.DISCLAIMER + "\n\nBe brief."


@pytest.mark.parametrize("ack", [None, "2020-01-01"])
async def test_hook_refuses_without_the_acknowledgement(hook, ack):
    with pytest.raises(Forbidden) as err:
        await hook.async_pre_call_hook(
            None, None, request([{"role": "user", "content": "hi"}], ack), "completion"
        )
    assert err.value.status_code == 403


def test_config_points_litellm_at_the_upstream_with_the_hook(tmp_path):
    path = L.write_setup(tmp_path, "fake-model", "http://127.0.0.1:9", terms.DISCLAIMER)
    cfg = yaml.safe_load(path.read_text())
    [entry] = cfg["model_list"]
    assert entry["model_name"] == "fake-model"
    assert entry["litellm_params"] == {
        "model": "openai/fake-model",
        "api_base": "http://127.0.0.1:9/v1",
        "api_key": "none",
    }
    assert cfg["litellm_settings"]["callbacks"] == "disclaimer_hook.proxy_handler_instance"
    assert cfg["litellm_settings"]["num_retries"] == 0
    assert (tmp_path / "disclaimer_hook.py").exists()


def test_command_runs_one_worker():
    cmd = L.command(L.VENV, L.VENV / "c.yaml", 4000)
    assert cmd[0].endswith("bin/litellm") and cmd[cmd.index("--num_workers") + 1] == "1"


def make_venv(path, *, litellm=True):
    """A real venv (no pip) whose bin/litellm and bin/pip are scripts naming its python, as pip writes them, and
    a stand-in litellm package when asked: what the usability check looks at, without installing LiteLLM."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    for name in L.SCRIPTS:
        script = path / "bin" / name
        script.write_text(f"#!{path.absolute()}/bin/python\nimport sys\n")
        script.chmod(0o755)
    if litellm:
        [site] = path.glob("lib/python*/site-packages")
        (site / "litellm.py").write_text("")
    return path


def test_a_venv_made_here_with_litellm_is_usable(tmp_path):
    assert L.venv_problem(make_venv(tmp_path / "v")) is None


def test_a_venv_without_litellm_is_not(tmp_path):
    assert "cannot import litellm" in L.venv_problem(make_venv(tmp_path / "v", litellm=False))


def test_a_missing_or_foreign_directory_is_not_a_venv(tmp_path):
    assert "no pyvenv.cfg" in L.venv_problem(tmp_path / "absent")
    (tmp_path / "other").mkdir()
    assert "no pyvenv.cfg" in L.venv_problem(tmp_path / "other")


def test_a_venv_copied_from_another_clone_is_not(tmp_path):
    """Copied with its symlinks (as cp -a or a committed .venv-litellm would be): it still imports litellm, but
    pyvenv.cfg and the scripts name the old path."""
    shutil.copytree(make_venv(tmp_path / "a"), tmp_path / "b", symlinks=True)
    assert "another path" in L.venv_problem(tmp_path / "b")
    # Without the `command` line (virtualenv, uv), the stale shebang still gives it away.
    cfg = tmp_path / "b" / "pyvenv.cfg"
    cfg.write_text(
        "".join(line for line in cfg.read_text().splitlines(True) if not line.startswith("command"))
    )
    assert "bin/litellm runs" in L.venv_problem(tmp_path / "b")


def test_a_script_naming_another_python_is_not(tmp_path):
    venv = make_venv(tmp_path / "v")
    (venv / "bin" / "pip").write_text(f"#!{sys.executable}\n")
    assert "bin/pip runs" in L.venv_problem(venv)


def test_pips_long_path_shebang_is_read(tmp_path):
    script = tmp_path / "litellm"
    script.write_text("#!/bin/sh\n'''exec' \"/a b/bin/python\" \"$0\" \"$@\"\n' '''\nimport sys\n")
    assert L.shebang_python(script) == "/a b/bin/python"
    script.write_text("#!/x/bin/python3 -E\n")
    assert L.shebang_python(script) == "/x/bin/python3"
    assert L.shebang_python(tmp_path / "absent") is None


def test_an_unusable_venv_is_removed_and_recreated_with_its_own_python(tmp_path, monkeypatch):
    venv = make_venv(tmp_path / "v", litellm=False)
    (venv / "stale").write_text("")
    calls = []

    def run(cmd, **kwargs):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 0, stdout="1.108.7\n")

    problems = iter(["bin/python cannot import litellm", None])
    monkeypatch.setattr(L, "venv_problem", lambda _: next(problems))
    monkeypatch.setattr(L.subprocess, "run", run)
    assert L.ensure_installed(venv) == "1.108.7"
    assert not (venv / "stale").exists()
    assert calls[0] == [sys.executable, "-m", "venv", str(venv)]
    assert calls[1][:4] == [str(venv / "bin" / "python"), "-m", "pip", "install"]
    assert f"litellm[proxy]=={L.LITELLM_VERSION}" in calls[1]


def test_no_install_refuses_an_unusable_venv_and_nothing_is_deleted(tmp_path):
    venv = make_venv(tmp_path / "v", litellm=False)
    with pytest.raises(RuntimeError, match="cannot import litellm"):
        L.ensure_installed(venv, install=False)
    assert (venv / "pyvenv.cfg").exists()


def test_a_directory_that_is_not_a_venv_is_never_deleted(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(RuntimeError, match="not deleting"):
        L.recreate(tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").exists()
