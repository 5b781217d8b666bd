"""The MedGemma reasoning parser on token sequences, through vLLM's own composed parser (stream and non-stream) and
its structured-output gate; no engine is started."""

from types import SimpleNamespace

import pytest

from serve.engine.command import REPO_ROOT

# Imports vLLM (~15 s; the full install, make test), inside fixtures and tests: test-fast collects this module on
# the light install before deselecting it.
pytestmark = pytest.mark.full

START, END = 100, 101  # <unused94>, <unused95> in the Gemma 3 tokenizer
TURN = [105, 4368, 107]  # "<start_of_turn>model\n": the generation prompt
PROMPT = [2, 105, 2364, 107, 9000, 106, 107, *TURN]  # <bos><start_of_turn>user\n...<end_of_turn>\n + TURN
# (id, text) of an output as vLLM's detokenizer gives it with skip_special_tokens off. Ids other than the markers
# and the generation prompt are made up: the parser decides on those alone.
THOUGHT = [(START, "<unused94>"), (45518, "thought"), (107, "\n"), (9001, "The"), (9002, " lungs are clear.")]
ANSWER = [(9003, "No"), (9004, " acute findings.")]
THINKING = [*THOUGHT, (END, "<unused95>"), *ANSWER]


class GemmaVocab:
    """The part of the Gemma 3 tokenizer the parser reads, with the real ids."""

    def get_vocab(self) -> dict[str, int]:
        return {"<unused94>": START, "<unused95>": END, "<start_of_turn>": 105, "model": 4368, "\n": 107}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        assert text == "<start_of_turn>model\n" and not add_special_tokens
        return list(TURN)


@pytest.fixture(scope="module")
def parser_cls():
    from vllm.parser.parser_manager import ParserManager

    from serve.engine import reasoning_parser  # registers "medgemma", as vLLM's plugin import does

    assert reasoning_parser.NAME == "medgemma"
    return ParserManager.get_parser(reasoning_parser_name="medgemma")


def server(parser_cls, tokenizer=None):
    """A parser as vLLM's API server makes one (per request, with the server's model config)."""
    return parser_cls(tokenizer or GemmaVocab(), model_config=SimpleNamespace())


def chat_request(**kw):
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest

    return ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "Findings?"}], **kw)


def text(tokens) -> str:
    return "".join(t for _, t in tokens)


def stream(parser_cls, tokens, sizes) -> tuple[str | None, str | None, list]:
    """vLLM's streamed path: deltas of `sizes` tokens each; (reasoning, content, deltas) as the client gets them."""
    parser, request, deltas, i = server(parser_cls), chat_request(stream=True), [], 0
    for n in sizes:
        part = tokens[i : i + n]
        i += n
        delta = parser.parse_delta(
            text(part), [t for t, _ in part], request, prompt_token_ids=PROMPT, finished=i >= len(tokens)
        )
        if delta is not None:
            deltas.append(delta)
    assert i == len(tokens)
    reasoning = "".join(d.reasoning or "" for d in deltas) or None
    content = "".join(d.content or "" for d in deltas) or None
    return reasoning, content, deltas


def whole(parser_cls, tokens) -> tuple[str | None, str | None]:
    """vLLM's non-streamed path: the parser gets the output text only."""
    reasoning, content, _ = server(parser_cls).parse(text(tokens), chat_request(), False)
    return reasoning, content


@pytest.mark.parametrize(
    "sizes", [[1] * len(THINKING), [len(THINKING)], [2, 3, 1, 2], [1, 6, 1], [4, 3, 1], [5, 3]]
)
def test_the_thought_goes_to_reasoning_and_the_answer_to_content(parser_cls, sizes):
    reasoning, content, deltas = stream(parser_cls, THINKING, sizes)
    assert (reasoning, content) == ("The lungs are clear.", "No acute findings.")
    assert whole(parser_cls, THINKING) == (reasoning, content)
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert not any(d.reasoning for d in deltas[first_content + 1 :])  # no thought after the answer began


def test_markers_and_the_thought_label_never_reach_the_client(parser_cls):
    _, _, deltas = stream(parser_cls, THINKING, [1] * len(THINKING))
    sent = "".join((d.reasoning or "") + (d.content or "") for d in deltas)
    assert "<unused9" not in sent and "thought" not in sent


def test_an_answer_without_the_start_marker_is_all_content(parser_cls):
    plain = [(9003, "No"), (9004, " acute findings.")]
    assert whole(parser_cls, plain) == (None, "No acute findings.")
    assert stream(parser_cls, plain, [1, 1])[:2] == (None, "No acute findings.")


def test_a_start_marker_after_the_first_token_does_not_open_a_thought(parser_cls):
    late = [(9003, "No"), *THOUGHT, (END, "<unused95>")]
    assert whole(parser_cls, late) == (None, text(late))
    assert stream(parser_cls, late, [1] * len(late))[:2] == (None, text(late))


