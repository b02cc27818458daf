"""The download page's HTML: the platform it detects, the words it shows, the forms it holds.

Kept apart from the handlers (`bot.web.download`) so the page can be read as a page. Every
value is escaped where it enters the markup (`esc`); the catalogue's texts are plain text, their
line breaks become paragraphs or list items. There is no inline script or style: the CSP allows
only the two files under `bot/web/static/download/`, which refine what the server already
rendered (a page without script works, every check is the server's).

The platform comes from the User-Agent as the manual's 檢查電腦環境 tells systems apart
(`certcore.pki.ClientSystem`), and the format recommended for it from the same rule everywhere
(`certcore.pki.recommended_format`). A User-Agent cannot tell Windows 10 1709 from earlier
Windows 10 (both say `Windows NT 10.0`), so the page says how to check, and the script asks the
browser's client hints (`platformVersion` below 5 is before 1709) where Chromium offers them.
The advice and the import help are the chat's own texts (`environment.advice.*`,
`import_help.steps.*`), so the page and 檢查電腦環境 / 憑證匯入 in chat never disagree.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from certcore.i18n import translate
from certcore.pki import (
    EXPORT_PASSWORD,
    EXPORT_PASSWORD_MAX,
    EXPORT_PASSWORD_MIN,
    ClientSystem,
    Pkcs12Format,
    recommended_format,
)

STATIC = "/static/download"
LANG_PARAM = {"zh_TW": "zh-TW", "en": "en"}
"""The `?lang=` value and the form's `lang` field for each locale."""
HTML_LANG = {"zh_TW": "zh-Hant-TW", "en": "en"}


# -- the platform ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    system: ClientSystem
    firefox: bool = False
    """Firefox keeps its own certificate store (NSS): its import help comes first."""

    @property
    def recommended(self) -> Pkcs12Format:
        return recommended_format(self.system)


_WINDOWS_NT = re.compile(r"Windows NT ([0-9]{1,4})\.([0-9]{1,4})")
"""Bounded, so a forged User-Agent's 5,000-digit version never reaches `int()`."""


def detect_platform(user_agent: str | None) -> Platform:
    """The customer's system from the User-Agent header, as 檢查電腦環境 names them."""
    ua = user_agent or ""
    firefox = "Firefox/" in ua and "Seamonkey/" not in ua
    if "iPhone" in ua or "iPad" in ua or "iPod" in ua:
        return Platform(ClientSystem.IOS, firefox=False)
    if "Android" in ua:
        return Platform(ClientSystem.ANDROID, firefox=False)
    windows = _WINDOWS_NT.search(ua)
    if windows is not None:
        major = int(windows.group(1))
        system = ClientSystem.WINDOWS_10 if major >= 10 else ClientSystem.WINDOWS_OLD
        return Platform(system, firefox=firefox)
    if "Windows" in ua:
        return Platform(ClientSystem.WINDOWS_OLD, firefox=firefox)
    if "Macintosh" in ua or "Mac OS X" in ua:
        # iPadOS asks for the desktop site as a Mac; the Keychain rule holds for both.
        return Platform(ClientSystem.MACOS, firefox=firefox)
    return Platform(ClientSystem.OTHER, firefox=firefox)


SYSTEM_NAME = {
    ClientSystem.WINDOWS_10: "environment.system.win10",
    ClientSystem.WINDOWS_OLD: "environment.system.win_old",
    ClientSystem.MACOS: "environment.system.macos",
    ClientSystem.IOS: "download.system.ios",
    ClientSystem.ANDROID: "download.system.android",
    ClientSystem.OTHER: "environment.system.other",
}
ADVICE = {
    ClientSystem.WINDOWS_10: "environment.advice.win10",
    ClientSystem.WINDOWS_OLD: "environment.advice.win_old",
    ClientSystem.MACOS: "environment.advice.macos",
    ClientSystem.IOS: "download.advice.ios",
    ClientSystem.ANDROID: "download.advice.android",
    ClientSystem.OTHER: "environment.advice.other",
}
IMPORT_HELP = {
    "windows": "import_help.steps.windows",
    "macos": "import_help.steps.macos",
    "firefox": "import_help.steps.firefox",
    "chrome": "import_help.steps.chrome",
    "ios": "download.import.ios",
    "android": "download.import.android",
}
_HELP_FOR_SYSTEM = {
    ClientSystem.WINDOWS_10: ("windows",),
    ClientSystem.WINDOWS_OLD: ("windows",),
    ClientSystem.MACOS: ("macos",),
    ClientSystem.IOS: ("ios",),
    ClientSystem.ANDROID: ("android",),
    ClientSystem.OTHER: ("chrome", "firefox"),
}


