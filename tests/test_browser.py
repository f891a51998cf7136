"""The browser harness: Thai HTML in headless Chromium, screenshots, and a tofu check that can fail.

The screenshots stay under artifacts/browser/ for a person to look at:
thai.png (real Thai glyphs; thai-system-fonts.png is the same, from the one-shot
call), thai-tofu.png (the same page with fontconfig given no Thai font: boxes)
and bars.png (an e-mail-like table of bars, taller than the window).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

import browser
from browser import Browser, BrowserError

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "browser"
# A folder of fonts none of which has Thai (fontconfig-config depends on fonts-dejavu-core).
NO_THAI_FONTS = Path("/usr/share/fonts/truetype/dejavu")

THAI_PAGE = """<!DOCTYPE html>
<html lang="th"><head><meta charset="utf-8"><title>สรุปงานประจำวัน</title></head>
<body style="font-family: Sarabun, Tahoma, sans-serif; margin: 24px; color: #111; background: #fff">
  <h1 id="heading" style="font-size: 32px">สรุปการประชุมประจำวัน</h1>
  <p id="lead" style="font-size: 20px">วาระที่ 1: Budget ฿1,500 บาท <b>เร่งด่วน</b> และเรื่องอื่น ๆ</p>
  <table cellpadding="6" style="border-collapse: collapse; font-size: 18px">
    <tr><th>เรื่อง</th><th>สถานะ</th></tr>
    <tr><td>ร่างรายงานการประชุม ครั้งที่ ๓/๒๕๖๘</td><td>รอรับรอง</td></tr>
    <tr><td>คำขอแก้ไขวาระ (ผู้อำนวยการ)</td><td>ส่งแล้ว 2 ฉบับ</td></tr>
  </table>
  <span style="display: none">ข้อความที่ซ่อนไว้</span>
</body></html>
"""

BARS_PAGE = """<!DOCTYPE html>
<html lang="th"><head><meta charset="utf-8"></head>
<body style="margin: 0; background: #ffffff">
<table width="600" cellpadding="0" cellspacing="0" border="0" align="center"
       style="font-family: Sarabun, Tahoma, sans-serif; font-size: 16px; color: #222222">
  <tr><td style="padding: 16px 0; font-size: 24px; font-weight: bold">ความคืบหน้าการตอบรับ</td></tr>
  {rows}
  <tr><td style="height: 700px; vertical-align: bottom; color: #666666">ส่งโดยระบบเลขานุการการประชุม</td></tr>
