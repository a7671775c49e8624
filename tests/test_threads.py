"""The thread policy: every torch command has passive OpenMP waiting in place before torch loads.

A subprocess records OMP_WAIT_POLICY at the moment `import torch` starts (a meta-path hook), with
the variable removed from its environment first. Before the policy moved into the trainer
package, only `train` set it: val, infer and export onnx imported torch with it unset.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from repo_paths import ROOT

from posedata import skeleton as S
from trainer.threads import apply_thread_policy

PROBE = """
import os, sys
seen = []
class Hook:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and not seen:
            seen.append(os.environ.get("OMP_WAIT_POLICY"))
        return None
sys.meta_path.insert(0, Hook())
try:
    if sys.argv[1] == "exec":
        exec(sys.argv[2])
    else:
        from posedata.cli import cli
        cli(sys.argv[1:], standalone_mode=False)
finally:
    print("AT_TORCH_IMPORT=" + repr(seen[0] if seen else "not imported"))
"""


def probe(args: list[str], extra_env: dict | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra_env or {})
    r = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Path, Path]:
    from trainer import checkpoint as C
    from trainer.model import for_skeleton

    d = tmp_path_factory.mktemp("threads")
    sk = S.resolve("object5")
    torch.manual_seed(0)
    model = for_skeleton(sk, stages=0, width=0.25)
    C.save(C.training_checkpoint(model, model.spec.to_dict(), sk.to_dict(), sk.fingerprint,
                                 config={"input_size": 64}), d / "tiny.pt")
    import cv2
    import numpy as np

    (d / "imgs").mkdir()
    cv2.imwrite(str(d / "imgs" / "a.png"), np.full((60, 80, 3), 90, np.uint8))
    return d, d / "tiny.pt"


def test_infer_and_export_set_the_policy_before_torch_loads(tiny):
    d, ckpt = tiny
    assert probe(["infer", str(d / "imgs"), "--checkpoint", str(ckpt), "-o", str(d / "out")]) \
        == "AT_TORCH_IMPORT='PASSIVE'"
    assert probe(["export", "onnx", "--checkpoint", str(ckpt), "-o", str(d / "m.onnx")]) \
        == "AT_TORCH_IMPORT='PASSIVE'"


def test_val_and_the_demo_val_step_set_the_policy_before_torch_loads(tiny, tmp_path):
    d, ckpt = tiny
    coco = {"images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 60}], "annotations": [],
            "categories": [{"id": 1, "name": "o", "keypoints": list(S.resolve("object5").coco_keypoints)}]}
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    assert probe(["val", "--checkpoint", str(ckpt), "--coco", str(tmp_path / "gt.json"), "--images",
                  str(d / "imgs")]) == "AT_TORCH_IMPORT='PASSIVE'"
    # the demo's val step reaches torch through trainer.evaluate's load_model
    assert probe(["exec", f"from trainer import evaluate as E; E.load_model({str(ckpt)!r})"]) \
        == "AT_TORCH_IMPORT='PASSIVE'"


def test_a_users_own_policy_wins_and_late_calls_say_so():
    assert probe(["exec", "import trainer.checkpoint"], {"OMP_WAIT_POLICY": "ACTIVE"}) == "AT_TORCH_IMPORT='ACTIVE'"
    # in this process torch is loaded already: the policy can no longer reach OpenMP
    saved = os.environ.pop("OMP_WAIT_POLICY", None)
    try:
        assert apply_thread_policy() is False and os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    finally:
        if saved is not None:
            os.environ["OMP_WAIT_POLICY"] = saved
    n = torch.get_num_threads()
    try:
        apply_thread_policy(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(n)
