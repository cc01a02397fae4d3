"""A minimal terminal model for tests: enough of VT100 to replay what `build --progress=tty`
draws (text, CR, LF, cursor up, erase below / to end of line) into the final screen."""

from __future__ import annotations

import re

_ESCAPE = re.compile(r"\x1b\[([0-9;?]*)([A-Za-z])")


def final_screen(output: str) -> list[str]:
    """The lines on screen after `output` was written to a terminal (no wrapping)."""
    lines: list[str] = [""]
    row = col = 0
    pos = 0
    while pos < len(output):
        match = _ESCAPE.match(output, pos)
        if match:
            pos = match.end()
            arg, command = match[1], match[2]
            if command == "A":
                row = max(row - int(arg or "1"), 0)
            elif command == "J":
                lines[row] = lines[row][:col]
                del lines[row + 1 :]
            elif command == "K":
                lines[row] = lines[row][:col]
            continue
        char = output[pos]
        pos += 1
        if char == "\r":
            col = 0
        elif char == "\n":
            row += 1
            col = 0
            if row == len(lines):
                lines.append("")
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + char + line[col + 1 :]
            col += 1
    return [line.rstrip() for line in lines if line.rstrip()] if lines else []
