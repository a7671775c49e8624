"""docs/cli.md is generated from the click commands: `python -m posedata.clidoc > docs/cli.md`.

A test fails when the file is out of date.
"""
from __future__ import annotations

import click


def _walk(cmd: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    out = [(path, cmd)]
    if isinstance(cmd, click.Group):
        for name in sorted(cmd.commands):
            out += _walk(cmd.commands[name], path + [name])
    return out


def render(cli: click.Group, prog: str = "posedata") -> str:
    lines = ["# Command reference", "",
             "Generated from the commands themselves (`python -m posedata.clidoc > docs/cli.md`); a test keeps it current.",
             "Exit codes everywhere: 0 success, 1 the data has errors, 2 usage error or unreadable input.", ""]
    for path, cmd in _walk(cli, []):
        name = " ".join([prog] + path)
        # fixed widths so the text does not depend on the terminal it is generated in
        ctx = click.Context(cmd, info_name=name, terminal_width=100, max_content_width=100,
                            help_option_names=["-h", "--help"])
        lines += [f"## `{name}`", "", "```", cmd.get_help(ctx), "```", ""]
    return "\n".join(lines)


def main() -> None:
    from .cli import cli

    print(render(cli), end="")


if __name__ == "__main__":
    main()
