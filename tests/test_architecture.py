"""The design card's law: core never imports Textual; the TUI never talks to openai or mlflow directly."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _imports(package: str) -> set[tuple[str, str]]:
    found = set()
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update((alias.name.split(".")[0], str(path.relative_to(ROOT))) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add((node.module.split(".")[0], str(path.relative_to(ROOT))))
    return found


def test_importing_every_core_module_loads_no_textual():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts) for p in (ROOT / "core").rglob("*.py")
    )
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name.removesuffix('.__init__'))\n"
        "print(sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"


def test_core_source_never_imports_textual():
    assert not [path for module, path in _imports("core") if module == "textual"]


def test_tui_never_imports_openai_or_mlflow():
    offenders = [f"{path}: {module}" for module, path in _imports("tui") if module in ("openai", "mlflow")]
    assert offenders == []


def test_importing_core_and_the_app_does_not_load_openai_mlflow_or_pandas():
    # The first frame must not wait for them: they are imported lazily, off the UI thread.
    code = (
        "import sys, core, tui.app, tui.cli\n"
        "print(sorted(m for m in ('openai', 'mlflow', 'pandas') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert result.stdout.strip() == "[]"
