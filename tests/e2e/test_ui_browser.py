"""The chat page in a real headless Chromium, as a user finds it, in English and Chinese.

The app runs as ``streamlit run ui/app.py`` in a subprocess on a free loopback port,
with the real embedding model (multilingual-e5-small; MiniLM where a test needs a
model that cannot read Chinese) and a data folder in ``tmp_path``. Screenshots of
the steps are saved in ``tmp_path`` (the path is printed), to look at when a step
fails or the layout changes; with ``UPDATE_SCREENSHOTS=1`` the main steps in each
language are also written, downscaled, to ``docs/screenshots/`` for the README.

Chromium comes from Debian (``apt-get install chromium``), not from Playwright's
own download. Without it the test fails in CI (``CI`` set) and skips elsewhere.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragqa.config import MINILM_MODEL

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
README_SHOTS = REPO / "docs" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
VIEWPORT = {"width": 1280, "height": 900}
FACT = "The lighthouse on Quillon Island was built in 1887 by the engineer Mara Velez."
QUESTION = "Who built the lighthouse on Quillon Island?"
CJK_FONT = Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc")  # Debian's fonts-wqy-zenhei
# The island's two pages in Simplified Chinese, for the zh-CN steps.
ZH_PAGES = [
    "港口笔记。第一页介绍渔船队和潮汐。",
    "岛屿的历史。奎隆岛上的灯塔由工程师玛拉·贝莱斯于1887年建造。它至今仍为船只导航。",
]
# Two full pages, for the README's screenshots: the page image shows a real page.
ISLAND_BOOKLET = {
    "en": [
        "Harbour notes.\n"
        "The harbour of Quillon Island shelters a fleet of twenty-two fishing boats. Most of "
        "them leave before dawn and return in the early afternoon with mackerel, herring and "
        "crab.\n"
        "The tides here are strong: the difference between high and low water reaches five "
        "metres at the spring tides, and the harbour mouth can only be crossed two hours "
        "either side of high water.\n"
        "A small market opens on the quay every Saturday. Fishermen sell part of the catch "
        "directly, and the rest is shipped to the mainland on the morning ferry.",
        "History of the island.\n"
        "The first farmers settled on Quillon Island in the sixteenth century, on the "
        "sheltered eastern slopes where the soil is deepest.\n"
        "In 1881 a storm drove three fishing boats onto the reef at the northern point, and "
        "the islanders asked the government for a light.\n"
        f"{FACT} It still guides ships today.\n"
        "The tower is twenty-eight metres tall, of granite quarried on the island itself.\n"
        "Three families of keepers lived in the cottages at its foot until the light was "
        "automated in 1962. The cottages now house a small museum about the island's "
        "shipwrecks.",
    ],
    "zh-Hans": [
        "港口笔记。\n"
        "奎隆岛的港口停泊着二十二艘渔船。大多数渔船在黎明前出海，下午早些时候带着鲭鱼、"
        "鲱鱼和螃蟹返航。\n"
        "这里的潮汐很强：大潮时高低潮的水位差可达五米，只有在高潮前后两小时内才能通过"
        "港口入口。\n"
        "每个星期六，码头上都会开一个小市场。渔民直接卖掉一部分渔获，其余的由早班渡轮"
        "运往大陆。",
        "岛屿的历史。\n"
        "十六世纪，第一批农民在奎隆岛东侧背风的山坡上定居，那里的土壤最深。\n"
        "1881年的一场风暴让三艘渔船在北端的礁石上沉没，岛上的居民因此请求政府修建一座"
        "灯塔。\n"
        "奎隆岛上的灯塔由工程师玛拉·贝莱斯于1887年建造。它至今仍为船只导航。\n"
        "灯塔高二十八米，用岛上开采的花岗岩建成。\n"
        "在1962年灯塔实现自动化之前，三户守塔人家庭一直住在塔下的小屋里。如今这些小屋"
        "改成了一座小型博物馆，介绍岛上的沉船。",
    ],
}
# The model loads on the first page view; give it time on a slow CI box.
SLOW_MS = 180_000


@pytest.fixture
def chromium() -> str:
    """Debian's Chromium; asked for before the app starts, so a skip costs nothing."""
    found = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
    if Path(found).is_file():
        return found
    message = "Debian's chromium is not installed (apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def screenshots(tmp_path: Path) -> Path:
    """Where a test saves its screenshots (printed, to look at when a step fails)."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    print(f"screenshots in {shots}")
    return shots


def shoot(page: Any, shots: Path, name: str, *, readme: bool = False) -> None:
    """A screenshot of the window; with ``readme`` and ``UPDATE_SCREENSHOTS=1`` also a
    small copy for the README (a 256-colour PNG 1000 pixels wide)."""
    path = shots / f"{name}.png"
    page.screenshot(path=path, animations="disabled")
    if readme and os.environ.get("UPDATE_SCREENSHOTS"):
        from PIL import Image

        README_SHOTS.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as picture:
            small = picture.convert("RGB")
            small.thumbnail((1000, 1000))
            small.quantize(colors=256).save(README_SHOTS / f"{name}.png", optimize=True)


@contextlib.contextmanager
def launched(playwright: Any, chromium: str) -> Iterator[Any]:
    """Debian's Chromium, headless, closed however the test ends."""
    browser = playwright.chromium.launch(
        executable_path=chromium, headless=True, args=CHROMIUM_ARGS
    )
    try:
        yield browser
    finally:
        browser.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_pdf(path: Path, pages: list[str] | None = None) -> Path:
    """A PDF of ``pages``; by default the island's two pages, the fact on page 2.
    Chinese pages are set in the CJK font."""
    from fpdf import FPDF

    pages = pages or [
        "Harbour notes. This first page describes the fishing fleet and the tides.",
        "History of the island. " + FACT + " It still guides ships today.",
    ]
    pdf = FPDF()
    if any(ord(c) > 0x2E80 for text in pages for c in text):
        if not CJK_FONT.is_file():
            pytest.skip(f"no CJK font at {CJK_FONT} (apt-get install fonts-wqy-zenhei)")
        pdf.add_font("cjk", fname=str(CJK_FONT), collection_font_number=0)
        pdf.set_font("cjk", size=12)
    else:
        pdf.set_font("helvetica", size=12)
    for text in pages:
        pdf.add_page()
        pdf.multi_cell(0, 8, text)
    pdf.output(str(path))
    return path


