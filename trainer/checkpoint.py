"""Checkpoints: atomic saves, safe loads, and partial loading by name and shape.

Loading always uses `torch.load(weights_only=True)`: a checkpoint is data, and the full unpickler
would run whatever code the file names. Three layouts are understood:

- posedata's own (`format: posedata-checkpoint`): `state_dict` with the reference's module names,
  plus the model spec, skeleton, optimiser, scheduler, iteration and RNG states;
- the reference's COCO checkpoints: a dict whose `state_dict` uses the same module names
  (`model`, `cpm`, `initial_stage`, `refinement_stages`), heads sized 19 / 38;
- the reference's MobileNet ImageNet weights: `state_dict` saved through DataParallel, so every
  name starts with `module.` (`module.model.0.0.weight`, ..., `module.fc.weight`).

A bare state dict (name -> tensor) is accepted too.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from posedata.errors import InputError
from posedata.io import atomic_write_bytes

FORMAT = "posedata-checkpoint"
# 2: the CPM trunk's separable blocks use ELU, as the reference (version 1 networks used ReLU there).
# The weights of the two have the same names and shapes, so only this number tells them apart.
VERSION = 2
RELU_TRUNK_VERSIONS = (1,)


@dataclass
class LoadReport:
    """What a partial load did, name by name (model names, after any prefix was stripped)."""

    layout: str
    loaded: list[str] = field(default_factory=list)
    # model name -> (checkpoint shape, model shape): same name, different shape (e.g. heads)
    shape_mismatch: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)  # in the model, not in the checkpoint
    unused: list[str] = field(default_factory=list)  # in the checkpoint, not in the model

    # model name -> is a weight (a convolution kernel: what a network learned), else a bias,
    # BatchNorm scale or statistic, or a counter. Only weights count as "loaded".
    weight: dict[str, bool] = field(default_factory=dict)

    @property
    def not_loaded(self) -> list[str]:
        return list(self.shape_mismatch) + self.missing

    @property
    def weights_loaded(self) -> list[str]:
        return [n for n in self.loaded if self.weight.get(n)]

    def summary(self) -> str:
        weights = sum(self.weight.values())
        others = len(self.loaded) - len(self.weights_loaded)
        return (f"{self.layout}: loaded {len(self.weights_loaded)} of {weights} weight tensors (and {others} biases, "
                f"BatchNorm and other tensors), {len(self.shape_mismatch)} kept initialised (shape differs), "
                f"{len(self.missing)} kept initialised (not in checkpoint), {len(self.unused)} checkpoint tensors unused")

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": self.layout,
            "loaded": self.loaded,
            "shape_mismatch": {k: [list(a), list(b)] for k, (a, b) in self.shape_mismatch.items()},
            "missing": self.missing,
            "unused": self.unused,
            "weights_loaded": self.weights_loaded,
        }


# ------------------------------------------------------------------------ save
def save(obj: dict[str, Any], path: str | os.PathLike) -> None:
    """Serialise to memory, then temp file + fsync + os.replace: a kill at any moment leaves
    either the previous file or the new one, never a truncated one."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def training_checkpoint(model: nn.Module, spec: dict, skeleton: dict, fingerprint: str, **extra: Any) -> dict[str, Any]:
    """posedata's checkpoint dict; `state_dict` first so the reference's own loader reads it too."""
    return {
        "state_dict": {k: v.detach().cpu() for k, v in unwrap(model).state_dict().items()},
        "format": FORMAT,
        "version": VERSION,
        "model": dict(spec),
        "skeleton": skeleton,
        "fingerprint": fingerprint,
        **extra,
    }


def unwrap(model: nn.Module) -> nn.Module:
    """The plain model inside DistributedDataParallel / DataParallel."""
    return getattr(model, "module", model)


