"""The topology of a disaggregated run: how many prefill and decode instances (`--instances prefill=N,decode=M`)."""

from __future__ import annotations

from dataclasses import dataclass

from bsbench.errors import BsbenchError

ROLES = ("prefill", "decode")
MAX_INSTANCES = 64  # per role: a simulation bound, not a hardware one


@dataclass(slots=True, frozen=True)
class Topology:
    """`prefill` prefill instances and `decode` decode instances, all on one virtual clock."""

    prefill: int = 1
    decode: int = 1

    def __str__(self) -> str:
        return f"prefill={self.prefill},decode={self.decode}"

    def names(self) -> list[tuple[str, str]]:
        """(instance name, role) in index order: prefill0.., then decode0.."""
        return [(f"prefill{i}", "prefill") for i in range(self.prefill)] + \
            [(f"decode{i}", "decode") for i in range(self.decode)]


def parse_instances(text: str) -> Topology:
    """'prefill=1,decode=2' -> Topology(1, 2); both roles, each once, 1..MAX_INSTANCES; BsbenchError otherwise."""
    counts: dict[str, int] = {}
    for part in str(text).split(","):
        role, sep, value = part.strip().partition("=")
        role = role.strip().lower()
        if not sep or role not in ROLES or role in counts:
            raise BsbenchError(f"--instances {text!r}: expected prefill=N,decode=M (each role once)")
        try:
            count = int(value.strip())
        except ValueError:
            raise BsbenchError(f"--instances {text!r}: {role} needs a whole number of instances") from None
        if not 1 <= count <= MAX_INSTANCES:
            raise BsbenchError(f"--instances {text!r}: {role} must be between 1 and {MAX_INSTANCES}")
        counts[role] = count
    if set(counts) != set(ROLES):
        raise BsbenchError(f"--instances {text!r}: expected prefill=N,decode=M (both roles)")
    return Topology(counts["prefill"], counts["decode"])
