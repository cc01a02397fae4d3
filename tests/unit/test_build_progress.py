"""The build progress renderer on a recorded list of the daemon's JSON messages."""

from __future__ import annotations

import io
import itertools
from typing import Any

import pytest

from dockling.cli.commands.build_progress import TAIL, TtyView, choose_mode, render
from dockling.cli.context import CLIError
from tests.helpers.screen import final_screen

# What POST /build streamed for a 4-step build (RUN output split mid-line on purpose).
RECORDED: list[dict[str, Any]] = [
    {"stream": "Step 1/4 : FROM busybox\n"},
    {"stream": " ---> 3f57d9401f8d\n"},
    {"stream": "Step 2/4 : ENV A=1\n"},
    {"stream": " ---> Using cache\n"},
    {"stream": " ---> 0a1b2c3d4e5f\n"},
    {"stream": "Step 3/4 : RUN for i in 1 2 3 4 5 6 7 8; do echo line$i; done\n"},
    {"stream": " ---> Running in 6b1d2e3f4a5b\n"},
    *({"stream": f"line{i}\n"} for i in range(1, 8)),
    {"stream": "li"},
    {"stream": "ne8\n"},
    {"stream": "Removing intermediate container 6b1d2e3f4a5b\n"},
    {"stream": " ---> 9e8d7c6b5a4f\n"},
    {"stream": 'Step 4/4 : CMD ["sh"]\n'},
    {"stream": " ---> Running in 1a2b3c4d5e6f\n"},
    {"stream": " ---> 5f4e3d2c1b0a\n"},
    {"aux": {"ID": "sha256:5f4e3d2c1b0a" + "0" * 52}},
    {"stream": "Successfully built 5f4e3d2c1b0a\n"},
    {"stream": "Successfully tagged app:1\n"},
]


def clock() -> Any:
    ticks = itertools.count()
    return lambda: next(ticks) * 0.5


def test_plain_is_the_classic_stream() -> None:
    out = io.StringIO()
    image = render(RECORDED, out, mode="plain")
    assert image.endswith("0" * 52)
    assert out.getvalue() == "".join(m.get("stream", "") for m in RECORDED)


def test_tty_final_screen_has_one_line_per_step_and_the_result() -> None:
    out = io.StringIO()
    render(RECORDED, out, mode="tty", width=60, clock=clock())
    raw = out.getvalue()
    assert "\x1b[" in raw  # redrawn in place
    screen = final_screen(raw)
    assert len(screen) == 6, screen
    assert screen[0].startswith("[1/4] FROM busybox") and screen[0].endswith("s")
    assert screen[1].startswith("[2/4] ENV A=1") and screen[1].endswith("CACHED")
    assert screen[2].startswith("[3/4] RUN for i in") and screen[2].endswith("s")
    assert screen[3].startswith('[4/4] CMD ["sh"]')
    assert screen[4:] == ["Successfully built 5f4e3d2c1b0a", "Successfully tagged app:1"]
    assert all(len(line) < 60 for line in screen)
    assert "line8" in raw and "Running in" not in raw


def test_tty_live_area_shows_the_running_step_and_its_last_lines() -> None:
    out = io.StringIO()
    view = TtyView(out, 80, clock())
    for message in RECORDED[:14]:  # stop in the middle of step 3's output
        view.text(message["stream"])
    screen = final_screen(out.getvalue())
    assert screen[0].startswith("[1/4] FROM") and screen[1].endswith("CACHED")
    assert screen[2].startswith("[3/4] RUN for i in") and screen[2].endswith("s")
    assert screen[3:] == [f"  line{i}" for i in range(7 - TAIL + 1, 8)]


def test_tty_failure_shows_the_failed_step_with_all_its_output() -> None:
    messages: list[dict[str, Any]] = [
        {"stream": "Step 1/2 : FROM busybox\n"},
        {"stream": "Step 2/2 : RUN echo boom; false\n"},
        *({"stream": f"out{i}\n"} for i in range(10)),
        {
            "errorDetail": {
                "message": "The command '/bin/sh -c false' returned a non-zero code: 1"
            },
            "error": "x",
        },
    ]
    out = io.StringIO()
    with pytest.raises(CLIError, match="returned a non-zero code: 1"):
        render(messages, out, mode="tty", width=80, clock=clock())
    screen = final_screen(out.getvalue())
    assert screen[1].startswith("[2/2] RUN echo boom; false") and screen[1].endswith("ERROR")
    assert screen[2:] == [f"  out{i}" for i in range(10)]


def test_quiet_prints_nothing() -> None:
    out = io.StringIO()
    assert render(RECORDED, out, mode="tty", quiet=True, width=80).startswith("sha256:")
    assert out.getvalue() == ""


def test_choose_mode() -> None:
    assert choose_mode("plain", True) == "plain"
    assert choose_mode("tty", False) == "tty"
    assert choose_mode(None, False) == "plain"
    assert choose_mode("auto", False) == "plain"
    with pytest.raises(CLIError, match="invalid progress mode"):
        choose_mode("fancy", True)
