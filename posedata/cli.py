"""The `posedata` command line: parse, call a library function, print with rich.

The commands live in posedata/commands/ by group (common.py holds the shared options and the
error handling); this module assembles them. Library modules are imported inside each command
so `posedata --help` stays fast and the data commands never import torch. Exit codes: 0 success,
1 the data has errors, 2 usage error or unreadable input.
"""
from __future__ import annotations

import click

from .commands.common import CategoryType, PosedataGroup, console, err_console
from .commands.convert import convert_cmd, split_cmd, synth_cmd
from .commands.demo import demo_cmd
from .commands.export import export
from .commands.inspect import flipcheck_cmd, preview_cmd
from .commands.model import infer_cmd, train_cmd, val_cmd
from .commands.skeleton import skeleton
from .commands.validate import check_cmd, import_cmd, validate_cmd

__all__ = ["CategoryType", "cli", "console", "err_console", "main"]


@click.group(cls=PosedataGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="posedata")
def cli() -> None:
    """posedata: one skeleton file from annotated keypoints to a trained bottom-up pose model."""


for _command in (skeleton, check_cmd, validate_cmd, import_cmd, convert_cmd, split_cmd, synth_cmd, preview_cmd,
                 flipcheck_cmd, export, train_cmd, val_cmd, infer_cmd, demo_cmd):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="posedata")


if __name__ == "__main__":
    main()
