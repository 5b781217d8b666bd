"""A test-only vLLM logits processor: a request naming a script of token ids (`vllm_xargs: {"script": [...]}`) gets
exactly those tokens, in order; every other request is untouched. It lets the random demo model emit MedGemma's
thinking markers where a real model would (logit_bias cannot: it biases every position alike)."""

from __future__ import annotations

from functools import partial
from typing import Any

import torch
from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

ARG = "script"


def script_of(params: Any) -> list[int] | None:
    script = (params.extra_args or {}).get(ARG)
    if script is None:
        return None
    if not isinstance(script, list) or not all(isinstance(t, int) and t >= 0 for t in script):
        raise ValueError(f"vllm_xargs.{ARG} must be a list of token ids")
    return script


def force(script: tuple[int, ...], output_ids: list[int], logits: torch.Tensor) -> torch.Tensor:
    """The next scripted token alone is possible; past the script (or outside the vocabulary) nothing changes."""
    step = len(output_ids)
    if step >= len(script) or script[step] >= logits.shape[-1]:
        return logits
    forced = torch.full_like(logits, float("-inf"))
    forced[script[step]] = 0.0
    return forced


class ScriptedTokens(AdapterLogitsProcessor):
    @classmethod
    def validate_params(cls, sampling_params: Any) -> None:
        script_of(sampling_params)  # a malformed script is the request's 400, not a dead engine

    def is_argmax_invariant(self) -> bool:
        return False  # it decides the argmax: greedy requests must run it too

    def new_req_logits_processor(self, params: Any) -> Any:
        script = script_of(params)
        return partial(force, tuple(script)) if script else None
