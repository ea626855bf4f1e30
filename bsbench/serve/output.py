"""One request's output as its tokens arrive: the ids, and the text cut before the first stop string.

`add(ids, stop_token)` returns the new text to hand out and the new ids to count; once the
output has stopped (a stop string in its text, or the engine's stop token: EOS or one of
`stop_token_ids`) it takes nothing more. A stop string counts once `min_tokens` tokens are out;
the text is cut before it, and the ids and usage run to the token that completed it. A stop
token is counted and returned in the ids, its text left out. While stop strings are set, the
text's last characters that could begin one are held back until the next token (or the end)
decides. `finish_reason` is "stop" once stopped, else "length".
"""

from __future__ import annotations

from dataclasses import dataclass, field

from bsbench.serve.responses import Detokenizer


@dataclass(slots=True)
class Output:
    text: Detokenizer
    stops: tuple[str, ...] = ()
    min_tokens: int = 0
    ids: list[int] = field(default_factory=list)
    stopped: bool = False
    held: str = ""  # text not handed out yet: it may begin a stop string

    def add(self, ids: list[int], stop_token: bool = False) -> tuple[str, list[int]]:
        if self.stopped:
            return "", []
        self.ids.extend(ids)
        piece = self.text.add(ids[:-1] if stop_token else ids)
        if stop_token:
            self.stopped = True
            piece += self.text.flush()
        return self._cut(piece, final=self.stopped), ids

    def flush(self) -> str:
        """The rest of the text at the end (nothing once stopped: that was handed out with the stop)."""
        return "" if self.stopped else self._cut(self.text.flush(), final=True)

    @property
    def finish_reason(self) -> str:
        return "stop" if self.stopped else "length"

    def _cut(self, piece: str, *, final: bool) -> str:
        text, self.held = self.held + piece, ""
        if self.stops and len(self.ids) >= self.min_tokens:
            found = [at for stop in self.stops if (at := text.find(stop)) >= 0]
            if found:
                self.stopped = True
                return text[:min(found)]
        if final or not self.stops:
            return text
        keep = len(text)
        for stop in self.stops:  # the longest tail of `text` that begins some stop string
            for n in range(min(len(stop) - 1, len(text)), 0, -1):
                if stop.startswith(text[-n:]):
                    keep = min(keep, len(text) - n)
                    break
        self.held = text[keep:]
        return text[:keep]
