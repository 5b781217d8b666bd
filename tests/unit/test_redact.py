"""Redaction before logging: environments, secret-named keys and vLLM flags, URL passwords; the profile log line and
the engine command line never carry a canary secret, and the config that is not secret still shows."""

import json
import logging
import sys

import pytest

from serve import launcher
from serve.config import EngineSettings, Profile, redacted
from serve.config.redact import REDACTED, is_secret_name, redact_argv, redact_text, redact_tree
from serve.engine.process import EngineDied
from serve.engine.supervisor import Supervisor

HF = "hf_canaryA1b2C3d4E5f6"
API = "canary2-api-key"
PW = "canary3-pw"


def profile(**vllm) -> Profile:
    return Profile.model_validate(
        {
            "name": "canary",
            "model": {"source": "demo:tiny", "served_name": "served-canary-model", "license": "none"},
            "engine": {"env": {"HF_TOKEN": HF, "VLLM_CPU_KVCACHE_SPACE": "1"}},
            "gateway": {"terms": {"url": f"https://terms:{PW}@terms.example/hai-def"}},
            "vllm": {"max-model-len": 1234, **vllm},
        }
    )


@pytest.mark.parametrize(
    "name",
    [
        "api-key",
        "hf-token",
        "HF_TOKEN",
        "db_password",
        "aws_secret_access_key",
        "clientSecret",
        "dsn",
        "apiKey",
    ],
)
def test_names_that_hold_secrets_are_secret(name):
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "max-num-batched-tokens",
        "long-prefill-token-threshold",
        "tokenizer",
        "ssl-keyfile",
        "dsn_env",
        "api_keys_env",
        "hash_secret_file",
        "max_concurrent_per_key",
        "max-model-len",
    ],
)
def test_names_that_only_mention_a_secret_are_not(name):
    assert not is_secret_name(name)


def test_every_environment_value_is_hidden_and_the_names_stay():
    tree = redact_tree(
        {"engine": {"env": {"HF_TOKEN": HF, "OMP_NUM_THREADS": "2"}}, "x": {"env_vars": {"A": "1"}}}
    )
    assert tree == {
        "engine": {"env": {"HF_TOKEN": REDACTED, "OMP_NUM_THREADS": REDACTED}},
        "x": {"env_vars": {"A": REDACTED}},
    }


def test_secret_named_values_are_hidden_at_any_depth_and_the_rest_stays():
    tree = {
        "vllm": {"api-key": API, "max-model-len": 2048, "allow-credentials": True, "hf-token": None},
        "store": {"dsn_env": "PG_DSN", "password": 123456, "hosts": ["a", "b"], "keys": [PW]},
        "credentials": {"user": "svc", "password": PW},
    }
    assert redact_tree(tree) == {
        "vllm": {"api-key": REDACTED, "max-model-len": 2048, "allow-credentials": True, "hf-token": None},
        "store": {"dsn_env": "PG_DSN", "password": REDACTED, "hosts": ["a", "b"], "keys": [REDACTED]},
        "credentials": {"user": "svc", "password": REDACTED},
    }


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        (f"postgresql://app:{PW}@db:5432/acks", f"postgresql://app:{REDACTED}@db:5432/acks"),
        (f"postgresql+psycopg://app:{PW}@db/acks?x=1", f"postgresql+psycopg://app:{REDACTED}@db/acks?x=1"),
        (f"host=db user=app password={PW} dbname=acks", f"host=db user=app password={REDACTED} dbname=acks"),
        (f"password='{PW} x' sslmode=require", f"password='{REDACTED}' sslmode=require"),
        (f"http://h/p?api_key={API}&n=1", f"http://h/p?api_key={REDACTED}&n=1"),
        (f"Authorization: Bearer {API} then", f"Authorization: {REDACTED} then"),
        (f'{{"hf_token": "{HF}", "n": 1}}', f'{{"hf_token": "{REDACTED}", "n": 1}}'),
        (f"--hf-token={HF}", f"--hf-token={REDACTED}"),
    ],
)
def test_passwords_and_secret_pairs_in_text_are_hidden(text, hidden):
    assert redact_text(text) == hidden
    assert redact_text(hidden) == hidden  # redacting twice changes nothing


@pytest.mark.parametrize(
    "text",
    [
        "http://127.0.0.1:8100/health",
        "--max-num-batched-tokens=8192",
        "demo-tiny-gemma3-random",
        "Note: not a substitute for professional medical advice.",
    ],
)
def test_text_without_secrets_is_unchanged(text):
    assert redact_text(text) == text


def test_secret_flags_of_a_command_line_are_hidden_in_every_form():
    argv = [
        "vllm",
        "serve",
        "/models/m",
        "--api-key",
        API,
        "--hf-token=" + HF,
        "--max-model-len",
        "2048",
        "--allow-credentials",
        "--kv-transfer-config",
        json.dumps({"kv_connector_extra_config": {"secret_key": PW, "n": 1}}),
        "--download-dir",
        f"s3://bucket:{PW}@host/x",
    ]
    shown = " ".join(redact_argv(argv))
    assert API not in shown and HF not in shown and PW not in shown
    assert shown.startswith(
        "vllm serve /models/m --api-key <redacted> --hf-token=<redacted> --max-model-len 2048"
    )
    assert "--allow-credentials --kv-transfer-config" in shown and '"n":1' in shown


def test_the_profile_log_holds_no_canary_and_the_rest_of_the_config():
    logged = json.dumps(redacted(profile(**{"hf-token": HF})))
    for canary in (HF, PW):
        assert canary not in logged
    for visible in (
        "served-canary-model",
        '"max-model-len": 1234',
        '"HF_TOKEN": "<redacted>"',
        "terms.example",
    ):
        assert visible in logged


def test_the_engine_command_log_line_holds_no_canary(caplog):
    caplog.set_level(logging.INFO, logger="serve.launcher")
    launcher.make_supervisor(profile(**{"hf-token": HF}), "/models/m", echo=False)
    line = caplog.text
    assert "engine command: vllm serve /models/m" in line and "--max-model-len 1234" in line
    assert "--hf-token <redacted>" in line and HF not in line


async def test_the_supervisor_never_logs_the_engine_environment(caplog, capsys):
    caplog.set_level(logging.DEBUG)
    argv = [sys.executable, "-c", "import sys; print('engine output'); sys.exit(3)"]
    sup = Supervisor(argv, "http://127.0.0.1:1/health", EngineSettings(), env={"HF_TOKEN": HF})
    with pytest.raises(EngineDied) as died:
        await sup.start()
    out = capsys.readouterr()
    assert "engine output" in out.err  # the child's own lines are echoed; the environment is not
    assert HF not in caplog.text + out.out + out.err + str(died.value)


@pytest.mark.full
def test_the_vllm_flags_judged_secret_are_the_ones_that_hold_secrets():
    """Against the pinned vLLM's own parser (~10 s to import): a new secret flag, or a false alarm that hides
    useful config, shows up here."""
    from vllm.entrypoints.launchers import cli_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = cli_args.make_arg_parser(FlexibleArgumentParser())
    names = {o[2:] for action in parser._actions for o in action.option_strings if o.startswith("--")}
    assert "max-num-batched-tokens" in names
    # allow-credentials is a boolean (CORS): judged secret, it has no value to hide.
    assert {n for n in names if is_secret_name(n)} == {
        "api-key",
        "hf-token",
        "allow-credentials",
        "no-allow-credentials",
    }
