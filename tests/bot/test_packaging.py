"""A wheel of the project carries what the code reads at run time, so a non-editable install
(`pip install .`, a container image) talks to customers in their language: the message
catalogues (`certcore/locales/*/LC_MESSAGES/*.po`) and the FAQ (`dialogs/faq.toml`).

The wheel is built once per module, offline, without build isolation (the dev venv's setuptools
and wheel, from the `test` extra), from a copy of the work tree: pip builds a directory in place,
and the work tree is not this test's to write `build/` and `*.egg-info` into. It is installed into
a fresh venv made `--without-pip`, which sees the dev venv's dependencies (and pip) through a path
line in a `.pth` file. A path line only adds that directory to `sys.path`; the `.pth` files inside
it are not run, so the dev venv's editable install of the project is not active there and the
fresh venv can import only the wheel's copy (checked below). `certdesk chat` then runs from the
fresh venv's `bin/`, in a directory that holds no source, with its data directory in tmp_path.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from certcore.i18n import LOCALES_DIR, SUPPORTED_LOCALES, translate
from dialogs.faq import DEFAULT_FAQ_FILE, Faq
from tests.conftest import TEST_PASSPHRASE

REPO = Path(__file__).resolve().parents[2]
WANG = ("A120786753", "761205")
"""王三, the manual's demo customer."""
TIMEOUT = 60
OFFLINE = ("--no-deps", "--no-index", "--disable-pip-version-check", "--quiet")
"""pip options: nothing is fetched, the dependencies are the dev venv's."""

_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "venv",
    "var",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    ".hypothesis",
)


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without anything that would point Python back at the source tree."""
    dropped = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "VIRTUAL_ENV"}
    env = {
        k: v for k, v in os.environ.items() if k not in dropped and not k.startswith("CERTDESK_")
    }
    env.update(PYTHONIOENCODING="utf-8", PYTHONNOUSERSITE="1", **extra)
    return env


def run(args: list[str | Path], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=clean_env(),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path
    python: Path
    certdesk: Path
    outside: Path
    """An empty directory, away from the source, to run things in."""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    base = tmp_path_factory.mktemp("packaging")
    outside = base / "elsewhere"
    outside.mkdir()

    source = base / "source"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE, symlinks=True)
    dist = base / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            *OFFLINE,
            "--no-build-isolation",
            "-w",
            dist,
            source,
        ],
        cwd=outside,
    )
    (wheel,) = dist.glob("certdesk-*.whl")

    venv = base / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=outside)
    python = venv / "bin" / "python"
    purelib = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=outside
        ).stdout.strip()
    )
    dev_site = dict.fromkeys(sysconfig.get_path(name) for name in ("purelib", "platlib"))
    (purelib / "dev-venv-dependencies.pth").write_text(
        "".join(f"{path}\n" for path in dev_site), encoding="utf-8"
    )
    run(
        [python, "-m", "pip", "install", *OFFLINE, "--ignore-installed", wheel],
        cwd=outside,
    )
    return Installed(wheel, venv, python, venv / "bin" / "certdesk", outside)


def test_the_wheel_carries_every_catalogue_and_the_faq(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    catalogues = {
        path.relative_to(REPO).as_posix()
        for locale in SUPPORTED_LOCALES
        for path in (LOCALES_DIR / locale / "LC_MESSAGES").glob("*.po")
    }
    assert len(catalogues) >= 2 * 2  # several areas per locale, both locales
    assert catalogues <= names, sorted(catalogues - names)
    assert DEFAULT_FAQ_FILE.relative_to(REPO).as_posix() == "dialogs/faq.toml"
    assert "dialogs/faq.toml" in names
    assert {"bot/agent/static/agent.js", "bot/agent/static/agent.css"} <= names  # the console


def test_the_fresh_venv_imports_the_wheel_not_the_source_tree(installed: Installed) -> None:
    probe = (
        "import sys, importlib.util, certcore, certcore.i18n, dialogs.faq, bot.cli\n"
        "print(certcore.__file__)\n"
        "print(certcore.i18n.LOCALES_DIR)\n"
        "print(dialogs.faq.DEFAULT_FAQ_FILE)\n"
        "print(bot.cli.__file__)\n"
        "print(any('editable' in repr(finder).lower() for finder in sys.meta_path))\n"
    )
    lines = run([installed.python, "-c", probe], cwd=installed.outside).stdout.splitlines()
    venv = installed.venv.resolve()
    *files, editable_finder = lines
    for file in files:
        assert Path(file).resolve().is_relative_to(venv), (file, venv)
        assert not Path(file).resolve().is_relative_to(REPO), file
    # The assumption the set-up rests on: the dev venv's editable finder is not installed.
    assert editable_finder == "False"


def chat(installed: Installed, tmp_path: Path, lines: list[str], *args: str) -> str:
    done = subprocess.run(
        [str(installed.certdesk), "chat", "--data-dir", str(tmp_path / "var"), *args],
        cwd=installed.outside,
        env=clean_env(CERTDESK_CA_PASSPHRASE=TEST_PASSPHRASE.decode()),
        input="".join(f"{line}\n" for line in lines),
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def forgot_password(locale: str) -> tuple[str, str]:
    """A phrasing of the shipped FAQ's forgotten-password entry and the answer it leads to (the
    wheel must ship both catalogues, the FAQ and the intents, for the question to be read)."""
    entry = Faq.load().get("forgot-password")
    assert entry is not None
    return entry.phrasings[locale][0], entry.answer[locale]


def assert_translated(out: str, locale: str) -> None:
    def t(key: str, **params: object) -> str:
        return translate(locale, key, **params)

    assert t("console.dev_mode") in out
    assert t("welcome") in out
    assert f"  1) {t('menu.item.query')}" in out
    assert t("link.id.prompt") in out
    assert t("verify.birth_date.prompt").splitlines()[0] in out
    assert t("verify.via.sms", number="0936XXX054") in out
    # A message missing from the catalogues comes out as its key.
    assert "welcome" not in {line.strip() for line in out.splitlines()}
    for key in ("menu.item.query", "link.id.prompt", "console.dev_mode", "verify.via.sms"):
        assert key not in out


def test_chat_from_the_wheel_speaks_traditional_chinese(
    installed: Installed, tmp_path: Path
) -> None:
    keyword, answer = forgot_password("zh_TW")
    out = chat(installed, tmp_path, [keyword, "憑證查詢", *WANG])
    assert_translated(out, "zh_TW")
    assert "您好，歡迎使用憑證中心" in out  # the zh_TW catalogue's own words
    assert answer in out  # from the shipped dialogs/faq.toml


def test_chat_from_the_wheel_speaks_english(installed: Installed, tmp_path: Path) -> None:
    keyword, answer = forgot_password("en")
    out = chat(installed, tmp_path, [keyword, "1", *WANG], "--lang", "en")
    assert_translated(out, "en")
    assert "Hello, welcome to the Certificate Center." in out
    assert answer in out
