"""`posedata demo`: prints the steps of posedata/demo.py."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .common import claim, console, force_option, output_option, progress_bar, train_fields
from .render import print_convert_summary, print_val_report, print_validate_summary


# ---------------------------------------------------------------------- demo
@click.command("demo")
@output_option("folder", "Folder for every artefact (data, previews, plots, run, results).", required=False,
               default=Path("demo-out"), show_default=True)
@click.option("--steps", type=click.IntRange(1, 10**6), default=None,
              help="Training steps [default: 3600, about 8 minutes on 2 cores with no other job; a busy machine takes "
                   "longer and reaches the same AP].")
@click.option("--quick", is_flag=True, help="Seconds-long version (tiny data, a few iterations): every step, every artefact.")
@force_option("Replace the output folder of an earlier demo.")
def demo_cmd(output: Path, steps: int | None, quick: bool, force: bool) -> None:
    """Synthetic dataset -> validate -> convert -> preview -> flipcheck -> train -> val, on this CPU.

    A non-human template skeleton (object5), a training and a held-out set drawn by `posedata synth`,
    a small network trained for a fixed number of steps, and COCO AP (OKS, the skeleton's sigmas,
    silhouette areas) on the held-out set at the end, with the location of every artefact."""
    import time

    from rich.rule import Rule

    from .. import demo as D
    from ..io import atomic_write_json

    claim(output, "demo", force=force, folder=True).in_place()
    plan = D.make_plan(steps, quick)
    paths = D.DemoPaths(output)
    sk = D.skeleton(plan)
    t_start = time.perf_counter()
    loads: list[tuple[str, float | None]] = [("start", D.load_average())]
    steps = 7

    def bar(label: str):
        return progress_bar(f"{label:<10}")

    def header(n: int, text: str) -> None:
        console.print(Rule(f"[bold]{n}/{steps} {text}[/]  [dim]{time.perf_counter() - t_start:.0f} s[/]", align="left"))

    console.print(f"posedata demo: skeleton {sk.name} ({sk.num_keypoints} keypoints, {sk.num_limbs} limbs, "
                  f"{sum(i < j for i, j in enumerate(sk.flip))} flip pairs), output {output}, "
                  f"{plan.iterations} training steps{' (quick)' if quick else ''}", soft_wrap=True)

    header(1, "synth: a training set and a held-out set")
    with bar("synth") as prog:
        task = prog.add_task("synth", total=plan.train_images + plan.val_images)
        syn = D.synth_step(plan, paths, sk, progress=lambda done, total: prog.update(task, completed=done, total=total))
    _print_synth_step(plan, syn)

    header(2, "validate (with image checks)")
    _validate_step(paths, sk, bar)

    header(3, "convert the training set to labels")
    labels = D.convert_step(paths, sk)
    print_convert_summary(labels.extra["stats"], labels.settings)
    console.print(f"  wrote {paths.labels}: {labels.num_samples} samples, {labels.num_images} images")

    header(4, f"preview the training targets at input {plan.input_size}")
    _preview_step(plan, paths, sk, labels, bar)

    header(5, "flipcheck: the flip map against the data")
    flip = _flipcheck_step(plan, paths, sk)

    header(6, f"train on CPU: input {plan.input_size}, width {plan.width}, {plan.stages} refinement stage(s), "
              f"batch {plan.batch_size}, Adam lr {plan.lr:g}, {plan.threads} thread(s), {plan.iterations} steps")
    tr = _train_step(plan, paths, sk, loads)
    console.print(f"  {tr.iterations} steps in {tr.seconds / 60:.1f} min, {tr.images_per_s:.1f} images/s, "
                  f"{tr.cpu_seconds_per_step:.3f} CPU s/step; loss {tr.first_loss:.4g} -> {tr.last_loss:.4g}"
                  if tr.first_loss is not None else "  no step ran", soft_wrap=True)

    header(7, f"val on the held-out set ({D.val_description(plan)})")
    with bar("val") as prog:
        task = prog.add_task("val", total=plan.val_images)
        res = D.val_step(plan, paths, sk, progress=lambda done, total: prog.update(task, completed=done, total=total))
    print_val_report(res, f"{sk.name} held-out set ({res['n_images']} images): COCOeval keypoints, "
                          f"OKS with the skeleton's sigmas, {D.val_description(plan)}")
    total_min = (time.perf_counter() - t_start) / 60
    loads.append(("end", D.load_average()))
    atomic_write_json(output / "summary.json", D.summary(plan, paths, syn, tr, res, total_min * 60, loads), indent=1)
    _print_artefacts(output, paths, syn, flip, tr)
    console.print(f"[bold]held-out AP {res['AP']:.3f}[/] (AP50 {res['AP50']:.3f}, AR {res['AR']:.3f}) after "
                  f"{tr.iterations} training steps; demo took {total_min:.1f} min", soft_wrap=True)


def _validate_step(paths: Any, sk: Any, bar: Any) -> None:
    """Step 2: validate both sets with their images; an error is a bug in synth."""
    from .. import demo as D
    from ..errors import DataError

    with bar("validate") as prog:
        task = prog.add_task("validate", total=None)
        val = D.validate_step(paths, sk, progress=lambda done, total: prog.update(task, completed=done, total=total))
    _print_validate_step(val.findings)
    if val.errors():
        raise DataError("the synthetic data has validation errors (a bug in posedata synth)",
                        [f for fs in val.findings.values() for f in fs], file=str(paths.train_json))


def _preview_step(plan: Any, paths: Any, sk: Any, labels: Any, bar: Any) -> None:
    from .. import demo as D

    with bar("preview") as prog:
        task = prog.add_task("preview", total=plan.preview_samples)
        items = D.preview_step(plan, paths, sk, labels,
                               progress=lambda done, total: prog.update(task, completed=done, total=total))
    m = plan.input_size // 8
    console.print(f"  {len(items)} samples: image, heatmaps ({m}x{m}, stride 8) and PAFs per sample; "
                  f"contact sheet {paths.preview / 'index.png'}", soft_wrap=True)


def _flipcheck_step(plan: Any, paths: Any, sk: Any) -> Any:
    """Step 5: the flip verdict on the synthetic data; FAIL is a bug in synth or flipcheck."""
    from .. import demo as D
    from ..errors import DataError

    with console.status("flipcheck"):
        flip = D.flipcheck_step(plan, paths, sk)
    style = {"PASS": "bold green", "FAIL": "bold red"}.get(flip.verdict, "yellow")
    console.print(f"  [{style}]{flip.verdict}[/] {flip.flip.reason}", soft_wrap=True)
    if flip.verdict == "FAIL":
        raise DataError("the flip map disagrees with the synthetic data (a bug in posedata synth or flipcheck)",
                        file=str(paths.train_json))
    return flip


def _print_validate_step(findings: dict) -> None:
    """Per set: the non-info findings by code and one verdict line naming the info codes."""
    from .. import validate as V

    for name, fs in findings.items():
        shown = [f for f in fs if f.severity != "info"]
        if shown:
            print_validate_summary(shown, V.CHECKS, 3, title=f"validate {name}")
        c = V.counts(fs)
        verdict = "[bold red]FAIL[/]" if c["error"] else "[bold green]OK[/]"
        info: dict[str, int] = {}
        for f in fs:
            if f.severity == "info":
                info[f.code] = info.get(f.code, 0) + 1
        detail = ", ".join(f"{code} x{n}: {V.CHECKS.get(code, ('', code))[1]}" for code, n in sorted(info.items()))
        console.print(f"  {verdict} {name}: {c['error']} error(s), {c['warning']} warning(s), {c['info']} info"
                      + (f" ({detail})" if detail else ""), soft_wrap=True)


def _train_step(plan: Any, paths: Any, sk: Any, loads: list) -> Any:
    """demo.train_step under the training display; the load average sampled every 50 steps."""
    from .. import demo as D

    with progress_bar("train     ", *train_fields()) as prog:
        task = prog.add_task("train", total=plan.iterations, loss="-", speed="-")

        def on_event(event: str, info: dict) -> None:
            if event == "step":
                prog.update(task, completed=info["iteration"], loss=f"{info['loss']:.4g}",
                            speed=f"{info['images_per_s']:.1f}")
                if info["iteration"] % 50 == 0:
                    loads.append(("train", D.load_average()))

        tr = D.train_step(plan, paths, sk, callback=on_event)
    return tr


def _print_artefacts(output: Path, paths: Any, syn: Any, flip: Any, tr: Any) -> None:
    """Where every artefact of the run is."""
    t = Table(title="artefacts", show_header=False)
    t.add_column("what")
    t.add_column("where", overflow="fold")
    for what, where in (
        ("training set", syn.train_json), ("held-out set", syn.val_json), ("training labels", paths.labels),
        ("target previews", paths.preview / "index.png"),
        ("flip plots", ", ".join(str(p) for p in flip.written)),
        ("checkpoint", tr.checkpoint), ("loss curve", tr.curve), ("training metrics", tr.metrics),
        ("run config", paths.run / "config.json"),
        ("val metrics", paths.results / "metrics.json"), ("val results", paths.results / "results.json"),
        ("val overlays", paths.results), ("demo figures", output / "summary.json"),
    ):
        t.add_row(what, str(where))
    console.print(t)


def _print_synth_step(plan: Any, syn: Any) -> None:
    """Each set: its file, images, figures and the visibility mix."""
    for name, p in (("train", syn.train_json), ("val", syn.val_json)):
        v = syn.visibility[name]
        n = max(1, sum(v))
        console.print(f"  {name}: {p} ({plan.train_images if name == 'train' else plan.val_images} images "
                      f"{plan.image_size}x{plan.image_size}, {syn.figures[name]} figures; keypoints {v[2] / n:.0%} visible, "
                      f"{v[1] / n:.0%} occluded, {v[0] / n:.0%} out of frame)", soft_wrap=True)
    console.print(f"  drawn in {syn.seconds:.1f} s")
