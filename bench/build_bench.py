"""Build benchmark: `dockling build` against dockerd 20.10's classic builder and BuildKit.

    .venv/bin/python bench/build_bench.py [--runs 5] [--no-docker] [--write]

Two Dockerfiles on the offline busybox image (imported into each engine): a ~10-step one
(ENV, WORKDIR, COPY of a small context, RUN creating 1,000 files, CMD ...) and a
multi-stage one (two independent stages of 500 files each, copied into a third).  For each
engine and Dockerfile, medians over RUNS (engines interleaved in a shuffled order, run 0 a
warm-up not counted):
- cold: `build --no-cache` (every step executed);
- cached: the same build again with the cache (nothing changed: every step a cache hit).
RUN steps use `--network none` on every engine (the private dockerd has no bridge).  With
--write the markdown replaces the build section of docs/benchmarks.md.  Everything started
is stopped by PID; temp dirs are removed.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import sections  # noqa: E402
from engines import DOCKER_CLI, DockerEngine, DocklingEngine  # noqa: E402

OUT = REPO / "docs" / "benchmarks.md"
BEGIN = "<!-- build-bench:begin: written by bench/build_bench.py -->"
END = "<!-- build-bench:end -->"

PROFILE_NOTE = (
    "How the builder keeps up: a step's upper dir becomes its layer's snapshot (settled in "
    "the same walk that writes its tar: no second extraction); a RUN's tar is written while "
    "its container's rootfs is being unmounted; COPY hard-links files whose copy would equal "
    "their source (a stage's layer, the context); identical steps of different stages run "
    "once, as BuildKit deduplicates them (the multi-stage file's two stages are identical); "
    "the CLI writes the context tar itself. On this machine creating files is slow and "
    "variable (the RUN's 1,000 files take 0.1-0.5 s), which both tools pay: hence medians of "
    "interleaved runs."
)
MAKE_FILES = 'i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo "file $i" > {dir}/f$i; done'

SINGLE = f"""FROM busybox:latest
ENV APP=/app MODE=bench
WORKDIR /app
COPY src/ ./src/
COPY config.txt ./
RUN mkdir -p files && {MAKE_FILES.format(n=1000, dir="files")}
ENV READY=1
LABEL bench=build
EXPOSE 8080
USER nobody
CMD ["sh", "-c", "ls /app/files | wc -l"]
"""

MULTI = f"""FROM busybox:latest AS left
WORKDIR /out
RUN {MAKE_FILES.format(n=500, dir=".")}

FROM busybox:latest AS right
WORKDIR /out
RUN {MAKE_FILES.format(n=500, dir=".")}

FROM busybox:latest
COPY --from=left /out /data/left
COPY --from=right /out /data/right
COPY config.txt /data/
CMD ["ls", "/data"]
"""


def write_section(report: str) -> None:
    """Replace the build section of docs/benchmarks.md (or append it the first time)."""
    sections.write_section(OUT, BEGIN, END, report)


def make_context(root: Path, dockerfile: str) -> Path:
    """A small context: a few source files, a config and the Dockerfile."""
    (root / "src").mkdir(parents=True)
    for i in range(20):
        (root / "src" / f"module{i}.txt").write_text(f"module {i}\n" * 50)
    (root / "config.txt").write_text("mode=bench\n")
    (root / "Dockerfile").write_text(dockerfile)
    return root


def timed(argv: list[str], env: dict[str, str], expect: str | None = None) -> float:
    """Seconds `argv` takes; fails loudly if it fails or its output lacks `expect`."""
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    if expect is not None and expect not in proc.stdout + proc.stderr:
        raise RuntimeError(f"{' '.join(argv)}: no {expect!r} in:\n{proc.stdout[-3000:]}")
    return seconds


Case = Callable[[], float]


def cases_for(
    label: str, argv: list[str], env: dict[str, str], context: Path, tag: str, cached_mark: str
) -> list[tuple[str, Case]]:
    """The cold and the cached build of `context` by one engine (in this order)."""
    base = [*argv, "build", "--network", "none", "-t", tag]
    return [
        (f"{label} cold", lambda: timed([*base, "--no-cache", str(context)], env)),
        (f"{label} cached", lambda: timed([*base, str(context)], env, cached_mark)),
    ]


def buildkit_works(engine: DockerEngine, context: Path) -> str | None:
    """None when dockerd's BuildKit builds `context` here; else why not."""
    env = dict(engine.env, DOCKER_BUILDKIT="1")
    proc = subprocess.run(
        [DOCKER_CLI, "build", "--network", "none", "-t", "bk-probe", str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode == 0:
        return None
    return (proc.stderr or proc.stdout).strip().splitlines()[-1][:300]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-docker", action="store_true")
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="build-bench-"))
    contexts = {
        "single": make_context(work / "single", SINGLE),
        "multi": make_context(work / "multi", MULTI),
    }
    dockling = DocklingEngine()
    docker: DockerEngine | None = None
    results: dict[str, list[float]] = {}
    notes: list[str] = []
    try:
        dockling.start()
        dockling.import_busybox()
        cases: list[tuple[str, Case]] = []
        for kind, context in contexts.items():
            cases += cases_for(
                f"{kind}: dockling",
                dockling.argv(),
                dockling.env,
                context,
                f"bb-{kind}",
                "Using cache",
            )
        if not args.no_docker and DockerEngine.available():
            docker = DockerEngine(bridge=False)
            docker.start()
            docker.import_busybox()
            classic = dict(docker.env, DOCKER_BUILDKIT="0")
            for kind, context in contexts.items():
                cases += cases_for(
                    f"{kind}: docker classic",
                    docker.argv(),
                    classic,
                    context,
                    f"bb-{kind}",
                    "Using cache",
                )
            why = buildkit_works(docker, contexts["single"])
            if why is None:
                kit = dict(docker.env, DOCKER_BUILDKIT="1")
                for kind, context in contexts.items():
                    cases += cases_for(
                        f"{kind}: docker BuildKit",
                        docker.argv(),
                        kit,
                        context,
                        f"bk-{kind}",
                        "CACHED",
                    )
            else:
                notes.append(f"BuildKit (DOCKER_BUILDKIT=1) could not build here: `{why}`")
        else:
            notes.append("dockerd 20.10 not available: dockling only")
        # Each (cold, cached) pair stays in order; the pairs are shuffled every round, so
        # that no engine always runs right after another one's writes.
        pairs = [cases[i : i + 2] for i in range(0, len(cases), 2)]
        shuffler = random.Random(1)
        for run in range(args.runs + 1):  # run 0 warms caches and is not counted
            shuffler.shuffle(pairs)
            for name, fn in [case for pair in pairs for case in pair]:
                seconds = fn()
                if run:
                    results.setdefault(name, []).append(seconds)
                print(f"run {run} {name}: {seconds:.3f} s", flush=True)
    finally:
        dockling.stop()
        if docker is not None:
            docker.stop()
        shutil.rmtree(work, ignore_errors=True)
    report = render(results, notes, args.runs)
    print(report)
    if args.write:
        write_section(report)
    return 0