def import_help_order(platform: Platform) -> tuple[list[str], list[str]]:
    """The import help shown open for this platform, and the others (folded)."""
    first = list(_HELP_FOR_SYSTEM[platform.system])
    if platform.firefox and "firefox" not in first:
        first.insert(0, "firefox")
    return first, [name for name in IMPORT_HELP if name not in first]


# -- markup helpers --------------------------------------------------------------------------


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def para(text: str, css: str, *, id_: str = "", hidden: bool = False) -> str:
    """One escaped paragraph of a class, optionally with an id and hidden."""
    ident = f' id="{esc(id_)}"' if id_ else ""
    return f'<p class="{esc(css)}"{ident}{" hidden" if hidden else ""}>{esc(text)}</p>'


def text_block(text: str) -> str:
    """A catalogue text as markup: numbered lines as an ordered list, bullets as a list, the
    other lines as paragraphs."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    parts: list[str] = []
    numbered: list[str] = []
    bullets: list[str] = []

    def flush() -> None:
        if numbered:
            parts.append("<ol>" + "".join(f"<li>{esc(i)}</li>" for i in numbered) + "</ol>")
            numbered.clear()
        if bullets:
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in bullets) + "</ul>")
            bullets.clear()

    for line in lines:
        step = re.match(r"^\d+\.\s*(.*)$", line)
        bullet = re.match(r"^[•‧]\s*(.*)$", line)
        if step is not None:
            if bullets:
                flush()
            numbered.append(step.group(1))
        elif bullet is not None:
            if numbered:
                flush()
            bullets.append(bullet.group(1))
        else:
            flush()
            parts.append(f"<p>{esc(line)}</p>")
    flush()
    return "".join(parts)


# -- the pages -------------------------------------------------------------------------------


@dataclass
class Page:
    """What every page shares: the language, the switch link, the title."""

    locale: str
    title: str
    switch_href: str
    body: str
    refresh_seconds: int | None = None
    data: dict[str, str] = field(default_factory=dict)

    def render(self) -> str:
        t = Words(self.locale)
        other = "en" if self.locale == "zh_TW" else "zh_TW"
        refresh = (
            f'<meta http-equiv="refresh" content="{self.refresh_seconds}">'
            if self.refresh_seconds
            else ""
        )
        return (
            "<!doctype html>"
            f'<html lang="{HTML_LANG[self.locale]}">'
            "<head>"
            '<meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            '<meta name="referrer" content="no-referrer">'
            '<meta name="robots" content="noindex, nofollow">'
            f"{refresh}"
            f"<title>{esc(self.title)} – {esc(t.t('brand.name'))}</title>"
            f'<link rel="icon" href="{STATIC}/favicon.svg" type="image/svg+xml">'
            f'<link rel="stylesheet" href="{STATIC}/download.css">'
            f'<script src="{STATIC}/download.js" defer></script>'
            "</head>"
            "<body>"
            '<header class="bar">'
            f'<span class="brand">{esc(t.t("brand.name"))}</span>'
            f'<a class="lang" href="{esc(self.switch_href)}" hreflang="{HTML_LANG[other]}" '
            f'lang="{HTML_LANG[other]}">{esc(t.t("download.lang.other"))}</a>'
            "</header>"
            f'<main id="main">{self.body}</main>'
            "</body></html>"
        )


class Words:
    """The page's texts in one language."""

    def __init__(self, locale: str) -> None:
        self.locale = locale

    def t(self, key: str, /, **params: object) -> str:
        return translate(self.locale, key, **params)

    @property
    def policy_params(self) -> dict[str, int]:
        return {"min": EXPORT_PASSWORD_MIN, "max": EXPORT_PASSWORD_MAX}


@dataclass(frozen=True)
class FormView:
    """The first download: the password typed twice, the format, the import help."""

    token: str
    form_key: str
    locale: str
    title: str
    id_number: str
    """Masked."""
    until: str
    downloads: int
    platform: Platform
    chosen: Pkcs12Format | None = None
    errors: Sequence[str] = ()


