"""The user's `--backend` words and what they mean, without loading any backend: what commands ask before a
backend is chosen (the choice itself is `factory.backend_for`)."""

IN_PROCESS = ("real", "sim")  # backends whose steps run in this process (a policy of ours decides them)
REMOTE = "openai"  # a remote server decides and runs the steps


def is_remote(backend: str) -> bool:
    """True for `--backend openai`: the workload goes to a server (backends/openai.py), not to a session."""
    return backend == REMOTE


def is_simulated(backend: str) -> bool:
    """True for `--backend sim`: no model is loaded, every time comes from a cost model."""
    return backend == "sim"