def _ratio(results: dict[str, list[float]], a: str, b: str) -> str:
    if a not in results or b not in results:
        return "n/a"
    return f"{median(results[a]) / median(results[b]):.2f}x"


def render(results: dict[str, list[float]], notes: list[str], runs: int) -> str:
    """The markdown section: one table per Dockerfile, ratios and the targets' verdicts."""
    out = [
        f"## Builds ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        f"`bench/build_bench.py`: medians of {runs} runs (after one warm-up), "
        f"{platform.machine()}, {os.cpu_count()} CPUs; `--network none` on every engine. "
        "Cold is `build --no-cache`; cached is the same build again with nothing changed. "
        "Targets: cold at most 1.0x Docker's, cached under 1 s and at most 1.0x Docker's "
        "(both builders).",
        "",
        "The ~10-step Dockerfile (single) is ENV, WORKDIR, two COPYs of a 21-file context, a "
        "RUN creating 1,000 files, ENV, LABEL, EXPOSE, USER, CMD; the multi-stage one has two "
        "independent stages of one 500-file RUN each, COPY --from both into a third stage.",
        "",
        PROFILE_NOTE,
        "",
    ]
    for note in notes:
        out += [f"Note: {note}", ""]
    for kind in ("single", "multi"):
        out += [f"### {kind}", "", "| engine | cold (s) | cached (s) |", "|---|---:|---:|"]
        for engine in ("dockling", "docker classic", "docker BuildKit"):
            cold, cached = f"{kind}: {engine} cold", f"{kind}: {engine} cached"
            if cold in results:
                out.append(
                    f"| {engine} | {median(results[cold]):.3f} | {median(results[cached]):.3f} |"
                )
        out += [""]
        for engine in ("docker classic", "docker BuildKit"):
            if f"{kind}: {engine} cold" not in results:
                continue
            ratio_cold = _ratio(results, f"{kind}: dockling cold", f"{kind}: {engine} cold")
            ratio_cached = _ratio(results, f"{kind}: dockling cached", f"{kind}: {engine} cached")
            cached_s = median(results[f"{kind}: dockling cached"])
            verdict_cold = (
                "met" if ratio_cold != "n/a" and float(ratio_cold[:-1]) <= 1.0 else ("missed")
            )
            verdict_cached = (
                "met"
                if ratio_cached != "n/a" and float(ratio_cached[:-1]) <= 1.0 and cached_s < 1.0
                else "missed"
            )
            out.append(
                f"- dockling / {engine}: cold {ratio_cold} ({verdict_cold}), "
                f"cached {ratio_cached} ({verdict_cached})"
            )
        out += [""]
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