# ------------------------------------------------------------------------ load
def load(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint file without unpickling arbitrary objects.

    Returns a dict that has a `state_dict` (a bare state dict is wrapped)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("checkpoint not found", file=str(p))
    with open(p, "rb") as f:
        head = f.read(4)
    # a checkpoint is a zip archive (torch >= 1.6) or a legacy pickle (protocol byte 0x80); anything
    # else (a JSON or label file given by mistake) gets a plain answer, not torch's unpickling advice
    if not (head.startswith(b"PK") or head[:1] == b"\x80"):
        raise InputError(f"not a posedata checkpoint (expected a PyTorch .pt/.pth file; this one starts with "
                         f"{head!r})", file=str(p))
    check_archive(p)
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises UnpicklingError, RuntimeError, EOFError... for bad files
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            # torch's own text goes on to suggest weights_only=False: never the advice for a file from elsewhere
            msg = ("it holds pickled Python objects other than tensors and plain containers; posedata refuses "
                   "to unpickle them (only tensors and plain containers are read)")
        raise InputError(f"cannot read checkpoint: {msg}", file=str(p)) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        state = obj["state_dict"]
    elif isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        obj = {"state_dict": obj}
        state = obj["state_dict"]
    else:
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise InputError(f"not a model checkpoint: expected a dict with a 'state_dict' of tensors, found {keys}",
                         file=str(p))
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise InputError(f"state_dict entries that are not tensors: {bad[:5]}", file=str(p), where="state_dict")
    if obj.get("format") == FORMAT:
        check_fields(obj, str(p))
    return obj


def check_archive(p: Path) -> None:
    """Refuse a zip checkpoint whose members could expand beyond the file, before torch.load
    allocates them: torch.save stores every record uncompressed, so each member's declared size
    must be its stored size and all of them together fit in the file (a 2.9 MB deflated
    checkpoint made torch.load allocate 2.2 GB). Legacy (pre-1.6, not zip) files: check_legacy."""
    import zipfile

    if not zipfile.is_zipfile(p):
        check_legacy(p)
        return
    try:
        with zipfile.ZipFile(p) as zf:
            members = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise InputError(f"cannot read checkpoint: not a readable zip archive ({e})", file=str(p)) from None
    for m in members:
        if m.compress_type != zipfile.ZIP_STORED or m.file_size != m.compress_size:
            raise InputError(f"archive member {m.filename!r} declares {m.file_size} bytes stored in {m.compress_size} "
                             "(compressed); torch.save writes records uncompressed and only such archives are "
                             "read, so nothing expands beyond the file", file=str(p), where=m.filename)
    total, size = sum(m.file_size for m in members), p.stat().st_size
    if total > size:
        raise InputError(f"archive members declare {total} bytes in all, more than the file's {size}", file=str(p))


# Far above any network posedata trains (the reference has 1 refinement stage, OpenPose 5) and
# bytes per element of the storage types a legacy checkpoint names
_STORAGE_BYTES = {"DoubleStorage": 8, "FloatStorage": 4, "HalfStorage": 2, "BFloat16Storage": 2, "LongStorage": 8,
                  "IntStorage": 4, "ShortStorage": 2, "CharStorage": 1, "ByteStorage": 1, "BoolStorage": 1,
                  "ComplexDoubleStorage": 16, "ComplexFloatStorage": 8}
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C  # torch.serialization.MAGIC_NUMBER


def check_legacy(p: Path) -> None:
    """Refuse a legacy (pre-1.6, pickle) checkpoint whose storages declare more bytes than the file
    holds, before torch.load allocates them. Its layout is four pickles (magic number, protocol,
    system info, the object with each storage as a persistent id carrying its element count) and
    then the storages' bytes. The pickles are never unpickled here: their opcodes are walked
    (pickletools) on a stack of literals and placeholders, so no code runs and nothing is built
    but the persistent ids' counts (torch.load(weights_only=True) then reads the file)."""
    size = p.stat().st_size
    try:
        with open(p, "rb") as f:
            magic = _walk_pickle(f, {})
            if magic != _LEGACY_MAGIC:
                raise ValueError("no torch magic number")
            declared: dict[str, int] = {}
            for _ in range(3):  # protocol, system info, the object
                _walk_pickle(f, declared)
    except Exception as e:  # not torch's legacy layout: torch.load could not read it either
        raise InputError(f"cannot read checkpoint: not a zip archive and not a legacy torch pickle ({e})",
                         file=str(p)) from None
    total = sum(declared.values())
    if total > size:
        raise InputError(f"legacy checkpoint's storages declare {total} bytes in all, more than the file's {size}; "
                         "refused before anything is allocated", file=str(p))


class _Mark:
    pass


class _Global(tuple):  # (module, name) of a GLOBAL opcode
    pass


_LITERALS = {"BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BININT", "BININT1", "BININT2", "INT",
             "LONG", "LONG1", "LONG4", "BINFLOAT", "FLOAT", "STRING", "BINSTRING", "SHORT_BINSTRING", "BINBYTES",
             "SHORT_BINBYTES", "BINBYTES8"}


def _walk_pickle(f: Any, declared: dict[str, int]) -> Any:
    """The value one pickle leaves if it is a literal (else a placeholder), walking its opcodes up
    to STOP; each storage persistent id ('storage', torch.<Type>Storage, key, device, count) adds
    its byte count to `declared`. Any other effect on the stack is the opcode's declared arity."""
    import pickletools

    mark, opaque = _Mark(), object()
    stack: list[Any] = []
    memo: dict[Any, Any] = {}
    for op, arg, _ in pickletools.genops(f):
        name = op.name
        if name == "STOP":
            return stack.pop()
        if name == "MARK":
            stack.append(mark)
        elif name in _LITERALS or name in ("NONE", "NEWTRUE", "NEWFALSE"):
            stack.append({"NONE": None, "NEWTRUE": True, "NEWFALSE": False}.get(name, arg))
        elif name == "GLOBAL":
            stack.append(_Global(str(arg).split(" ", 1)))
        elif name == "STACK_GLOBAL":
            n, m = stack.pop(), stack.pop()
            stack.append(_Global((m, n)))
        elif name == "TUPLE":
            i = max(j for j, v in enumerate(stack) if v is mark)
            items = tuple(stack[i + 1:])
            del stack[i:]
            stack.append(items)
        elif name in ("EMPTY_TUPLE", "TUPLE1", "TUPLE2", "TUPLE3"):
            n = {"EMPTY_TUPLE": 0, "TUPLE1": 1, "TUPLE2": 2, "TUPLE3": 3}[name]
            items = tuple(stack[len(stack) - n:]) if n else ()
            del stack[len(stack) - n:]
            stack.append(items)
        elif name in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[arg] = stack[-1]
        elif name == "MEMOIZE":
            memo[len(memo)] = stack[-1]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            stack.append(memo[arg])
        elif name == "BINPERSID":
            pid = stack.pop()
            if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage" and isinstance(pid[1], _Global)
                    and pid[1][0] == "torch" and pid[1][1] in _STORAGE_BYTES and isinstance(pid[4], int)
                    and pid[4] >= 0):
                raise ValueError("a persistent id that is not (storage, torch.<Type>Storage, key, device, count)")
            declared[str(pid[2])] = pid[4] * _STORAGE_BYTES[pid[1][1]]
            stack.append(opaque)
        else:  # any other opcode: pop what it declares it pops (down to the mark), push placeholders
            before = op.stack_before
            if pickletools.markobject in before:
                i = max(j for j, v in enumerate(stack) if v is mark)
                del stack[i:]
                before = before[:before.index(pickletools.markobject)]
            if before:
                if len(stack) < len(before):
                    raise ValueError(f"{name} on a short stack")
                del stack[len(stack) - len(before):]
            stack.extend(opaque for _ in op.stack_after)
    raise ValueError("a pickle without STOP")


