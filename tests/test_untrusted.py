"""Untrusted files stay data: an AST scan of posedata/ and trainer/ keeps every loader safe.

Rules (each call is resolved through the module's imports, so `import pickle as p; p.loads(...)`
and `from torch import load` are caught too):
- no unpickling anywhere: pickle/_pickle/dill/cloudpickle/joblib load(s), Unpickler, marshal,
  shelve, pandas.read_pickle; `pickle` may be imported only to write (formats/lwop.py dumps the
  reference's label pickle; it never reads one);
- every torch.load passes weights_only=True (a literal), torch.jit.load is not used;
- every numpy.load passes allow_pickle=False (a literal);
- YAML only through yaml.safe_load (no yaml.load / full_load / unsafe_load);
- no eval/exec;
- no archive extraction (extract/extractall): no reader unpacks zip or tar exports today, so any
  new one must come with a path check (and this rule must be relaxed by a test of that check).
"""
from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("posedata", "trainer")

UNPICKLERS = {
    "pickle.load", "pickle.loads", "pickle.Unpickler", "_pickle.load", "_pickle.loads", "_pickle.Unpickler",
    "dill.load", "dill.loads", "cloudpickle.load", "cloudpickle.loads", "joblib.load", "marshal.load",
    "marshal.loads", "shelve.open", "pandas.read_pickle", "torch.jit.load", "numpy.lib.format.read_array",
}
UNSAFE_YAML = {"yaml.load", "yaml.full_load", "yaml.unsafe_load", "yaml.load_all", "yaml.full_load_all",
               "yaml.unsafe_load_all", "yaml.Loader", "yaml.UnsafeLoader", "yaml.FullLoader"}
PICKLE_WRITERS = {"formats/lwop.py"}
# may import pickle for one thing: an Unpickler subclass whose find_class refuses every global
# (test_restricted_unpickler_refuses_every_global checks that shape and its behaviour)
RESTRICTED_UNPICKLERS = {"formats/pandas_hdf.py"}


