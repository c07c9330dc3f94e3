"""python -m siamese_core {train,runs,eval,verify,embed,similar,export}: the same work as the app, without the browser.

One module per command, each with its `add_<command>_parser(commands)` (its flags, help and defaults) and its
`run_<command>(args)` (the work; it returns the exit code); this package puts them together. Parsing imports no torch:
a command imports the library's heavy parts inside its run_ function, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import logging
import sys

from ..errors import UserError, plain_words
from .embed import add_embed_parser
from .evaluate import add_eval_parser
from .export import add_export_parser
from .runs import add_runs_parser
from .similar import add_similar_parser
from .train import add_train_parser
from .verify import add_verify_parser

# In the order --help lists them.
COMMANDS = (add_train_parser, add_runs_parser, add_eval_parser, add_verify_parser, add_embed_parser,
            add_similar_parser, add_export_parser)


def build_parser() -> argparse.ArgumentParser:
    """The command line: every command's flags, each command's run_ function as its `handler`."""
    parser = argparse.ArgumentParser(prog="python -m siamese_core",
                                     description="Train, evaluate and use Siamese networks on images.")
    commands = parser.add_subparsers(dest="command", metavar="{train,runs,eval,verify,embed,similar,export}")
    for add_parser in COMMANDS:
        add_parser(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    try:
        return args.handler(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (OSError, MemoryError, RuntimeError) as exc:  # a full or read-only disk, memory: a sentence, not a traceback
        sentence = plain_words(exc)
        if isinstance(exc, RuntimeError) and not isinstance(exc, MemoryError) and "disk is full" not in sentence:
            raise  # a bug: its traceback is what a report needs
        print(f"error: {sentence}" + (f" ({exc.filename})" if getattr(exc, "filename", None) else ""), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