# any skeleton (posedata.skeleton.MAX_KEYPOINTS); a stored spec beyond them would build for hours.
MAX_STAGES = 16
MAX_CHANNELS = 4096


def _count(v: Any, lo: int, hi: int) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def check_spec(spec: Any, file: str | None = None):
    """The stored model spec as a ModelSpec, every field checked (types, ranges, finiteness)
    before a network is built from it."""
    import math

    from .model import ModelSpec

    if not isinstance(spec, dict):
        raise InputError(f"model spec is a {type(spec).__name__}, expected a mapping", file=file, where="model")
    unknown = sorted(set(spec) - {"num_heatmaps", "num_pafs", "stages", "width"})
    if unknown:
        raise InputError(f"unknown model spec fields {unknown}", file=file, where="model")
    rules = {
        "num_heatmaps": (lambda v: _count(v, 2, MAX_CHANNELS), f"an integer in 2..{MAX_CHANNELS}"),
        "num_pafs": (lambda v: _count(v, 2, MAX_CHANNELS) and v % 2 == 0, f"an even integer in 2..{MAX_CHANNELS}"),
        "stages": (lambda v: _count(v, 0, MAX_STAGES), f"an integer in 0..{MAX_STAGES}"),
        "width": (lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v <= 4,
                  "a finite number in (0, 4]"),
    }
    for name, (ok, want) in rules.items():
        if name not in spec:
            if name in ("num_heatmaps", "num_pafs"):
                raise InputError(f"model spec lacks {name!r}", file=file, where="model")
            continue
        if not ok(spec[name]):
            raise InputError(f"expected {want}, got {spec[name]!r}", file=file, where=f"model.{name}")
    return ModelSpec(**{k: (float(v) if k == "width" else v) for k, v in spec.items()})