@contextlib.contextmanager
def running_app(tmp_path: Path, **env_overrides: str) -> Iterator[str]:
    """The app, started with .venv's streamlit and always stopped afterwards; its
    log must hold no traceback."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGQA_")}
    env["RAGQA_DATA_DIR"] = str(tmp_path / "data")
    env.update(env_overrides)
    log_path = tmp_path / "streamlit.log"
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "ui/app.py",
        "--server.address=127.0.0.1",
        f"--server.port={port}",
        "--server.headless=true",
        "--browser.gatherUsageStats=false",
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"streamlit exited early:\n{log_path.read_text()}")
                try:
                    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as reply:
                        if reply.read().strip() == b"ok":
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"streamlit did not come up:\n{log_path.read_text()}")
                time.sleep(0.3)
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=15)
    log_text = log_path.read_text(errors="replace")
    assert "Traceback" not in log_text, log_text


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[str]:
    with running_app(tmp_path) as url:
        yield url


# ------------------------------------------------------------------- helpers


def open_page(browser: Any, url: str, locale: str = "en-US") -> Any:
    """A new window on the app in ``locale``, once the page is drawn and the model is in."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=VIEWPORT, locale=locale)
    page.goto(url)
    expect(page.get_by_test_id("stFileUploaderDropzone")).to_be_visible(timeout=SLOW_MS)
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_visible(timeout=SLOW_MS)
    return page


def settled(page: Any) -> None:
    """Wait until the script has stopped running, and stays stopped for a moment (an
    upload reruns the page once it is stored): a widget used in the middle of a run,
    its elements stale or being drawn anew, may lose the input."""
    idle = page.locator("[data-testid='stApp'][data-test-script-state='notRunning']")
    deadline = time.monotonic() + SLOW_MS / 1000
    while time.monotonic() < deadline:
        idle.wait_for(timeout=SLOW_MS)
        page.wait_for_timeout(400)
        if idle.count():
            return
    pytest.fail("the page kept running")


def upload(page: Any, *paths: Path) -> None:
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(
        [str(p) for p in paths]
    )


def ask(page: Any, question: str) -> Any:
    """Ask, and return the answer's chat message (the last one, once it is there)."""
    from playwright.sync_api import expect

    settled(page)
    messages = page.get_by_test_id("stChatMessage")
    before = messages.count()
    chat_input = page.get_by_test_id("stChatInputTextArea")
    chat_input.fill(question)
    chat_input.press("Enter")
    expect(messages).to_have_count(before + 2, timeout=SLOW_MS)
    return messages.nth(before + 1)


