"""A bounded, thread-safe ring buffer of log lines with blocking reads for `follow`."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True)
class Line:
    seq: int
    ts: float
    stream: str
    msg: str


class LogBuffer:
    def __init__(self, max_lines: int) -> None:
        if max_lines < 1:
            raise ValueError("max_lines must be >= 1")
        self._lines: deque[Line] = deque(maxlen=max_lines)
        self._cond = threading.Condition()
        self._seq = 0
        self._closed = False

    @property
    def max_lines(self) -> int:
        return self._lines.maxlen or 0

    def append(self, stream: str, msg: str) -> Line:
        with self._cond:
            self._seq += 1
            line = Line(self._seq, time.time(), stream, msg)
            self._lines.append(line)
            self._cond.notify_all()
            return line

    def tail(self, n: int = 0) -> list[Line]:
        """The last n lines (0 = every buffered line), oldest first."""
        with self._cond:
            lines = list(self._lines)
        return lines if n <= 0 else lines[-n:]

    def snapshot(self, n: int = 0) -> tuple[list[Line], int]:
        """Like tail(), plus the newest sequence number at that instant (for follow)."""
        with self._cond:
            lines = list(self._lines)
            seq = self._seq
        return (lines if n <= 0 else lines[-n:]), seq

    def after(self, seq: int, timeout: float | None = None) -> list[Line]:
        """Lines newer than seq; waits up to timeout for one when there is none yet.

        Lines evicted before the reader caught up are skipped (the reader gets the oldest
        still buffered). Returns [] on timeout or once the buffer is closed.
        """
        with self._cond:
            if self._seq <= seq and not self._closed:
                self._cond.wait(timeout)
            return [line for line in self._lines if line.seq > seq]

    @property
    def last_seq(self) -> int:
        with self._cond:
            return self._seq

    def close(self) -> None:
        """Wakes every follower; they see `closed` and end their streams."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
