"""Container lifecycle commands: start, stop, kill, restart, rm, pause, unpause,
rename, wait, top, port and container prune."""

from __future__ import annotations

import sys
from collections.abc import Callable

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.cli.units import parse_go_int
from dockling.client.transport import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class _StopAction(Protocol):
        def __call__(self, ref: str, *, timeout: int | None, signal: str | None) -> None: ...


def parse_filters(items: list[str]) -> dict[str, list[str]]:
    """--filter k=v flags as the API's filters map."""
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise CLIError("bad format of filter (expected name=value)", 125)
        filters.setdefault(key.strip().lower(), []).append(value)
    return filters


def confirm(prompt: str) -> bool:
    """Ask on stdout, read y/N on stdin, like docker's prompt."""
    sys.stdout.write(prompt + " [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip().lower()
    return answer in ("y", "yes")


def confirm_prune(warning: str, *, force: bool) -> bool:
    """True if a prune may go ahead: `--force`, or a yes to `warning` and docker's question."""
    return force or confirm(warning + "\nAre you sure you want to continue?")


def write_reclaimed(report: dict[str, Any]) -> None:
    """The last line of every prune: the space its report says was freed."""
    from dockling.cli.humanize import human_size

    sys.stdout.write(f"Total reclaimed space: {human_size(report.get('SpaceReclaimed') or 0)}\n")


def for_each(
    refs: list[str],
    action: Callable[[str], None],
    *,
    echo: bool = True,
    tolerate: Callable[[APIError], bool] = lambda _: False,
) -> list[str]:
    """Apply `action` to each ref, echo successes, print errors; return the failed refs,
    leaving out those whose error `tolerate` accepts (still printed)."""
    failed: list[str] = []
    for ref in refs:
        try:
            action(ref)
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            if not tolerate(exc):
                failed.append(ref)
            continue
        if echo:
            sys.stdout.write(ref + "\n")
            sys.stdout.flush()
    return failed


def _simple(display: str, description: str, usage: str = "CONTAINER [CONTAINER...]") -> FlagSet:
    return FlagSet(display, f"[OPTIONS] {usage}", description, min_args=1)


def cmd_start(ctx: Context, args: list[str], display: str) -> int:
    fs = _simple(display, "Start one or more stopped containers")
    fs.bool("attach", "a", "Attach STDOUT/STDERR and forward signals")
    fs.bool("interactive", "i", "Attach container's STDIN")
    fs.value("detach-keys", None, "Override the key sequence for detaching a container")
    values, refs = fs.parse(args)
    if values["attach"] or values["interactive"]:
        if len(refs) > 1:
            raise CLIError("you cannot start and attach multiple containers at once", 1)
        return _start_attached(ctx, refs[0], values)
    failed = for_each(refs, lambda ref: ctx.client.start(ref))
    if failed:
        raise CLIError(f"Error: failed to start containers: {', '.join(failed)}", 1)
    return 0


def _start_attached(ctx: Context, ref: str, values: dict[str, object]) -> int:
    """start -a/-i: attach like run does, start, copy streams, return the exit code."""
    from dockling.cli.commands.run import _send_wait
    from dockling.cli.commands.streams import pump, raw_terminal, watch_resize

    client = ctx.client
    info = client.inspect_container(ref)
    container_id = info["Id"]
    tty = bool(info["Config"].get("Tty"))
    stdin = bool(values["interactive"]) and bool(info["Config"].get("OpenStdin"))
    detach_keys = values["detach_keys"] if isinstance(values["detach_keys"], str) else None
    stream = client.attach(
        container_id,
        {"stream": True, "stdin": stdin, "stdout": True, "stderr": True, "detachKeys": detach_keys},
    )
    waiter = _send_wait(ctx, container_id, "next-exit")
    with raw_terminal(0, tty and stdin):
        try:
            client.start(container_id)
        except APIError:
            stream.close()
            raise
        if tty:
            watch_resize(lambda h, w: client.resize(container_id, height=h, width=w))
        detached = pump(stream, tty=tty, stdin=stdin, detach_keys=detach_keys)
    if detached:
        return 0  # docker 28's start -a says nothing on a detach
    waiter.join()
    return waiter.status if waiter.status is not None else 1


def cmd_stop(ctx: Context, args: list[str], display: str) -> int:
    fs = _simple(display, "Stop one or more running containers")
    return _stop_each(fs, args, ctx.client.stop)


def cmd_restart(ctx: Context, args: list[str], display: str) -> int:
    fs = _simple(display, "Restart one or more containers")
    return _stop_each(fs, args, ctx.client.restart)


def _stop_each(fs: FlagSet, args: list[str], action: _StopAction) -> int:
    """stop and restart: the same flags, `action(ref, timeout=, signal=)` on each ref."""
    fs.value("time", "t", "Seconds to wait before killing the container", convert=parse_go_int)
    fs.alias("timeout", "time")
    fs.value("signal", "s", "Signal to send to the container")
    values, refs = fs.parse(args)
    failed = for_each(
        refs, lambda ref: action(ref, timeout=values["time"], signal=values["signal"])
    )
    return 1 if failed else 0


def cmd_kill(ctx: Context, args: list[str], display: str) -> int:
    fs = _simple(display, "Kill one or more running containers")
    fs.value("signal", "s", "Signal to send to the container")
    values, refs = fs.parse(args)
    failed = for_each(refs, lambda ref: ctx.client.kill(ref, signal=values["signal"]))
    return 1 if failed else 0


def cmd_rm(ctx: Context, args: list[str], display: str) -> int:
    fs = _simple(display, "Remove one or more containers")
    fs.bool("force", "f", "Force the removal of a running container (uses SIGKILL)")
    fs.bool("volumes", "v", "Remove anonymous volumes associated with the container")
    fs.bool("link", "l", "Remove the specified link")
    values, refs = fs.parse(args)
    failed = for_each(
        refs,
        lambda ref: ctx.client.remove(ref, force=values["force"], volumes=values["volumes"]),
        # docker: with --force, a container that is not there is no failure
        tolerate=lambda exc: bool(values["force"]) and exc.status == 404,
    )
    return 1 if failed else 0


def cmd_pause(ctx: Context, args: list[str], display: str) -> int:
    _, refs = _simple(display, "Pause all processes within one or more containers").parse(args)
    return 1 if for_each(refs, lambda ref: ctx.client.pause(ref)) else 0


def cmd_unpause(ctx: Context, args: list[str], display: str) -> int:
    _, refs = _simple(display, "Unpause all processes within one or more containers").parse(args)
    return 1 if for_each(refs, lambda ref: ctx.client.unpause(ref)) else 0


def cmd_rename(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "CONTAINER NEW_NAME", "Rename a container", min_args=2, exact_args=True)
    _, (ref, new_name) = fs.parse(args)
    try:
        ctx.client.rename(ref, new_name)
    except APIError as exc:
        raise CLIError(
            f"Error response from daemon: {exc.message}\n"
            f"Error: failed to rename container named {ref}",
            1,
        ) from None
    return 0


def cmd_update(ctx: Context, args: list[str], display: str) -> int:
    """`dockling update`: new resource limits or restart policy for containers, running or
    not (POST /containers/{id}/update)."""
    from dockling.cli.commands.create_options import CreateOptionError, parse_restart
    from dockling.cli.units import memory_swap, nano_cpus, ram_in_bytes

    fs = _simple(display, "Update configuration of one or more containers")
    fs.value(
        "blkio-weight",
        None,
        "Block IO (relative weight), between 10 and 1000",
        convert=parse_go_int,
    )
    fs.value(
        "cpu-period", None, "Limit CPU CFS (Completely Fair Scheduler) period", convert=parse_go_int
    )
    fs.value(
        "cpu-quota", None, "Limit CPU CFS (Completely Fair Scheduler) quota", convert=parse_go_int
    )
    fs.value(
        "cpu-rt-period",
        None,
        "Limit the CPU real-time period in microseconds",
        convert=parse_go_int,
    )
    fs.value(
        "cpu-rt-runtime",
        None,
        "Limit the CPU real-time runtime in microseconds",
        convert=parse_go_int,
    )
    fs.value("cpu-shares", "c", "CPU shares (relative weight)", convert=parse_go_int)
    fs.value("cpus", None, "Number of CPUs", convert=nano_cpus)
    fs.value("cpuset-cpus", None, "CPUs in which to allow execution (0-3, 0,1)")
    fs.value("cpuset-mems", None, "MEMs in which to allow execution (0-3, 0,1)")
    fs.value("memory", "m", "Memory limit", convert=ram_in_bytes)
    fs.value("memory-reservation", None, "Memory soft limit", convert=ram_in_bytes)
    fs.value(
        "memory-swap",
        None,
        "Swap limit equal to memory plus swap: -1 to enable unlimited swap",
        convert=memory_swap,
    )
    fs.value(
        "pids-limit", None, "Tune container pids limit (-1 for unlimited)", convert=parse_go_int
    )
    fs.value("restart", None, "Restart policy to apply when a container exits")
    values, refs = fs.parse(args)
    fields = {
        "blkio_weight": "BlkioWeight",
        "cpu_period": "CpuPeriod",
        "cpu_quota": "CpuQuota",
        "cpu_rt_period": "CpuRealtimePeriod",
        "cpu_rt_runtime": "CpuRealtimeRuntime",
        "cpu_shares": "CpuShares",
        "cpus": "NanoCpus",
        "cpuset_cpus": "CpusetCpus",
        "cpuset_mems": "CpusetMems",
        "memory": "Memory",
        "memory_reservation": "MemoryReservation",
        "memory_swap": "MemorySwap",
        "pids_limit": "PidsLimit",
    }
    body: dict[str, object] = {
        api: values[flag] for flag, api in fields.items() if values[flag] is not None
    }
    if values["restart"] is not None:
        try:
            body["RestartPolicy"] = parse_restart(values["restart"])
        except CreateOptionError as exc:
            raise CLIError(str(exc)) from None
    if not body:
        raise CLIError("you must provide one or more flags when using this command")
    failed = for_each(refs, lambda ref: ctx.client.update(ref, body))
    return 1 if failed else 0


def cmd_wait(ctx: Context, args: list[str], display: str) -> int:
    _, refs = _simple(display, "Block until one or more containers stop").parse(args)
    failed = False
    for ref in refs:
        try:
            resp = ctx.client.wait_response(ref)
            import json

            doc = json.loads(resp.read() or b"{}")
            sys.stdout.write(f"{doc.get('StatusCode', 0)}\n")
            sys.stdout.flush()
        except APIError as exc:
            sys.stderr.write(f"Error response from daemon: {exc.message}\n")
            failed = True
    return 1 if failed else 0


def cmd_top(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "CONTAINER [ps OPTIONS]",
        "Display the running processes of a container",
        interspersed=False,
        min_args=1,
    )
    _, rest = fs.parse(args)
    ps_args = " ".join(rest[1:]) or None
    doc = ctx.client.top(rest[0], ps_args=ps_args)
    from dockling.cli.table import tabwrite

    lines = ["\t".join(doc.get("Titles") or [])]
    lines += ["\t".join(row) for row in doc.get("Processes") or []]
    sys.stdout.write(tabwrite(lines, min_width=20))
    return 0


def cmd_port(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display,
        "CONTAINER [PRIVATE_PORT[/PROTO]]",
        "List port mappings or a specific mapping for the container",
        min_args=1,
        max_args=2,
    )
    _, rest = fs.parse(args)
    info = ctx.client.inspect_container(rest[0])
    ports = (info.get("NetworkSettings") or {}).get("Ports") or {}
    typed = rest[1] if len(rest) > 1 else None
    wanted = typed
    if typed:
        number = typed.split("/", 1)[0]
        if not number.isdigit():
            raise CLIError(
                f'Error: invalid port ({number}): strconv.ParseUint: parsing "{number}": '
                "invalid syntax",
                1,
            )
        if "/" not in typed:
            wanted = typed + "/tcp"
    found = False
    for port, bindings in sorted(ports.items()):
        if wanted and port != wanted:
            continue
        for binding in bindings or []:
            found = True
            address = f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}"
            sys.stdout.write(f"{address}\n" if wanted else f"{port} -> {address}\n")
    if wanted and not found:
        raise CLIError(f"Error: No public port '{typed}' published for {rest[0]}", 1)
    return 0


def cmd_container_prune(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(display, "[OPTIONS]", "Remove all stopped containers", max_args=0)
    fs.bool("force", "f", "Do not prompt for confirmation")
    fs.list("filter", None, 'Provide filter values (e.g. "until=<timestamp>")')
    values, _ = fs.parse(args)
    if not confirm_prune(
        "WARNING! This will remove all stopped containers.", force=values["force"]
    ):
        return 0
    report = ctx.client.prune_containers(parse_filters(values["filter"]) or None) or {}
    write_deleted_containers(report)
    write_reclaimed(report)
    return 0


def write_deleted_containers(report: dict[str, Any]) -> None:
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        sys.stdout.write("Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted) + "\n")