</table>
</body></html>
"""
BAR_ROW = """
  <tr><td style="padding: 6px 0">{label} ({percent}%)</td></tr>
  <tr><td>
    <table width="100%" cellpadding="0" cellspacing="0" border="0"><tr>
      <td id="bar-{percent}" width="{percent}%" height="18" bgcolor="{color}" style="background-color: {color}; height: 18px; line-height: 18px; font-size: 1px">&nbsp;</td>
      <td width="{rest}%" height="18" bgcolor="#e0e0e0" style="background-color: #e0e0e0; font-size: 1px">&nbsp;</td>
    </tr></table>
  </td></tr>"""
BARS = [("ตอบรับแล้ว", 60, "#2e7d32"), ("ยังไม่ตอบ", 25, "#f9a825"), ("ปฏิเสธ", 15, "#c62828")]


@pytest.fixture(autouse=True, scope="module")
def chromium() -> str:
    """Fail (never skip) where there is no Chromium: these tests must not pass quietly without a browser."""
    try:
        return browser.chromium_binary()
    except BrowserError as error:
        problem = str(error)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="module")
def no_thai_env(tmp_path_factory) -> dict[str, str]:
    """fontconfig that knows only DejaVu, so Thai has no font to fall back on."""
    assert NO_THAI_FONTS.is_dir(), f"{NO_THAI_FONTS} is missing: apt-get install -y fonts-dejavu-core"
    env = browser.fontconfig_env([NO_THAI_FONTS], tmp_path_factory.mktemp("fontconfig"))
    listed = subprocess.run(["fc-list", ":", "family"], env={**os.environ, **env},
                            capture_output=True, text=True, check=True).stdout
    assert "DejaVu Sans" in listed, f"the restricted fontconfig lists no DejaVu:\n{listed}"
    assert browser.thai_families(env) == frozenset(), "the restricted fontconfig still has a Thai font"
    return env


def dark_pixels(image: Image.Image, box: tuple[int, int, int, int] | None = None) -> int:
    """Pixels darker than mid-grey (text, boxes), within box if given."""
    grey = image.convert("L")
    if box is not None:
        grey = grey.crop(box)
    return sum(grey.point(lambda value: 255 if value < 128 else 0).histogram()[255:])


def test_covers_thai_asks_fontconfig():
    assert browser.covers_thai("Loma")  # fonts-thai-tlwg
    assert browser.covers_thai("loma")
    assert browser.covers_thai("DejaVu Sans,Garuda")  # fc-list's "A,B": any name will do
    assert not browser.covers_thai("DejaVu Sans")
    assert not browser.covers_thai("No Such Font")
    assert not browser.covers_thai("")


def test_thai_page_is_drawn_with_thai_glyphs():
    with Browser(width=900) as page:
        page.open(THAI_PAGE)
        png = page.screenshot(ARTIFACTS / "thai.png")
        heading = page.evaluate(
            "(() => { const r = document.getElementById('heading').getBoundingClientRect();"
            " return [r.left, r.top, r.right, r.bottom]; })()"
        )
        rendered = page.thai_fonts_used()
    browser.check_no_tofu(rendered)

    by_text = {element.text: element for element in rendered}
    assert "สรุปการประชุมประจำวัน" in by_text
    assert "เร่งด่วน" in by_text and by_text["เร่งด่วน"].tag == "b"
    assert "ร่างรายงานการประชุม ครั้งที่ ๓/๒๕๖๘" in by_text
    assert "สรุปงานประจำวัน" not in by_text  # <title> is never drawn
    assert by_text["ข้อความที่ซ่อนไว้"].fonts == ()  # display: none draws nothing
    lead = by_text["วาระที่ 1: Budget ฿1,500 บาท และเรื่องอื่น ๆ"]
    thai_fonts = [font for font in lead.fonts if browser.covers_thai(font.family)]
    assert thai_fonts and all(not font.is_custom for font in lead.fonts)
    # Latin, digits and the baht sign may come from a Latin font; the Thai glyphs may not.
    assert sum(font.glyphs for font in lead.fonts if font not in thai_fonts) <= lead.non_thai

    assert png.stat().st_size > 5_000
    image = Image.open(png)
    assert image.width == 900
    left, top, right, bottom = (round(value) for value in heading)
    assert dark_pixels(image, (left, top, right, bottom)) > 500, "no dark text where the heading is"
    assert dark_pixels(image, (0, image.height - 10, image.width, image.height)) == 0


def test_the_check_fails_where_thai_has_no_font(no_thai_env):
    # The same page and the same check pass with the machine's fonts ...
    good = browser.assert_no_tofu(THAI_PAGE)
    assert all(not element.fonts or any(browser.covers_thai(f.family) for f in element.fonts) for element in good)

    # ... and fail when fontconfig offers Chromium no Thai font at all.
    rendered = browser.thai_fonts_used(THAI_PAGE, env=no_thai_env)
    assert {font.family for element in rendered for font in element.fonts} <= {
        "DejaVu Sans", "DejaVu Serif", "DejaVu Sans Mono", "DejaVu Math TeX Gyre"}
    with pytest.raises(AssertionError) as failure:
        browser.assert_no_tofu(THAI_PAGE, env=no_thai_env)
    message = str(failure.value)
    assert "tofu" in message
    assert "'สรุปการประชุมประจำวัน'" in message and "DejaVu" in message
    assert "no Thai" in message

    tofu = Image.open(browser.screenshot(THAI_PAGE, ARTIFACTS / "thai-tofu.png", env=no_thai_env))
    good_png = Image.open(browser.screenshot(THAI_PAGE, ARTIFACTS / "thai-system-fonts.png"))
    assert tofu.size[0] == good_png.size[0] == 900
    assert dark_pixels(tofu) > 1_000  # the boxes are drawn ...
    assert tofu.tobytes() != good_png.convert(tofu.mode).tobytes()  # ... and are not the Thai letters


def test_tofu_counts_glyphs_not_just_fonts():
    """A Latin font in a Thai element is fine for its Latin, not for more glyphs than that."""
    loma = browser.Font("Loma", "Loma", False, 8)
    element = browser.Rendered("p", "วาระที่ 1 Budget", (loma, browser.Font("DejaVu Sans", "DejaVuSans", False, 9)), 9)
    assert browser.tofu([element]) == []
    boxed = browser.Rendered("p", "วาระที่ 1 Budget", (loma, browser.Font("DejaVu Sans", "DejaVuSans", False, 10)), 9)
    [problem] = browser.tofu([boxed])
    assert "'วาระที่ 1 Budget'" in problem and "'DejaVu Sans' (10 glyphs, no Thai)" in problem
    with pytest.raises(AssertionError, match="no Thai text was laid out"):
        browser.check_no_tofu([browser.Rendered("span", "ซ่อน", (), 0)])


def test_email_bars_page_screenshots_whole(tmp_path):
    rows = "".join(
        BAR_ROW.format(label=label, percent=percent, rest=100 - percent, color=color) for label, percent, color in BARS
    )
    html = BARS_PAGE.format(rows=rows)
    with Browser(width=800) as page:
        pid = page.process.pid
        workdir = page.workdir
        page.open(html)
        png = page.screenshot(ARTIFACTS / "bars.png")
        page_height = page.evaluate("document.documentElement.scrollHeight")
        outer = page.evaluate("document.querySelector('table').getBoundingClientRect().width")
        bars = {
            percent: page.evaluate(
                f"(() => {{ const r = document.getElementById('bar-{percent}').getBoundingClientRect();"
                " return [r.left, r.top, r.width, r.height]; })()"
            )
            for _, percent, _ in BARS
        }
        browser.check_no_tofu(page.thai_fonts_used())
    # Stopped: the process group is gone and the profile removed.
    with pytest.raises(ProcessLookupError):
        os.killpg(pid, 0)
    assert not workdir.exists()

    image = Image.open(png).convert("RGB")
    assert image.width == 800
    assert page_height > 800 and image.height == page_height  # the whole page, not the first 600 px
    assert png.stat().st_size > 5_000
    for label, percent, color in BARS:
        left, top, width, height = bars[percent]
        assert abs(width / outer - percent / 100) < 0.02, (label, width, outer)
        expected = tuple(int(color[i:i + 2], 16) for i in (1, 3, 5))
        assert image.getpixel((int(left + width / 2), int(top + height / 2))) == expected, label
        assert image.getpixel((int(left + width + 5), int(top + height / 2))) == (0xE0, 0xE0, 0xE0), label

    # The one-shot call gives the same picture.
    again = Image.open(browser.screenshot(html, tmp_path / "bars.png", width=800)).convert("RGB")
    assert again.size == image.size


def test_missing_chromium_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("CHROMIUM", raising=False)
    monkeypatch.setattr(browser, "DEBIAN_CHROMIUM", tmp_path / "no-chromium")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrowserError, match=r"apt-get install -y chromium"):
        browser.screenshot("<p>ทดสอบ</p>", tmp_path / "never.png")