def test_a_thought_cut_by_max_tokens_has_no_answer(parser_cls):
    assert whole(parser_cls, THOUGHT) == ("The lungs are clear.", None)
    assert stream(parser_cls, THOUGHT, [1] * len(THOUGHT))[:2] == ("The lungs are clear.", None)


def test_a_thought_without_its_label_is_kept_whole(parser_cls):
    bare = [(START, "<unused94>"), (9001, "thoughtful"), (END, "<unused95>"), (9003, "No")]
    assert whole(parser_cls, bare) == ("thoughtful", "No")
    assert stream(parser_cls, bare, [1, 1, 1, 1])[:2] == ("thoughtful", "No")


def test_reasoning_ends_on_the_first_token_unless_it_is_the_start_marker(parser_cls):
    p = server(parser_cls).reasoning_parser
    assert not p.is_reasoning_end(PROMPT)  # the turn is the model's: its first token may open a thought
    assert p.is_reasoning_end_streaming([9003], [9003])  # the API server passes output ids
    assert p.is_reasoning_end_streaming([*PROMPT, 9003], [9003])  # the engine core, prompt and output
    assert not p.is_reasoning_end_streaming([*PROMPT, START], [START])
    assert not p.is_reasoning_end_streaming([*PROMPT, START, 9001], [9001])
    assert p.is_reasoning_end_streaming([*PROMPT, START, 9001, END], [END])
    assert p.is_reasoning_end([2, 9010, 9011])  # a raw completion prompt: no thought can open


def test_the_engine_core_binds_a_grammar_from_the_first_token_of_undecided_requests(parser_cls):
    """The engine core asks about the prompt only for requests that came without reasoning_ended (the Responses
    API); its parser is built without the server's model config (vllm/v1/structured_output/__init__.py)."""
    from serve.engine.reasoning_parser import MedGemmaReasoningParser

    engine_core = MedGemmaReasoningParser(tokenizer=GemmaVocab(), chat_template_kwargs={})
    assert engine_core.is_reasoning_end(PROMPT)
    assert not server(parser_cls).reasoning_parser.is_reasoning_end(PROMPT)


def test_a_thought_in_an_earlier_turn_does_not_count(parser_cls):
    p = server(parser_cls).reasoning_parser
    history = [*PROMPT, START, 9001, 106, 107, 105, 2364, 107, 9000, 106, 107, *TURN]
    assert not p.is_reasoning_end(history)
    assert not p.is_reasoning_end([*PROMPT, START, 9001, END, 9003, 106, 107, *TURN])


def test_content_ids_and_reasoning_token_counts(parser_cls):
    p = server(parser_cls).reasoning_parser
    ids = [t for t, _ in THINKING]
    assert p.extract_content_ids(ids) == [9003, 9004]
    assert p.extract_content_ids([9003, 9004]) == [9003, 9004]
    assert p.extract_content_ids([START, 9001]) == []
    assert p.count_reasoning_tokens(ids) == 4  # the label and the thought
    assert p.count_reasoning_tokens([9003, START, 9001, END]) == 0
    assert p.count_reasoning_tokens([START, 9001]) == 1


def test_requests_keep_the_markers_in_text(parser_cls):
    request = server(parser_cls).adjust_request(chat_request(skip_special_tokens=True))
    assert request.skip_special_tokens is False and request.spaces_between_special_tokens is False


@pytest.mark.parametrize(
    "kw",
    [
        {
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "f", "schema": {"type": "object"}},
            }
        },
        {"response_format": {"type": "json_object"}},
        {"structured_outputs": {"regex": "(yes|no)"}},
        {},
    ],
    ids=["json_schema", "json_object", "regex", "plain"],
)
def test_a_grammar_applies_from_the_first_token_and_the_split_still_runs(parser_cls, kw):
    """vLLM 0.32 leaves tokens unconstrained while reasoning may still open; one free token before the grammar
    breaks JSON. The engine gets reasoning_ended=True (vLLM ignores it without a grammar), while the stream split
    starts undecided and follows the first token."""
    parser = server(parser_cls)
    request = parser.adjust_request(chat_request(**kw))
    assert request.resolve_reasoning_ended(parser, PROMPT) is True
    assert stream(parser_cls, THINKING, [1] * len(THINKING))[0] == "The lungs are clear."


def test_the_tokenizer_must_have_the_markers(parser_cls):
    class Other(GemmaVocab):
        def get_vocab(self) -> dict[str, int]:
            return {"<think>": 7}

    with pytest.raises(RuntimeError, match="unused94"):
        server(parser_cls, Other())


def test_vllm_loads_the_plugin_from_its_file_path():
    """What `vllm serve --reasoning-parser-plugin FILE` runs in the API server and the engine core."""
    from vllm.reasoning import ReasoningParserManager

    ReasoningParserManager.import_reasoning_parser(str(REPO_ROOT / "serve/engine/reasoning_parser.py"))
    assert ReasoningParserManager.get_reasoning_parser("medgemma").__name__ == "MedGemmaReasoningParser"
