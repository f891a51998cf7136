"""Headless Chromium for tests: screenshots of HTML, and proof that Thai text had real glyphs.

A page is opened in a private headless Chromium driven over the Chrome DevTools
Protocol (CDP), with `websocket-client` as the only Python dependency (no
playwright or pyppeteer: they download browsers of their own, which cannot work
here). Each call starts its own browser as a child of the test process, in its
own process group, with a throwaway `--user-data-dir`, and stops it by killing
that group, so nothing outlives the test.

`thai_fonts_used` asks Chromium which platform fonts it really drew each
Thai-bearing element's glyphs with (`CSS.getPlatformFontsForNode`), and
`covers_thai` asks fontconfig whether such a font has Thai glyphs at all. A font
without them can only have drawn .notdef boxes ("tofu") for Thai characters:
`assert_no_tofu` fails on that.

Every function takes `env`, variables laid over this process's environment for
the browser (and for fontconfig look-ups), e.g. a `FONTCONFIG_FILE` from
`fontconfig_env` that leaves Thai without a font.

If Chromium is missing, every call raises `BrowserError` naming
`apt-get install chromium`: a test that needs a browser must fail, not skip.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

START_TIMEOUT = 30.0
CALL_TIMEOUT = 30.0
LOAD_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Chromium will not make a bitmap taller than this; longer pages are cut there.
MAX_HEIGHT = 16384
DEFAULT_HEIGHT = 600

THAI = re.compile("[\u0e00-\u0e7f]")
# Thai-block characters that fonts without Thai commonly carry too, so a Latin
# font may draw them without a box: the baht sign (DejaVu has it).
THAI_SHARED = "\u0e3f"
# fontconfig's test for "has the Thai glyphs": ko kai, so suea, sara ii.
THAI_CHARSET = ":charset=0e01 0e2a 0e35"
# Elements whose text is never laid out on the page.
DEBIAN_CHROMIUM = Path("/usr/lib/chromium/chromium")
UNRENDERED = {"HEAD", "TITLE", "SCRIPT", "STYLE", "NOSCRIPT", "TEMPLATE", "META"}
ELEMENT_NODE = 1
TEXT_NODE = 3


# Chromium runs under this small parent. Its helpers (zygotes, renderers) outlive
# the browser process by a moment; orphans go to PID 1, which in a container may
# never reap them. As a child subreaper this parent gets them instead, reaps every
# one, and exits with Chromium's status once none is left.
REAPER = r"""
import ctypes, os, signal, sys
try:
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
except Exception:
    pass
child = os.fork()
if child == 0:
    os.execv(sys.argv[1], sys.argv[1:])
def forward(number, frame):
    try:
        os.kill(child, number)
    except ProcessLookupError:
        pass
signal.signal(signal.SIGTERM, forward)
signal.signal(signal.SIGINT, forward)
status = 1
while True:
    try:
        pid, how = os.waitpid(-1, 0)
    except ChildProcessError:
        break
    if pid == child:
        status = os.waitstatus_to_exitcode(how)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        os.killpg(0, signal.SIGTERM)  # any helper still running