def form_body(view: FormView) -> str:
    t = Words(view.locale)
    policy = t.t("download.password.policy", **t.policy_params)
    chosen = view.chosen or view.platform.recommended
    errors = "".join(f"<p>{esc(e)}</p>" for e in view.errors)
    error_box = (
        f'<div class="error" id="form-error" role="alert" tabindex="-1">'
        f"<h2>{esc(t.t('download.error.title'))}</h2>{errors}</div>"
        if view.errors
        else '<div class="error" id="form-error" role="alert" tabindex="-1" hidden></div>'
    )
    invalid = ' aria-invalid="true"' if view.errors else ""
    password_attrs = (
        f'type="password" required autocomplete="new-password" autocapitalize="off" '
        f'autocorrect="off" spellcheck="false" minlength="{EXPORT_PASSWORD_MIN}" '
        f'maxlength="{EXPORT_PASSWORD_MAX}" pattern="{esc(EXPORT_PASSWORD.pattern)}" '
        f'aria-describedby="policy"{invalid}'
    )
    return (
        f"<h1>{esc(view.title)}</h1>"
        f'<p class="subject">{esc(t.t("download.certificate", id_number=view.id_number))}</p>'
        + para(t.t("download.window", until=view.until, downloads=view.downloads), "window")
        + f"{error_box}"
        f'<form method="post" action="/d/{esc(view.token)}" id="download-form" novalidate '
        f'data-error-mismatch="{esc(t.t("download.error.mismatch"))}" '
        f'data-error-invalid="{esc(t.t("download.error.invalid", **t.policy_params))}" '
        f'data-error-title="{esc(t.t("download.error.title"))}" '
        f'data-system="{esc(view.platform.system.value)}" '
        f'data-chosen="{"yes" if view.chosen else "no"}">'
        f'<input type="hidden" name="form_key" value="{esc(view.form_key)}">'
        f'<input type="hidden" name="lang" value="{LANG_PARAM[view.locale]}">'
        f"{environment_section(t, view.platform, chosen)}"
        '<fieldset class="password">'
        f"<legend>{esc(t.t('download.password.legend'))}</legend>"
        f'<p class="policy" id="policy">{esc(policy)}</p>'
        f'<label for="password">{esc(t.t("download.password.label"))}</label>'
        f'<input id="password" name="password" {password_attrs}>'
        f'<label for="password_confirm">{esc(t.t("download.password.confirm"))}</label>'
        f'<input id="password_confirm" name="password_confirm" {password_attrs}>'
        f'<p class="note">{esc(t.t("download.password.remember"))}</p>'
        "</fieldset>"
        f'<button type="submit" class="primary">{esc(t.t("download.submit"))}</button>'
        f'<p class="working" id="working" role="status" hidden>{esc(t.t("download.working"))}</p>'
        "</form>"
        f'<section class="after" id="after" hidden>'
        f"<h2>{esc(t.t('download.done.title'))}</h2>"
        f"<p>{esc(t.t('download.started'))}</p></section>"
        f"{import_section(t, view.platform)}"
        f'<p class="safety">{esc(t.t("download.safety"))}</p>'
    )


def environment_section(t: Words, platform: Platform, chosen: Pkcs12Format) -> str:
    system = platform.system
    advice = t.t(ADVICE[system])

    def detected(which: ClientSystem) -> str:
        return t.t("download.environment.detected", system=t.t(SYSTEM_NAME[which]))

    refine = ""
    if system is ClientSystem.WINDOWS_10:
        # Shown by the script when the browser's client hints say Windows 10 before 1709.
        refine = para(
            t.t(ADVICE[ClientSystem.WINDOWS_OLD]), "advice", id_="advice-old", hidden=True
        ) + para(t.t("download.environment.win10_check"), "check", id_="advice-check")
    options = "".join(
        format_option(t, fmt, checked=fmt is chosen, recommended=fmt is platform.recommended)
        for fmt in Pkcs12Format
    )
    return (
        '<section class="environment" aria-labelledby="environment-title">'
        f'<h2 id="environment-title">{esc(t.t("download.environment.title"))}</h2>'
        + f'<p class="detected" id="detected" data-old="{esc(detected(ClientSystem.WINDOWS_OLD))}">'
        f"{esc(detected(system))}</p>" + f'<p class="advice" id="advice">{esc(advice)}</p>'
        f"{refine}"
        '<fieldset class="formats">'
        f"<legend>{esc(t.t('download.format.legend'))}</legend>"
        f"{options}"
        f'<p class="note">{esc(t.t("download.format.final"))}</p>'
        "</fieldset>"
        "</section>"
    )


