"""trainer.model, trainer.checkpoint and trainer.loss: the reference's layout, partial loads, the loss."""
from __future__ import annotations

import os
from collections import Counter

import pytest
import torch
from repo_paths import TEMPLATE_NAMES

from posedata import skeleton as S
from posedata.errors import InputError, OutputWriteError
from trainer import checkpoint as C
from trainer.loss import masked_l2, stage_losses, total_loss
from trainer.model import ModelSpec, PoseNet, for_skeleton, param_groups
from trainer.predict import load_model

PREFIXES = ("model.", "cpm.", "initial_stage.", "refinement_stages.")

# Written from the reference's models/with_mobilenet.py and modules/conv.py (19 heatmaps, 38 PAFs,
# one refinement stage): names and shapes its published checkpoints carry.
REFERENCE_SHAPES = {
    "model.0.0.weight": (32, 3, 3, 3),
    "model.0.1.running_var": (32,),
    "model.1.0.weight": (32, 1, 3, 3),
    "model.1.3.weight": (64, 32, 1, 1),
    "model.4.3.weight": (256, 128, 1, 1),
    "model.6.3.weight": (512, 256, 1, 1),
    "model.7.0.weight": (512, 1, 3, 3),
    "model.11.4.bias": (512,),
    "cpm.align.0.weight": (128, 512, 1, 1),
    "cpm.align.0.bias": (128,),
    "cpm.trunk.0.0.weight": (128, 1, 3, 3),
    "cpm.trunk.2.2.weight": (128, 128, 1, 1),
    "cpm.conv.0.weight": (128, 128, 3, 3),
    "initial_stage.trunk.2.0.weight": (128, 128, 3, 3),
    "initial_stage.heatmaps.0.0.weight": (512, 128, 1, 1),
    "initial_stage.heatmaps.1.0.weight": (19, 512, 1, 1),
    "initial_stage.pafs.1.0.bias": (38,),
    "refinement_stages.0.trunk.0.initial.0.weight": (128, 128 + 19 + 38, 1, 1),
    "refinement_stages.0.trunk.1.initial.0.weight": (128, 128, 1, 1),
    "refinement_stages.0.trunk.4.trunk.0.1.running_mean": (128,),
    "refinement_stages.0.trunk.4.trunk.1.0.weight": (128, 128, 3, 3),
    "refinement_stages.0.heatmaps.0.0.weight": (128, 128, 1, 1),
    "refinement_stages.0.heatmaps.1.0.weight": (19, 128, 1, 1),
    "refinement_stages.0.pafs.1.0.weight": (38, 128, 1, 1),
}
# Counted by hand from the reference: backbone 6 + 11 * 12, CPM 10, initial stage 14,
# refinement stage 5 * 16 + 8.
REFERENCE_TENSORS = 6 + 11 * 12 + 10 + 14 + 5 * 16 + 8


@pytest.fixture(scope="module")
def reference_net():
    torch.manual_seed(1)
    return PoseNet(19, 38, stages=1, width=1.0)


@pytest.fixture(scope="module")
def coco17():
    return S.resolve("coco17")


def test_reference_names_and_shapes(reference_net):
    sd = reference_net.state_dict()
    assert len(sd) == REFERENCE_TENSORS
    assert all(k.startswith(PREFIXES) for k in sd)
    for name, shape in REFERENCE_SHAPES.items():
        assert tuple(sd[name].shape) == shape, name
    # the published network has about 4.1 M parameters
    assert 4.0e6 < sum(p.numel() for p in reference_net.parameters()) < 4.2e6


def test_output_stride_and_stage_outputs(reference_net):
    with torch.no_grad():
        out = PoseNet(19, 38, stages=2, width=0.25)(torch.zeros(1, 3, 96, 128))
    assert [tuple(o.shape) for o in out] == [(1, 19, 12, 16), (1, 38, 12, 16)] * 3


