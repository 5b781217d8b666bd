"""The benchmarks' `serve up` profile: the gateway on port 0 (read back, never picked first), the run's own store."""

from benchmarks.core import stack
from serve.config import load_config


def test_the_stack_profile_puts_the_gateway_on_port_0_and_keeps_the_callers_settings(tmp_path):
    raw = stack.demo_profile()
    raw["gateway"]["images"]["dicomweb"] = {
        "servers": [{"name": "pacs", "base_url": "http://127.0.0.1:8042"}]
    }
    made = stack.stack_profile(raw, tmp_path, engine_port=41001)
    assert made["gateway"]["port"] == 0 and made["engine"]["port"] == 41001
    assert made["gateway"]["terms"]["database"] == str(tmp_path / "acks.sqlite3")
    assert made["gateway"]["images"]["dicomweb"]["servers"][0]["name"] == "pacs"
    assert "port" not in raw["gateway"]  # the caller's dict is left as it was
    (tmp_path / "profile.yaml").write_text(stack.yaml.safe_dump(made))
    profile = load_config(tmp_path / "profile.yaml")  # a profile `serve up` accepts
    assert profile.gateway.port == 0 and profile.engine.port == 41001