def check_fields(ckpt: dict, file: str | None = None) -> None:
    """posedata's own fields of a checkpoint, checked on load (a hand-edited or damaged file gives a
    located message, never a traceback or a hang later)."""
    check_spec(ckpt.get("model"), file)
    sk = ckpt.get("skeleton")
    if "skeleton" in ckpt and not (isinstance(sk, dict) and isinstance(sk.get("name", ""), str)):
        raise InputError(f"expected a mapping with a string name, got a {type(sk).__name__}", file=file,
                         where="skeleton")
    if "fingerprint" in ckpt and not isinstance(ckpt["fingerprint"], str):
        raise InputError(f"expected a string, got {ckpt['fingerprint']!r}", file=file, where="fingerprint")
    if "iteration" in ckpt and not _count(ckpt["iteration"], 0, 2**62):
        raise InputError(f"expected a count >= 0, got {ckpt['iteration']!r}", file=file, where="iteration")
    ap = ckpt.get("best_ap")
    if ap is not None and not (isinstance(ap, (int, float)) and not isinstance(ap, bool) and -1.0 <= ap <= 1.0):
        raise InputError(f"expected a number in [-1, 1] or none, got {ap!r}", file=file, where="best_ap")
    check_version(ckpt.get("version"), file)


def check_version(version: Any, file: str | None = None) -> None:
    """Refuse a checkpoint written for another network function. Every load goes through here
    (val, infer, export, --resume, --init): a version-1 file would otherwise load with strict=True
    into today's network and silently compute something else."""
    if not _count(version, 0, 2**31):
        raise InputError(f"expected the checkpoint format version (an integer), got {version!r}", file=file,
                         where="version")
    if version in RELU_TRUNK_VERSIONS:
        raise InputError(
            f"checkpoint format version {version} was written by a posedata whose CPM trunk used ReLU; this posedata "
            f"(format version {VERSION}) uses ELU there, as the reference network does, so these weights would "
            "load but compute a different function (a trained network would answer wrongly, a run would not resume "
            "where it was). Train anew with this version",
            file=file, where="version")
    if version > VERSION:
        raise InputError(f"checkpoint format version {version} is newer than this posedata reads ({VERSION}); "
                         "upgrade posedata", file=file, where="version")
    if version < 1:
        raise InputError(f"checkpoint format version {version} is not one posedata ever wrote", file=file,
                         where="version")


def detect_layout(state: dict[str, torch.Tensor]) -> tuple[str, str]:
    """(layout name, prefix to strip). Every name starting with `module.` means the weights
    were saved through DataParallel (the reference's MobileNet ImageNet file does this)."""
    names = list(state)
    if names and all(n.startswith("module.") for n in names):
        if any(n.startswith("module.model.") for n in names) and not any(n.startswith("module.cpm.") for n in names):
            return "MobileNet ImageNet layout (module.model.*)", "module."
        return "DataParallel layout (module.*)", "module."
    if any(n.startswith(("cpm.", "initial_stage.")) for n in names):
        return "reference / posedata layout (model, cpm, initial_stage, refinement_stages)", ""
    return "unrecognised layout (matching names only)", ""


