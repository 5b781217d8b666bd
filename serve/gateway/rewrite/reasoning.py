"""MedGemma's thought, split out by the engine's reasoning parser (serve/engine/reasoning_parser.py), under both
names clients read: vLLM 0.32 calls the field `reasoning` (its deprecated name `reasoning_content` is gone from
its answers), and clients written for DeepSeek-style APIs and older vLLM read `reasoning_content`."""

from __future__ import annotations

from typing import Any

FIELD, ALIAS = "reasoning", "reasoning_content"
MARK = b'"reasoning":"'  # a frame holding reasoning text: the only stream frames this module reads


def alias_choices(answer: dict[str, Any], key: str) -> bool:
    """Copy each choice's `key` object's `reasoning` text to `reasoning_content`, in place; True if any was."""
    copied = False
    for choice in answer.get("choices") or ():
        part = choice.get(key) if isinstance(choice, dict) else None
        if isinstance(part, dict) and isinstance(part.get(FIELD), str) and ALIAS not in part:
            part[ALIAS] = part[FIELD]
            copied = True
    return copied
