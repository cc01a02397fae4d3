"""The `dockling` entry point: global flags, command dispatch, docker's exit codes.

Command modules are imported only when their command runs, so `dockling ps`
loads the client, the ps code and little else.
"""

from __future__ import annotations

import importlib
import os
import sys

from dockling.cli.context import CLIError, Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence

PROG = "dockling"

# command -> (module under dockling.cli.commands, function, usage-name)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("run", "cmd_run"),
    "create": ("run", "cmd_create"),
    "start": ("lifecycle", "cmd_start"),
    "stop": ("lifecycle", "cmd_stop"),
    "kill": ("lifecycle", "cmd_kill"),
    "restart": ("lifecycle", "cmd_restart"),
    "rm": ("lifecycle", "cmd_rm"),
    "pause": ("lifecycle", "cmd_pause"),
    "unpause": ("lifecycle", "cmd_unpause"),
    "rename": ("lifecycle", "cmd_rename"),
    "update": ("lifecycle", "cmd_update"),
    "wait": ("lifecycle", "cmd_wait"),
    "ps": ("ps", "cmd_ps"),
    "logs": ("logs", "cmd_logs"),
    "inspect": ("inspect", "cmd_inspect"),
    "exec": ("exec", "cmd_exec"),
    "attach": ("exec", "cmd_attach"),
    "top": ("lifecycle", "cmd_top"),
    "port": ("lifecycle", "cmd_port"),
    "stats": ("stats", "cmd_stats"),
    "images": ("images", "cmd_images"),
    "rmi": ("images", "cmd_rmi"),
    "tag": ("images", "cmd_tag"),
    "import": ("images", "cmd_import"),
    "history": ("image_archive", "cmd_history"),
    "save": ("image_archive", "cmd_save"),
    "load": ("image_archive", "cmd_load"),
    "commit": ("container_files", "cmd_commit"),
    "export": ("container_files", "cmd_export"),
    "diff": ("container_files", "cmd_diff"),
    "cp": ("container_files", "cmd_cp"),
    "pull": ("distribution", "cmd_pull"),
    "push": ("distribution", "cmd_push"),
    "login": ("distribution", "cmd_login"),
    "logout": ("distribution", "cmd_logout"),
    "events": ("system", "cmd_events"),
    "info": ("system", "cmd_info"),
    "version": ("system", "cmd_version"),
    "registry": ("registry", "cmd_registry"),
    "build": ("build", "cmd_build"),
}

GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "container": {
        **{
            name: COMMANDS[name]
            for name in [
                "run",
                "create",
                "start",
                "stop",
                "kill",
                "restart",
                "rm",
                "pause",
                "unpause",
                "rename",
                "update",
                "wait",
                "logs",
                "exec",
                "attach",
                "top",
                "port",
                "stats",
            ]
        },
        "ls": COMMANDS["ps"],
        "list": COMMANDS["ps"],
        "ps": COMMANDS["ps"],
        "inspect": ("inspect", "cmd_container_inspect"),
        "prune": ("lifecycle", "cmd_container_prune"),
        "commit": COMMANDS["commit"],
        "export": COMMANDS["export"],
        "diff": COMMANDS["diff"],
        "cp": COMMANDS["cp"],
    },
    "image": {
        "ls": COMMANDS["images"],
        "list": COMMANDS["images"],
        "rm": COMMANDS["rmi"],
        "remove": COMMANDS["rmi"],
        "tag": COMMANDS["tag"],
        "import": COMMANDS["import"],
        "build": COMMANDS["build"],
        "pull": COMMANDS["pull"],
        "push": COMMANDS["push"],
        "inspect": ("inspect", "cmd_image_inspect"),
        "prune": ("images", "cmd_image_prune"),
        "history": COMMANDS["history"],
        "save": COMMANDS["save"],
        "load": COMMANDS["load"],
    },
    "builder": {
        "build": COMMANDS["build"],
        "prune": ("build", "cmd_builder_prune"),
    },
    "volume": {
        "create": ("volumes", "cmd_volume_create"),
        "ls": ("volumes", "cmd_volume_ls"),
        "list": ("volumes", "cmd_volume_ls"),
        "inspect": ("volumes", "cmd_volume_inspect"),
        "rm": ("volumes", "cmd_volume_rm"),
        "remove": ("volumes", "cmd_volume_rm"),
        "prune": ("volumes", "cmd_volume_prune"),
    },
    "network": {
        "create": ("network", "cmd_network_create"),
        "ls": ("network", "cmd_network_ls"),
        "list": ("network", "cmd_network_ls"),
        "inspect": ("network", "cmd_network_inspect"),
        "rm": ("network", "cmd_network_rm"),
        "remove": ("network", "cmd_network_rm"),
        "prune": ("network", "cmd_network_prune"),
        "connect": ("network", "cmd_network_connect"),
        "disconnect": ("network", "cmd_network_disconnect"),
    },
    "system": {
        "info": COMMANDS["info"],
        "events": COMMANDS["events"],
        "df": ("disk_usage", "cmd_system_df"),
        "prune": ("disk_usage", "cmd_system_prune"),
    },
}

