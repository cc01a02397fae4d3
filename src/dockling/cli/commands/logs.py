"""`dockling logs`: fetch (and follow) a container's output."""

from __future__ import annotations

from dockling.cli.context import CLIError, Context
from dockling.cli.flags import FlagSet
from dockling.client.multiplex import MULTIPLEXED_CONTENT_TYPE


def cmd_logs(ctx: Context, args: list[str], display: str) -> int:
    fs = FlagSet(
        display, "[OPTIONS] CONTAINER", "Fetch the logs of a container", min_args=1, exact_args=True
    )
    fs.bool("details", None, "Show extra details provided to logs")
    fs.bool("follow", "f", "Follow log output")
    fs.value("since", None, "Show logs since timestamp or relative (e.g. 42m)")
    fs.value(
        "tail",
        "n",
        'Number of lines to show from the end of the logs (default "all")',
        default="all",
    )
    fs.bool("timestamps", "t", "Show timestamps")
    fs.value("until", None, "Show logs before a timestamp or relative (e.g. 42m)")
    values, (ref,) = fs.parse(args)
    client = ctx.client
    info = client.inspect_container(ref)
    tty = bool((info.get("Config") or {}).get("Tty"))
    resp = client.logs(
        info.get("Id", ref),
        {
            "stdout": True,
            "stderr": True,
            "follow": bool(values["follow"]) or None,
            "tail": values["tail"],
            "timestamps": bool(values["timestamps"]) or None,
            "since": _time_arg(values["since"]),
            "until": _time_arg(values["until"], "until"),
            "details": bool(values["details"]) or None,
        },
    )
    content_type = resp.getheader("Content-Type") or ""
    if content_type.startswith("application/vnd.docker."):
        multiplexed = content_type.startswith(MULTIPLEXED_CONTENT_TYPE)
    else:
        multiplexed = not tty
    from dockling.cli.commands.streams import copy_to_stdio

    try:
        copy_to_stdio(resp.read1, multiplexed=multiplexed)
    finally:
        resp.close()
    return 0


def _time_arg(value: str | None, flag: str = "since") -> str | None:
    """A --since/--until value as the API's unix seconds, converted here as the docker CLI
    does (relative durations count back from this machine's clock)."""
    if not value:
        return None
    from dockling.errors import InvalidParameter
    from dockling.timestamps import get_timestamp

    try:
        return get_timestamp(value)
    except InvalidParameter as exc:
        raise CLIError(f'invalid value for "{flag}": {exc}', 1) from None
