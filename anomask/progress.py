"""Progress of a long loop (training; other loops can use it too): a live bar on a terminal,
plain periodic lines elsewhere.

A log file or a pipe gets no carriage-return frames: one line every ``1/20`` of the loop or
every minute (whichever comes first), and at the end, each with the step, the loss and the
seconds per step."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm import tqdm

LINE_EVERY_S = 60.0
LINES_PER_STAGE = 20


class Progress:
    """``update(loss)`` once per iteration, ``write(text)`` for messages (shown also when
    ``enabled`` is false), ``close()`` at the end."""

    def __init__(self, name: str, total: int, initial: int, enabled: bool, stream: TextIO | None = None) -> None:
        self.name, self.total, self.iteration, self.enabled = name, total, initial, enabled
        self.stream = stream or sys.stderr
        self.bar = None
        if enabled and self.stream.isatty():
            self.bar = tqdm(total=total, initial=initial, desc=name, unit="it", dynamic_ncols=True, file=self.stream)
        self.every = max(1, total // LINES_PER_STAGE)
        self.started = self.last_line = time.monotonic()
        self.first = initial

    def update(self, loss: float) -> None:
        self.iteration += 1
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.3f}")
            return
        now = time.monotonic()
        due = self.iteration % self.every == 0 or self.iteration == self.total or now - self.last_line >= LINE_EVERY_S
        if self.enabled and due:
            rate = (now - self.started) / max(self.iteration - self.first, 1)
            self._line(
                f"[{self.name}] iteration {self.iteration}/{self.total}, loss {loss:.3f}, {rate:.2f} s/iteration"
            )
            self.last_line = now

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=self.stream)
        else:
            self._line(text)

    def _line(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