@pytest.mark.parametrize("name", TEMPLATE_NAMES)
def test_channels_follow_skeleton(name):
    sk = S.resolve(name)
    net = for_skeleton(sk, stages=1, width=0.25)
    with torch.no_grad():
        out = net(torch.zeros(2, 3, 64, 64))
    assert len(out) == 4
    for i, o in enumerate(out):
        assert o.shape == (2, sk.num_keypoints + 1 if i % 2 == 0 else 2 * sk.num_limbs, 8, 8)
    sd = net.state_dict()
    assert sd["initial_stage.heatmaps.1.0.weight"].shape[0] == sk.num_keypoints + 1
    assert sd["refinement_stages.0.pafs.1.0.weight"].shape[0] == 2 * sk.num_limbs
    assert net.spec == ModelSpec(sk.num_heatmaps, sk.num_pafs, 1, 0.25)


def test_width_keeps_names_and_shrinks(reference_net):
    small = PoseNet(19, 38, stages=1, width=0.25)
    assert list(small.state_dict()) == list(reference_net.state_dict())
    assert sum(p.numel() for p in small.parameters()) < 0.1 * sum(p.numel() for p in reference_net.parameters())
    assert small.state_dict()["cpm.align.0.weight"].shape == (32, 128, 1, 1)


def test_param_groups_follow_reference(reference_net):
    lr = 4e-5
    groups = {g["name"]: g for g in param_groups(reference_net, lr)}
    ids = [id(p) for g in groups.values() for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(reference_net.parameters()))
    sd = dict(reference_net.named_parameters())

    def group_of(name):
        return next(g for g in groups.values() if any(p is sd[name] for p in g["params"]))

    expect = {  # name: (lr multiplier, weight decay None = optimiser default)
        "model.0.0.weight": (1, None), "model.1.0.weight": (1, 0), "model.1.1.weight": (1, 0),
        "model.1.1.bias": (2, 0), "cpm.align.0.weight": (1, None), "cpm.align.0.bias": (2, 0),
        "cpm.trunk.0.0.weight": (1, 0), "cpm.trunk.0.2.weight": (1, None),
        "initial_stage.pafs.1.0.bias": (2, 0), "initial_stage.trunk.0.0.weight": (1, None),
        "refinement_stages.0.trunk.0.initial.0.weight": (4, None), "refinement_stages.0.heatmaps.1.0.bias": (8, 0),
        "refinement_stages.0.trunk.0.trunk.0.1.weight": (1, 0), "refinement_stages.0.trunk.0.trunk.0.1.bias": (2, 0),
    }
    for name, (mult, wd) in expect.items():
        g = group_of(name)
        assert g.get("lr", lr) == pytest.approx(lr * mult), name
        assert g.get("weight_decay") == wd, name
    opt = torch.optim.Adam(param_groups(reference_net, lr), lr=lr, weight_decay=5e-4)
    assert len(opt.param_groups) == 13


