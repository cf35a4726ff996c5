"""Static layering rules, checked on the package sources with ``ast``.

* ``sevenomni_core`` never imports ``sevenomni_flows`` (imports flow one way);
* no package module imports ``sevenn`` (it is a test oracle only; locating the
  wheel's weight files with ``importlib.util.find_spec`` is not an import);
* no global dtype changes (``torch.set_default_dtype``) and no environment
  writes (``os.environ[...] = ...`` and friends) in package code.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sevenomni_core", "sevenomni_flows")

_ENV_MUTATORS = {
    "setdefault",
    "update",
    "pop",
    "popitem",
    "clear",
    "__setitem__",
    "__delitem__",
}
_GLOBAL_DTYPE = {"set_default_dtype", "set_default_tensor_type"}


def _module_name(path: Path) -> tuple[str, bool]:
    """Dotted module name of a source file under ROOT, and whether it is a package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts = parts[:-1]
    return ".".join(parts), is_package


def imported_modules(source: str, module: str, is_package: bool = False) -> set[str]:
    """Absolute names of every module ``source`` imports (relative ones resolved)."""
    tree = ast.parse(source)
    found: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            found.add(prefix)
            # ``from pkg import sub`` may import a submodule
            found.update(f"{prefix}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            first = node.args[0]
            if (
                name in {"import_module", "__import__"}
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
            ):
                found.add(first.value)
    return found


def _is_environ(node: ast.AST) -> bool:
    """``os.environ`` or a bare ``environ``."""
    if isinstance(node, ast.Attribute):
        return node.attr == "environ"
    return isinstance(node, ast.Name) and node.id == "environ"


def forbidden_calls(source: str) -> list[str]:
    """Global dtype changes and environment writes in ``source``, as readable lines."""
    tree = ast.parse(source)
    found = []
    for node in ast.walk(tree):
        targets: list[ast.AST] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AugAssign | ast.AnnAssign):
            targets = [node.target]
        elif isinstance(node, ast.Delete):
            targets = node.targets
        for target in targets:
            if isinstance(target, ast.Subscript) and _is_environ(target.value):
                found.append(f"line {node.lineno}: os.environ[...] written")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            func = node.func
            if func.attr in _ENV_MUTATORS and _is_environ(func.value):
                found.append(f"line {node.lineno}: os.environ.{func.attr}(...)")
            if func.attr in {"putenv", "unsetenv"}:
                found.append(f"line {node.lineno}: {func.attr}(...)")
        if isinstance(node, ast.Attribute) and node.attr in _GLOBAL_DTYPE:
            found.append(f"line {node.lineno}: {node.attr}")
        if isinstance(node, ast.Name) and node.id in _GLOBAL_DTYPE:
            found.append(f"line {node.lineno}: {node.id}")
        if isinstance(node, ast.ImportFrom):
            found.extend(
                f"line {node.lineno}: imports {a.name}"
                for a in node.names
                if a.name in _GLOBAL_DTYPE
            )
    return found


