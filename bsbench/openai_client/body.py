"""The JSON body of one request: the workload's prompt and exactly its output length, streamed."""

from __future__ import annotations

from typing import Any

from bsbench.openai_client.options import ClientOptions
from bsbench.workloads.request import RequestSpec


def request_body(spec: RequestSpec, prompt_text: str | None, model: str, options: ClientOptions) -> dict[str, Any]:
    """Greedy, streamed, `max_tokens` = the workload's output length. Unless strict_openai: `ignore_eos` and
    `min_tokens` (vLLM and SGLang honour them) so that the server generates exactly that many tokens, and
    `return_token_ids` so that it returns the generated ids. `prompt_text` is the decoded prompt (None when
    the prompt goes as token ids). `options.temperature` replaces greedy; `options.extra_body` is merged in
    last, so that it can set any field (as vLLM's --extra-body)."""
    body: dict[str, Any] = {"model": model, "max_tokens": spec.output_len, "temperature": options.temperature,
                            "stream": True,
                            "stream_options": {"include_usage": True}}
    if options.endpoint == "chat":
        body["messages"] = [{"role": "user", "content": prompt_text}]
    else:
        body["prompt"] = list(spec.prompt_ids) if options.prompt_as == "token-ids" else prompt_text
    if not options.strict_openai:
        body.update(ignore_eos=True, min_tokens=spec.output_len, return_token_ids=True)
    body.update(options.extra_body)
    return body