# ------------------------------------------------------------------ checkpoints
def reference_checkpoint(net, path):
    """What the reference's train.py writes: state_dict, optimizer, scheduler (with a Counter), iter, epoch."""
    opt = torch.optim.Adam(net.parameters(), lr=4e-5)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[100, 200, 260], gamma=0.333)
    assert isinstance(sched.state_dict()["milestones"], Counter)
    torch.save({"state_dict": net.state_dict(), "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                "iter": 370000, "current_epoch": 279}, path)


def test_reference_coco_checkpoint_partial_load(tmp_path, reference_net, coco17):
    path = tmp_path / "checkpoint_iter_370000.pth"
    reference_checkpoint(reference_net, path)
    ckpt = C.load(path)
    net = for_skeleton(coco17, stages=1, width=1.0)
    fresh = {k: v.clone() for k, v in net.state_dict().items()}
    report = C.load_partial(net, ckpt["state_dict"])

    nk, npaf = coco17.num_heatmaps, coco17.num_pafs
    assert nk != 19  # coco17 has no neck: every head differs from the reference's
    expected_mismatch = {
        "initial_stage.heatmaps.1.0.weight": ((19, 512, 1, 1), (nk, 512, 1, 1)),
        "initial_stage.heatmaps.1.0.bias": ((19,), (nk,)),
        "refinement_stages.0.trunk.0.initial.0.weight": ((128, 185, 1, 1), (128, 128 + nk + npaf, 1, 1)),
        "refinement_stages.0.heatmaps.1.0.weight": ((19, 128, 1, 1), (nk, 128, 1, 1)),
        "refinement_stages.0.heatmaps.1.0.bias": ((19,), (nk,)),
    }
    if npaf != 38:
        expected_mismatch.update({
            "initial_stage.pafs.1.0.weight": ((38, 512, 1, 1), (npaf, 512, 1, 1)),
            "initial_stage.pafs.1.0.bias": ((38,), (npaf,)),
            "refinement_stages.0.pafs.1.0.weight": ((38, 128, 1, 1), (npaf, 128, 1, 1)),
            "refinement_stages.0.pafs.1.0.bias": ((38,), (npaf,)),
        })
    assert report.shape_mismatch == expected_mismatch
    assert report.missing == [] and report.unused == []
    assert set(report.loaded) == set(fresh) - set(expected_mismatch)
    assert "reference" in report.layout
    src, now = reference_net.state_dict(), net.state_dict()
    for name in report.loaded:
        assert torch.equal(now[name], src[name]), name
    for name in expected_mismatch:
        assert torch.equal(now[name], fresh[name]), name  # heads stay initialised


def test_same_skeleton_loads_everything(tmp_path, reference_net):
    path = tmp_path / "ref.pth"
    reference_checkpoint(reference_net, path)
    net = PoseNet(19, 38, stages=3, width=1.0)  # more stages than the checkpoint
    report = C.load_partial(net, C.load(path)["state_dict"])
    assert report.shape_mismatch == {}
    assert report.missing and all(n.startswith(("refinement_stages.1.", "refinement_stages.2.")) for n in report.missing)
    assert len(report.loaded) == REFERENCE_TENSORS


def test_mobilenet_imagenet_layout(tmp_path, coco17):
    """The reference's MobileNet weights: DataParallel names, 14 blocks and an fc layer."""
    torch.manual_seed(2)
    imagenet = torch.nn.Sequential(*PoseNet(19, 38).model, *[PoseNet(19, 38).model[11] for _ in range(2)])
    state = {f"module.model.{k}": v for k, v in imagenet.state_dict().items()}
    state["module.fc.weight"] = torch.zeros(1000, 512)
    state["module.fc.bias"] = torch.zeros(1000)
    path = tmp_path / "mobilenet_sgd_68.848.pth.tar"
    torch.save({"epoch": 150, "arch": "mobilenet", "state_dict": state, "best_prec1": 68.848}, path)

    net = for_skeleton(coco17, stages=1, width=1.0)
    report = C.load_partial(net, C.load(path)["state_dict"])
    assert "MobileNet" in report.layout
    backbone = [k for k in net.state_dict() if k.startswith("model.")]
    assert sorted(report.loaded) == sorted(backbone)
    assert report.shape_mismatch == {}
    assert set(report.missing) == {k for k in net.state_dict() if not k.startswith("model.")}
    assert set(report.unused) == ({k for k in state if k.startswith(("module.model.12.", "module.model.13."))}
                                  | {"module.fc.weight", "module.fc.bias"})
    assert torch.equal(net.state_dict()["model.7.0.weight"], state["module.model.7.0.weight"])


class NotATensor:
    def __reduce__(self):
        return (os.getcwd, ())


def test_load_refuses_pickled_objects_and_garbage(tmp_path):
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"a": torch.zeros(1)}, "extra": NotATensor()}, evil)
    with pytest.raises(InputError, match="refuses to unpickle"):
        C.load(evil)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(InputError, match="not a posedata checkpoint"):
        C.load(junk)
    wrong = tmp_path / "wrong.pt"
    torch.save({"weights": [1, 2, 3]}, wrong)
    with pytest.raises(InputError, match="not a model checkpoint"):
        C.load(wrong)
    with pytest.raises(InputError, match="not found"):
        C.load(tmp_path / "missing.pt")


