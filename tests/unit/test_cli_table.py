"""Table layout (Go tabwriter semantics) and the ps/images row formatting."""

from __future__ import annotations

import io
import time

from dockling.cli.commands.images import image_rows
from dockling.cli.commands.ps import DEFAULT_FORMAT, HEADERS, ContainerRow, ellipsis, go_quote
from dockling.cli.table import tabwrite, write_formatted


def test_tabwrite_pads_to_min_width_10_and_3_spaces() -> None:
    out = tabwrite(["CONTAINER ID\tIMAGE\tNAMES", "0123456789ab\tbusybox\tweb"])
    assert out == "CONTAINER ID   IMAGE     NAMES\n0123456789ab   busybox   web\n"


def test_tabwrite_counts_characters_not_bytes() -> None:
    out = tabwrite(["A…\tB", "xx\tC"])
    assert out.splitlines()[0] == "A…" + " " * 8 + "B"


def test_ellipsis_and_quote() -> None:
    assert ellipsis("sleep 1000000000000000000", 20) == "sleep 1000000000000…"
    assert ellipsis("short", 20) == "short"
    assert go_quote('sh -c "x"') == '"sh -c \\"x\\""'


CONTAINER = {
    "Id": "0123456789abcdef" * 4,
    "Names": ["/web"],
    "Image": "busybox",
    "Command": "sleep 1000000000000000000",
    "Created": 0,
    "State": "running",
    "Status": "Up 2 minutes",
    "Ports": [],
    "Labels": {"b": "2", "a": "1"},
    "Mounts": [],
}


def test_ps_default_table() -> None:
    now = 150.0
    out = io.StringIO()
    write_formatted(DEFAULT_FORMAT, [ContainerRow(CONTAINER, trunc=True, now=now)], HEADERS, out)
    lines = out.getvalue().splitlines()
    assert lines[0] == (
        "CONTAINER ID   IMAGE     COMMAND                  CREATED         STATUS         "
        "PORTS     NAMES"
    )
    assert lines[1] == (
        '0123456789ab   busybox   "sleep 1000000000000…"   2 minutes ago   '
        "Up 2 minutes             web"
    )


def test_ps_custom_formats() -> None:
    row = ContainerRow(CONTAINER, trunc=True, now=time.time())
    out = io.StringIO()
    write_formatted('{{.Names}}|{{.Labels}}|{{.Label "a"}}|{{.State}}', [row], HEADERS, out)
    assert out.getvalue() == "web|a=1,b=2|1|running\n"
    out = io.StringIO()
    write_formatted("table {{.ID}}\\t{{.Status}}", [row], HEADERS, out)
    assert out.getvalue().splitlines() == ["CONTAINER ID   STATUS", "0123456789ab   Up 2 minutes"]
    out = io.StringIO()
    write_formatted("{{json .}}", [row], HEADERS, out)
    assert '"Names":"web"' in out.getvalue() and '"ID":"0123456789ab"' in out.getvalue()


def test_images_rows() -> None:
    images = [
        {
            "Id": "sha256:" + "ab" * 32,
            "RepoTags": ["busybox:latest", "me/bb:v1"],
            "Created": 0,
            "Size": 4_260_000,
        },
        {"Id": "sha256:" + "cd" * 32, "RepoTags": [], "Created": 0, "Size": 10},
    ]
    rows = image_rows(images, trunc=True)
    assert [(r.values["Repository"], r.values["Tag"], r.values["ID"]) for r in rows] == [
        ("busybox", "latest", "abababababab"),
        ("me/bb", "v1", "abababababab"),
        ("<none>", "<none>", "cdcdcdcdcdcd"),
    ]
    assert rows[0].values["Size"] == "4.26MB"