sys.exit(status if status >= 0 else 128 - status)
"""


class BrowserError(RuntimeError):
    """Chromium could not be found, started, driven or stopped."""


@dataclass(frozen=True)
class Font:
    """One platform font Chromium drew glyphs of one element with."""

    family: str
    postscript_name: str
    is_custom: bool  # a web font (@font-face), not a platform one
    glyphs: int


@dataclass(frozen=True)
class Rendered:
    """An element whose own text contains Thai, and the fonts its glyphs were drawn with."""

    tag: str  # lower case, e.g. "td"
    text: str  # the element's own text (its text children), white space collapsed
    fonts: tuple[Font, ...]  # glyphs per font; empty where not laid out (display: none, ...)
    non_thai: int  # characters of that text a font without Thai may draw (Latin, digits, spaces, baht sign)

    @property
    def glyphs(self) -> int:
        return sum(font.glyphs for font in self.fonts)


# ---------------------------------------------------------------- the browser


def chromium_binary() -> str:
    """The Chromium executable: $CHROMIUM, else Debian's binary, else `chromium` on PATH.

    Debian's /usr/bin/chromium is a shell wrapper that adds desktop flags (and
    prints shell errors on some machines); the binary behind it is used when present.
    """
    chosen = os.environ.get("CHROMIUM")
    if chosen:
        if shutil.which(chosen) is None:
            raise BrowserError(f"$CHROMIUM={chosen!r} is not an executable")
        return chosen
    if DEBIAN_CHROMIUM.is_file() and os.access(DEBIAN_CHROMIUM, os.X_OK):
        return str(DEBIAN_CHROMIUM)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    raise BrowserError(
        "Chromium is not installed, so HTML cannot be rendered: run `apt-get install -y chromium` "
        "(Debian's package; the test list of .ci/run installs it)"
    )


def _websocket():
    try:
        import websocket  # websocket-client
    except ImportError:
        raise BrowserError(
            "the Python package websocket-client is missing: run `python3 -m pip install -e '.[test]'`"
        ) from None
    return websocket


def _tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(no output)"
    kept = [line for line in text.splitlines() if line.strip()][-lines:]
    if not kept:
        return "(Chromium printed nothing on stderr)"
    return "--- last lines of Chromium's stderr ---\n" + "\n".join(kept)


class Browser:
    """One private headless Chromium and one page in it, driven over CDP.

    with Browser(width=900) as browser:
        browser.open("<p>สวัสดี</p>")
        browser.screenshot(Path("page.png"))
        fonts = browser.thai_fonts_used()
    """

    def __init__(self, width: int = 900, height: int = DEFAULT_HEIGHT, env: Mapping[str, str] | None = None):
        self.width = width
        self.height = height
        self.env = dict(env or {})
        self.process: subprocess.Popen | None = None
        self.workdir: Path | None = None
        self.socket = None
        self.session: str | None = None
        self.next_id = 0
        self.page_number = 0

    # ----- start and stop

    def __enter__(self) -> "Browser":
        self.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        binary = chromium_binary()
        websocket = _websocket()
        self.workdir = Path(tempfile.mkdtemp(prefix="chromium-"))
        profile = self.workdir / "profile"
        profile.mkdir()
        stderr_path = self.workdir / "stderr.log"
        command = [
            binary,
            "--headless=new",
            "--no-sandbox",  # root cannot use Chromium's sandbox
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            f"--user-data-dir={profile}",
            f"--window-size={self.width},{self.height}",
            "about:blank",
        ]
        environment = {**os.environ, **self.env}
        with open(stderr_path, "wb") as stderr:
            try:
                self.process = subprocess.Popen(
                    [sys.executable, "-c", REAPER, *command],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    env=environment,
                    start_new_session=True,  # its own process group, to kill whole if need be
                )
            except OSError as error:
                self._clean()
                raise BrowserError(f"could not run {binary}: {error}") from None
        try:
            url = self._wait_for_devtools(profile / "DevToolsActivePort", stderr_path)
            try:
                self.socket = websocket.create_connection(
                    url, timeout=CALL_TIMEOUT, suppress_origin=True, enable_multithread=False
                )
            except Exception as error:
                raise BrowserError(f"could not connect to Chromium's DevTools at {url}: {error}") from None
            target = self._call("Target.createTarget", {"url": "about:blank"}, session=False)["targetId"]
            self.session = self._call(
                "Target.attachToTarget", {"targetId": target, "flatten": True}, session=False
            )["sessionId"]
            for domain in ("Page", "Runtime", "DOM", "CSS"):
                self._call(f"{domain}.enable")
            self._call(
                "Emulation.setDeviceMetricsOverride",
                {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            )
        except BaseException:
            self.stop()
            raise

    def _wait_for_devtools(self, port_file: Path, stderr_path: Path) -> str:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrowserError(
                    f"Chromium exited with status {self.process.returncode} before DevTools was up\n"
                    + _tail(stderr_path)
                )
            try:
                lines = port_file.read_text().split()
            except FileNotFoundError:
                lines = []
            if len(lines) >= 2:
                return f"ws://127.0.0.1:{int(lines[0])}{lines[1]}"
            # The same, as Chromium prints it, should the file be late.
            match = re.search(r"DevTools listening on (ws://\S+)", stderr_path.read_text(errors="replace"))
            if match:
                return match.group(1)
            time.sleep(0.05)
        raise BrowserError(f"Chromium's DevTools did not come up within {START_TIMEOUT:.0f} s\n" + _tail(stderr_path))

    def stop(self) -> None:
        if self.socket is not None:
            try:
                self.socket.close()
            except Exception:
                pass
            self.socket = None
        if self.process is not None:
            process, self.process = self.process, None
            # SIGTERM to the reaper: it passes it on to Chromium, waits for Chromium and
            # all its helpers, and exits. Only if that hangs is the whole group killed.
            try:
                process.send_signal(signal.SIGTERM)
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    process.wait(timeout=STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    raise BrowserError(f"Chromium (process group {process.pid}) did not stop after SIGKILL") from None
        self._clean()

    def _clean(self) -> None:
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    # ----- the protocol

    def _call(self, method: str, params: Mapping[str, Any] | None = None, *, session: bool = True,
              timeout: float = CALL_TIMEOUT) -> dict:
        if self.socket is None:
            raise BrowserError(f"{method}: the browser is not running")
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": dict(params or {})}
        if session:
            message["sessionId"] = self.session
        websocket = _websocket()
        deadline = time.monotonic() + timeout
        try:
            self.socket.send(json.dumps(message))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise websocket.WebSocketTimeoutException()
                self.socket.settimeout(left)
                reply = json.loads(self.socket.recv())
                if reply.get("id") != message["id"]:
                    continue  # an event, or a reply to nothing we wait for
                if "error" in reply:
                    raise BrowserError(f"{method} failed: {reply['error'].get('message')} ({reply['error']})")
                return reply.get("result", {})
        except websocket.WebSocketTimeoutException:
            raise BrowserError(f"Chromium did not answer {method} within {timeout:.0f} s") from None
        except (websocket.WebSocketException, OSError) as error:
            raise BrowserError(f"lost Chromium's DevTools connection during {method}: {error}") from None

    def evaluate(self, expression: str, *, timeout: float = CALL_TIMEOUT) -> Any:
        """The value of a JavaScript expression in the page (promises awaited)."""
        result = self._call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"JavaScript failed: {text}")
        return result.get("result", {}).get("value")

    # ----- pages

    def open(self, html: str | Path) -> None:
        """Load HTML and wait until it and its fonts are ready.

        A str is markup, written to a file in the browser's temporary folder (so
        relative links resolve there); a Path is a file opened where it is.
        """
        if isinstance(html, Path):
            url = html.resolve().as_uri()
        else:
            self.page_number += 1
            page = self.workdir / f"page-{self.page_number}.html"
            page.write_text(html, encoding="utf-8")
            url = page.as_uri()
        result = self._call("Page.navigate", {"url": url})
        if result.get("errorText"):
            raise BrowserError(f"could not open {url}: {result['errorText']}")
        deadline = time.monotonic() + LOAD_TIMEOUT
        while True:
            state = self.evaluate(
                "document.readyState === 'complete' ? document.fonts.ready.then(() => location.href + ' ' + "
                "document.readyState) : document.readyState"
            )
            if state == f"{url} complete":
                return
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish loading within {LOAD_TIMEOUT:.0f} s (state {state!r})")
            time.sleep(0.05)

    def screenshot(self, png: Path) -> Path:
        """A PNG of the whole page (up to MAX_HEIGHT px tall) at the browser's width."""
        metrics = self._call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        height = max(1, min(MAX_HEIGHT, int(size["height"] + 0.999)))
        self._call(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )
        try:
            shot = self._call(
                "Page.captureScreenshot",
                {
                    "format": "png",
                    "captureBeyondViewport": True,
                    "clip": {"x": 0, "y": 0, "width": self.width, "height": height, "scale": 1},
                },
                timeout=60,
            )
        finally:
            self._call(
                "Emulation.setDeviceMetricsOverride",
                {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            )
        png = Path(png)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(base64.b64decode(shot["data"]))
        return png

    def thai_fonts_used(self) -> list[Rendered]:
        """For each element whose own text has Thai, the platform fonts Chromium drew that text with.

        CSS.getPlatformFontsForNode on an element also counts text up to two
        layers below it, so it is asked about each of the element's own text
        nodes instead (exactly that text's glyphs), and the answers are added up.
        """
        root = self._call("DOM.getDocument", {"depth": -1, "pierce": True})["root"]
        rendered = []
        for element in _elements_with_thai(root):
            glyphs: dict[tuple[str, str, bool], int] = {}
            for text in _text_children(element):
                for font in self._call("CSS.getPlatformFontsForNode", {"nodeId": text["nodeId"]})["fonts"]:
                    key = (font.get("familyName", ""), font.get("postScriptName", ""), bool(font.get("isCustomFont")))
                    glyphs[key] = glyphs.get(key, 0) + int(font.get("glyphCount", 0))
            own = _own_text(element)
            rendered.append(
                Rendered(
                    tag=element["nodeName"].lower(),
                    text=" ".join(own.split()),
                    fonts=tuple(Font(family, name, custom, count) for (family, name, custom), count in glyphs.items()),
                    non_thai=_non_thai(own),
                )
            )
        return rendered


def _children(node: dict) -> Iterable[dict]:
    yield from node.get("children", ())
    yield from node.get("shadowRoots", ())
    if "contentDocument" in node:
        yield node["contentDocument"]


def _text_children(node: dict) -> list[dict]:
    return [child for child in node.get("children", ()) if child["nodeType"] == TEXT_NODE]


def _own_text(node: dict) -> str:
    """The element's text nodes, each with its white space collapsed as CSS would (but not trimmed)."""
    return "".join(re.sub(r"\s+", " ", child.get("nodeValue", "")) for child in _text_children(node))


def _non_thai(text: str) -> int:
    """How many characters of text a font without Thai may draw without a box."""
    return sum(1 for char in text if not THAI.match(char) or char in THAI_SHARED)


def _elements_with_thai(node: dict) -> Iterable[dict]:
    if node["nodeType"] == ELEMENT_NODE:
        if node["nodeName"].upper() in UNRENDERED:
            return
        if THAI.search(_own_text(node)):
            yield node
    for child in _children(node):
        yield from _elements_with_thai(child)


# ---------------------------------------------------------------- one-shot calls


def screenshot(html: str | Path, png: Path, width: int = 900, env: Mapping[str, str] | None = None) -> Path:
    """Render HTML (markup as str, or a file as Path) in headless Chromium; write a full-page PNG to png."""
    with Browser(width=width, env=env) as browser:
        browser.open(html)
        return browser.screenshot(png)


def thai_fonts_used(html: str | Path, env: Mapping[str, str] | None = None, width: int = 900) -> list[Rendered]:
    """Every element whose own text contains Thai, with the platform fonts Chromium drew its glyphs with."""
    with Browser(width=width, env=env) as browser:
        browser.open(html)
        return browser.thai_fonts_used()


# ---------------------------------------------------------------- fontconfig


def _family_names(listed: str) -> set[str]:
    """The names in a family as fc-list prints it: "A,B" for one font known by several names
    (languages, styles); a comma inside a name comes escaped as "\\,". Case-folded."""
    names = (re.sub(r"\\(.)", r"\1", name).strip() for name in re.split(r"(?<!\\),", listed))
    return {name.casefold() for name in names if name}


_thai_families: dict[tuple, frozenset[str]] = {}


def thai_families(env: Mapping[str, str] | None = None) -> frozenset[str]:
    """The family names (case-folded) that fontconfig says have the Thai glyphs."""
    key = tuple(sorted((env or {}).items()))
    if key not in _thai_families:
        fc_list = shutil.which("fc-list")
        if fc_list is None:
            raise BrowserError("fc-list is missing: run `apt-get install -y fontconfig`")
        try:
            listed = subprocess.run(
                [fc_list, THAI_CHARSET, "family"],
                capture_output=True, text=True, check=True, timeout=CALL_TIMEOUT,
                env={**os.environ, **(env or {})},
            ).stdout
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as error:
            raise BrowserError(f"fc-list failed: {error}") from None
        names: set[str] = set()
        for line in listed.splitlines():
            names |= _family_names(line)
        _thai_families[key] = frozenset(names)
    return _thai_families[key]


def covers_thai(family: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether fontconfig (under env's FONTCONFIG_FILE, if any) says this font family has the Thai glyphs.

    A family given as "A,B" (fc-list's way) covers Thai when any of its names does.
    """
    return bool(_family_names(family) & thai_families(env))


def fontconfig_env(font_dirs: Sequence[Path | str], workdir: Path) -> dict[str, str]:
    """Variables that restrict fontconfig (and so Chromium) to the fonts in font_dirs.

    Writes workdir/fonts.conf with only those <dir>s and a private cache, and no
    system configuration, so nothing else (no Thai font, say) can be fallen back on.
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dirs = "\n".join(f"  <dir>{_xml(Path(d).resolve())}</dir>" for d in font_dirs)
    conf = workdir / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n'
        '<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
        "<fontconfig>\n"
        f"{dirs}\n"
        f"  <cachedir>{_xml((workdir / 'fontconfig-cache').resolve())}</cachedir>\n"
        "</fontconfig>\n",
        encoding="utf-8",
    )
    return {"FONTCONFIG_FILE": str(conf), "FONTCONFIG_PATH": str(workdir)}


def _xml(path: Path) -> str:
    return str(path).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# ---------------------------------------------------------------- the tofu check


def tofu(rendered: Sequence[Rendered], env: Mapping[str, str] | None = None) -> list[str]:
    """What is wrong with how Thai was drawn: one line per element whose Thai got boxes.

    An element's glyphs are counted per font (glyphCount). Fonts that fontconfig
    says have no Thai may draw only the element's non-Thai characters (Latin,
    digits, spaces, the baht sign); any glyph of theirs beyond that count is a
    Thai character drawn as a box. And Thai text with no glyph from a
    Thai-covering font at all is boxes whatever the counts.
    """
    problems = []
    for element in rendered:
        if not element.fonts:
            continue  # not laid out: nothing was drawn
        thai_chars = sum(1 for char in element.text if THAI.match(char) and char not in THAI_SHARED)
        other_chars = element.non_thai
        thai_glyphs = sum(font.glyphs for font in element.fonts if covers_thai(font.family, env))
        other_glyphs = element.glyphs - thai_glyphs
        if (thai_chars and thai_glyphs == 0) or other_glyphs > other_chars:
            fonts = ", ".join(
                f"{font.family!r} ({font.glyphs} glyphs, {'has' if covers_thai(font.family, env) else 'no'} Thai)"
                for font in element.fonts
            )
            problems.append(
                f"<{element.tag}> {element.text!r}: {thai_chars} Thai characters, drawn with {fonts}; "
                f"{other_glyphs} glyphs from fonts without Thai for {other_chars} non-Thai characters"
            )
    return problems


def assert_no_tofu(html: str | Path, env: Mapping[str, str] | None = None, width: int = 900) -> list[Rendered]:
    """Fail unless every Thai character in the page was drawn with a font that has Thai glyphs.

    Returns what was found, for further checks. Fails too when the page has no
    Thai text that was laid out, since then nothing was proved.
    """
    rendered = thai_fonts_used(html, env=env, width=width)
    check_no_tofu(rendered, env)
    return rendered


def check_no_tofu(rendered: Sequence[Rendered], env: Mapping[str, str] | None = None) -> None:
    """assert_no_tofu on fonts already collected (e.g. from a Browser that also took a screenshot)."""
    if not any(element.fonts for element in rendered):
        raise AssertionError("no Thai text was laid out on the page, so no Thai glyphs could be checked")
    problems = tofu(rendered, env)
    if problems:
        raise AssertionError("Thai text drawn as boxes (tofu), by fonts without Thai glyphs:\n" + "\n".join(problems))