def test_bare_state_dict_accepted(tmp_path):
    net = PoseNet(5, 4, stages=0, width=0.25)
    torch.save(net.state_dict(), tmp_path / "bare.pt")
    other = PoseNet(5, 4, stages=0, width=0.25)
    report = C.load_partial(other, C.load(tmp_path / "bare.pt")["state_dict"])
    assert len(report.loaded) == len(net.state_dict()) and not report.not_loaded


def test_atomic_save_keeps_old_file_on_failure(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    C.save({"state_dict": {"w": torch.ones(3)}}, path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputWriteError, match="disk full"):  # exit 2 naming the file, not a traceback
        C.save({"state_dict": {"w": torch.zeros(3)}}, path)
    monkeypatch.undo()
    assert torch.equal(C.load(path)["state_dict"]["w"], torch.ones(3))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temp file left behind


def test_load_model_roundtrip_and_fingerprint(tmp_path, coco17):
    net = for_skeleton(coco17, stages=1, width=0.25)
    C.save(C.training_checkpoint(net, net.spec.to_dict(), coco17.to_dict(), coco17.fingerprint, iteration=3),
           tmp_path / "c.pt")
    model = load_model(tmp_path / "c.pt", coco17, backend="torch").model
    assert C.load(tmp_path / "c.pt")["iteration"] == 3 and not model.training
    for k, v in net.state_dict().items():
        assert torch.equal(model.state_dict()[k], v)
    with pytest.raises(InputError, match="fingerprint"):
        load_model(tmp_path / "c.pt", S.resolve("hand21"))


@pytest.mark.parametrize("version, says", [(1, "used ReLU"), (3, "newer than this posedata"), (None, "version")])
def test_checkpoint_of_another_format_version_is_refused(tmp_path, coco17, version, says):
    """Version 1 checkpoints were trained with ReLU in the CPM trunk: same names and shapes as
    today's ELU network, so only the version can stop them loading into it (issue 13)."""
    net = for_skeleton(coco17, stages=0, width=0.25)
    ckpt = C.training_checkpoint(net, net.spec.to_dict(), coco17.to_dict(), coco17.fingerprint, iteration=3)
    assert ckpt["version"] == C.VERSION == 2
    ckpt["version"] = version
    C.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(InputError, match=says) as e:
        load_model(tmp_path / "old.pt", coco17)
    assert e.value.where == "version" and e.value.file == str(tmp_path / "old.pt")
    if version == 1:
        assert "ELU" in e.value.message
    with pytest.raises(InputError, match=says):  # --init and --resume read through the same load
        C.load(tmp_path / "old.pt")


# ------------------------------------------------------------------------ loss
def test_loss_matches_reference_formula():
    torch.manual_seed(0)
    b, k, l2, h, w = 3, 4, 6, 5, 7
    hm, paf = torch.rand(b, k, h, w), torch.rand(b, l2, h, w) - 0.5
    mask = (torch.rand(b, h, w) > 0.3).float() * 0.5 + 0.25  # fractional values: mask enters squared
    outs = [torch.rand(b, k, h, w), torch.rand(b, l2, h, w), torch.rand(b, k, h, w), torch.rand(b, l2, h, w)]
    losses = stage_losses(outs, hm, paf, mask)
    for i, o in enumerate(outs):
        t = hm if i % 2 == 0 else paf
        expect = sum(float((((o[n] - t[n]) * mask[n]) ** 2).sum()) for n in range(b)) / 2 / b
        assert float(losses[i]) == pytest.approx(expect, rel=1e-5)
    total, parts = total_loss(outs, hm, paf, mask)
    assert float(total) == pytest.approx(sum(parts), rel=1e-6)
    # a masked-out cell does not count, however wrong the prediction
    m0 = torch.zeros(1, 1, 2, 2)
    assert float(masked_l2(torch.full((1, 3, 2, 2), 9.0), torch.zeros(1, 3, 2, 2), m0, 1)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        stage_losses([outs[1]], hm, paf, mask)


# ------------------------------------------------------------- the reference's function, not only its names
def _parity_weights(state: dict, names: list[str]) -> dict:
    """../shared/reference/network-parity/README.md's fill rule, written from its text."""
    import numpy as np

    keys = sorted(state)
    assert keys == names, "state-dict keys differ from the reference's"
    out = {}
    for k, name in enumerate(keys):
        t = state[name]
        if not t.is_floating_point():  # num_batches_tracked
            out[name] = t
            continue
        n = t.numel()
        i = np.arange(n, dtype=np.int64)
        u = ((i * 40503 + k * 9973) % 65536).astype(np.float64) / 65536 - 0.5
        if name.endswith("running_var"):
            v = 1 + np.abs(u)
        elif name.endswith("running_mean") or name.endswith(".bias"):
            v = 0.2 * u
        elif t.dim() == 1:
            v = 1 + 0.4 * u
        else:
            v = np.sqrt(12 / (n / t.shape[0])) * u
        out[name] = torch.from_numpy(v.reshape(tuple(t.shape)).astype(np.float32))
    return out


def _parity_input(h: int, w: int) -> torch.Tensor:
    import numpy as np

    c, y, x = np.meshgrid(np.arange(3), np.arange(h), np.arange(w), indexing="ij")
    v = 0.5 * np.sin(0.11 * x + 0.07 * y + c) + 0.3 * np.cos(0.05 * x * (c + 1) - 0.13 * y)
    return torch.from_numpy(v[None].astype(np.float32))


@pytest.mark.parametrize("stages", [1, 3])
def test_outputs_equal_the_reference_network(stages, shared_reference):
    """Same weights, same input -> the reference's outputs to 1e-5 (names and shapes alone prove
    nothing: with ReLU instead of ELU in the CPM trunk every state dict still loads with strict=True,
    and the outputs differ by 2e-4 to 5e-3)."""
    import numpy as np

    ref = np.load(shared_reference / "network-parity" / "expected.npz")
    pre = f"s{stages}_"
    net = PoseNet(19, 38, stages=stages, width=1.0)
    net.load_state_dict(_parity_weights(net.state_dict(), [str(n) for n in ref[pre + "names"]]), strict=True)
    net.eval()
    x = _parity_input(*ref[pre + "input"].shape[2:])
    assert np.array_equal(x.numpy(), ref[pre + "input"])  # the input formula is read as the README means
    with torch.no_grad():
        outs = net(x)
    n_out = len([k for k in ref.files if k.startswith(pre + "out")])
    assert len(outs) == n_out == 2 * (stages + 1)
    for i, o in enumerate(outs):
        want = ref[f"{pre}out{i}"]
        assert o.shape == want.shape
        np.testing.assert_allclose(o.numpy(), want, rtol=0, atol=1e-5, err_msg=f"output {i}")


# ------------------------------------------------ checkpoint archives and stored values
def deflated(src, dst) -> None:
    """The same archive with every member deflated (what torch.load would expand)."""
    import zipfile

    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            zout.writestr(info.filename, zin.read(info), compress_type=zipfile.ZIP_DEFLATED)


def test_compressed_checkpoint_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A 2.9 MB deflated checkpoint made torch.load(weights_only=True) allocate 2.2 GB: the zip
    directory's declared sizes are checked first, and torch.load never runs."""
    torch.save({"state_dict": {"w": torch.zeros(2_000_000)}}, tmp_path / "plain.pt")
    deflated(tmp_path / "plain.pt", tmp_path / "z.pt")
    assert (tmp_path / "z.pt").stat().st_size < 100_000
    assert torch.equal(torch.load(tmp_path / "z.pt", weights_only=True)["state_dict"]["w"], torch.zeros(2_000_000))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran on a compressed archive"))
    with pytest.raises(InputError, match="compressed") as e:
        C.load(tmp_path / "z.pt")
    assert e.value.file == str(tmp_path / "z.pt") and e.value.where.endswith("data.pkl")


def _legacy(obj, path):
    torch.save(obj, path, _use_new_zipfile_serialization=False)  # the pre-1.6 layout of the reference's weights
    return path


def test_legacy_checkpoint_with_optimizer_state_loads(tmp_path):
    sd = {"w": torch.arange(12.0).reshape(3, 4), "n": torch.tensor([7], dtype=torch.int64)}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9).state_dict()
    back = C.load(_legacy({"state_dict": sd, "optimizer": opt, "iter": 370000}, tmp_path / "old.pth"))
    assert torch.equal(back["state_dict"]["w"], sd["w"]) and back["iter"] == 370000


def test_legacy_checkpoint_claiming_a_huge_storage_is_refused_before_torch_load(tmp_path, monkeypatch):
    """A legacy (pickle) checkpoint declares each storage's element count in its pickle and
    torch.load allocates that many before reading: 500 million floats declared in a 600-byte file."""
    data = _legacy({"state_dict": {"w": torch.zeros(12)}}, tmp_path / "a.pt").read_bytes()
    at = data.index(b"K\x0cN")  # BININT1 12 (the storage's element count), then NONE
    forged = tmp_path / "forged.pt"
    forged.write_bytes(data[:at] + b"J" + (500_000_000).to_bytes(4, "little") + data[at + 2:])
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran on a forged legacy checkpoint"))
    with pytest.raises(InputError, match="declare 2000000000 bytes") as e:
        C.load(forged)
    assert e.value.file == str(forged)


def _saved_with(tmp_path, coco17, **change):
    net = for_skeleton(coco17, stages=0, width=0.25)
    ckpt = C.training_checkpoint(net, net.spec.to_dict(), coco17.to_dict(), coco17.fingerprint, iteration=3)
    for k, v in change.items():
        if k.startswith("model_"):
            ckpt["model"][k[len("model_"):]] = v
        else:
            ckpt[k] = v
    p = tmp_path / "c.pt"
    C.save(ckpt, p)
    return p


@pytest.mark.parametrize("change, where", [
    ({"skeleton": ["nose", "neck"]}, "skeleton"),
    ({"model_width": float("nan")}, "model.width"),
    ({"model_width": 1e9}, "model.width"),
    ({"model_stages": 2.5}, "model.stages"),
    ({"model_stages": 100000}, "model.stages"),
    ({"model_num_heatmaps": "18"}, "model.num_heatmaps"),
    ({"model_num_pafs": 7}, "model.num_pafs"),
    ({"model_num_heatmaps": True}, "model.num_heatmaps"),
    ({"model_extra": 1}, "model"),
    ({"model": [18, 38]}, "model"),
    ({"fingerprint": 5}, "fingerprint"),
    ({"iteration": -1}, "iteration"),
    ({"iteration": "3"}, "iteration"),
    ({"best_ap": float("nan")}, "best_ap"),
])
def test_checkpoint_fields_are_checked_on_load(tmp_path, coco17, monkeypatch, change, where):
    """Bad stored values (a list for the skeleton, width NaN, 2.5 or 100000 stages, a string for a
    count) gave tracebacks or hung building the network: refused on load, located, before any build."""
    p = _saved_with(tmp_path, coco17, **change)
    import trainer.model

    monkeypatch.setattr(trainer.model, "build", lambda *a: pytest.fail("a network was built from a bad spec"))
    for read in (C.load, lambda q: load_model(q, coco17)):
        with pytest.raises(InputError) as e:
            read(p)
        assert e.value.where == where and e.value.file == str(p), e.value


def test_json_given_as_checkpoint_or_labels_gets_a_plain_message(tmp_path, runner):
    # it used to be called "pickled data", with torch's advice to set weights_only=False
    from posedata.cli import cli

    js = tmp_path / "x.json"
    js.write_text('{"a": 1}')
    (tmp_path / "imgs").mkdir()
    r = runner.invoke(cli, ["val", "--checkpoint", str(js), "--coco", str(js), "--images", str(tmp_path / "imgs"),
                            "-o", str(tmp_path / "out" / "v")])
    assert r.exit_code == 2 and "not a posedata checkpoint" in r.output
    assert "weights_only" not in r.output and "Traceback" not in r.output
    r = runner.invoke(cli, ["train", "--skeleton", "coco17", "--labels", str(js), "--images", str(tmp_path / "imgs"),
                            "-o", str(tmp_path / "out" / "r")])
    assert r.exit_code == 2 and "not a posedata label file" in r.output and "Traceback" not in r.output
