"""The Backend protocol: who executes a run's steps, and what its record says about that.

A backend is chosen once per run configuration by `factory.backend_for`, the one place that reads the
`--backend` and `--clock` strings. Every kind owns:
- opening a session (`open_session`): the runner, KV cache, clock and cost model a run drives; a session is
  reused across runs with the same `RunConfig.session_key()`;
- describing itself (`describe`): one line for banners, naming what the times are;
- its id and its own record section (`ModelSession.part`, a typed `record.backend_part.BackendPart`, whose
  `backend_id()` keeps runs of different backends out of one table, sweep key or gate baseline).

In-process kinds (they implement `Backend`): `real` (the model runner, wall clock), `virtual` (the model runner,
time from a cost model), `sim` (a cost model only: no torch, no weights) and `cluster` (several simulated
instances, prefill and decode, on one virtual clock). The remote kind, `openai` (backends/openai.py), runs
no session here: a server runs its own policy, and its session (served model, warm-up) is opened per run by
the HTTP client; it describes itself and owns its record part (`OpenAIPart`) alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from bsbench.backends.session import ModelSession
    from bsbench.progress import Progress


class Backend(Protocol):
    """One backend kind for one run configuration (see the module docstring for the contract)."""

    kind: ClassVar[str]

    def open_session(self, progress: Progress) -> ModelSession:
        """The loaded runner of this configuration; user errors (a model that does not fit) are BsbenchError."""
        ...

    def describe(self, session: ModelSession) -> str:
        """One line for banners: what runs the steps and what the times are."""
        ...