def load_partial(model: nn.Module, state: dict[str, torch.Tensor]) -> LoadReport:
    """Copy every tensor whose name and shape match; leave everything else as initialised.

    Names are compared after stripping a DataParallel `module.` prefix from the checkpoint,
    which is how the reference maps MobileNet's `module.model.*` onto `model.*`."""
    model = unwrap(model)
    layout, prefix = detect_layout(state)
    source = {k[len(prefix):]: v for k, v in state.items()} if prefix else dict(state)
    target = model.state_dict()
    report = LoadReport(layout=layout)
    update = {}
    params = dict(model.named_parameters())
    for name, value in target.items():
        report.weight[name] = name in params and value.dim() >= 2
        if name not in source:
            report.missing.append(name)
        elif tuple(source[name].shape) != tuple(value.shape):
            report.shape_mismatch[name] = (tuple(source[name].shape), tuple(value.shape))
        else:
            update[name] = source[name].to(dtype=value.dtype)
            report.loaded.append(name)
    report.unused = [prefix + k for k in source if k not in target]
    model.load_state_dict(update, strict=False)
    return report


def build_model(ckpt: dict[str, Any], skeleton, path: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The network a checkpoint (as load() read it from `path`) stores, in eval mode on `device`;
    trainer.predict.load_model, the one loader every command and the demo use, calls it.

    A posedata checkpoint is rebuilt from its model spec (a skeleton mismatch is refused by
    fingerprint). A reference-layout state dict (the reference's COCO checkpoints, a bare state
    dict) carries no spec: its refinement stages are counted from the tensor names and its width
    read from the backbone's last channel count, and its heads must fit `skeleton`."""
    from .model import build

    if ckpt.get("format") != FORMAT:
        if skeleton is None:
            raise InputError("a checkpoint without posedata's header carries no skeleton: give --skeleton",
                             file=str(path))
        return _reference_layout_model(ckpt, skeleton, path).to(device).eval()
    spec = check_spec(ckpt.get("model"), str(path))
    if skeleton is not None:
        check_fingerprint(ckpt, skeleton, str(path))
    model = build(spec)
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as e:
        raise InputError(f"checkpoint weights do not fit its own model spec: {str(e).splitlines()[0]}",
                         file=str(path)) from None
    return model.to(device).eval()


def _reference_layout_model(ckpt: dict[str, Any], skeleton, path: str | os.PathLike) -> nn.Module:
    from .model import for_skeleton

    state = ckpt["state_dict"]
    _layout, prefix = detect_layout(state)
    names = [k[len(prefix):] for k in state]
    stages = len({n.split(".")[1] for n in names if n.startswith("refinement_stages.")})
    last = state.get(prefix + "model.11.3.weight")  # the backbone's 512 (x width) output channels
    width = 1.0 if last is None else round(int(last.shape[0]) / 512, 4)
    # the same bounds as a stored spec: the tensor names and shapes decide what gets built
    check_spec({"num_heatmaps": skeleton.num_heatmaps, "num_pafs": skeleton.num_pafs, "stages": stages,
                "width": width}, str(path))
    model = for_skeleton(skeleton, stages=stages, width=width)
    report = load_partial(model, state)
    if report.not_loaded:
        mism = [f"{k} {list(a)} vs {list(b)}" for k, (a, b) in list(report.shape_mismatch.items())[:3]]
        raise InputError(
            f"checkpoint does not fit skeleton {skeleton.name!r} ({skeleton.num_heatmaps} heatmaps, "
            f"{skeleton.num_pafs} PAFs) with {stages} refinement stage(s), width {width}: "
            f"{len(report.shape_mismatch)} tensor(s) differ in shape"
            f"{' (' + '; '.join(mism) + ')' if mism else ''}, {len(report.missing)} missing", file=str(path))
    return model


def check_fingerprint(ckpt: dict, skeleton, file: str | None = None) -> None:
    from posedata.skeleton import require_fingerprint

    require_fingerprint("checkpoint", (ckpt.get("skeleton") or {}).get("name", "?"), ckpt.get("fingerprint"),
                        skeleton, file)
