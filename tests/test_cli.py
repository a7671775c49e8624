from __future__ import annotations

import subprocess
import sys

from posedata.cli import cli

DATA_COMMANDS = ["skeleton", "validate", "convert", "import", "preview", "flipcheck", "synth", "check"]


def test_help_is_fast_and_never_imports_torch():
    # CPU time of the child, not wall time: the suite runs beside other jobs on a 2-core machine
    code = (
        "import sys, time; t = time.process_time(); from posedata.cli import cli\n"
        "try:\n    cli(['--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
        "print(time.process_time() - t); print('torch' in sys.modules, 'cv2' in sys.modules, 'matplotlib' in sys.modules)"
    )
    best = 9.0
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split("\n")
        best = min(best, float(out[-3]))
        assert out[-2] == "False False False", out
    assert best < 0.8, f"`posedata --help` took {best:.2f} s of CPU"  # 0.3-0.45 s idle; CPU time grows under load too


def test_data_commands_help_without_torch():
    names = [n for n in DATA_COMMANDS if n in cli.commands]
    code = (
        "import sys\nfrom posedata.cli import cli\n"
        f"for n in {names!r}:\n"
        "    try:\n        cli([n, '--help'], standalone_mode=False)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().endswith("False")


def test_unknown_command_is_usage_error(runner):
    r = runner.invoke(cli, ["frobnicate"])
    assert r.exit_code == 2


def test_docs_cli_md_is_current():
    from repo_paths import ROOT

    from posedata.clidoc import render

    doc = (ROOT / "docs" / "cli.md").read_text()
    assert doc == render(cli), "docs/cli.md is out of date: run `python -m posedata.clidoc > docs/cli.md`"


def test_data_commands_run_without_torch(tmp_path, shared_real):
    """validate, convert, check, flipcheck and preview really run (not just --help) without torch."""
    coco_json = str(shared_real / "coco" / "test_coco.json")
    images = str(shared_real / "coco")
    runs = [
        ["validate", coco_json, "--skeleton", "coco17"],
        ["convert", coco_json, "--skeleton", "openpose18", "-o", str(tmp_path / "l.npz")],
        ["check", coco_json, "--skeleton", "coco17"],
        ["flipcheck", coco_json, "--skeleton", "coco17", "-o", str(tmp_path / "fc")],
        ["preview", coco_json, "--skeleton", "coco17", "--images", images, "-o", str(tmp_path / "pv"), "-n", "1"],
    ]
    code = (
        "import sys\nfrom posedata.cli import cli\ncodes = []\n"
        f"for args in {runs!r}:\n"
        "    try:\n        cli(args, standalone_mode=False)\n        codes.append(0)\n"
        "    except SystemExit as e:\n        codes.append(e.code)\n"
        "print(codes, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[0, 0, 0, 0, 0] False", out[-2000:]
