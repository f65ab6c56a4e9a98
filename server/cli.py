"""The `os1` command: serve, token, chat."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from dataclasses import fields

from server import __version__, auth
from server.config import ConfigError, Settings
from server.logs import configure
from server.loop import prepare as prepare_loop


def _serve(args: argparse.Namespace) -> int:
    try:
        flags = {f.name: getattr(args, f.name, None) for f in fields(Settings)}
        settings = Settings.load(**flags).with_defaults_filled()
        from server.serve import load_personas

        cards = load_personas(settings)
    except (ConfigError, OSError, ValueError) as e:  # CardError is a ValueError
        print(f"os1 serve: {e}", file=sys.stderr)
        return 2
    configure(settings.log_format)
    from server.serve import print_banner, run

    prepare_loop()
    from personas.minds import MindError

    try:
        asyncio.run(run(settings, cards, on_ready=lambda base: print_banner(settings, base)))
    except MindError as e:  # e.g. `--mind local` without the model installed
        print(f"os1 serve: {e}", file=sys.stderr)
        return 2
    return 0


def _token(args: argparse.Namespace) -> int:
    try:
        settings = Settings.load().with_defaults_filled()
        token = auth.mint(settings.secret, sub=args.sub, role=args.role, name=args.name,
                          ttl=args.ttl)
    except (ConfigError, ValueError, OSError) as e:
        print(f"os1 token: {e}", file=sys.stderr)
        return 2
    print(token)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="os1", description="OS1: personas that talk with people "
                                "and with each other.")
    p.add_argument("--version", action="version", version=f"os1 {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("serve", help="run a hub node")
    for f in fields(Settings):
        if f.name != "secret":  # a secret on the command line shows in `ps`: env only
            s.add_argument("--" + f.name.replace("_", "-"), dest=f.name, metavar="V",
                           help=f"{f.metadata['help']} (env {f.metadata['env']}, default {f.default!r})")
    s.set_defaults(func=_serve)
    t = sub.add_parser("token", help="mint a signed token with the hub's secret")
    t.add_argument("--role", required=True, choices=["human", "persona", "observer", "admin"])
    t.add_argument("--sub", required=True, help="user or persona id")
    t.add_argument("--name", help="display name (default: the id)")
    t.add_argument("--ttl", type=float, default=86400.0, help="seconds until expiry (1 day)")
    t.set_defaults(func=_token)
    sub.add_parser("chat", help="chat with a persona in the terminal", add_help=False)
    sub.add_parser("watch", help="stream the personas' collective (observer token)",
                   add_help=False)
    sub.add_parser("personas", help="list, run or import personas", add_help=False)
    return p


_DELEGATED = {"chat": "clients.chat", "watch": "clients.watch", "personas": "personas.cli"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Client commands have parsers of their own; `os1 <cmd> --help` shows them.
    if argv and argv[0] in _DELEGATED:
        module = importlib.import_module(_DELEGATED[argv[0]])
        return int(module.main(argv[1:]))
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
