"""The vLLM command builder and the profile checks, for every profile in configs/."""

from pathlib import Path

import pytest

from serve import launcher
from serve.config import ConfigError, load_config
from serve.engine.command import ProfileError, engine_env, render_flag, vllm_command

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PROFILES = sorted(p for p in CONFIGS.glob("*.yaml") if p.name != "prometheus.yml")


def flags(argv: list[str]) -> dict[str, str | None]:
    """--flag value pairs of an argv (a bare --flag maps to None)."""
    out, i = {}, 3
    while i < len(argv):
        if i + 1 < len(argv) and not argv[i + 1].startswith("--"):
            out[argv[i]] = argv[i + 1]
            i += 2
        else:
            out[argv[i]] = None
            i += 1
    return out


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_every_profile_serves_bf16_on_loopback(path):
    profile = load_config(path)
    argv = vllm_command(profile)
    f = flags(argv)
    assert argv[:3] == ["vllm", "serve", profile.model.source]
    assert f["--host"] == "127.0.0.1" and f["--dtype"] == "bfloat16"
    assert f["--served-model-name"] == profile.model.served_name
    assert "--enable-log-requests" not in f


@pytest.mark.parametrize(
    ("name", "images"), [("medgemma-1.5-4b-it", 128), ("medgemma-4b-it", 1), ("medgemma-27b-it", 1)]
)
def test_multimodal_medgemma_profiles_state_their_image_budget_and_pan_and_scan_off(name, images):
    # MedGemma 1.5 reads volumes, slide patches and prior/current pairs; MedGemma 1 was evaluated on one image.
    f = flags(vllm_command(load_config(CONFIGS / f"{name}.yaml")))
    assert f["--limit-mm-per-prompt"] == f'{{"image":{images}}}'
    assert f["--mm-processor-kwargs"] == '{"do_pan_and_scan":false}'
    assert "--enable-prefix-caching" in f and "--max-num-seqs" in f and "--gpu-memory-utilization" in f


def test_27b_profiles_use_tensor_parallel():
    for name in ("medgemma-27b-it", "medgemma-27b-text-it"):
        assert flags(vllm_command(load_config(CONFIGS / f"{name}.yaml")))["--tensor-parallel-size"] == "2"


def test_cpu_demo_is_eager_with_neutral_generation_config():
    profile = load_config(CONFIGS / "cpu-demo.yaml")
    f = flags(vllm_command(profile, model="/tmp/ckpt"))
    assert "--enforce-eager" in f and f["--generation-config"] == "vllm"
    assert profile.engine.env["VLLM_CPU_KVCACHE_SPACE"] == "1"


@pytest.mark.parametrize("dtype", ["float16", "half", "FP16"])
def test_half_precision_is_refused_for_gemma3(dtype):
    profile = load_config(CONFIGS / "cpu-demo.yaml", {"vllm": {"dtype": dtype}})
    with pytest.raises(ProfileError, match="overflows in float16"):
        vllm_command(profile)


def test_half_precision_is_allowed_for_other_families():
    profile = load_config(
        CONFIGS / "cpu-demo.yaml", {"model": {"family": "other"}, "vllm": {"dtype": "half"}}
    )
    assert "half" in vllm_command(profile)


def test_unknown_yaml_key_is_refused_naming_it(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmodel: {source: a, served_name: b, quantisation: int4}\n")
    with pytest.raises(ConfigError, match=r"model\.quantisation: unknown key"):
        load_config(bad)


@pytest.mark.parametrize("flag", ["port", "host", "model"])
def test_launcher_owned_flags_cannot_be_set_in_the_vllm_section(flag):
    with pytest.raises(ProfileError, match="set by the launcher"):
        vllm_command(load_config(CONFIGS / "cpu-demo.yaml", {"vllm": {flag: "x"}}))


def test_request_logging_flags_are_refused():
    with pytest.raises(ProfileError, match="prompt text"):
        vllm_command(load_config(CONFIGS / "cpu-demo.yaml", {"vllm": {"enable-log-requests": True}}))


def test_flag_rendering():
    assert render_flag("enforce-eager", True) == ["--enforce-eager"]
    assert render_flag("enable-prefix-caching", False) == ["--no-enable-prefix-caching"]
    assert render_flag("limit-mm-per-prompt", {"image": 1}) == ["--limit-mm-per-prompt", '{"image":1}']
    assert render_flag("max-model-len", 2048) == ["--max-model-len", "2048"]


def test_medgemma_profile_needs_the_operator_to_accept_the_terms(monkeypatch):
    profile = load_config(CONFIGS / "medgemma-1.5-4b-it.yaml")
    with pytest.raises(launcher.TermsNotAccepted) as err:
        launcher.check_operator_terms(profile, None)
    assert "health-ai-developer-foundations/terms" in str(err.value) and "medical device" in str(err.value)
    with pytest.raises(launcher.TermsNotAccepted):
        launcher.check_operator_terms(profile, "yes")
    launcher.check_operator_terms(profile, "2024-11-15")
    monkeypatch.setenv(launcher.ACCEPT_ENV, "2024-11-15")
    launcher.check_operator_terms(profile, launcher.accepted_terms(None))


def test_demo_profile_needs_no_acceptance():
    launcher.check_operator_terms(load_config(CONFIGS / "cpu-demo.yaml"), None)


def test_default_profile_follows_the_hardware():
    assert launcher.default_profile(gpu=True).name == "medgemma-1.5-4b-it.yaml"
    assert launcher.default_profile(gpu=False).name == "cpu-demo.yaml"


def media_domains_in(argv: list[str]) -> list[str]:
    i = argv.index("--allowed-media-domains") + 1
    j = next((k for k in range(i, len(argv)) if argv[k].startswith("--")), len(argv))
    return argv[i:j]


def test_the_engine_fetches_images_only_from_the_gateways_allow_list_without_redirects():
    hosts = ["images.example.org", "pacs.example.net"]
    profile = load_config(CONFIGS / "cpu-demo.yaml", {"gateway": {"images": {"remote_hosts": hosts}}})
    assert media_domains_in(vllm_command(profile)) == hosts
    env = launcher.make_supervisor(profile, "/tmp/ckpt", echo=False).env
    assert env["VLLM_MEDIA_URL_ALLOW_REDIRECTS"] == "0" and env["VLLM_CPU_KVCACHE_SPACE"] == "1"


@pytest.mark.parametrize("path", PROFILES, ids=lambda p: p.stem)
def test_with_no_remote_hosts_the_engine_fetches_from_no_host(path):
    profile = load_config(path)
    assert media_domains_in(vllm_command(profile)) == ["remote-images-refused.invalid"]
    assert engine_env(profile)["VLLM_MEDIA_URL_ALLOW_REDIRECTS"] == "0"


def test_the_engine_allow_list_cannot_be_set_apart_from_the_gateways():
    with pytest.raises(ProfileError, match="remote_hosts"):
        vllm_command(load_config(CONFIGS / "cpu-demo.yaml", {"vllm": {"allowed-media-domains": ["x.org"]}}))
    profile = load_config(
        CONFIGS / "cpu-demo.yaml", {"engine": {"env": {"VLLM_MEDIA_URL_ALLOW_REDIRECTS": "1"}}}
    )
    assert engine_env(profile)["VLLM_MEDIA_URL_ALLOW_REDIRECTS"] == "0"
