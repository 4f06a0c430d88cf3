"""The ``pcdms`` command: the entry point (``pcdms``, ``python -m pcdms``, :func:`main`).

The commands live in :mod:`pcdms.commands`, one module per family. Errors a user can fix come out as one
line, ``pcdms: error: ...``, with exit status 1; a wrong command line gets argparse's usage message and
status 2. Only the model commands import torch, diffusers and transformers (when they run), so that
``pcdms --help`` and the pose and data commands start in a second.
"""

from __future__ import annotations

import sys
import warnings

from .commands import build_parser
from .devices import set_threads
from .errors import PcdmsError, PcdmsWarning

__all__ = ["build_parser", "main"]


def one_line_warnings(show):
    """``warnings.showwarning`` that prints pcdms' own warnings as one line, ``pcdms: warning: ...``, and
    leaves the others to ``show``."""

    def shown(message, category, *args, **kwargs) -> None:
        if issubclass(category, PcdmsWarning):
            print(f"pcdms: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    return shown


def main(argv: list[str] | None = None) -> int:
    """Run the ``pcdms`` command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status
    (0 done, 1 an error reported in one line, 130 interrupted). A wrong command line exits with status 2."""
    args = build_parser().parse_args(argv)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = one_line_warnings(warnings.showwarning)
            if hasattr(args, "threads"):  # the commands with --device, which run torch
                set_threads(args.threads)
            return args.run(args)
    except PcdmsError as error:
        print(f"pcdms: error: {error}", file=sys.stderr)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"pcdms: error: {where}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("pcdms: interrupted", file=sys.stderr)
        return 130
    return 1