def _matches(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def _sources(*packages: str) -> list[Path]:
    files = [p for pkg in packages for p in sorted((ROOT / pkg).rglob("*.py"))]
    assert files, f"no sources found under {ROOT} for {packages}"
    return files


def _import_violations(packages: tuple[str, ...], forbidden: str) -> list[str]:
    bad = []
    for path in _sources(*packages):
        module, is_package = _module_name(path)
        for name in imported_modules(
            path.read_text(encoding="utf-8"), module, is_package
        ):
            if _matches(name, forbidden):
                bad.append(f"{path.relative_to(ROOT)} imports {name}")
    return bad


def test_sources_are_found():
    """Guard against a vacuous pass: the scan sees the real modules."""
    names = {_module_name(p)[0] for p in _sources(*PACKAGES)}
    assert "sevenomni_core.model.registry" in names
    assert "sevenomni_core.calculator" in names
    assert "sevenomni_flows" in names


def test_core_does_not_import_flows():
    """No ``sevenomni_core`` module imports ``sevenomni_flows``."""
    assert _import_violations(("sevenomni_core",), "sevenomni_flows") == []


def test_packages_do_not_import_sevenn():
    """No package module imports the reference ``sevenn`` (a test oracle only)."""
    assert _import_violations(PACKAGES, "sevenn") == []


def test_no_global_dtype_or_environment_writes():
    """Package code neither changes torch's default dtype nor writes the environment."""
    bad = {
        str(path.relative_to(ROOT)): hits
        for path in _sources(*PACKAGES)
        if (hits := forbidden_calls(path.read_text(encoding="utf-8")))
    }
    assert bad == {}


# ----------------------------------------------------------- test the tests


@pytest.mark.parametrize(
    ("source", "module", "forbidden"),
    [
        ("import sevenn", "sevenomni_core.x", "sevenn"),
        ("import sevenn.calculator as c", "sevenomni_core.x", "sevenn"),
        ("from sevenn.util import load_checkpoint", "sevenomni_core.x", "sevenn"),
        ("from sevenn import calculator", "sevenomni_core.x", "sevenn"),
        ("def f():\n    import sevenn\n", "sevenomni_core.x", "sevenn"),
        (
            "import importlib\nimportlib.import_module('sevenn.checkpoint')",
            "sevenomni_core.x",
            "sevenn",
        ),
        ("__import__('sevenn')", "sevenomni_core.x", "sevenn"),
        ("import sevenomni_flows", "sevenomni_core.x", "sevenomni_flows"),
        (
            "from sevenomni_flows.jobs import relax",
            "sevenomni_core.x",
            "sevenomni_flows",
        ),
        # a relative import from inside sevenomni_flows resolves to the package
        (
            "from ..jobs import relax",
            "sevenomni_flows.flows.elastic",
            "sevenomni_flows",
        ),
        ("from . import sevenn", "sevenomni_core.__init__", None),
    ],
)
def test_import_checker_flags_offenders(source, module, forbidden):
    """Control: each offending import is seen by the checker."""
    is_package = module.endswith(".__init__")
    if is_package:
        module = module.removesuffix(".__init__")
    names = imported_modules(source, module, is_package)
    if forbidden is None:  # in the core, ``from . import sevenn`` is its own module
        assert "sevenomni_core.sevenn" in names
        assert not any(_matches(n, "sevenn") for n in names)
    else:
        assert any(_matches(n, forbidden) for n in names), names


@pytest.mark.parametrize(
    "source",
    [
        "import sevenomni_core\nfrom sevenomni_core.model import load_model",
        "import sevenn_compat",  # a different package whose name only starts alike
        "import importlib.util\nimportlib.util.find_spec('sevenn')",
        '"""Patches checkpoints written by ``sevenn``."""',
        "from .registry import MODELS",
    ],
)
def test_import_checker_passes_clean_code(source):
    """Control: look-alikes that are not imports of sevenn or flows are not flagged."""
    names = imported_modules(source, "sevenomni_core.model.potential")
    assert not any(
        _matches(n, "sevenn") or _matches(n, "sevenomni_flows") for n in names
    )
    if source.startswith("from .registry"):
        assert "sevenomni_core.model.registry" in names


@pytest.mark.parametrize(
    "source",
    [
        "import torch\ntorch.set_default_dtype(torch.float64)",
        "from torch import set_default_dtype\nset_default_dtype(torch.float64)",
        "import os\nos.environ['OMP_NUM_THREADS'] = '1'",
        "import os\nos.environ['PATH'] += ':/opt'",
        "from os import environ\nenviron['X'] = '1'",
        "import os\ndel os.environ['X']",
        "import os\nos.environ.setdefault('X', '1')",
        "import os\nos.environ.update(X='1')",
        "import os\nos.putenv('X', '1')",
        "def f():\n    import os\n    os.environ['X'] = '1'\n",
    ],
)
def test_call_checker_flags_offenders(source):
    """Control: each global-dtype change or environment write is flagged."""
    assert forbidden_calls(source)


@pytest.mark.parametrize(
    "source",
    [
        "import os\nx = os.environ.get('SEVENOMNI_MODEL_DIR')",
        "import os\nx = os.environ['HOME']",
        "import os\nenv = dict(os.environ)\nenv['X'] = '1'",
        "import torch\nx = torch.get_default_dtype()",
        "model.to(dtype=torch.float64)",
    ],
)
def test_call_checker_passes_clean_code(source):
    """Control: reading the environment or a local dtype change is not flagged."""
    assert forbidden_calls(source) == []


def test_scan_flags_an_offending_file(tmp_path, monkeypatch):
    """Control: the whole scan (files, module names, rules) flags a bad package tree."""
    core = tmp_path / "sevenomni_core" / "model"
    core.mkdir(parents=True)
    (tmp_path / "sevenomni_core" / "__init__.py").write_text("")
    (core / "__init__.py").write_text("from .. import helpers\n")
    (core / "bad.py").write_text(
        "import os\nimport torch\nfrom sevenomni_flows import jobs\n"
        "from sevenn.checkpoint import SevenNetCheckpoint\n"
        "torch.set_default_dtype(torch.float64)\nos.environ['X'] = '1'\n"
    )
    (tmp_path / "sevenomni_flows").mkdir()
    (tmp_path / "sevenomni_flows" / "__init__.py").write_text("import sevenn\n")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert sorted(_import_violations(("sevenomni_core",), "sevenomni_flows")) == [
        "sevenomni_core/model/bad.py imports sevenomni_flows",
        "sevenomni_core/model/bad.py imports sevenomni_flows.jobs",
    ]
    assert sorted(_import_violations(PACKAGES, "sevenn")) == [
        "sevenomni_core/model/bad.py imports sevenn.checkpoint",
        "sevenomni_core/model/bad.py imports sevenn.checkpoint.SevenNetCheckpoint",
        "sevenomni_flows/__init__.py imports sevenn",
    ]
    assert sorted(forbidden_calls((core / "bad.py").read_text())) == [
        "line 5: set_default_dtype",
        "line 6: os.environ[...] written",
    ]