def format_option(t: Words, fmt: Pkcs12Format, *, checked: bool, recommended: bool) -> str:
    label = t.t(f"download.format.{fmt.value}")
    hint = t.t(f"download.format.{fmt.value}.hint")
    badge = f'<span class="badge">{esc(t.t("download.format.recommended"))}</span>'
    return (
        f'<label class="format" id="format-{fmt.value}">'
        f'<input type="radio" name="format" value="{fmt.value}"{" checked" if checked else ""}>'
        f'<span class="format-text"><span class="format-name">{esc(label)}</span>'
        f'<span class="badge-slot">{badge if recommended else ""}</span>'
        f'<span class="hint">{esc(hint)}</span></span>'
        "</label>"
    )


def import_section(t: Words, platform: Platform) -> str:
    first, others = import_help_order(platform)
    shown = "".join(
        f'<div class="help" data-platform="{name}">{help_block(t.t(IMPORT_HELP[name]), open_=True)}'
        "</div>"
        for name in first
    )
    folded = "".join(
        f'<details class="help" data-platform="{name}">{help_block(t.t(IMPORT_HELP[name]))}'
        "</details>"
        for name in others
    )
    return (
        '<section class="import" aria-labelledby="import-title">'
        f'<h2 id="import-title">{esc(t.t("download.import.title"))}</h2>'
        f"{shown}"
        f'<h3 class="others">{esc(t.t("download.import.others"))}</h3>'
        f"{folded}"
        "</section>"
    )


_HEAD = re.compile(
    r"^(?P<head>[^（(：:]+?)\s*(?:[（(](?P<aside>[^）)]*)[）)])?\s*[：:]\s*(?P<rest>.*)$"
)


def help_block(text: str, *, open_: bool = False) -> str:
    """An import help text: its first line's title as a heading (or a `<summary>`), what that
    line says besides (「Chrome 與 Edge 使用作業系統的憑證存放區」) as the first paragraph."""
    lines = text.strip().splitlines()
    head, remark = lines[0].strip(), ""
    match = _HEAD.match(head)
    if match is not None:
        head = match.group("head")
        aside = match.group("aside") or ""
        if aside and aside[-1] not in "。.":
            aside += "." if aside.isascii() else "。"
        remark = " ".join(p for p in (aside, match.group("rest")) if p)
    title = f"<h3>{esc(head)}</h3>" if open_ else f"<summary>{esc(head)}</summary>"
    return title + text_block("\n".join([remark, *lines[1:]]))


@dataclass(frozen=True)
class AgainView:
    """Downloaded already: the same file again, without a password, within the window."""

    token: str
    form_key: str
    locale: str
    title: str
    id_number: str
    filename: str
    """Masked."""
    until: str
    left: int
    platform: Platform


def again_body(view: AgainView) -> str:
    t = Words(view.locale)
    return (
        f"<h1>{esc(view.title)}</h1>"
        f'<p class="subject">{esc(t.t("download.certificate", id_number=view.id_number))}</p>'
        '<section class="done">'
        f"<h2>{esc(t.t('download.done.title'))}</h2>"
        f"<p>{esc(t.t('download.done.text', filename=view.filename))}</p>"
        f"<p>{esc(t.t('download.again.text', until=view.until, left=view.left))}</p>"
        f'<form method="post" action="/d/{esc(view.token)}" id="again-form">'
        f'<input type="hidden" name="form_key" value="{esc(view.form_key)}">'
        f'<input type="hidden" name="lang" value="{LANG_PARAM[view.locale]}">'
        f'<button type="submit" class="secondary">{esc(t.t("download.again.submit"))}</button>'
        "</form>"
        f'<p class="back">{esc(t.t("download.back_to_chat"))}</p>'
        "</section>"
        f"{import_section(t, view.platform)}"
    )


def message_body(locale: str, title: str, text: str, *, status_class: str) -> str:
    t = Words(locale)
    return (
        f'<section class="message {esc(status_class)}">'
        f"<h1>{esc(title)}</h1>"
        f"{text_block(text)}"
        f'<p class="back">{esc(t.t("download.back_to_chat"))}</p>'
        "</section>"
    )
