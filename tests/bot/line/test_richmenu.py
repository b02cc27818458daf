"""The rich menu: drawn within LINE's rules with real Chinese glyphs (not empty boxes), created
through the API by `certdesk line rich-menu`, and every tap understood by the engine."""

from __future__ import annotations

import asyncio
import io
import os
import sys
from pathlib import Path

from PIL import Image, ImageChops, ImageDraw

from bot.channels.line import richmenu
from tests.bot.line.conftest import Line
from tests.bot.line.test_flows import reads
from tests.fakes.line_api import FakeLineApi

USER = "U33333333333333333333333333333333"


def ink(text: str) -> Image.Image:
    image = Image.new("L", (1200, 200), 0)
    ImageDraw.Draw(image).text((10, 10), text, font=richmenu.font(120), fill=255)
    return image


def test_the_image_keeps_lines_size_rules() -> None:
    data = richmenu.png()
    assert len(data) <= 1024 * 1024
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    assert image.size in ((2500, 1686), (2500, 843))
    menu = richmenu.menu()
    assert (menu["size"]["width"], menu["size"]["height"]) == image.size
    assert len(menu["chatBarText"]) <= 14
    for area in menu["areas"]:
        bounds = area["bounds"]
        assert bounds["x"] + bounds["width"] <= image.size[0]
        assert bounds["y"] + bounds["height"] <= image.size[1]
        assert len(area["action"]["data"]) <= 300 and len(area["action"]["label"]) <= 20


def test_the_chinese_labels_are_glyphs_not_empty_boxes() -> None:
    # Characters the font lacks all draw as the same .notdef box: a label drawn in boxes
    # ("tofu") and the real label must differ, and two different labels too.
    tofu = "\U000f0000" * 6
    for item in richmenu.ITEMS:
        drawn = ink(item.label)
        boxes = ink(tofu[: len(item.label)])
        assert ImageChops.difference(drawn, boxes).getbbox() is not None, item.label
    assert ImageChops.difference(ink("憑證匯入"), ink("憑證匯出")).getbbox() is not None


async def test_every_tap_is_understood_by_the_engine(line: Line) -> None:
    expected = {
        "query": "link.id.prompt",  # an unlinked chat links first
        "revoke": "link.id.prompt",
        "import_help": "import_help.prompt",
        "憑證匯出備份": "faq:lost-certificate",
        "check": "check.prompt",
        "guide": "guide.prompt",
    }
    for area in richmenu.menu()["areas"]:
        data = area["action"]["data"]
        before = len(line.fake.messages_to(USER))
        await line.deliver(line.event(USER, "postback", postback={"data": data}))
        texts = line.fake.texts_to(USER)[before:]
        assert texts, data
        assert not any(reads(t, "menu.not_understood") for t in texts), (data, texts)
        assert not any(reads(t, "error.stale_button") for t in texts), (data, texts)
        key = expected[data.removeprefix("menu:")]
        if key.startswith("faq:"):
            assert "備份" in texts[0] or "下載" in texts[0], texts
        else:
            assert reads(texts[0], key), (data, texts)
        await line.say(USER, "選單")  # back to the menu for the next tap


async def test_a_tap_in_the_middle_of_a_flow_takes_the_item(line: Line) -> None:
    """The rich menu is always on screen: a tap at the ID-number prompt leaves the linking
    for the tapped item, instead of being read as an ID number."""
    await line.say(USER, "憑證查詢")
    assert reads(line.fake.texts_to(USER)[-1], "link.id.prompt")
    before = len(line.fake.messages_to(USER))
    await line.deliver(line.event(USER, "postback", postback={"data": "menu:import_help"}))
    texts = line.fake.texts_to(USER)[before:]
    assert reads(texts[0], "import_help.prompt"), texts
    assert not any(reads(t, "link.id.invalid") for t in texts), texts


async def test_the_command_creates_the_menu_and_sets_it_as_default(
    fake_line: FakeLineApi, line_environ: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "menu.png"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "line",
        "rich-menu",
        "--data-dir",
        str(tmp_path / "var"),
        "--out",
        str(out),
        env={**os.environ, **line_environ},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    [menu_id] = fake_line.rich_menus
    assert fake_line.default_rich_menu == menu_id
    content_type, image = fake_line.rich_menu_images[menu_id]
    assert content_type == "image/png" and image == out.read_bytes()
    assert menu_id in stdout.decode()
