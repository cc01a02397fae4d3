"""The classic builder: run a parsed Dockerfile's needed stages step by step into images.

Every step makes an image (the previous one plus a config change or a layer) and prints
Docker's classic output through `emit` (JSON messages: {"stream": ...}, {"aux": ...}).
Steps are looked up in the build cache first.  Only the stages the target needs are built
(`stages.plan_stages`), each as soon as the stages it reads from are done, so independent
stages build concurrently; their output is still printed stage by stage in Dockerfile
order (`output.OrderedOutput`).  A FROM image missing from the store is pulled.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dockling import errors
from dockling.build import checks, dispatch, instructions as ins
from dockling.build.args import BuildArgs, StageArgs
from dockling.build.base_images import base_image, check_platform
from dockling.build.cache import BuildCache, step_key
from dockling.build.context import apply_dockerignore, new_context_dir
from dockling.build.copy import (
    CopyOptions,
    Source,
    checksum,
    copy_sources,
    destination,
    make_dirs,
    match_sources,
    parse_chmod,
    parse_chown,
)
from dockling.build.hardlinks import HardLinks, in_snapshot
from dockling.build.layers import (
    commit_image,
    empty_config,
    keep_step_layer,
    mounted_snapshot,
    store_layer,
    write_step_layer,
)
from dockling.build.output import OrderedOutput
from dockling.build.parser import parse_dockerfile
from dockling.build.remote import download, is_url
from dockling.build.run_mounts import missing_paths, mounts_cache_key, run_mounts, take_secrets
from dockling.build.runner import RunRequest, run_step
from dockling.build.stages import StagePlan, plan_stages, stage_index
from dockling.build.substitute import expand_heredoc, expand_instruction
from dockling.build.syntax import parse_nodes
from dockling.containers.model import Container
from dockling.containers.service import ContainerService
from dockling.containers.spec import MountSpec
from dockling.distribution.auth import Credentials
from dockling.distribution.service import DistributionService
from dockling.images.store import Image
from dockling.mount import unmount
from dockling.runtime.users import resolve_in_root

Emit = Callable[[dict[str, Any]], Awaitable[None]]
EPOCH_ARG = "SOURCE_DATE_EPOCH"
# RUN's hostname when SOURCE_DATE_EPOCH is set (BuildKit's fixed name) instead of a random id.
REPRODUCIBLE_HOSTNAME = "buildkitsandbox"
_SOURCES_REMEMBERED = 512
_SINGLE_HEREDOC = re.compile(r"^\s*<<-?\s*[\"']?(\w+)[\"']?\s*$")


@dataclass
class BuildOptions:
    """What POST /build asks for."""

    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    target: str | None = None
    no_cache: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    network: str = "default"
    pull: bool = False  # pull every FROM image, even one in the store
    platform: str = ""  # "" or the host's: nothing else can be built
    registry_auth: dict[str, Credentials] = field(default_factory=dict)
    # RUN --mount=type=secret values by id, taken out of the context by `prepare`.
    secrets: dict[str, bytes] = field(default_factory=dict)


Send = Callable[[dict[str, Any]], Awaitable[None]]


async def _discard(_message: dict[str, Any]) -> None:
    pass


@dataclass
class _Stage:
    image: Image
    args: StageArgs
    escape: str
    index: int
    send: Send = _discard  # this stage's output channel

    async def say(self, text: str) -> None:
        await self.send({"stream": text})


class Builder:
    """Builds images with the engine's services; one instance serves every build."""

    def __init__(
        self,
        containers: ContainerService,
        cache_root: Path,
        distribution: DistributionService | None = None,
    ) -> None:
        self.containers = containers
        self.images = containers.images
        self.cache = BuildCache(cache_root)
        self.from_sources: dict[tuple[Any, ...], tuple[tuple[Source, ...], str]] = {}
        self.distribution = distribution

    def remember_sources(self, key: tuple[Any, ...], found: list[Source], digest: str) -> None:
        """Keep what a COPY --from matched in an image (bounded: oldest entries go first)."""
        if len(self.from_sources) >= _SOURCES_REMEMBERED:
            del self.from_sources[next(iter(self.from_sources))]
        self.from_sources[key] = (tuple(found), digest)

    async def prepare(self, context: Path, options: BuildOptions) -> Prepared:
        """Read and parse the Dockerfile in `context` (an unpacked context dir) and apply
        its .dockerignore: what can fail before any output (a 400 for the API)."""
        check_platform(options.platform)
        text = await asyncio.to_thread(_read_dockerfile, context, options.dockerfile)
        name = os.path.basename(options.dockerfile)
        dockerfile = parse_dockerfile(text, name)
        # The build argument, when given, is used instead of the `# check=` directive.
        config = checks.parse_config(options.build_args.get(checks.CHECK_ARG, dockerfile.check))
        violations = checks.run_checks(parse_nodes(text, name), config)
        options.secrets = await asyncio.to_thread(take_secrets, context)
        await asyncio.to_thread(apply_dockerignore, context)
        return Prepared(
            context,
            options,
            dockerfile,
            _epoch(options.build_args),
            tuple(violations),
            config.error,
        )

    async def run(self, prepared: Prepared, emit: Emit) -> Image:
        """Build `prepared`; tag the result with every `options.tags`; stream Docker's
        classic output through `emit`.  Raises a DocklingError on failure."""
        options = prepared.options
        report = checks.summary(list(prepared.violations))
        if report and prepared.checks_are_errors:
            # As BuildKit: the checks fail the build before anything runs.
            await emit({"stream": report})
            raise errors.InvalidParameter(checks.error_message(list(prepared.violations)))
        run = _Run(self, prepared.context, options, emit, prepared.epoch, prepared.dockerfile)
        image = await run.all_stages()
        for tag in options.tags:
            await asyncio.to_thread(self.images.tag, image.id, tag)
        if report:
            await emit({"stream": report})
        await emit({"aux": {"ID": image.id}})
        await emit({"stream": f"Successfully built {image.id[7:19]}\n"})
        for tag in options.tags:
            await emit({"stream": f"Successfully tagged {_with_tag(tag)}\n"})
        return image


