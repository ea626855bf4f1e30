"""Request bodies of /v1/completions and /v1/chat/completions, checked and turned into a `GenerationRequest`.

What the engine does decides what is accepted: it generates greedily, one sequence per request,
until `max_tokens`, the tokenizer's EOS (unless `ignore_eos`), one of `stop_token_ids`, or a `stop`
string (a string or a list of strings); none of these ends it before `min_tokens`. Without
`max_tokens` (`max_completion_tokens` in chat) it may run to the context limit (None here: the app
sets it). `n` and `best_of` must be 1, `logprobs` and `echo` are refused, `temperature` / `top_p` /
`seed` are accepted and have no effect (greedy only). Unknown fields are ignored, as OpenAI
clients send many. Every refusal is an `ApiError` naming the field (400; 404 for a model the
server does not serve).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bsbench.serve.errors import ApiError
from bsbench.values import Flag, Integer, Invalid, Real, Rule, Text
from bsbench.workloads.tokenizer import TokenizerHandle

MAX_STOPS = 16  # stop strings per request (OpenAI allows 4)
_COUNT = Integer(1, 1 << 20, numbers_only=True)
_MIN_TOKENS = Integer(0, 1 << 20, numbers_only=True)
_TEMPERATURE = Real(0, 2, numbers_only=True)
_SHARE = Real(0, 1, numbers_only=True)
_FLAG = Flag()
_TEXT = Text()


@dataclass(slots=True, frozen=True)
class ServedModel:
    """What request parsing needs to know of the served model."""

    name: str
    tokenizer: TokenizerHandle
    vocab_size: int
    max_prompt_chars: int = 1 << 20  # a longer text prompt is refused before tokenising (serve/limits.py)
    eos_token_id: int | None = None  # generation stops there unless a request says ignore_eos


@dataclass(slots=True, frozen=True)
class GenerationRequest:
    """One checked request: the prompt's token ids and how to answer."""

    prompt_ids: list[int]
    max_tokens: int | None  # None: up to the context limit
    stream: bool
    include_usage: bool
    return_token_ids: bool
    stop: tuple[str, ...] = ()
    stop_token_ids: frozenset[int] = frozenset()
    ignore_eos: bool = False
    min_tokens: int = 0


def parse_completion(body: Any, model: ServedModel) -> GenerationRequest:
    """A /v1/completions body: `prompt` a string or a list of token ids (or a list of one string)."""
    fields = _common(body, model)
    if "prompt" not in body or body["prompt"] is None:
        raise ApiError(400, "'prompt' is required", "prompt")
    return _request(body, _prompt_ids(body["prompt"], model), fields)


def parse_chat(body: Any, model: ServedModel) -> GenerationRequest:
    """A /v1/chat/completions body: `messages` rendered by the tokenizer's chat template (`chat_prompt_ids`)."""
    fields = _common(body, model)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content} objects", "messages")
    rendered = [_message(m, i) for i, m in enumerate(messages)]
    _check_chars(sum(len(m["content"]) + len(m["role"]) for m in rendered), model, "messages")
    if "max_completion_tokens" in body and body["max_completion_tokens"] is not None:
        fields["max_tokens"] = _check(body, "max_completion_tokens", _COUNT)
    return _request(body, _checked_ids(model.tokenizer.chat_prompt_ids(rendered), model, "messages"), fields)


def _common(body: Any, model: ServedModel) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    name = body.get("model")
    if name is not None and name != model.name:
        raise ApiError(404, f"the model {str(name)[:100]!r} does not exist; this server serves {model.name!r}",
                       "model", "model_not_found")
    for field in ("n", "best_of"):
        if body.get(field) is not None and (body[field] != 1 or isinstance(body[field], bool)):
            raise ApiError(400, f"'{field}' must be 1 (one sequence per request), got {str(body[field])[:40]}", field)
    for field in ("logprobs", "top_logprobs", "echo"):
        if body.get(field) not in (None, False, 0):
            raise ApiError(400, f"'{field}' is not supported by bsbench serve", field)
    for field, rule in (("temperature", _TEMPERATURE), ("top_p", _SHARE)):
        if body.get(field) is not None:
            _check(body, field, rule)  # accepted and checked; decoding is greedy whatever the value
    max_tokens = None if body.get("max_tokens") is None else _check(body, "max_tokens", _COUNT)
    return {"max_tokens": max_tokens, "stop": _stops(body.get("stop")),
            "stop_token_ids": _stop_token_ids(body.get("stop_token_ids"))}


