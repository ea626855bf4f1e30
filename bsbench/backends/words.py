"""The user's `--backend` words and what they mean, without loading any backend: what commands ask before a
backend is chosen (the choice itself is `factory.backend_for`)."""

IN_PROCESS = ("real", "sim")  # backends whose steps run in this process (a policy of ours decides them)
REMOTE = "openai"  # a remote server decides and runs the steps
# `vllm bench serve`'s own --backend words for an OpenAI-compatible server, so its command lines run unchanged:
# each means --backend openai, with the endpoint it implies (None: --endpoint's default)
VLLM_CLIENT_WORDS: dict[str, str | None] = {"vllm": None, "openai-chat": "chat"}


def is_remote(backend: str) -> bool:
    """True for `--backend openai` (or vLLM's words for it): the workload goes to a server (backends/openai.py),
    not to a session."""
    return backend == REMOTE or backend in VLLM_CLIENT_WORDS


def remote_endpoint(backend: str) -> str | None:
    """The endpoint a remote backend word implies (vLLM's `openai-chat`: chat), or None."""
    return VLLM_CLIENT_WORDS.get(backend)


def is_simulated(backend: str) -> bool:
    """True for `--backend sim`: no model is loaded, every time comes from a cost model."""
    return backend == "sim"
