"""Machine facts and the markdown report of one benchmark run."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from procs import Memory, Summary

BEGIN = "<!-- bench:begin: written by bench/run_bench.py, edit outside these markers -->"
END = "<!-- bench:end -->"


def _first_line(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(list(argv), capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "n/a"
    lines = (out.stdout or out.stderr).strip().splitlines()
    return lines[0].strip() if lines else "n/a"


def machine_facts(repo: Path, venv_bin: Path, runc: str) -> list[tuple[str, str]]:
    """What a reader needs to compare these figures with another run."""
    cpu = "n/a"
    mem_kib = 0
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    debian = (
        Path("/etc/debian_version").read_text().strip()
        if Path("/etc/debian_version").exists()
        else "n/a"
    )
    commit = _first_line(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    dirty = _first_line(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"])
    return [
        ("CPU", f"{cpu}, {os.cpu_count()} cores"),
        ("memory", f"{mem_kib / 1024 / 1024:.1f} GiB"),
        ("OS", f"Debian {debian}, kernel {platform.release()}"),
        ("Python", platform.python_version()),
        (
            "dockling",
            f"{_first_line([str(venv_bin / 'docklingd'), '--version'])}, "
            f"tree at {commit}{' (uncommitted changes)' if dirty != 'n/a' else ''}",
        ),
        ("runc", _first_line([runc, "--version"])),
        ("dockerd", _first_line(["/usr/sbin/dockerd", "--version"])),
        ("containerd", _first_line(["/usr/bin/containerd", "--version"])),
        ("docker CLI", _first_line(["/usr/bin/docker", "--version"])),
    ]


@dataclass
class Results:
    """Everything one run measured, keyed by the row labels of the report."""

    started: datetime.datetime
    facts: list[tuple[str, str]]
    iterations: int
    warmups: int
    containers: int
    run: dict[str, Summary] = field(default_factory=dict)
    client: dict[str, Summary] = field(default_factory=dict)
    ps: dict[str, Summary] = field(default_factory=dict)
    idle: dict[str, tuple[Memory, Memory]] = field(default_factory=dict)
    shims: dict[str, list[Memory]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    load: tuple[str, str] = ("", "")
    seconds: float = 0.0


def _mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def _verdict(ok: bool) -> str:
    return "**met**" if ok else "**missed**"


def _time_table(rows: dict[str, Summary], base: str | None) -> list[str]:
    head = "| command | median ms | p10 ms | p90 ms | runs |"
    sep = "|---|---:|---:|---:|---:|"
    if base:
        head += f" x {base} |"
        sep += "---:|"
    lines = [head, sep]
    for label, s in rows.items():
        line = f"| {label} | {s.median_ms:.1f} | {s.p10_ms:.1f} | {s.p90_ms:.1f} | {s.n} |"
        if base:
            line += f" {s.median_ms / rows[base].median_ms:.2f} |"
        lines.append(line)
    return lines


def _ratio(rows: dict[str, Summary], a: str, b: str) -> float | None:
    if a in rows and b in rows:
        return rows[a].median_ms / rows[b].median_ms
    return None


def render(r: Results, labels: dict[str, str]) -> str:
    """The generated part of docs/benchmarks.md; `labels` names the rows the targets compare."""
    out = [BEGIN, "", f"## Results of {r.started:%Y-%m-%d %H:%M} UTC", ""]
    out += ["| machine | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in r.facts]
    out += [
        "",
        f"{r.warmups} warm-up rounds, then {r.iterations} measured rounds; in each round every "
        "command runs once, in a shuffled order, so that machine noise hits all tools alike. "
        f"Load average at start / end: {r.load[0]} / {r.load[1]}. Whole run: {r.seconds:.0f} s.",
        "",
    ]
    out += ["### 1. `run --rm busybox true`, end to end", ""]
    out += _time_table(r.run, labels["dockling_run"])
    bridge = _ratio(r.run, labels["dockling_run"], labels["docker_run_bridge"])
    like = _ratio(r.run, labels["dockling_run_none"], labels["docker_run_none"])
    floor = _ratio(r.run, labels["dockling_run"], labels["floor"])
    out.append("")
    if bridge is not None:
        out.append(
            f"- Default network (a veth on each engine's bridge): dockling / docker = "
            f"**{bridge:.2f}x**; target <= 0.8x: {_verdict(bridge <= 0.8)}."
        )
    if like is not None:
        out.append(
            f"- `--network none` on both: dockling / docker = **{like:.2f}x**; "
            f"target <= 0.8x: {_verdict(like <= 0.8)}."
        )
    if floor is not None:
        out.append(f"- dockling / the runc floor = {floor:.2f}x.")
    if r.client:
        out += ["", "Client start-up alone (no daemon call), measured in the same rounds:", ""]
        out += _time_table(r.client, None)
    out += ["", f"### 2. `ps` with {r.containers} running containers (`sleep`)", ""]
    out += _time_table(r.ps, labels["dockling_ps"])
    if labels["dockling_ps"] in r.ps:
        ps = r.ps[labels["dockling_ps"]].median_ms
        out += ["", f"- `dockling ps`: {ps:.1f} ms; target < 80 ms: {_verdict(ps < 80)}."]
    out += [
        "",
        "### 3. Daemon memory at idle (no containers)",
        "",
        "| daemon | RSS MiB after start + import | PSS MiB | RSS MiB after the run | PSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, (fresh, after) in r.idle.items():
        out.append(
            f"| {label} | {_mib(fresh.rss_kib)} | {_mib(fresh.pss_kib)} | "
            f"{_mib(after.rss_kib)} | {_mib(after.pss_kib)} |"
        )
    if labels["dockling_daemon"] in r.idle:
        worst = max(m.rss_kib for m in r.idle[labels["dockling_daemon"]]) / 1024
        out += [
            "",
            f"- docklingd idle RSS, the larger figure: {worst:.1f} MiB; "
            f"target <= 60 MB: {_verdict(worst * 1.048576 <= 60)}.",
        ]
    out += [
        "",
        f"### 4. Per-container monitor, with {r.containers} containers running",
        "",
        "| monitor | processes | median RSS MiB | max RSS MiB | median PSS MiB |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, mems in r.shims.items():
        if not mems:
            out.append(f"| {label} | 0 | | | |")
            continue
        rss = sorted(m.rss_kib for m in mems)
        pss = sorted(m.pss_kib for m in mems)
        out.append(
            f"| {label} | {len(mems)} | {_mib(rss[len(rss) // 2])} | {_mib(rss[-1])} | "
            f"{_mib(pss[len(pss) // 2])} |"
        )
    shims = r.shims.get(labels["dockling_shim"], [])
    if shims:
        med = sorted(m.rss_kib for m in shims)[len(shims) // 2] / 1024
        out += [
            "",
            f"- dockling-shim median RSS {med:.2f} MiB; target <= 3 MB: "
            f"{_verdict(med * 1.048576 <= 3)}.",
        ]
    if r.notes:
        out += ["", "Notes from this run:", ""] + [f"- {n}" for n in r.notes]
    out += ["", END]
    return "\n".join(out)


def write_into(doc: Path, generated: str, preamble: str) -> None:
    """Replace the generated block of `doc`, keeping what people wrote around it."""
    if doc.exists() and BEGIN in doc.read_text() and END in doc.read_text():
        text = doc.read_text()
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc.write_text(head + generated + tail)
    else:
        doc.write_text(preamble + "\n" + generated + "\n")