def open_expander(container: Any, label: str | re.Pattern[str]) -> Any:
    """The expander whose header shows ``label``, opened if it is closed."""
    settled(container.page)
    expander = container.get_by_test_id("stExpander").filter(
        has=container.page.locator("summary", has_text=label)
    )
    if expander.locator("details").get_attribute("open") is None:
        expander.locator("summary").click()
    return expander


def choose(page: Any, selectbox: Any, option: str) -> None:
    """Pick ``option`` in a selectbox: open its list (again, if a rerun closed it the
    moment it opened) and click the option."""
    listbox = page.get_by_role("listbox")
    for _ in range(10):
        settled(page)
        selectbox.get_by_role("button", name="Open").click()
        try:
            listbox.wait_for(timeout=2000)
        except Exception:  # noqa: BLE001 - Playwright's timeout: try once more
            continue
        page.get_by_role("option", name=option, exact=True).click()
        return
    pytest.fail(f"the list of {selectbox} did not open")


def breaks_inside_words(element: Any) -> list[str]:
    """Where the browser wrapped the element's text other than after a space, ``_``,
    ``-`` or ``.``: each as the text around the break, so a failure shows it."""
    return element.evaluate(
        """(el) => {
            const text = el.textContent, found = [];
            const node = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            const chars = [];
            while (node.nextNode()) {
                for (let i = 0; i < node.currentNode.length; i++) chars.push([node.currentNode, i]);
            }
            let top = null;
            chars.forEach(([n, i], k) => {
                const range = document.createRange();
                range.setStart(n, i); range.setEnd(n, i + 1);
                const rect = range.getClientRects()[0];
                if (!rect) return;
                if (top !== null && rect.top > top + 2 && k > 0) {
                    const before = chars[k - 1][0].data[chars[k - 1][1]];
                    if (!" _-.".includes(before)) found.push(text.slice(Math.max(0, k - 8), k + 8));
                }
                top = rect.top;
            });
            return found;
        }"""
    )