HELP = f"""Usage:  {PROG} [OPTIONS] COMMAND

A self-sufficient runtime for containers

Common Commands:
  run         Create and run a new container from an image
  build       Build an image from a Dockerfile
  exec        Execute a command in a running container
  ps          List containers
  images      List images
  pull        Download an image from a registry
  push        Upload an image to a registry
  info        Display system-wide information
  version     Show the dockling version information

Management Commands:
  container   Manage containers
  image       Manage images
  network     Manage networks
  volume      Manage volumes
  system      Manage dockling

Commands:
  attach      Attach local standard input, output, and error streams to a running container
  commit      Create a new image from a container's changes
  cp          Copy files/folders between a container and the local filesystem
  create      Create a new container
  diff        Inspect changes to files or directories on a container's filesystem
  events      Get real time events from the server
  export      Export a container's filesystem as a tar archive
  history     Show the history of an image
  import      Import the contents from a tarball to create a filesystem image
  inspect     Return low-level information on dockling objects
  kill        Kill one or more running containers
  load        Load an image from a tar archive or STDIN
  login       Log in to a registry
  logout      Log out from a registry
  logs        Fetch the logs of a container
  pause       Pause all processes within one or more containers
  port        List port mappings or a specific mapping for the container
  registry    Run an OCI image registry (serve, gc)
  rename      Rename a container
  restart     Restart one or more containers
  rm          Remove one or more containers
  rmi         Remove one or more images
  save        Save one or more images to a tar archive (streamed to STDOUT by default)
  start       Start one or more stopped containers
  stats       Display a live stream of container(s) resource usage statistics
  stop        Stop one or more running containers
  tag         Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
  top         Display the running processes of a container
  unpause     Unpause all processes within one or more containers
  update      Update configuration of one or more containers
  wait        Block until one or more containers stop, then print their exit codes

Global Options:
  -D, --debug              Enable debug mode
  -H, --host string        Daemon socket to connect to
  -l, --log-level string   Set the logging level
  -v, --version            Print version information and quit

Run '{PROG} COMMAND --help' for more information on a command.
"""


def _version_line() -> str:
    from dockling import __version__

    return f"dockling version {__version__}, build python"


def _split_globals(argv: list[str]) -> tuple[str | None, list[str]] | int:
    """(host, remaining args) after the global options, or an exit code if handled."""
    host: str | None = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-H", "--host", "-l", "--log-level", "--config", "-c", "--context"):
            if i + 1 >= len(argv):
                name = arg.lstrip("-")
                sys.stderr.write(
                    f"flag needs an argument: {arg if arg.startswith('--') else repr(name)}\n"
                )
                return 125
            if arg in ("-H", "--host"):
                host = argv[i + 1]
            i += 2
        elif arg.startswith(("--host=", "-H=")):
            host = arg.split("=", 1)[1]
            i += 1
        elif arg.startswith(("--log-level=", "--config=", "--context=")) or arg in (
            "-D",
            "--debug",
            "--tls",
            "--tlsverify",
        ):
            i += 1
        elif arg in ("-v", "--version"):
            sys.stdout.write(_version_line() + "\n")
            return 0
        elif arg in ("-h", "--help"):
            sys.stdout.write(HELP)
            return 0
        elif arg.startswith("-") and arg != "-":
            sys.stderr.write(
                f"unknown flag: {arg}\n\nUsage:  {PROG} [OPTIONS] COMMAND [ARG...]\n\n"
                f"Run '{PROG} --help' for more information\n"
            )
            return 125
        else:
            break
    return host, argv[i:]


def _resolve(args: list[str]) -> tuple[tuple[str, str], str, list[str]] | int:
    """The (module, function), display name and the command's own args."""
    if not args:
        sys.stdout.write(HELP)
        return 0
    name = args[0]
    if name == "help":
        sys.stdout.write(HELP)
        return 0
    if name in GROUPS:
        group = GROUPS[name]
        if len(args) < 2 or args[1] in ("-h", "--help", "help"):
            verbs = "\n".join(f"  {verb}" for verb in sorted(group))
            sys.stdout.write(f"Usage:  {PROG} {name} COMMAND\n\nCommands:\n{verbs}\n")
            return 0
        verb = args[1]
        if verb not in group:
            sys.stderr.write(
                f"{PROG}: unknown command: {PROG} {name} {verb}\n\nUsage:  {PROG} {name}\n\n"
                f"Run '{PROG} {name} --help' for more information\n"
            )
            return 1
        return group[verb], f"{name} {verb}", args[2:]
    if name in COMMANDS:
        return COMMANDS[name], name, args[1:]
    sys.stderr.write(
        f"{PROG}: unknown command: {PROG} {name}\n\nRun '{PROG} --help' for more information\n"
    )
    return 1


def run_cli(argv: Sequence[str]) -> int:
    """Run one command line (without the program name) and return its exit code."""
    split = _split_globals(list(argv))
    if isinstance(split, int):
        return split
    host, rest = split
    resolved = _resolve(rest)
    if isinstance(resolved, int):
        return resolved
    (module_name, func_name), display, cmd_args = resolved
    module = importlib.import_module(f"dockling.cli.commands.{module_name}")
    func = getattr(module, func_name)
    ctx = Context(host)
    from dockling.cli.flags import HelpRequested, UsageError
    from dockling.client.transport import APIError, DaemonUnreachable

    try:
        code: int = func(ctx, cmd_args, display)
        return code
    except HelpRequested as exc:
        sys.stdout.write(exc.text + "\n")
        return 0
    except UsageError as exc:
        sys.stderr.write(exc.text + "\n")
        return exc.code
    except CLIError as exc:
        if exc.message:
            sys.stderr.write(exc.message + "\n")
        return exc.code
    except APIError as exc:
        sys.stderr.write(f"Error response from daemon: {exc.message}\n")
        return 1
    except DaemonUnreachable as exc:
        sys.stderr.write(f"{exc}\n")
        return 1


def main() -> None:
    """Console-script entry: exits with the command's code."""
    try:
        code = run_cli(sys.argv[1:])
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        # The reader went away (e.g. `dockling ps | head`); exit quietly like docker.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 1
    sys.exit(code)