def _aliases(tree: ast.AST) -> dict[str, str]:
    """Local name -> dotted origin, from every import in the module (function-level ones too)."""
    out: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                out[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for a in node.names:
                out[a.asname or a.name] = f"{node.module}.{a.name}"
    return out


def _dotted(node: ast.AST, aliases: dict[str, str]) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    base = aliases.get(node.id, node.id)
    base = {"np": "numpy", "pd": "pandas"}.get(base, base)
    return ".".join([base, *reversed(parts)])


def _kw_is(call: ast.Call, name: str, value: object) -> bool:
    return any(k.arg == name and isinstance(k.value, ast.Constant) and k.value.value is value for k in call.keywords)


def violations(source: str, rel: str = "<test>") -> list[str]:
    """Every unsafe load in one module's source, as 'file:line: what'."""
    tree = ast.parse(source)
    aliases = _aliases(tree)
    found = []

    def bad(node: ast.AST, what: str) -> None:
        found.append(f"{rel}:{getattr(node, 'lineno', '?')}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            names = [] if isinstance(node, ast.Import) else [f"{node.module}.{a.name}" for a in node.names]
            if any(m.split(".")[0] in ("pickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve") for m in mods) \
                    and rel not in PICKLE_WRITERS and rel not in RESTRICTED_UNPICKLERS:
                bad(node, f"imports a pickle-like module ({', '.join(mods)})")
            for n in names:
                if n in UNPICKLERS or n in UNSAFE_YAML or n in ("torch.load", "numpy.load"):
                    bad(node, f"imports {n} by name (call it as a module attribute so its arguments are checked)")
        if isinstance(node, ast.Call):
            name = _dotted(node.func, aliases)
            if name is None:
                if isinstance(node.func, ast.Attribute) and node.func.attr in ("extract", "extractall"):
                    bad(node, f".{node.func.attr}() unpacks an archive")
                continue
            last = name.rsplit(".", 1)[-1]
            if name in UNPICKLERS:
                bad(node, f"{name}() unpickles")
            elif name in UNSAFE_YAML:
                bad(node, f"{name}() can build arbitrary Python objects; use yaml.safe_load")
            elif name == "torch.load" and not _kw_is(node, "weights_only", True):
                bad(node, "torch.load without weights_only=True")
            elif name == "numpy.load" and not _kw_is(node, "allow_pickle", False):
                bad(node, "numpy.load without allow_pickle=False")
            elif name in ("eval", "exec", "builtins.eval", "builtins.exec"):
                bad(node, f"{name}()")
            elif last in ("extract", "extractall") and name.split(".")[0] not in ("re",):
                bad(node, f"{name}() unpacks an archive")
    return found


def package_files() -> list[Path]:
    files = []
    for pkg in PACKAGES:
        files += sorted((ROOT / pkg).rglob("*.py"))
    return files


def test_package_loads_only_safely():
    found = []
    for p in package_files():
        rel = str(p.relative_to(ROOT / p.relative_to(ROOT).parts[0])).replace(os.sep, "/")
        found += violations(p.read_text(encoding="utf-8"), rel)
    assert not found, "\n".join(found)


def test_scan_covers_the_package():
    files = {p.relative_to(ROOT).as_posix() for p in package_files()}
    assert {"posedata/labels.py", "trainer/checkpoint.py", "posedata/formats/lwop.py"} <= files
    # the loaders it protects are really there (a scan that finds no call proves nothing)
    sources = {f: (ROOT / f).read_text(encoding="utf-8") for f in ("posedata/labels.py", "trainer/checkpoint.py")}
    assert "np.load(" in sources["posedata/labels.py"] and "torch.load(" in sources["trainer/checkpoint.py"]


@pytest.mark.parametrize("src,expect", [
    ("import pickle\npickle.load(open('x', 'rb'))", "unpickles"),
    ("import pickle as p\np.loads(b'')", "unpickles"),
    ("from pickle import loads\nloads(b'')", "imports pickle.loads"),
    ("import torch\ntorch.load('x')", "weights_only"),
    ("import torch\ntorch.load('x', weights_only=False)", "weights_only"),
    ("import torch as t\nt.load('x', map_location='cpu')", "weights_only"),
    ("import numpy as np\nnp.load('x')", "allow_pickle"),
    ("import numpy as np\nnp.load('x', allow_pickle=True)", "allow_pickle"),
    ("import yaml\nyaml.load(s, Loader=yaml.Loader)", "safe_load"),
    ("import zipfile\nzipfile.ZipFile('a.zip').extractall('out')", "archive"),
    ("import tarfile\nwith tarfile.open('a.tar') as t:\n    t.extractall()", "archive"),
    ("eval('1 + 1')", "eval"),
    ("import pandas as pd\npd.read_pickle('x')", "unpickles"),
])
def test_scanner_catches(src, expect):
    v = violations(src, "posedata/new.py")
    assert v and any(expect in x for x in v), v


@pytest.mark.parametrize("src", [
    "import torch\ntorch.load(p, map_location='cpu', weights_only=True)",
    "import numpy as np\nwith np.load(p, allow_pickle=False) as z:\n    pass",
    "import yaml\nyaml.safe_load(text)",
    "import re\nre.compile('x').match('x')",
])
def test_scanner_accepts_safe_loads(src):
    assert violations(src, "posedata/new.py") == []


def test_lwop_pickle_is_write_only():
    src = (ROOT / "posedata" / "formats" / "lwop.py").read_text(encoding="utf-8")
    tree = ast.parse(src)
    aliases = _aliases(tree)
    used = {_dotted(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert {u for u in used if u and u.startswith("pickle.")} <= {"pickle.dump", "pickle.dumps"}


def test_restricted_unpickler_refuses_every_global():
    """pandas_hdf decodes PyTables' pickled attributes (lists and tuples of strings) with an
    Unpickler whose find_class only raises: no global is ever looked up, so no code can run."""
    import pickle

    from posedata.errors import InputError
    from posedata.formats import pandas_hdf as H

    src = (ROOT / "posedata" / "formats" / "pandas_hdf.py").read_text(encoding="utf-8")
    tree = ast.parse(src)
    aliases = _aliases(tree)
    subclasses = [c for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
                  and any(_dotted(b, aliases) == "pickle.Unpickler" for b in c.bases)]
    assert len(subclasses) == 1
    fc = [f for f in subclasses[0].body if isinstance(f, ast.FunctionDef) and f.name == "find_class"]
    assert len(fc) == 1 and [type(x) for x in fc[0].body if not isinstance(x, ast.Expr)] == [ast.Raise]
    used = {_dotted(n.func, aliases) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not {u for u in used if u and u.startswith("pickle.")} - {"pickle.UnpicklingError"}

    labels = [("Pranav", "snout", "x"), ("Pranav", "snout", "y")]
    for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
        assert H.literal_unpickle(pickle.dumps([(1, labels)], protocol=proto), "f", "w") == [(1, labels)]
    import numpy as np

    for evil in (pickle.dumps(_Payload(), protocol=2), b"cos\nsystem\n(S'true'\ntR.",
                 pickle.dumps(np.array(["a"], dtype=object), protocol=2), pickle.dumps({1, 2}, protocol=0)):
        with pytest.raises(InputError, match="refused"):
            H.literal_unpickle(evil, "f", "w")


class _Payload:
    def __reduce__(self):
        return (eval, ("open('UNPICKLED', 'w').close()",))


def test_checkpoint_with_code_is_refused(tmp_path, monkeypatch):
    """A checkpoint whose pickle would run code is an InputError and the code never runs."""
    torch = pytest.importorskip("torch")
    import io
    import pickle

    from posedata.errors import InputError
    from trainer.checkpoint import load

    monkeypatch.chdir(tmp_path)
    for name, data in (("legacy.pt", pickle.dumps({"state_dict": _Payload()}, protocol=2)),
                       ("zip.pt", None)):
        if data is None:
            buf = io.BytesIO()
            torch.save({"state_dict": {}, "x": _Payload()}, buf)
            data = buf.getvalue()
        (tmp_path / name).write_bytes(data)
        with pytest.raises(InputError) as e:
            load(tmp_path / name)
        assert e.value.file == str(tmp_path / name)
        assert not (tmp_path / "UNPICKLED").exists()


def test_label_file_with_pickled_array_is_refused(tmp_path):
    import numpy as np

    from posedata.errors import InputError
    from posedata.labels import load

    p = tmp_path / "l.npz"
    np.savez(p, header=np.array([_Payload()], dtype=object))
    with pytest.raises(InputError):
        load(p)