def _stops(value: Any) -> tuple[str, ...]:
    """`stop`: None, a string, or a list of strings; empty strings are dropped (they would stop at once)."""
    if value is None:
        return ()
    stops = [value] if isinstance(value, str) else value
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise ApiError(400, "'stop' must be a string or a list of strings", "stop")
    if len(stops) > MAX_STOPS:
        raise ApiError(400, f"'stop' has {len(stops)} strings, more than {MAX_STOPS}", "stop")
    return tuple(s for s in stops if s)


def _stop_token_ids(value: Any) -> frozenset[int]:
    if value is None:
        return frozenset()
    if not isinstance(value, list) or not all(isinstance(t, int) and not isinstance(t, bool) for t in value):
        raise ApiError(400, "'stop_token_ids' must be a list of token ids", "stop_token_ids")
    return frozenset(value)


def _request(body: dict[str, Any], prompt_ids: list[int], fields: dict[str, Any]) -> GenerationRequest:
    max_tokens = fields["max_tokens"]
    min_tokens = 0 if body.get("min_tokens") is None else _check(body, "min_tokens", _MIN_TOKENS)
    if max_tokens is not None and min_tokens > max_tokens:
        raise ApiError(400, f"'min_tokens' ({body['min_tokens']}) must not pass max_tokens ({max_tokens})",
                       "min_tokens")
    ignore_eos = body.get("ignore_eos") is not None and _check(body, "ignore_eos", _FLAG)
    stream = bool(body.get("stream") is not None and _check(body, "stream", _FLAG))
    options = body.get("stream_options")
    include_usage = False
    if options is not None:
        if not stream:
            raise ApiError(400, "'stream_options' is only allowed when 'stream' is true", "stream_options")
        if not isinstance(options, dict):
            raise ApiError(400, "'stream_options' must be an object", "stream_options")
        include_usage = options.get("include_usage") is not None and _check(options, "include_usage", _FLAG,
                                                                            param="stream_options.include_usage")
    return_ids = body.get("return_token_ids") is not None and _check(body, "return_token_ids", _FLAG)
    return GenerationRequest(prompt_ids, max_tokens, stream, bool(include_usage), bool(return_ids), fields["stop"],
                             fields["stop_token_ids"], bool(ignore_eos), min_tokens)


def _check(body: dict[str, Any], field: str, rule: Rule, why: str = "", *, param: str | None = None) -> Any:
    try:
        return rule.check(body[field])
    except Invalid as exc:
        raise ApiError(400, f"'{param or field}' {exc}" + (f" ({why})" if why else ""), param or field) from None


def _prompt_ids(prompt: Any, model: ServedModel) -> list[int]:
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if isinstance(prompt, str):
        _check_chars(len(prompt), model, "prompt")
        return _checked_ids(model.tokenizer.encode(prompt), model, "prompt")
    if isinstance(prompt, list) and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        return _checked_ids(list(prompt), model, "prompt")
    if isinstance(prompt, list) and prompt and all(isinstance(p, (list, str)) for p in prompt):
        raise ApiError(400, "'prompt' must be one prompt: batched prompts are not supported", "prompt")
    raise ApiError(400, "'prompt' must be a string or a list of token ids", "prompt")


def _check_chars(chars: int, model: ServedModel, param: str) -> None:
    if chars > model.max_prompt_chars:
        raise ApiError(400, f"'{param}' has {chars:,} characters, more than this server tokenises "
                            f"({model.max_prompt_chars:,})", param, "prompt_too_long")


def _checked_ids(ids: list[int], model: ServedModel, param: str) -> list[int]:
    if not ids:
        raise ApiError(400, f"'{param}' is empty: the prompt needs at least one token", param)
    bad = next((t for t in ids if not 0 <= t < model.vocab_size), None)
    if bad is not None:
        raise ApiError(400, f"'{param}' has token id {bad} but {model.name} has a vocabulary of {model.vocab_size} "
                            f"(ids 0..{model.vocab_size - 1})", param)
    return ids


def _message(message: Any, index: int) -> dict[str, str]:
    param = f"messages[{index}]"
    if not isinstance(message, dict) or not isinstance(message.get("role"), str):
        raise ApiError(400, f"'{param}' must be an object with a string 'role'", param)
    content = message.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):  # content parts: only text is understood
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str)
                   for p in content):
            raise ApiError(400, f"'{param}.content' parts must be text parts ({{type: text, text}})", param)
        content = "".join(p["text"] for p in content)
    elif not isinstance(content, str):
        raise ApiError(400, f"'{param}.content' must be a string or a list of text parts", param)
    return {"role": _TEXT.check(message["role"]), "content": content}