def assert_no_exception(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stException")).to_have_count(0)
    assert "Traceback" not in page.content()


# --------------------------------------------------------------------- tests


def test_upload_ask_and_see_the_source_in_a_browser(chromium, app_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    pdf = make_pdf(tmp_path / "island-facts.pdf")
    shots = screenshots(tmp_path)

    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        expect(page.get_by_role("heading", name="Ask your documents")).to_be_visible()
        expect(page.get_by_text("Knowledge base “default”: 0 documents")).to_be_visible()
        shoot(page, shots, "1-start")

        upload(page, pdf)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_be_visible(timeout=SLOW_MS)
        expect(page.get_by_text("Knowledge base “default”: 1 document,")).to_be_visible()
        shoot(page, shots, "2-ingested")

        answer = ask(page, QUESTION)
        expect(answer).to_contain_text("Mara Velez", timeout=SLOW_MS)
        expect(answer).to_contain_text("[1]")
        shoot(page, shots, "3-answer")

        answer.get_by_text("Sources (1)").click()
        source = answer.get_by_text("[1] island-facts.pdf, page 2")
        expect(source).to_be_visible()
        cited = answer.locator("mark.ragqa-cited")
        expect(cited.first).to_contain_text("Mara Velez")
        expect(cited.first).to_be_visible()
        shoot(page, shots, "4-sources")
        assert_no_exception(page)

        # A browser that prefers Traditional Chinese gets the Traditional page by default.
        zh = open_page(browser, app_url, locale="zh-TW")
        expect(zh.get_by_role("heading", name="向文件提問")).to_be_visible()
        expect(zh.get_by_text("知識庫「default」：1 份文件")).to_be_visible()
        expect(zh.get_by_test_id("stChatInputTextArea")).to_have_attribute(
            "placeholder", "針對文件提出問題"
        )
        shoot(zh, shots, "5-chinese")


def test_a_question_about_real_notes_shows_the_fact_and_its_highlight(
    chromium, app_url, shared_data, tmp_path
):
    """The real study notes, a question in the user's own words: the answer carries
    the key fact, and the highlight in the source marks that item, not the chunk."""
    from playwright.sync_api import expect, sync_playwright

    notes = shared_data / "notes" / "llm-application-paradigms.txt"
    shots = screenshots(tmp_path)
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        upload(page, notes)
        sidebar = page.get_by_test_id("stSidebar")
        # The ingest's own message, not the uploader's list of the file.
        expect(sidebar.get_by_text("llm-application-paradigms.txt: added")).to_be_visible(
            timeout=SLOW_MS
        )
        answer = ask(page, "LLM 不会用工具怎么办？")
        expect(answer).to_contain_text("函数调用", timeout=SLOW_MS)
        answer.get_by_test_id("stExpander").first.locator("summary").click()
        cited = answer.locator("mark.ragqa-cited")
        expect(cited.first).to_be_visible()
        expect(cited.first).to_contain_text("函数调用")
        # The mark is the table row the answer quotes, not the whole chunk.
        marked = cited.first.inner_text()
        assert len(marked) < 80, marked
        shoot(page, shots, "notes-answer")
        assert_no_exception(page)


def test_the_retrieval_mode_survives_a_change_of_language(chromium, app_url, tmp_path):
    """Issue 21.1: after switching language the mode fell from the one chosen to
    Dense at the next action, and the dropdown kept its English label until then."""
    from playwright.sync_api import expect, sync_playwright

    pdf = make_pdf(tmp_path / "island-facts.pdf")
    shots = screenshots(tmp_path)
    labels = {
        "en": ("English", "Settings", "Retrieval mode", "Lexical (keywords)"),
        "zh-Hans": ("简体中文", "设置", "检索模式", "关键字"),
        "zh-Hant": ("繁體中文", "設定", "檢索模式", "關鍵字"),
    }
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        sidebar = page.get_by_test_id("stSidebar")
        upload(page, pdf)
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_be_visible(timeout=SLOW_MS)

        settings = open_expander(sidebar, "Settings")
        mode = settings.get_by_role("combobox", name="Retrieval mode")
        expect(mode).to_have_value("Hybrid")  # the default
        choose(page, settings.get_by_test_id("stSelectbox").nth(1), "Lexical (keywords)")
        expect(mode).to_have_value("Lexical (keywords)")
        top_k = settings.get_by_test_id("stNumberInputField").first  # top-k comes first
        top_k.fill("3")
        top_k.press("Enter")
        expect(top_k).to_have_value("3")

        for language in ("zh-Hans", "zh-Hant", "en"):
            radio_label, settings_label, mode_label, lexical = labels[language]
            sidebar.get_by_test_id("stRadio").get_by_text(radio_label).click()
            settings = open_expander(sidebar, settings_label)
            mode = settings.get_by_role("combobox", name=mode_label)
            # Relabelled at once, not at the next action...
            expect(mode).to_have_value(lexical)
            shoot(page, shots, f"mode-{language}")
            # ...and still the same mode after one: a question, answered.
            answer = ask(page, QUESTION)
            expect(answer).to_contain_text("Mara Velez", timeout=SLOW_MS)
            expect(answer.get_by_test_id("stExpander")).to_be_visible()  # the answer is done
            settings = open_expander(sidebar, settings_label)
            mode = settings.get_by_role("combobox", name=mode_label)
            expect(mode).to_have_value(lexical)
            expect(settings.get_by_test_id("stNumberInputField").first).to_have_value("3")
        assert_no_exception(page)


def test_a_zh_cn_browser_gets_simplified_chinese_and_replies_follow_the_question(
    chromium, app_url, tmp_path
):
    """Issue 21.2: zh-CN got Traditional; the "not found" reply came in Traditional
    while the page was in English."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    pdf = make_pdf(tmp_path / "灯塔.pdf", ZH_PAGES)
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url, locale="zh-CN")
        sidebar = page.get_by_test_id("stSidebar")
        expect(page.get_by_role("heading", name="向文档提问")).to_be_visible()
        expect(sidebar.get_by_role("radio", name="简体中文")).to_be_checked()
        expect(page.get_by_test_id("stChatInputTextArea")).to_have_attribute(
            "placeholder", "针对文档提出问题"
        )
        expect(sidebar.get_by_text("添加 PDF、TXT 或 MD 文件")).to_be_visible()
        # Streamlit's own uploader words, drawn over in the page's language.
        button = page.locator(
            "[data-testid='stFileUploaderDropzone'] button[data-testid='stBaseButton-secondary'] p"
        )
        assert button.evaluate("e => getComputedStyle(e, '::after').content") == '"上传"'
        limit = page.get_by_test_id("stFileUploaderDropzoneInstructions").locator("span")
        assert "每个文件最多" in limit.evaluate("e => getComputedStyle(e, '::after').content")
        shoot(page, shots, "zh-cn-start")

        upload(page, pdf)
        expect(sidebar.get_by_text("灯塔.pdf：已添加")).to_be_visible(timeout=SLOW_MS)
        expect(sidebar.get_by_text("此知识库中的文档（1）")).to_be_visible()
        answer = ask(page, "奎隆岛上的灯塔是谁建造的？")
        expect(answer).to_contain_text("玛拉·贝莱斯", timeout=SLOW_MS)
        expect(answer.get_by_text("来源（1）")).to_be_visible()

        # Hong Kong and Taiwan read Traditional.
        hk = open_page(browser, app_url, locale="zh-HK")
        expect(hk.get_by_role("heading", name="向文件提問")).to_be_visible()
        expect(hk.get_by_test_id("stSidebar").get_by_role("radio", name="繁體中文")).to_be_checked()

        # On an English page, the fixed reply follows the question: Simplified for a
        # Simplified question, English for an English one.
        en = open_page(browser, app_url, locale="en-US")
        reply = ask(en, "火星上有几座火山？这份文件怎么说？")
        expect(reply).to_contain_text("文件中没有找到这个问题的答案。", timeout=SLOW_MS)
        reply = ask(en, "How many volcanoes are there on Mars?")
        expect(reply).to_contain_text("The documents do not contain an answer", timeout=SLOW_MS)
        shoot(en, shots, "en-not-found")
        assert_no_exception(page)


def test_the_uploaded_name_is_shown_in_the_list_and_the_citation(chromium, app_url, tmp_path):
    """Issue 21.3: ``pdfminer__naacl06-shinyama.pdf`` was stored and cited as
    ``pdfminer_naacl06-shinyama.pdf``. Names that are not safe as they are (a space)
    are stored under a safe name and still shown as uploaded."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    folder = tmp_path / "files"
    folder.mkdir()
    pdf = make_pdf(folder / "pdfminer__naacl06-shinyama.pdf")
    notes = folder / "harbour notes (2024).txt"
    notes.write_text("The harbour master of Quillon Island is Ilse Brandt.", encoding="utf-8")
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        sidebar = page.get_by_test_id("stSidebar")
        upload(page, pdf, notes)
        expect(sidebar.get_by_text("pdfminer__naacl06-shinyama.pdf: added")).to_be_visible(
            timeout=SLOW_MS
        )
        expect(sidebar.get_by_text("harbour notes (2024).txt: added")).to_be_visible(
            timeout=SLOW_MS
        )
        documents = open_expander(sidebar, "In this knowledge base (2)")
        expect(documents).to_contain_text("pdfminer__naacl06-shinyama.pdf")
        expect(documents).to_contain_text("harbour notes (2024).txt")
        names = documents.locator("span.ragqa-file")
        expect(names).to_have_text(["harbour notes (2024).txt", "pdfminer__naacl06-shinyama.pdf"])
        for index in range(2):
            assert breaks_inside_words(names.nth(index)) == []

        answer = ask(page, QUESTION)
        expect(answer).to_contain_text("Mara Velez", timeout=SLOW_MS)
        answer.get_by_text("Sources (1)").click()
        expect(answer.get_by_text("[1] pdfminer__naacl06-shinyama.pdf, page 2")).to_be_visible()
        answer = ask(page, "Who is the harbour master of Quillon Island?")
        expect(answer).to_contain_text("Ilse Brandt", timeout=SLOW_MS)
        answer.get_by_text("Sources (1)").click()
        expect(answer.get_by_text("[1] harbour notes (2024).txt, page 1")).to_be_visible()
        shoot(page, shots, "names")
    stored = sorted(p.name for p in (tmp_path / "data" / "default" / "uploads").iterdir())
    assert stored == ["harbour_notes_(2024).txt", "pdfminer__naacl06-shinyama.pdf"]


def test_the_unreadable_text_warning_appears_for_a_chinese_file(chromium, shared_data, tmp_path):
    """Issue 21.4: the log warned that the model cannot read most of a Chinese file;
    the page said nothing. MiniLM cannot read Chinese (e5, the default, can)."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    chinese = shared_data / "notes" / "nlp-language-models.txt"
    english = tmp_path / "harbour.txt"
    english.write_text("The harbour master of Quillon Island is Ilse Brandt.", encoding="utf-8")
    with (
        running_app(tmp_path, RAGQA_EMBEDDING_MODEL=MINILM_MODEL) as url,
        sync_playwright() as playwright,
        launched(playwright, chromium) as browser,
    ):
        page = open_page(browser, url, locale="zh-CN")
        sidebar = page.get_by_test_id("stSidebar")
        upload(page, chinese)
        expect(sidebar.get_by_text("nlp-language-models.txt：已添加")).to_be_visible(
            timeout=SLOW_MS
        )
        warning = sidebar.get_by_test_id("stAlertContentWarning")
        expect(warning).to_have_count(1)
        expect(warning).to_contain_text(
            re.compile(
                r"nlp-language-models\.txt：嵌入模型（.*all-MiniLM-L6-v2）"
                r"无法识别这份文档 \d+% 的文字"
            )
        )
        expect(warning).to_contain_text("ragqa reindex")  # what to do
        shoot(page, shots, "unreadable-zh")

        # Once per document: an English file adds no second warning...
        upload(page, english)
        expect(sidebar.get_by_text("harbour.txt：已添加")).to_be_visible(timeout=SLOW_MS)
        expect(warning).to_have_count(1)
        # ...and the one there follows the language.
        sidebar.get_by_test_id("stRadio").get_by_text("English").click()
        expect(warning).to_contain_text("cannot read")
        expect(warning).to_contain_text("Hybrid or Lexical")
        assert_no_exception(page)


def test_layout_labels_fit_once_and_stale_messages_go(chromium, app_url, shared_data, tmp_path):
    """Issue 21.5: names broke mid-word, the password button read "Unlock a…",
    "Knowledge base" was there twice, and warnings stayed after the success."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    locked = shared_data / "pdfs" / "samplefiles__libreoffice-writer-password.pdf"
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        sidebar = page.get_by_test_id("stSidebar")
        expect(sidebar.get_by_text("Knowledge base", exact=True)).to_have_count(1)

        upload(page, locked)
        warning = sidebar.get_by_text(
            "samplefiles__libreoffice-writer-password.pdf is password-protected."
        )
        expect(warning).to_be_visible(timeout=SLOW_MS)
        unlock = sidebar.get_by_role("button", name="Unlock", exact=True)
        expect(unlock).to_be_visible()
        label = unlock.locator("p")
        expect(label).to_have_text("Unlock")
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth"), "the label is cut"
        shoot(page, shots, "password")

        sidebar.get_by_test_id("stTextInputRootElement").last.locator("input").fill("wrong")
        unlock.click()
        error = sidebar.get_by_text("that password did not open the file")
        expect(error).to_be_visible(timeout=SLOW_MS)
        sidebar.get_by_test_id("stTextInputRootElement").last.locator("input").fill("openpassword")
        sidebar.get_by_role("button", name="Unlock", exact=True).click()
        expect(
            sidebar.get_by_text("samplefiles__libreoffice-writer-password.pdf: added")
        ).to_be_visible(timeout=SLOW_MS)
        # The success resolved the warning and the error: both gone.
        expect(warning).to_have_count(0)
        expect(error).to_have_count(0)

        documents = open_expander(sidebar, "In this knowledge base (1)")
        name = documents.locator("span.ragqa-file")
        expect(name).to_have_text("samplefiles__libreoffice-writer-password.pdf")
        assert breaks_inside_words(name) == []
        shoot(page, shots, "unlocked")
        assert_no_exception(page)


def test_remove_asks_first_answers_by_the_button_and_clears_the_uploader(
    chromium, app_url, tmp_path
):
    """Issue 21.6: a delete happened at once, its message was at the sidebar's top,
    and the uploader still listed the file."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    pdf = make_pdf(tmp_path / "island-facts.pdf")
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        sidebar = page.get_by_test_id("stSidebar")
        upload(page, pdf)
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_be_visible(timeout=SLOW_MS)
        expect(sidebar.get_by_test_id("stFileChip")).to_have_count(1)

        documents = open_expander(sidebar, "In this knowledge base (1)")
        documents.get_by_role("button", name="Remove", exact=True).click()
        question = documents.get_by_text("Remove island-facts.pdf from this knowledge base?")
        expect(question).to_be_visible()
        # Asked, not done: the document is still there, until the user says yes.
        expect(page.get_by_text("Knowledge base “default”: 1 document,")).to_be_visible()
        shoot(page, shots, "remove-asks")
        documents.get_by_role("button", name="Cancel").click()
        expect(question).to_have_count(0)
        expect(page.get_by_text("Knowledge base “default”: 1 document,")).to_be_visible()

        settled(page)
        documents.get_by_role("button", name="Remove", exact=True).click()
        documents.get_by_role("button", name="Yes, remove").click()
        documents = sidebar.get_by_test_id("stExpander").filter(
            has=page.locator("summary", has_text="In this knowledge base (0)")
        )
        done = documents.get_by_text("Removed island-facts.pdf.")
        expect(done).to_be_visible(timeout=SLOW_MS)
        expect(page.get_by_text("Knowledge base “default”: 0 documents")).to_be_visible()
        expect(sidebar.get_by_test_id("stFileChip")).to_have_count(0)
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_have_count(0)
        shoot(page, shots, "removed")
        assert_no_exception(page)


def test_sources_are_numbered_1_to_n_in_the_order_the_answer_cites_them(chromium, tmp_path):
    """Issue 21.7: a lone cited source was numbered [2]. A canned model cites passage
    2 of 2, then 2 before 1; the page must show [1], then [1] and [2]."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    pdf = make_pdf(tmp_path / "island-facts.pdf")
    with (
        running_app(
            tmp_path, RAGQA_LLM="fake", RAGQA_LLM_MODEL="The harbour has a fleet [2]."
        ) as url,
        sync_playwright() as playwright,
        launched(playwright, chromium) as browser,
    ):
        page = open_page(browser, url)
        sidebar = page.get_by_test_id("stSidebar")
        upload(page, pdf)
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_be_visible(timeout=SLOW_MS)

        # The fact's page is retrieved first, so the model's [2] is the harbour page.
        answer = ask(page, QUESTION)
        expect(answer).to_contain_text("The harbour has a fleet [1].", timeout=SLOW_MS)
        answer.get_by_text("Sources (1)").click()
        expect(answer.get_by_text(re.compile(r"^\[\d\] island-facts"))).to_have_text(
            ["[1] island-facts.pdf, page 1"]
        )

        settings = open_expander(sidebar, "Settings")
        reply = settings.get_by_test_id("stTextInputRootElement").locator("input")
        reply.fill("The harbour has a fleet [2]. Mara Velez built the lighthouse [1].")
        reply.press("Enter")
        answer = ask(page, QUESTION)
        expect(answer).to_contain_text(
            "The harbour has a fleet [1]. Mara Velez built the lighthouse [2].", timeout=SLOW_MS
        )
        answer.get_by_text("Sources (2)").click()
        expect(answer.get_by_text(re.compile(r"^\[\d\] island-facts"))).to_have_text(
            ["[1] island-facts.pdf, page 1", "[2] island-facts.pdf, page 2"]
        )
        shoot(page, shots, "numbered")
        assert_no_exception(page)


def test_the_cited_page_is_shown_as_an_image_beside_the_passage(chromium, app_url, tmp_path):
    """Issue 21.8: the cited page of a PDF, with the cited span boxed, beside the text."""
    from playwright.sync_api import expect, sync_playwright

    shots = screenshots(tmp_path)
    pdf = make_pdf(tmp_path / "island-facts.pdf")
    notes = tmp_path / "harbour.txt"
    notes.write_text("The harbour master of Quillon Island is Ilse Brandt.", encoding="utf-8")
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url)
        sidebar = page.get_by_test_id("stSidebar")
        upload(page, pdf, notes)
        expect(sidebar.get_by_text("harbour.txt: added")).to_be_visible(timeout=SLOW_MS)
        expect(sidebar.get_by_text("island-facts.pdf: added")).to_be_visible(timeout=SLOW_MS)

        answer = ask(page, QUESTION)
        expect(answer).to_contain_text("Mara Velez", timeout=SLOW_MS)
        answer.get_by_text("Sources (1)").click()
        image = answer.get_by_test_id("stImage").locator("img")
        expect(image).to_be_visible()
        caption = answer.get_by_text("Page 2 of island-facts.pdf, the cited passage boxed")
        expect(caption).to_be_visible()
        assert image.evaluate("img => img.complete && img.naturalWidth") >= 600
        # Beside the passage: to its right, level with it.
        passage = answer.locator("div.ragqa-passage")
        text_box, image_box = passage.bounding_box(), image.bounding_box()
        assert image_box["x"] >= text_box["x"] + text_box["width"] - 1
        assert image_box["y"] < text_box["y"] + text_box["height"]
        shoot(page, shots, "page-image")

        # A text file has no page to show.
        answer = ask(page, "Who is the harbour master of Quillon Island?")
        expect(answer).to_contain_text("Ilse Brandt", timeout=SLOW_MS)
        answer.get_by_text("Sources (1)").click()
        expect(answer.locator("div.ragqa-passage")).to_be_visible()
        expect(answer.get_by_test_id("stImage")).to_have_count(0)
        assert_no_exception(page)


STEPS = {
    "en": {
        "locale": "en-US",
        "title": "Ask your documents",
        "added": "island-facts.pdf: added",
        "question": QUESTION,
        "fact": "Mara Velez",
        "sources": "Sources (1)",
        "image": "Page 2 of island-facts.pdf",
        "remove": "Remove",
        "confirm": "Remove island-facts.pdf from this knowledge base?",
        "cancel": "Cancel",
        "docs": "In this knowledge base (1)",
    },
    "zh-Hans": {
        "locale": "zh-CN",
        "title": "向文档提问",
        "added": "灯塔.pdf：已添加",
        "question": "奎隆岛上的灯塔是谁建造的？",
        "fact": "玛拉·贝莱斯",
        "sources": "来源（1）",
        "image": "灯塔.pdf 第 2 页",
        "remove": "移除",
        "confirm": "要从这个知识库移除 灯塔.pdf 吗？",
        "cancel": "取消",
        "docs": "此知识库中的文档（1）",
    },
    "zh-Hant": {
        "locale": "zh-TW",
        "title": "向文件提問",
        "added": "燈塔.pdf：已加入",
        "question": "奎隆島上的燈塔是誰建造的？",
        "fact": "瑪拉·貝萊斯",
        "sources": "來源（1）",
        "image": "燈塔.pdf 第 2 頁",
        "remove": "移除",
        "confirm": "要從這個知識庫移除 燈塔.pdf 嗎？",
        "cancel": "取消",
        "docs": "此知識庫中的文件（1）",
    },
}


@pytest.mark.parametrize("language", list(STEPS))
def test_the_main_steps_in_each_language(chromium, app_url, tmp_path, language):
    """Start, upload, answer with its source and page, and the removal question, all
    in the browser's language; the README's screenshots come from here."""
    from opencc import OpenCC
    from playwright.sync_api import expect, sync_playwright

    steps = STEPS[language]
    shots = screenshots(tmp_path)
    if language == "en":
        pdf = make_pdf(tmp_path / "island-facts.pdf", ISLAND_BOOKLET["en"])
    else:
        # Traditional is the Simplified booklet as Taiwan writes it.
        to_script = OpenCC("s2tw").convert if language == "zh-Hant" else str
        name = "灯塔.pdf" if language == "zh-Hans" else "燈塔.pdf"
        pages = [to_script(text) for text in ISLAND_BOOKLET["zh-Hans"]]
        pdf = make_pdf(tmp_path / name, pages)
    with sync_playwright() as playwright, launched(playwright, chromium) as browser:
        page = open_page(browser, app_url, locale=steps["locale"])
        sidebar = page.get_by_test_id("stSidebar")
        expect(page.get_by_role("heading", name=steps["title"])).to_be_visible()
        shoot(page, shots, f"{language}-1-start", readme=True)

        upload(page, pdf)
        expect(sidebar.get_by_text(steps["added"])).to_be_visible(timeout=SLOW_MS)
        expect(sidebar.get_by_text(steps["docs"])).to_be_visible()
        shoot(page, shots, f"{language}-2-uploaded", readme=True)

        answer = ask(page, steps["question"])
        expect(answer).to_contain_text(steps["fact"], timeout=SLOW_MS)
        answer.get_by_text(steps["sources"]).click()
        expect(answer.locator("mark.ragqa-cited").first).to_contain_text(steps["fact"])
        expect(answer.get_by_test_id("stImage").locator("img")).to_be_visible()
        expect(answer.get_by_text(steps["image"])).to_be_visible()
        answer.get_by_test_id("stImage").scroll_into_view_if_needed()
        shoot(page, shots, f"{language}-3-answer", readme=True)

        documents = open_expander(sidebar, steps["docs"])
        documents.get_by_role("button", name=steps["remove"], exact=True).click()
        expect(documents.get_by_text(steps["confirm"])).to_be_visible()
        documents.scroll_into_view_if_needed()
        shoot(page, shots, f"{language}-4-remove", readme=True)
        documents.get_by_role("button", name=steps["cancel"]).click()
        expect(documents.get_by_text(steps["confirm"])).to_have_count(0)
        assert_no_exception(page)
