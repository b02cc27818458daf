"""The architecture, read from the imports (DESIGN §5): `bot → dialogs → certcore`, one way.

certcore knows nothing of chat, dialogs knows no platform and no database, and the tests of a
layer import nothing above it. Every module's imports are read with `ast`, the ones inside
functions and `TYPE_CHECKING` blocks included, so a shortcut cannot hide in a late import.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PLATFORM_SDKS = ("linebot", "telegram", "aiohttp", "aiosmtplib")
"""What only the channels and the senders may speak: dialogs imports none of them."""

STORAGE = ("certcore.storage", "sqlalchemy", "aiosqlite", "asyncpg", "alembic")
"""The database, which dialogs reaches only through certcore's services."""

RULES: dict[str, tuple[str, ...]] = {
    "certcore": ("dialogs", "bot", "tests"),
    "dialogs": ("bot", "tests", *PLATFORM_SDKS, *STORAGE),
    "bot": ("tests",),
    "tests/certcore": ("dialogs", "bot", "tests.dialogs", "tests.bot"),
    "tests/dialogs": ("bot", "tests.bot"),
}
"""Per folder: the modules none of its files may import (a name and everything below it)."""


def imported_modules(path: Path, package: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, relative imports resolved against its
    package (by default, where the file sits in the project)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    if package is None:
        package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            found.append((node.lineno, base))
            # `from certcore import storage` imports certcore.storage
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


def violates(module: str, forbidden: str) -> bool:
    return module == forbidden or module.startswith(forbidden + ".")


def python_files(folder: str) -> list[Path]:
    return sorted(p for p in (ROOT / folder).rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("folder", sorted(RULES))
def test_no_layer_imports_one_above_it(folder: str) -> None:
    files = python_files(folder)
    assert files, f"no Python files under {folder}"
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module} (not allowed in {folder})"
        for path in files
        for line, module in imported_modules(path)
        for forbidden in RULES[folder]
        if violates(module, forbidden)
    ]
    assert not broken, "\n".join(broken)


def test_the_rules_see_a_violation(tmp_path: Path) -> None:
    """The reader finds imports in every form a shortcut could take."""
    source = (
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from bot.web import create_app\n"
        "def late():\n"
        "    import sqlalchemy.sql\n"
        "from certcore import storage\n"
        "from ..bot import channels\n"
    )
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    modules = {module for _, module in imported_modules(path, package="dialogs.flows")}
    assert {"bot.web", "sqlalchemy.sql", "certcore.storage", "dialogs.bot.channels"} <= modules
    assert violates("certcore.storage.schema", "certcore.storage")
    assert not violates("certcore.storagex", "certcore.storage")


SUBPACKAGES = ("pki", "identity", "customers", "otp", "notify", "storage")


@pytest.mark.parametrize("folder", ["dialogs", "bot"])
def test_callers_import_a_subpackage_not_its_inner_modules(folder: str) -> None:
    """As with `cryptography.x509`: what certcore's subpackages offer is named by their
    `__init__`, and the layers above import that, never a module inside."""
    inner = tuple(f"certcore.{name}." for name in SUBPACKAGES)
    broken = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in python_files(folder)
        for line, module in imported_modules(path)
        if module.startswith(inner) and module.split(".")[2] not in _exported_names(module)
    ]
    assert not broken, "\n".join(broken)


def _exported_names(module: str) -> set[str]:
    """`certcore.pki.Pkcs12Format` is a name the package exports, not an inner module."""
    package = importlib.import_module(".".join(module.split(".")[:2]))
    return set(getattr(package, "__all__", ()))
