"""Every profile's command parses with the pinned vLLM's own `vllm serve` argument parser."""

import pytest

from serve.config import load_config
from serve.engine.command import vllm_command
from tests.unit.test_command import PROFILES

# Imports vLLM (~15 s; the full install, make test), inside the fixture: test-fast collects this module on the
# light install before deselecting it. No engine is started.
pytestmark = pytest.mark.full


@pytest.fixture(scope="module")
def parser():
    from vllm.entrypoints.launchers import cli_args
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return cli_args.make_arg_parser(FlexibleArgumentParser())


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_vllm_parses_the_profile_command(parser, path):
    profile = load_config(path)
    ns = parser.parse_args(vllm_command(profile)[2:])
    assert ns.model_tag == profile.model.source
    assert ns.dtype == "bfloat16" and ns.host == "127.0.0.1"
    if "limit-mm-per-prompt" in profile.vllm:
        assert ns.limit_mm_per_prompt == profile.vllm["limit-mm-per-prompt"]
