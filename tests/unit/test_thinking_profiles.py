"""Every profile loads the project's reasoning parser from any clone; MedGemma profiles decode greedily within the
model card's output limit; the CPU demos keep vLLM's neutral sampling."""

import shutil
from pathlib import Path

import pytest

from serve.config import load_config
from serve.engine.command import REPO_ROOT, ProfileError, vllm_command
from tests.unit.test_command import CONFIGS, PROFILES, flags

PLUGIN = REPO_ROOT / "serve" / "engine" / "reasoning_parser.py"
MEDGEMMA = [p for p in PROFILES if p.stem.startswith("medgemma")]
CPU = [p for p in PROFILES if p.stem.startswith("cpu")]
GREEDY_8K = '{"max_new_tokens":8192,"temperature":0}'


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_loads_the_reasoning_parser_by_absolute_path(path, tmp_path, monkeypatch):
    copy = tmp_path / path.name  # a profile kept outside the repository, vLLM started from another directory
    shutil.copy(path, copy)
    monkeypatch.chdir(tmp_path)
    f = flags(vllm_command(load_config(copy)))
    assert f["--reasoning-parser"] == "medgemma"
    assert Path(f["--reasoning-parser-plugin"]) == PLUGIN and PLUGIN.is_file()


def test_a_plugin_named_by_module_passes_unchanged():
    profile = load_config(CONFIGS / "cpu-demo.yaml", {"vllm": {"reasoning-parser-plugin": "my_pkg.parser"}})
    assert flags(vllm_command(profile))["--reasoning-parser-plugin"] == "my_pkg.parser"


def test_a_missing_plugin_file_is_refused_before_vllm_starts():
    profile = load_config(CONFIGS / "cpu-demo.yaml", {"vllm": {"reasoning-parser-plugin": "serve/nope.py"}})
    with pytest.raises(ProfileError, match=r"nope\.py does not exist"):
        vllm_command(profile)


@pytest.mark.parametrize("path", MEDGEMMA, ids=lambda p: p.stem)
def test_medgemma_profiles_decode_greedily_within_the_output_limit(path):
    f = flags(vllm_command(load_config(path)))
    assert f["--override-generation-config"] == GREEDY_8K
    assert "--generation-config" not in f  # the checkpoint's own config stays, under the override


@pytest.mark.parametrize("path", CPU, ids=lambda p: p.stem)
def test_cpu_profiles_keep_vllms_neutral_sampling(path):
    f = flags(vllm_command(load_config(path)))
    assert f["--generation-config"] == "vllm" and "--override-generation-config" not in f


@pytest.mark.full  # vLLM's own argument parser and token budget (the full install)
def test_vllm_reads_the_override_as_a_default_that_is_also_a_cap():
    """vLLM 0.32: with --generation-config auto, the override's max_new_tokens is the default max_tokens and a cap
    (serving_chat's override_max_tokens); a request's own smaller budget wins."""
    from vllm.entrypoints.launchers import cli_args
    from vllm.entrypoints.serve.utils.api_utils import get_max_tokens
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = cli_args.make_arg_parser(FlexibleArgumentParser())
    ns = parser.parse_args(vllm_command(load_config(MEDGEMMA[0]))[2:])
    assert ns.override_generation_config == {"temperature": 0, "max_new_tokens": 8192}
    assert ns.generation_config == "auto"
    cap = ns.override_generation_config["max_new_tokens"]
    budget = {"max_tokens": cap}  # what get_diff_sampling_param makes of it

    def tokens(asked):
        return get_max_tokens(32768, asked, 100, budget, cap)

    assert (tokens(None), tokens(500), tokens(20000)) == (8192, 500, 8192)
