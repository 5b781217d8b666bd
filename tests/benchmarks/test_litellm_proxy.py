"""The LiteLLM setup is equivalent to our gateway: same upstream, same disclaimer, same header check."""

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
