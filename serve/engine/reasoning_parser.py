"""MedGemma's thinking split for vLLM: `<unused94>thought\\n...<unused95>answer` -> `reasoning`, `content`.

A vLLM plugin (profiles: `reasoning-parser-plugin` names this file, `reasoning-parser: medgemma`). vLLM imports it in
its own processes; the gateway never does. It imports only vLLM and the standard library.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from vllm.entrypoints.generate.base.protocol import DeltaMessage
from vllm.reasoning import ReasoningParser, ReasoningParserManager

NAME = "medgemma"
START = "<unused94>"  # id 100 in the Gemma 3 tokenizer
END = "<unused95>"  # id 101
# Google's output names the block: `<unused94>thought\n...`. The label is not part of the thought, so it is
# dropped (as vLLM's Gemma 4 parser drops its own "thought\n").
LABEL = "thought\n"
# Where Gemma's chat template hands the turn to the model: what follows is the output.
GENERATION_PROMPT = "<start_of_turn>model\n"


def visible_thought(thought: str) -> str:
    """The thought without its label; a label still arriving (a prefix of it) shows nothing yet."""
    if thought.startswith(LABEL):
        return thought[len(LABEL) :]
    return "" if LABEL.startswith(thought) else thought


def split(text: str) -> tuple[str | None, str | None]:
    """(reasoning, content) of a whole or partial output. Only an output that opens with the start marker thinks
    ("no reasoning" otherwise: all of it is the answer); the thought runs to the end marker, or to the end of the
    text while it is still open (a thought cut by max_tokens has no answer)."""
    if not text.startswith(START):
        return None, text or None
    thought, closed, answer = text[len(START) :].partition(END)
    return visible_thought(thought) or None, (answer or None) if closed else None


def grown(before: str | None, after: str | None) -> str | None:
    """What a stream adds between two splits of its growing text."""
    before, after = before or "", after or ""
    if not after.startswith(before):
        return None  # splits only grow, unless ordinary tokens spell a start marker; then send nothing
    return after[len(before) :] or None


def after(ids: Sequence[int], marker: Sequence[int]) -> list[int]:
    """The ids after the last occurrence of `marker` (all of them without one). The API server hands the parser
    output ids alone, the engine core prompt and output together: this finds the output in both."""
    ids, marker = list(ids), list(marker)
    end = len(ids) if marker else 0
    while end > 0:
        try:
            i = end - 1 - ids[end - 1 :: -1].index(marker[0])
        except ValueError:
            break
        if ids[i : i + len(marker)] == marker:
            return ids[i + len(marker) :]
        end = i
    return ids


@ReasoningParserManager.register_module(NAME)
class MedGemmaReasoningParser(ReasoningParser):
    """The markers are special tokens, which vLLM drops from text by default (skip_special_tokens): this parser
    turns that off per request (vLLM's non-streamed path hands it text only) and decides on token ids wherever
    vLLM gives them (stream phases, the structured-output gate)."""

    def __init__(self, tokenizer: Any, *args: Any, **kwargs: Any) -> None:
        super().__init__(tokenizer, *args, **kwargs)
        vocab = self.vocab
        if START not in vocab or END not in vocab:
            raise RuntimeError(f"the tokenizer has no {START}/{END}: not a Gemma 3 (MedGemma) tokenizer")
        self.start_id: int = vocab[START]
        self.end_id: int = vocab[END]
        self.turn_ids: list[int] = list(tokenizer.encode(GENERATION_PROMPT, add_special_tokens=False))

    @property
    def reasoning_start_str(self) -> str:
        return START

    @property
    def reasoning_end_str(self) -> str:
        return END

    def adjust_request(self, request: Any) -> Any:
        # Keep the markers in the text; vLLM's own parsers for special-token markers do the same (Gemma 4, Kimi).
        request.skip_special_tokens = False
        if hasattr(request, "spaces_between_special_tokens"):
            request.spaces_between_special_tokens = False
        # Any grammar (json_schema, tools, regex) applies from the first token. vLLM 0.32 would leave tokens
        # unconstrained while reasoning may still open, and one free token before the grammar breaks the JSON
        # (a rejected token ends the request in error). So an answer under a grammar has no thought: the
        # marker is not valid JSON. Without a grammar vLLM ignores this flag.
        if "_grammar_from_parser" in getattr(type(request), "__private_attributes__", {}):
            request._grammar_from_parser = True
        return request

    def thinks(self, output_ids: Sequence[int]) -> bool:
        return bool(output_ids) and output_ids[0] == self.start_id

    def is_reasoning_end(self, input_ids: Sequence[int]) -> bool:
        """Reasoning is over once the output has begun without the start marker, or its thought has closed."""
        output = after(input_ids, self.turn_ids)
        if not output:
            # A prompt handing the turn to the model. The API server's parsers (they hold the model config) start
            # the split undecided: the first token may open a thought. The engine core asks only for requests that
            # came without a decision (the Responses API): there a grammar must bind from the first token too.
            return self._model_config is None
        return not self.thinks(output) or self.end_id in output

    def is_reasoning_end_streaming(self, input_ids: Sequence[int], delta_ids: Iterable[int]) -> bool:
        return self.end_id in delta_ids or self.is_reasoning_end(input_ids)

    def extract_content_ids(self, input_ids: list[int]) -> list[int]:
        if self.end_id in input_ids:
            return input_ids[input_ids.index(self.end_id) + 1 :]
        return [] if self.thinks(input_ids) else list(input_ids)

    def count_reasoning_tokens(self, token_ids: Sequence[int]) -> int:
        if not self.thinks(token_ids):
            return 0
        ids = list(token_ids)
        return (ids.index(self.end_id) if self.end_id in ids else len(ids)) - 1

    def extract_reasoning(self, model_output: str, request: Any) -> tuple[str | None, str | None]:
        return split(model_output)

    def extract_reasoning_streaming(
        self,
        previous_text: str,
        current_text: str,
        delta_text: str,
        previous_token_ids: Sequence[int],
        current_token_ids: Sequence[int],
        delta_token_ids: Sequence[int],
    ) -> DeltaMessage | None:
        """The delta between the splits of the text before and after: the joined deltas equal the non-streamed
        answer. vLLM calls this until is_reasoning_end_streaming says the thought is over, then passes content
        through itself."""
        (r0, c0), (r1, c1) = split(previous_text), split(current_text)
        reasoning, content = grown(r0, r1), grown(c0, c1)
        if reasoning is None and content is None:
            return None
        return DeltaMessage(reasoning=reasoning, content=content)