@dataclass(frozen=True)
class Prepared:
    """A build ready to run: its context dir, options, parsed Dockerfile and epoch."""

    context: Path
    options: BuildOptions
    dockerfile: ins.Dockerfile
    epoch: int | None
    violations: tuple[checks.Violation, ...] = ()  # build checks' findings
    checks_are_errors: bool = False  # `# check=error=true`


def _with_tag(ref: str) -> str:
    last = ref.rsplit("/", 1)[-1]
    return ref if ":" in last or "@" in ref else f"{ref}:latest"


def _epoch(build_args: dict[str, str | None]) -> int | None:
    value = build_args.get(EPOCH_ARG)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.InvalidParameter(f"invalid {EPOCH_ARG}: {value!r}") from None


def _read_dockerfile(context: Path, name: str) -> str:
    path = resolve_in_root(str(context), name)
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "surrogateescape")
    except OSError:
        raise errors.InvalidParameter(f"Cannot locate specified Dockerfile: {name}") from None


class _Run:
    """One build's state: the stages built so far, the step counter."""

    def __init__(
        self,
        builder: Builder,
        context: Path,
        options: BuildOptions,
        emit: Emit,
        epoch: int | None,
        dockerfile: ins.Dockerfile,
    ) -> None:
        self.builder = builder
        self.images = builder.images
        self.context = context
        self.options = options
        self.emit_raw = emit
        self.epoch = epoch
        self.dockerfile = dockerfile
        given = dict(options.build_args)
        self.build_args = BuildArgs(given, escape=dockerfile.escape)
        self.build_args.declared.update((EPOCH_ARG, checks.CHECK_ARG))
        for arg in dockerfile.meta_args:
            self.build_args.declare_meta(arg)
        self.results: dict[int, Image] = {}
        # Every step of this build by its cache key: identical steps run once.
        self.steps: dict[str, asyncio.Future[Image]] = {}
        self.step = 0
        self.total = 0

    async def say(self, text: str) -> None:
        await self.emit_raw({"stream": text})

    async def all_stages(self) -> Image:
        plans = plan_stages(self.dockerfile, self.build_args, self.options.target)
        self.total = sum(1 + len(p.stage.instructions) for p in plans)
        labels = self.options.labels
        if labels:
            self.total += 1
        image = await self.stages_concurrently(plans)
        if labels:
            self.step = self.total
            text = " ".join(f'"{k}"="{v}"' for k, v in sorted(labels.items()))
            await self.say(f"Step {self.step}/{self.total} : LABEL {text}\n")
            label = ins.Label(
                location=ins.Location("--label", 0, 0),
                original=f"LABEL {text}",
                pairs=tuple(ins.KeyValue(k, v) for k, v in sorted(labels.items())),
            )
            stage = _Stage(
                image, self.build_args.stage(), self.dockerfile.escape, len(plans), self.emit_raw
            )
            await self.instruction(stage, label)
            image = stage.image
        for warning in self.build_args.unused():
            await self.say(f"[Warning] One or more build-args [{warning}] were not consumed\n")
        return image

    async def stages_concurrently(self, plans: list[StagePlan]) -> Image:
        """Build every plan, each once the stages it needs are built; the last one's image.

        The first failure cancels the other stages; its stage's output is released at once
        (with what the stages before it printed so far) and the error raised.
        """
        output = OrderedOutput(self.emit_raw, len(plans))
        tasks: dict[int, asyncio.Task[Image]] = {}
        first_step = 1
        for channel, plan in enumerate(plans):
            needs = [tasks[n] for n in sorted(plan.needs)]
            tasks[plan.stage.index] = asyncio.create_task(
                self.stage_after(plan, needs, output, channel, first_step)
            )
            first_step += 1 + len(plan.stage.instructions)
        channels = {plan.stage.index: channel for channel, plan in enumerate(plans)}
        try:
            await asyncio.wait(tasks.values(), return_when=asyncio.FIRST_EXCEPTION)
            failed = {
                i: error
                for i, t in tasks.items()
                if t.done() and not t.cancelled() and (error := t.exception()) is not None
            }
            if failed:
                first = min(failed)
                for channel in range(channels[first] + 1):
                    await output.release(channel)
                raise failed[first]
        finally:
            pending = [t for t in tasks.values() if not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        return tasks[plans[-1].stage.index].result()

    async def stage_after(
        self,
        plan: StagePlan,
        needs: list[asyncio.Task[Image]],
        output: OrderedOutput,
        channel: int,
        first_step: int,
    ) -> Image:
        """Build `plan` once every task of `needs` has built its stage."""
        for need in needs:
            # A failed dependency fails this stage too (the scheduler reports the first).
            await asyncio.shield(need)

        async def send(message: dict[str, Any]) -> None:
            await output.write(channel, message)

        image = await self.stage(plan, send, first_step)
        self.results[plan.stage.index] = image
        await output.close(channel)
        return image

    async def base_image(self, plan: StagePlan, send: Send) -> Image:
        if plan.base_stage is not None:
            return self.results[plan.base_stage]
        if plan.base == "scratch":
            return await asyncio.to_thread(commit_image_scratch, self.images, self.epoch)
        return await base_image(
            self.images,
            self.builder.distribution,
            plan.base,
            always_pull=self.options.pull,
            platform=self.options.platform,
            auth=self.options.registry_auth,
            send=send,
        )

    async def stage(self, plan: StagePlan, send: Send, first_step: int) -> Image:
        step = first_step
        await send({"stream": f"Step {step}/{self.total} : {plan.stage.from_.original}\n"})
        base = await self.base_image(plan, send)
        state = _Stage(
            base, self.build_args.stage(), self.dockerfile.escape, plan.stage.index, send
        )
        # Docker's classic builder has no image for scratch: an empty id.
        shown = "" if plan.base == "scratch" and plan.base_stage is None else base.id[7:19]
        await state.say(f" ---> {shown}\n")
        triggers = list(base.runtime_config.get("OnBuild") or [])
        if triggers:
            await state.say(
                f"# Executing {len(triggers)} build trigger{'s' * (len(triggers) > 1)}\n"
            )
            text = "FROM scratch\n" + "\n".join(triggers) + "\n"
            parsed = parse_dockerfile(text, "ONBUILD")
            for instruction in parsed.stages[0].instructions:
                await self.instruction(state, instruction, clear_onbuild=True)
        for instruction in plan.stage.instructions:
            step += 1
            await state.say(f"Step {step}/{self.total} : {instruction.original}\n")
            await self.instruction(state, instruction)
        return state.image

    async def instruction(
        self, state: _Stage, instruction: ins.Instruction, *, clear_onbuild: bool = False
    ) -> None:
        config = dict(state.image.runtime_config)
        if clear_onbuild:
            # A child image does not keep its parent's triggers: they ran at its FROM.
            config.pop("OnBuild", None)
        env = dispatch.env_dict(config)
        if isinstance(instruction, ins.Arg):
            state.args.declare(instruction, env)
        expanded = expand_instruction(instruction, state.args.expansion_env(env), state.escape)
        extra: list[Any] = [state.args.cache_key_args(), self.epoch, clear_onbuild]
        files = _Files()
        try:
            if isinstance(expanded, ins.Copy | ins.Add):
                files = await self.sources(state, expanded)
                extra += [files.checksum, [s.name for s in files.all()]]
            if isinstance(expanded, ins.Run) and expanded.mounts:
                extra.append(
                    await asyncio.to_thread(mounts_cache_key, expanded.mounts, self.context)
                )
            key = step_key(state.image.id, expanded, *extra)
            shared = self.steps.get(key)
            if shared is not None:
                # The same step on the same image, in another stage of this build (even
                # with --no-cache, as BuildKit): its result, made once.
                image = await asyncio.shield(shared)
                await state.say(" ---> Using cache\n")
            else:
                self.steps[key] = shared = asyncio.get_running_loop().create_future()
                shared.add_done_callback(_retrieve)
                try:
                    image = await self.cached_or_executed(state, expanded, config, files, key)
                except BaseException as exc:
                    if isinstance(exc, asyncio.CancelledError):
                        shared.cancel()
                    else:
                        shared.set_exception(exc)
                    raise
                shared.set_result(image)
            state.image = image
            await state.say(f" ---> {image.id[7:19]}\n")
        finally:
            if files.inline_dir is not None:
                shutil.rmtree(files.inline_dir, ignore_errors=True)

    async def cached_or_executed(
        self,
        state: _Stage,
        expanded: ins.Instruction,
        config: dict[str, Any],
        files: _Files,
        key: str,
    ) -> Image:
        """The image the build cache has for `key`, or the step executed (and cached)."""
        cached = None if self.options.no_cache else self.builder.cache.get(key)
        if cached is not None:
            try:
                image = await asyncio.to_thread(self.images.get, cached)
            except errors.NotFound:
                pass
            else:
                await state.say(" ---> Using cache\n")
                return image
        image = await self.execute(state, expanded, config, files)
        self.builder.cache.put(key, image.id)
        return image

    async def sources(self, state: _Stage, copy: ins.Copy | ins.Add) -> _Files:
        keyword = "COPY" if isinstance(copy, ins.Copy) else "ADD"
        files = _Files()
        if copy.inline:
            files.inline_dir = new_context_dir(self.images.data_root)
            env = state.args.expansion_env(dispatch.env_dict(state.image.runtime_config))
            for item in copy.inline:
                data = expand_heredoc(item.data, env, state.escape) if item.expand else item.data
                path = files.inline_dir / item.name
                path.write_text(data)
                os.chmod(path, 0o644)
                files.inline.append(Source(str(path), item.name))
        from_ = copy.from_ if isinstance(copy, ins.Copy) else None
        patterns = tuple(s for s in copy.sources if not is_url(s))
        if isinstance(copy, ins.Add) and len(patterns) != len(copy.sources):
            # Downloaded like heredoc files: kept in the step's own dir, hashed with them.
            if files.inline_dir is None:
                files.inline_dir = new_context_dir(self.images.data_root)
            for url in (s for s in copy.sources if is_url(s)):
                files.inline.append(
                    await asyncio.to_thread(
                        download,
                        url,
                        files.inline_dir / f"url-{len(files.inline)}",
                        checksum=copy.checksum,
                    )
                )
        if from_:
            index = stage_index(self.dockerfile.stages, from_, state.index)
            if index is not None:
                if index not in self.results:
                    raise errors.InvalidParameter(f"stage {from_} is not built")
                files.image = self.results[index]
            else:
                files.image = await asyncio.to_thread(self.images.get, from_)
            image = files.image

            def look() -> tuple[list[Source], str]:
                with mounted_snapshot(self.images, image.top_layer, writable=False) as (_, root):
                    found = match_sources(root, patterns, keyword)
                    digest = checksum([*files.inline, *found])
                    # Kept relative to the image's root: the copy mounts it again.
                    return [Source(s.path[len(root) :] or "/", s.name) for s in found], digest

            # An image's files never change: what a COPY --from matched and its checksum
            # are remembered, so a cached rebuild need not mount the image again.
            memo_key = (image.top_layer, patterns, keyword)
            remembered = None if files.inline else self.builder.from_sources.get(memo_key)
            if remembered is not None:
                files.main, files.checksum = list(remembered[0]), remembered[1]
            else:
                files.main, files.checksum = await asyncio.to_thread(look)
                if not files.inline:
                    self.builder.remember_sources(memo_key, files.main, files.checksum)
        else:
            found = await asyncio.to_thread(match_sources, str(self.context), patterns, keyword)
            files.main = found
            files.checksum = await asyncio.to_thread(checksum, [*files.inline, *found])
        return files

    async def execute(
        self,
        state: _Stage,
        instruction: ins.Instruction,
        config: dict[str, Any],
        files: _Files,
    ) -> Image:
        image = state.image
        match instruction:
            case ins.Run():
                return await self.run(state, instruction, config)
            case ins.Copy() | ins.Add():
                return await asyncio.to_thread(self.copy, image, instruction, config, files)
            case ins.Workdir():
                new = dispatch.apply(instruction, config)
                return await asyncio.to_thread(
                    self.workdir, image, new, dispatch.history_text(instruction)
                )
            case ins.Maintainer():
                return await asyncio.to_thread(
                    commit_image,
                    self.images,
                    image,
                    config,
                    {"created_by": dispatch.history_text(instruction)},
                    None,
                    epoch=self.epoch,
                    author=instruction.name,
                )
            case _:
                new = dispatch.apply(instruction, config)
                return await asyncio.to_thread(
                    commit_image,
                    self.images,
                    image,
                    new,
                    {"created_by": dispatch.history_text(instruction)},
                    None,
                    epoch=self.epoch,
                )

    async def run(self, state: _Stage, run: ins.Run, config: dict[str, Any]) -> Image:
        mount_sources: dict[str, Image] = {}
        for mount in run.mounts:
            if mount.type == "bind" and mount.from_:
                mount_sources[mount.from_] = await self.image_named(state, mount.from_)
        with run_mounts(
            run.mounts,
            images=self.images,
            context=self.context,
            sources=mount_sources,
            secrets=self.options.secrets,
        ) as mounts:
            stubs: list[str] = []
            if mounts:
                stubs = await asyncio.to_thread(
                    missing_paths, self.images, state.image, [m.target for m in mounts]
                )
            return await self.run_with_mounts(state, run, config, mounts, stubs)

    async def image_named(self, state: _Stage, name: str) -> Image:
        """An earlier stage's result or an image, for `--from=`."""
        index = stage_index(self.dockerfile.stages, name, state.index)
        if index is not None:
            if index not in self.results:
                raise errors.InvalidParameter(f"stage {name} is not built")
            return self.results[index]
        return await asyncio.to_thread(self.images.get, name)

    async def run_with_mounts(
        self,
        state: _Stage,
        run: ins.Run,
        config: dict[str, Any],
        mounts: tuple[MountSpec, ...],
        stubs: list[str],
    ) -> Image:
        argv = _run_argv(run, config)
        env = {**state.args.run_env(dispatch.env_dict(config))}
        args = state.args.cache_key_args()
        prefix = f"|{len(args)} {' '.join(args)} " if args else ""
        network = run.network if run.network and run.network != "default" else None
        request = RunRequest(
            image_id=state.image.id,
            command=argv,
            env=[f"{k}={v}" for k, v in env.items()],
            user=str(config.get("User") or ""),
            workdir=str(config.get("WorkingDir") or ""),
            network=network or self.options.network or "default",
            # The container id would leak into what RUN writes (`hostname > f`).
            hostname=REPRODUCIBLE_HOSTNAME if self.epoch is not None else "",
            mounts=mounts,
        )
        parent = state.image

        async def commit(container: Container, torn_down: Awaitable[int]) -> str:
            with self.images.lease() as held:
                self.images.hold(held, *parent.chain_ids)
                # The tar is written while the container's rootfs is being unmounted.
                written, _ = await asyncio.gather(
                    asyncio.to_thread(
                        write_step_layer, self.images, container.id, held, self.epoch, stubs
                    ),
                    torn_down,
                )

                def keep() -> Image:
                    layer = None
                    if written is not None:
                        layer = keep_step_layer(self.images, written, parent.top_layer, held)
                    return commit_image(
                        self.images,
                        parent,
                        config,
                        {"created_by": prefix + " ".join(argv)},
                        layer,
                        epoch=self.epoch,
                    )

                return (await asyncio.to_thread(keep)).id

        async def output(text: str) -> None:
            await state.say(text)

        image_id = await run_step(self.builder.containers, request, output, commit)
        return await asyncio.to_thread(self.images.get, image_id)

    def copy(
        self, image: Image, copy: ins.Copy | ins.Add, config: dict[str, Any], files: _Files
    ) -> Image:
        keyword = "COPY" if isinstance(copy, ins.Copy) else "ADD"
        dest = destination(copy.dest, str(config.get("WorkingDir") or "/"))
        snapshots = self.images.snapshotter()
        with self.images.lease() as held:
            self.images.hold(held, *image.chain_ids)
            with mounted_snapshot(self.images, image.top_layer, writable=True) as (key, root):
                options = CopyOptions(
                    owner=parse_chown(copy.chown, root, (0, 0) if files.image is None else None),
                    mode=parse_chmod(copy.chmod),
                    extract_archives=isinstance(copy, ins.Add),
                )
                if files.image is not None:
                    with mounted_snapshot(self.images, files.image.top_layer, writable=False) as (
                        view,
                        src_root,
                    ):
                        links = HardLinks(
                            root,
                            in_snapshot(src_root, snapshots.parent_paths(view)),
                            self.epoch,
                            snapshots.parent_paths(key),
                        )
                        staged = [
                            Source(resolve_in_root(src_root, s.path), s.name) for s in files.main
                        ]
                        copy_sources(root, [*files.inline, *staged], dest, options, keyword, links)
                else:
                    links = HardLinks(root, self.in_context, self.epoch)
                    copy_sources(root, files.all(), dest, options, keyword, links)
                unmount(root, detach=True)
                links.finish(snapshots.fs_path(key))
                layer = store_layer(self.images, key, image.top_layer, held, self.epoch)
            kind = "multi" if len(files.all()) > 1 else "file"
            history = f"/bin/sh -c #(nop) {keyword} {kind}:{files.checksum[7:]} in {dest} "
            return commit_image(
                self.images,
                image,
                config,
                {"created_by": history},
                layer,
                epoch=self.epoch,
            )

    def in_context(self, path: str) -> str | None:
        """`path` itself when it is in the build's context dir (linkable as it is)."""
        return path if path.startswith(str(self.context) + "/") else None

    def workdir(self, image: Image, config: dict[str, Any], history: str) -> Image:
        path = str(config.get("WorkingDir") or "/")
        with self.images.lease() as held:
            self.images.hold(held, *image.chain_ids)
            with mounted_snapshot(self.images, image.top_layer, writable=True) as (key, root):
                target = resolve_in_root(root, path)
                if not os.path.isdir(target):
                    make_dirs(root, path, CopyOptions(owner=None, mode=None))
                layer = store_layer(
                    self.images, key, image.top_layer, held, self.epoch, mounted_at=root
                )
            return commit_image(
                self.images,
                image,
                config,
                {"created_by": history},
                layer,
                epoch=self.epoch,
            )


@dataclass
class _Files:
    """What a COPY/ADD reads: heredoc files, matched sources (relative to `image`'s root
    when copying from a stage or image) and their checksum."""

    inline: list[Source] = field(default_factory=list)
    main: list[Source] = field(default_factory=list)
    image: Image | None = None
    checksum: str = "sha256:"
    inline_dir: Path | None = None

    def all(self) -> list[Source]:
        return [*self.inline, *self.main]


def _retrieve(future: asyncio.Future[Image]) -> None:
    """Mark a step's failure as seen: the stage that ran it raises it; no other need wait."""
    if not future.cancelled():
        future.exception()


def commit_image_scratch(images: Any, epoch: int | None) -> Image:
    """The empty image `FROM scratch` starts from (the same one every time)."""
    import json

    raw = json.dumps(empty_config(epoch), separators=(",", ":"), sort_keys=True).encode()
    image, _ = images.register_pulled(raw, [], [])
    return image  # type: ignore[no-any-return]


def _run_argv(run: ins.Run, config: dict[str, Any]) -> list[str]:
    command = run.command
    if not command.prepend_shell:
        return list(command.args)
    script = " ".join(command.args)
    if command.heredocs:
        single = _SINGLE_HEREDOC.match(script)
        if single is not None and len(command.heredocs) == 1:
            script = _heredoc_body(command.heredocs[0])
        else:
            script += "\n" + "".join(_heredoc_body(h) + h.name + "\n" for h in command.heredocs)
    return [*dispatch.shell_of(config), script]


def _heredoc_body(heredoc: Any) -> str:
    content = str(heredoc.content)
    if heredoc.chomp:
        content = "".join(line.lstrip("\t") for line in content.splitlines(keepends=True))
    return content
