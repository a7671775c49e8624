"""What every command shares: the consoles, the group that turns typed errors into exit codes,
the option declarations (one name, one type and one default per option) and the output claim.

Command modules import this and never each other; posedata/cli.py assembles them.
"""
from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from ..errors import PosedataError
from ..interrupts import PipeConsole

console = PipeConsole(highlight=False)
err_console = PipeConsole(stderr=True, highlight=False)

SEVERITY_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}

Decorator = Callable[[Any], Any]


class PosedataGroup(click.Group):
    """Turns the library's typed errors into a located message and its exit code; SIGINT, SIGTERM
    and a closed pipe into one line (or none) and the signal's exit code, after every cleanup ran."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        from ..interrupts import sigterm_raises

        with sigterm_raises():
            return super().main(*args, **kwargs)

    def invoke(self, ctx: click.Context) -> Any:
        from ..interrupts import EXIT_BROKEN_PIPE, interrupted_signal, silence_stdout

        try:
            return super().invoke(ctx)
        except PosedataError as e:
            # escaped: messages quote user text such as "posedata[sleap]" that rich would eat as markup
            err_console.print(f"[bold red]error:[/] {escape(str(e))}", soft_wrap=True)
            sys.exit(e.exit_code)
        except BrokenPipeError:
            silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except BaseException as e:
            stop = interrupted_signal(e)
            if stop is not None:
                err_console.print(f"interrupted ({stop.name}): stopped, temp files removed", soft_wrap=True)
                sys.exit(stop.exit_code)
            if isinstance(e, OSError) and e.errno is not None:
                # the environment, not the data: a full disk, a read-only or vanished folder (exit 2)
                where = f"{e.filename}: " if e.filename else ""
                err_console.print(f"[bold red]error:[/] {escape(where)}{escape(e.strerror or str(e))}", soft_wrap=True)
                sys.exit(2)
            raise


class CategoryType(click.ParamType):
    """--category's one type: an id, a name, several ids (3,7) or all (posedata.coco.parse_category)."""

    name = "category"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        from ..coco import parse_category

        try:
            return parse_category(value)
        except ValueError as e:
            self.fail(str(e), param, ctx)


# ------------------------------------------------------------------ shared options
# Each option is declared once here; a command passes only its own help text where it says more.
FILE = click.Path(dir_okay=False, path_type=Path)
FOLDER = click.Path(file_okay=False, path_type=Path)
ANY_PATH = click.Path(path_type=Path)


def skeleton_option(help: str = "Skeleton file or template name.", required: bool = True) -> Decorator:
    return click.option("--skeleton", "skeleton_spec", required=required, help=help)


def output_option(kind: str, help: str | None = None, required: bool = True, **kwargs: Any) -> Decorator:
    """-o/--output: kind "file", "folder" or "path" (a folder or a file the command decides)."""
    types = {"file": FILE, "folder": FOLDER, "path": ANY_PATH}
    return click.option("-o", "--output", type=types[kind], required=required, help=help, **kwargs)


def images_option(help: str, required: bool = False) -> Decorator:
    return click.option("--images", type=FOLDER, required=required, help=help)


def force_option(help: str = "Replace an existing output.") -> Decorator:
    return click.option("--force", is_flag=True, help=help)


def json_option(help: str) -> Decorator:
    return click.option("--json", "as_json", is_flag=True, help=help)


def bbox_margin_option(help: str) -> Decorator:
    return click.option("--bbox-margin", type=click.FloatRange(0, 10), default=0.1, show_default=True, help=help)


def category_option(default_help: str = "the only keypoint category") -> Decorator:
    """The one declaration of --category, shared by every command that reads COCO categories."""
    return click.option("--category", type=CategoryType(), default=None, metavar="ID|NAME|ID,ID|all",
                        help="Keypoint category: an id, a name, several ids (3,7), or all (every category whose "
                             f"keypoint list matches the skeleton, merged) [default: {default_help}].")


def checkpoint_option(help: str) -> Decorator:
    return click.option("--checkpoint", type=ANY_PATH, required=True, help=help)


