"""`python -m dockling.registry serve|gc ...`: the registry program `dockling registry` runs."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from dockling import errors
from dockling.registry.gc import collect
from dockling.registry.server import ServeOptions, parse_addr, serve
from dockling.registry.storage import RegistryStorage


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dockling registry", description="An OCI registry.")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("serve", help="serve the OCI Distribution API")
    s.add_argument("--addr", default="127.0.0.1:5000", help="HOST:PORT to listen on")
    s.add_argument("--root", required=True, type=Path, help="storage directory")
    s.add_argument("--htpasswd", type=Path, help="require Basic auth (bcrypt htpasswd file)")
    s.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate")
    s.add_argument("--tls-key", type=Path, help="the certificate's private key")
    s.add_argument("--read-only", action="store_true", help="refuse pushes and deletes")
    s.add_argument(
        "--auth",
        choices=["none", "basic", "token"],
        default="",
        help="none, basic (htpasswd) or token (Bearer JWTs); default from the other flags",
    )
    s.add_argument("--access", type=Path, help="access rules file (per user and repo prefix)")
    s.add_argument("--token-realm", help="URL of an outside token service (default: own /token)")
    s.add_argument(
        "--token-key",
        type=Path,
        help="the token key: a shared secret (HS256), a PEM private key (RS256/ES256, to issue) "
        "or PEM certificates/public keys (to verify an outside service's tokens)",
    )
    s.add_argument("--token-service", default="dockling-registry", help="the token audience")
    s.add_argument(
        "--upload-max-age",
        type=float,
        default=7 * 24 * 3600,
        help="purge upload sessions idle this many seconds (default a week)",
    )
    s.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    g = sub.add_parser("gc", help="remove blobs no manifest references")
    g.add_argument("--root", required=True, type=Path, help="storage directory")
    g.add_argument("--dry-run", action="store_true", help="only print what would be removed")
    g.add_argument(
        "--delete-untagged", action="store_true", help="also remove manifests no tag reaches"
    )
    return parser


def _gc(args: argparse.Namespace) -> int:
    report = collect(
        RegistryStorage(args.root), dry_run=args.dry_run, delete_untagged=args.delete_untagged
    )
    verb = "would delete" if args.dry_run else "deleted"
    for repo, digest in report.deleted_manifests:
        print(f"{verb} manifest {repo}@{digest}")
    for digest in report.deleted_blobs:
        print(f"{verb} blob {digest}")
    print(
        f"{len(report.marked)} blobs marked, {len(report.deleted_blobs)} blobs "
        f"({report.freed_bytes} bytes) and {len(report.deleted_manifests)} manifests {verb}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "gc":
            return _gc(args)
        logging.basicConfig(
            level=getattr(logging, args.log_level.upper()),
            format="%(message)s",
            stream=sys.stderr,
        )
        host, port = parse_addr(args.addr)
        options = ServeOptions(
            root=args.root,
            host=host,
            port=port,
            htpasswd=args.htpasswd,
            tls_cert=args.tls_cert,
            tls_key=args.tls_key,
            read_only=args.read_only,
            auth=args.auth,
            access=args.access,
            token_realm=args.token_realm,
            token_key=args.token_key,
            token_service=args.token_service,
            upload_max_age=args.upload_max_age,
        )
        asyncio.run(serve(options))
    except errors.DocklingError as exc:
        print(f"dockling registry: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"dockling registry: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
