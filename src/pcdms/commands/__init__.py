"""The ``pcdms`` commands, one module per family. Each module has ``add_parsers(commands)``, which adds its
subcommands to the top-level subparsers with a ``run(args) -> exit status`` each, and thin ``run_*``
functions that read the options and call the library (pcdms.generation, pcdms.sampling, pcdms.pose, ...).

Importing a command module is light (no torch, diffusers, transformers or Gradio): the heavy libraries are
imported inside the ``run_*`` functions that need them, so ``pcdms --help``, ``pcdms pose ...`` and
``pcdms data validate`` start quickly.
"""

from __future__ import annotations

import argparse

from .. import __version__
from . import animate, convert, data, demo, evaluate, generate, pose, sample, toy, train

# In the order ``pcdms --help`` lists them.
FAMILIES = (demo, generate, animate, evaluate, convert, pose, data, toy, train, sample)


def build_parser() -> argparse.ArgumentParser:
    """The ``pcdms`` argument parser; each parsed command carries its ``run`` function."""
    parser = argparse.ArgumentParser(prog="pcdms", description="Pose-guided person image synthesis (PCDMs).")
    parser.add_argument("--version", action="version", version=f"pcdms {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for family in FAMILIES:
        family.add_parsers(commands)
    return parser