def model_skeleton_option() -> Decorator:
    return skeleton_option("Skeleton file or template name [default: the one the checkpoint or ONNX file stores].",
                           required=False)


def input_size_option(help: str) -> Decorator:
    return click.option("--input-size", type=click.IntRange(32, 4096), default=None, help=help)


def _scales(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[float, ...] | None:
    """--scales: 1 to 8 comma-separated numbers in (0, 4]; the network's input is their multiple of
    the input height (the reference's multiscale is 0.5,1,1.5,2)."""
    if value is None:
        return None
    try:
        out = tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated numbers such as 0.94,1,1.06, got {value!r}") from None
    if not 1 <= len(out) <= 8 or not all(0 < v <= 4 for v in out):
        raise click.BadParameter(f"expected 1 to 8 numbers, each above 0 and at most 4, got {value!r}")
    return out


def check_scales(multiscale: bool, scales: tuple[float, ...] | None) -> None:
    if multiscale and scales:
        raise click.UsageError("--scales replaces --multiscale; give one of them")


def inference_options(f: Any) -> Any:
    """--multiscale, --scales, --flip, --backend, --threads and --device of the commands that run a model."""
    for opt in reversed((
        click.option("--multiscale", is_flag=True, help="Average scales 0.5, 1, 1.5, 2 (the reference's)."),
        click.option("--scales", callback=_scales, metavar="S1,S2,...",
                     help="Average these multiples of the input height instead (e.g. 0.94,1,1.06: the demo's "
                          "128/136/144 at input 136); not with --multiscale."),
        click.option("--flip", is_flag=True, help="Average with the mirrored image, channels swapped by the flip map."),
        click.option("--backend", type=click.Choice(["auto", "torch", "onnx"]), default="auto", show_default=True,
                     help="Run the network with PyTorch or ONNX Runtime (extra 'onnx'); auto: ONNX Runtime on the CPU "
                          "for 9 images or more when installed (1 or more once its graph for the checkpoint is cached), else "
                          "torch."),
        click.option("--threads", type=click.IntRange(1, 512), default=None, help="CPU threads of torch and ONNX Runtime [default: theirs]."),
        click.option("--device", default="auto", show_default=True,
                     help="auto (CUDA when available, else CPU), cpu, cuda, cuda:N or mps."),
    )):
        f = opt(f)
    return f


def one_id(spec: Any, what: str) -> int | None:
    """A command that reads one category by id (all: None, the command's own default)."""
    from ..coco import ALL

    if spec == ALL:
        return None
    if spec is not None and not isinstance(spec, int):
        raise click.BadParameter(f"{what} takes one category id, got {spec!r}", param_hint="--category")
    return spec


def one_category(spec: Any, what: str) -> str | None:
    """A command that reads one category: its --category as the text an importer takes."""
    from ..coco import ALL

    if isinstance(spec, tuple) or spec == ALL:
        raise click.BadParameter(f"{what} takes one category (an id or a name), got {spec!r}", param_hint="--category")
    return None if spec is None else str(spec)


def claim(path: Path, command: str, *inputs: Any, force: bool = False, folder: bool = False):
    """Hold this command's output until it ends (posedata.io.OutputClaim): never an input, replaced
    only with --force (a folder only if this command made it), one writer at a time."""
    from ..io import claim_output

    return click.get_current_context().with_resource(
        claim_output(path, command, inputs=inputs, force=force, folder=folder))


def progress_bar(label: str, *fields: Any, con: Console | None = None, transient: bool = True,
                 **kwargs: Any):
    """The one progress display of every command: label, bar, done/total, any extra fields,
    elapsed and remaining time. `label` may use `{task.description}`."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), *fields, TimeElapsedColumn(),
                    TimeRemainingColumn(), console=con or console, transient=transient, **kwargs)


def train_fields() -> tuple:
    """The loss and speed columns of a training display (`posedata train` and the demo)."""
    from rich.progress import TextColumn

    return TextColumn("loss {task.fields[loss]}"), TextColumn("{task.fields[speed]} img/s")
