"""`dockling build --progress`: the daemon's classic JSON messages shown as docker's classic
builder prints them (`plain`), or as a compact live view on a terminal (`tty`).

The live view keeps one finished line per step (`[3/9] RUN make   1.2s`, or `CACHED`) and
redraws, in place, the current step with the last few lines of its output.  Redrawing
only moves the cursor up over the lines it drew and clears below, so every drawn line is
cut to the terminal's width (a wrapped line would break the count).
"""

from __future__ import annotations

import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable

from dockling.cli.context import CLIError

TYPE_CHECKING = False
if TYPE_CHECKING:  # typing costs a CLI start a few ms: annotations only
    from typing import Any, TextIO

MODES = ("auto", "plain", "tty")
TAIL = 6  # output lines shown under the running step
KEPT = 200  # output lines kept per step, printed in full when the step fails
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")
_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def choose_mode(progress: str | None, stdout_is_tty: bool) -> str:
    """`plain` or `tty` for the --progress value; `auto` is tty on a (non-dumb) terminal."""
    value = (progress or "auto").lower()
    if value not in MODES:
        raise CLIError(f'invalid progress mode "{progress}": use auto, plain or tty')
    if value == "auto":
        dumb = os.environ.get("TERM", "") == "dumb"
        return "tty" if stdout_is_tty and not dumb else "plain"
    return value


class PlainView:
    """Docker's classic output: every stream text as it comes."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def status(self, line: str) -> None:
        self.out.write(line + "\n")

    def text(self, chunk: str) -> None:
        self.out.write(chunk)
        self.out.flush()

    def close(self, failed: bool) -> None:
        self.out.flush()


class TtyView:
    """The live view; see the module docstring.  `clock` is injectable for tests."""

    def __init__(
        self, out: TextIO, width: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.out = out
        self.width = max(width, 20)
        self.clock = clock
        self._partial = ""
        self._header: str | None = None
        self._started = 0.0
        self._cached = False
        self._lines: deque[str] = deque(maxlen=KEPT)
        self._drawn = 0

    def status(self, line: str) -> None:
        self._line(line)
        self._draw()

    def text(self, chunk: str) -> None:
        self._partial += chunk
        *complete, self._partial = self._partial.split("\n")
        for line in complete:
            self._line(line)
        self._draw()

    def close(self, failed: bool) -> None:
        """End the view: the last step finishes (or, failed, shows all of its output)."""
        if self._partial:
            self._line(self._partial)
            self._partial = ""
        if failed and self._header is not None:
            self._erase()
            self._permanent(self._row(self._header, "ERROR"))
            for line in self._lines:
                self._permanent("  " + line)
            self._header = None
        self._finish()
        self.out.flush()

    def _line(self, raw: str) -> None:
        # A carriage return rewrites the line (progress bars): keep what it ended as.
        parts = [part for part in raw.split("\r") if part]
        line = _CONTROL.sub("", parts[-1] if parts else "").rstrip()
        step = _STEP.match(line)
        if step:
            self._finish()
            self._header = f"[{step[1]}/{step[2]}] {step[3]}"
            self._started = self.clock()
            self._cached = False
            self._lines.clear()
        elif line == " ---> Using cache":
            self._cached = True
        elif line.startswith((" ---> ", "Removing intermediate container")):
            pass  # the classic builder's bookkeeping: the step lines say enough
        elif line.startswith(("Successfully built", "Successfully tagged", "[Warning]")):
            self._finish()
            self._permanent(line)
        elif self._header is None:
            if line:
                self._permanent(line)
        else:
            self._lines.append(line)

    def _finish(self) -> None:
        if self._header is None:
            return
        self._erase()
        suffix = "CACHED" if self._cached else f"{self.clock() - self._started:.1f}s"
        self._permanent(self._row(self._header, suffix))
        self._header = None
        self._lines.clear()

    def _row(self, header: str, suffix: str) -> str:
        """`header` and `suffix` on one line of the terminal's width, suffix at the right."""
        room = self.width - 1 - len(suffix) - 1
        if len(header) > room:
            header = header[: max(room - 3, 0)] + "..."
        return header.ljust(room) + " " + suffix

    def _cut(self, line: str) -> str:
        return line if len(line) < self.width else line[: self.width - 4] + "..."

    def _permanent(self, line: str) -> None:
        self._erase()
        self.out.write(self._cut(line) + "\n")

    def _erase(self) -> None:
        if self._drawn:
            # Up to the first drawn line, then clear from there to the end of the screen.
            self.out.write(f"\x1b[{self._drawn}A\r\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        self._erase()
        if self._header is not None:
            rows = [self._row(self._header, f"{self.clock() - self._started:.1f}s")]
            rows += [self._cut("  " + line) for line in list(self._lines)[-TAIL:]]
            self.out.write("".join(row + "\n" for row in rows))
            self._drawn = len(rows)
        self.out.flush()


def render(
    messages: Iterable[Any],
    out: TextIO,
    *,
    mode: str = "plain",
    quiet: bool = False,
    width: int | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Show the build's messages on `out` in `mode` ("plain" or "tty"; nothing if `quiet`)
    and return the image id; an error message raises CLIError with docker's text."""
    view: PlainView | TtyView
    view = TtyView(out, width or _columns(out), clock) if mode == "tty" else PlainView(out)
    image_id = ""
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("error"):
            detail = message.get("errorDetail") or {}
            if not quiet:
                view.close(failed=True)
            raise CLIError(str(detail.get("message") or message["error"]), 1)
        aux = message.get("aux")
        if isinstance(aux, dict) and aux.get("ID"):
            image_id = str(aux["ID"])
        if quiet:
            continue
        status = message.get("status")
        if status and not message.get("progressDetail"):
            # A FROM image being pulled: its status lines, without the progress bars.
            prefix = f"{message['id']}: " if message.get("id") else ""
            view.status(f"{prefix}{status}")
        stream = message.get("stream")
        if stream:
            view.text(str(stream))
    if not quiet:
        view.close(failed=False)
    return image_id


def _columns(out: TextIO) -> int:
    """The terminal's width as `shutil.get_terminal_size` finds it (COLUMNS first)."""
    try:
        return int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        pass
    try:
        return os.get_terminal_size(out.fileno()).columns
    except (OSError, ValueError, AttributeError):
        return 80
