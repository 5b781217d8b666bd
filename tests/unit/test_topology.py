"""Topology in the profile: validation, the data-parallel flags and the Ray Serve LLM translation (pure)."""

import pytest

from serve.config import ConfigError, load_config
from serve.engine.command import ProfileError, vllm_command
from serve.scaleout.ray_config import llm_config, serve_application
from tests.unit.test_command import CONFIGS, flags

DEMO = CONFIGS / "cpu-demo.yaml"


def demo(**topology):
    return load_config(DEMO, {"topology": topology} if topology else None)


def test_single_is_the_default_and_adds_no_flags():
    argv = vllm_command(demo())
    assert demo().topology.kind == "single"
    assert "--data-parallel-size" not in argv and "--api-server-count" not in argv


def test_data_parallel_adds_ranks_and_one_api_server():
    f = flags(vllm_command(demo(kind="data-parallel", size=2)))
    assert f["--data-parallel-size"] == "2" and f["--api-server-count"] == "1"
    assert f["--host"] == "127.0.0.1"  # still one loopback server


@pytest.mark.parametrize(
    ("topology", "message"),
    [
        ({"kind": "data-parallel"}, "size >= 2"),
        ({"kind": "single", "size": 2}, "rank count"),
        ({"kind": "data-parallel", "size": 2, "replicas": 2}, "Ray Serve settings"),
        ({"kind": "ray", "replicas": 2, "autoscaling": {"max_replicas": 3}}, "not both"),
        ({"kind": "ray", "autoscaling": {"min_replicas": 3, "max_replicas": 2}}, "exceeds max_replicas"),
        ({"kind": "clustered"}, "topology.kind"),
        ({"kind": "ray", "ray": {"adress": "auto"}}, "unknown key"),
    ],
)
def test_inconsistent_topologies_are_refused_naming_the_problem(topology, message):
    with pytest.raises(ConfigError, match=message):
        demo(**topology)


@pytest.mark.parametrize("flag", ["data-parallel-size", "api-server-count"])
def test_engine_counts_cannot_be_set_in_the_vllm_section(flag):
    with pytest.raises(ProfileError, match="topology"):
        vllm_command(load_config(DEMO, {"vllm": {flag: 2}}))


def test_ray_config_on_cpu_carries_the_profiles_engine_options_and_env():
    cfg = llm_config(demo(kind="ray", replicas=2), model="/models/tiny", cpu=True)
    assert cfg["accelerator_config"] == {"kind": "cpu"} and "accelerator_type" not in cfg
    assert cfg["model_loading_config"] == {
        "model_id": "demo-tiny-gemma3-random",
        "model_source": "/models/tiny",
    }
    assert cfg["engine_kwargs"] == {
        "dtype": "bfloat16",
        "max_model_len": 8192,
        "limit_mm_per_prompt": {"image": 100},
        "enforce_eager": True,
        "generation_config": "vllm",
        "structured_outputs_config": {"backend": "xgrammar", "disable_any_whitespace": True},
        "allowed_media_domains": ["remote-images-refused.invalid"],
    }
    assert cfg["runtime_env"] == {
        "env_vars": {"VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_MEDIA_URL_ALLOW_REDIRECTS": "0"}
    }
    assert cfg["deployment_config"] == {"num_replicas": 2}


def test_ray_autoscaling_bounds_become_serve_autoscaling():
    auto = {"min_replicas": 1, "max_replicas": 3, "target_ongoing_requests": 4}
    cfg = llm_config(demo(kind="ray", autoscaling=auto), cpu=False)
    assert cfg["deployment_config"] == {"autoscaling_config": {**auto, "target_ongoing_requests": 4.0}}
    assert "accelerator_config" not in cfg  # GPUs: Ray's default placement, one GPU per replica


def test_ray_translation_refuses_what_the_command_builder_refuses():
    with pytest.raises(ProfileError, match="float16"):
        llm_config(load_config(DEMO, {"vllm": {"dtype": "float16"}, "topology": {"kind": "ray"}}), cpu=True)


def test_serve_application_is_the_openai_builder_with_one_model():
    app = serve_application(demo(kind="ray"), cpu=True)
    assert app["import_path"] == "ray.serve.llm:build_openai_app" and app["route_prefix"] == "/"
    assert len(app["args"]["llm_configs"]) == 1


@pytest.mark.full  # Ray is installed by make test (install-ray), not by the light install of make test-fast
def test_the_ray_translation_is_accepted_by_ray_serve_llm():
    import ray.serve.llm as llm

    config = llm.LLMConfig(**llm_config(demo(kind="ray", replicas=2), model="/models/tiny", cpu=True))
    assert config.model_id == "demo-tiny-gemma3-random"
