"""The LINE rich menu: the portal's left-hand 憑證中心 menu, drawn by the project itself.

The image is rendered with Pillow and Noto Sans CJK (Debian's fonts-noto-cjk) at LINE's full
size, 2500×1686, as six tiles of 833×843 in the portal's order, and saved as a PNG well under
LINE's 1 MB. Each tile's tap is a postback `menu:<item>` that the channel turns into a MENU
event, which leaves any running flow and takes the item as the main menu would; 憑證匯出備份
stands for its own words, which the FAQ answers (the .pfx can only be downloaded when issued:
back it up then). The tap also shows the item's name in the chat (`displayText`).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw, ImageFont

from bot.channels.line.events import RICH_MENU_PREFIX

WIDTH, HEIGHT = 2500, 1686
COLUMNS, ROWS = 3, 2
MAX_BYTES = 1024 * 1024
FONT_DIR = Path("/usr/share/fonts/opentype/noto")
BOLD = FONT_DIR / "NotoSansCJK-Bold.ttc"
REGULAR = FONT_DIR / "NotoSansCJK-Regular.ttc"
TC_INDEX = 2
"""The collection's face for Traditional Chinese (Noto Sans CJK TC)."""
CHAT_BAR_TEXT = "憑證中心選單"
MARGIN = 80
"""Pixels kept free on each side of a tile's words."""

BACKGROUND = (244, 247, 251)
TILE = (255, 255, 255)
BORDER = (205, 214, 226)
ACCENT = (31, 95, 166)
INK = (33, 37, 41)
NOTE = (96, 108, 122)


@dataclass(frozen=True)
class Item:
    label: str
    note: str
    typed: str
    """What the tap types: a menu item's key (`query`) or words the engine understands."""


ITEMS = (
    Item("憑證查詢及申請", "查詢憑證・立即申請", "query"),
    Item("線上憑證註銷", "每年可線上註銷 2 次", "revoke"),
    Item("憑證匯入", "Windows・macOS・瀏覽器", "import_help"),
    Item("憑證匯出備份", "備份您的憑證檔", "憑證匯出備份"),
    Item("憑證資料檢核", "傳送憑證檔即可檢核", "check"),
    Item("操作說明/常見問題", "使用說明與問答", "guide"),
)


def font(size: int, *, bold: bool = True) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(BOLD if bold else REGULAR), size, index=TC_INDEX)


def fitted(
    pen: ImageDraw.ImageDraw, text: str, room: int, size: int, *, bold: bool = True
) -> ImageFont.FreeTypeFont:
    """The font at `size`, or smaller until the text fits in `room` pixels."""
    while size > 24 and pen.textlength(text, font=font(size, bold=bold)) > room:
        size -= 4
    return font(size, bold=bold)


def tile_box(index: int) -> tuple[int, int, int, int]:
    column, row = index % COLUMNS, index // COLUMNS
    left = column * WIDTH // COLUMNS
    right = (column + 1) * WIDTH // COLUMNS
    top = row * HEIGHT // ROWS
    bottom = (row + 1) * HEIGHT // ROWS
    return left, top, right, bottom


def draw() -> Image.Image:
    image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    pen = ImageDraw.Draw(image)
    for index, item in enumerate(ITEMS):
        left, top, right, bottom = tile_box(index)
        pen.rounded_rectangle(
            (left + 24, top + 24, right - 24, bottom - 24),
            radius=48,
            fill=TILE,
            outline=BORDER,
            width=6,
        )
        centre = (left + right) // 2
        pen.ellipse((centre - 90, top + 150, centre + 90, top + 330), fill=ACCENT)
        pen.text((centre, top + 240), str(index + 1), font=font(120), fill=TILE, anchor="mm")
        room = right - left - 2 * MARGIN
        label = fitted(pen, item.label, room, 112)
        pen.text((centre, top + 500), item.label, font=label, fill=INK, anchor="mm")
        small = fitted(pen, item.note, room, 60, bold=False)
        pen.text((centre, top + 660), item.note, font=small, fill=NOTE, anchor="mm")
    return image


def png() -> bytes:
    out = io.BytesIO()
    draw().save(out, format="PNG", optimize=True)
    data = out.getvalue()
    if len(data) > MAX_BYTES:  # pragma: no cover - flat colours compress far below this
        raise ValueError(f"rich menu image is {len(data)} bytes, LINE takes at most 1 MB")
    return data


def menu() -> dict[str, Any]:
    """The rich menu object LINE's `POST /v2/bot/richmenu` takes."""
    areas = []
    for index, item in enumerate(ITEMS):
        left, top, right, bottom = tile_box(index)
        areas.append(
            {
                "bounds": {"x": left, "y": top, "width": right - left, "height": bottom - top},
                "action": {
                    "type": "postback",
                    "label": item.label[:20],
                    "data": f"{RICH_MENU_PREFIX}{item.typed}",
                    "displayText": item.label,
                },
            }
        )
    return {
        "size": {"width": WIDTH, "height": HEIGHT},
        "selected": True,
        "name": "CertDesk 憑證中心",
        "chatBarText": CHAT_BAR_TEXT,
        "areas": areas,
    }
