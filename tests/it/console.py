# The Web Console in a real Chromium (Debian's, driven by Playwright for
# Python) against a real server: every part of issue 29, asserted on what
# the page shows. Screenshots of each view go to SHOT_DIR.
#
# Environment: BASE (http://127.0.0.1:port), DATA (folder with the CSVs),
# SHOT_DIR, and TOKEN_BASE / TOKEN (a second server with http.auth.token).
import gzip
import json
import os
import re
import urllib.parse
import urllib.request

import pyarrow as pa
import pyarrow.parquet as pq
from playwright.sync_api import expect, sync_playwright

BASE = os.environ["BASE"]
DATA = os.environ["DATA"]
SHOTS = os.environ["SHOT_DIR"]
TOKEN_BASE = os.environ["TOKEN_BASE"]
TOKEN = os.environ["TOKEN"]
HOSTILE = "<img src=x onerror=alert(1)>"
report = {}


def exec_sql(sql, base=BASE, token=None):
    url = base + "/exec?" + urllib.parse.urlencode({"query": sql})
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(req) as r:
        return json.load(r)


def status_of(url, method="GET", body=None):
    req = urllib.request.Request(url, method=method, data=body)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def launch(p):
    return p.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=[
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    )


def new_page(browser, width=1280, height=800):
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=BASE)
    page = context.new_page()
    page.dialogs = []
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    return page


def run_sql(page, sql):
    page.evaluate("t => window.sluiceConsole.setText(t)", sql)
    page.locator(".cm-content").click()
    page.keyboard.press("Control+Enter")


def shot(page, name):
    page.screenshot(path=os.path.join(SHOTS, name + ".png"))


def until(page, js, seconds=30):
    # The page's policy forbids the eval that wait_for_function needs, so
    # the condition is polled with evaluate.
    for _ in range(seconds * 20):
        if page.evaluate(js):
            return
        page.wait_for_timeout(50)
    raise AssertionError("never true: " + js)


def heap_mb(cdp):
    cdp.send("HeapProfiler.collectGarbage")
    return cdp.send("Runtime.getHeapUsage")["usedSize"] / 1e6


with sync_playwright() as p:
    browser = launch(p)
    page = new_page(browser)
    page.goto(BASE + "/")
    expect(page.locator("body")).to_have_attribute("data-ready", "true")

    # Every named control is reachable by its accessible name.
    for role, name in [("button", "Run"), ("button", "Cancel"), ("button", "Chart"),
                       ("button", "Download CSV"), ("button", "Download Parquet"), ("button", "Copy cell")]:
        expect(page.get_by_role(role, name=name, exact=True)).to_have_count(1)
    expect(page.get_by_role("textbox", name="SQL editor")).to_have_count(1)

    # What the page costs to load: bytes of the page and its files, time
    # to DOMContentLoaded.
    report["page_bytes"] = page.evaluate(
        "performance.getEntriesByType('navigation')[0].encodedBodySize + "
        "performance.getEntriesByType('resource').reduce((n, r) => n + r.encodedBodySize, 0)")
    report["page_ms"] = round(page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd"))

    # --- 5. Import: a CSV through the file input, preview, progress, result.
    page.get_by_role("tab", name="Import", exact=True).click()
    page.set_input_files("#import-files", os.path.join(DATA, "readings.csv"))
    card = page.locator('section.import-card[data-file="readings.csv"]')
    expect(card.get_by_role("button", name="Import readings.csv")).to_be_enabled(timeout=60000)
    expect(card.locator(".dialect")).to_contain_text("delimiter")
    expect(card.get_by_role("table", name="First rows of readings.csv")).to_contain_text("2024-01-01T00:00:00")
    expect(card.get_by_label("Designated timestamp")).to_have_value("ts")
    # Edit: the table's name, one column renamed, one type given.
    card.get_by_label("Table name").fill("readings_console")
    card.get_by_label("Name of column temp").fill("temperature")
    card.get_by_label("Type of column station").select_option("SYMBOL")
    card.get_by_role("button", name="Preview readings.csv").click()
    expect(card.get_by_role("table", name="Columns of readings.csv")).to_contain_text("imported as temperature")
    shot(page, "import-preview")
    card.get_by_role("button", name="Import readings.csv").click()
    expect(card).to_have_attribute("data-status", "finished", timeout=120000)
    assert card.get_by_label("Import progress readings.csv").evaluate("e => e.value") == 1
    assert card.get_by_label("Upload progress readings.csv").evaluate("e => e.value === e.max")
    expect(card.get_by_role("status").last).to_contain_text("50000 rows imported, 0 rejected")
    expect(page.locator('#schema-tree li[data-table="readings_console"]')).to_have_count(1)
    shot(page, "import-done")
    cols = {c["column"]: c["type"] for c in
            (dict(zip([k["name"] for k in r["columns"]], row)) for r in [exec_sql("SHOW COLUMNS FROM readings_console")] for row in r["dataset"])}
    assert cols.get("temperature") == "DOUBLE" and cols.get("station") == "SYMBOL", cols
    report["import"] = exec_sql("SELECT count() FROM readings_console")["dataset"][0][0]
    assert report["import"] == 50000

    # A file with a bad row: imported with the row rejected and shown.
    page.set_input_files("#import-files", os.path.join(DATA, "bad.csv"))
    bad = page.locator('section.import-card[data-file="bad.csv"]')
    expect(bad.get_by_role("button", name="Import bad.csv")).to_be_enabled(timeout=60000)
    bad.get_by_role("button", name="Import bad.csv").click()
    expect(bad).to_have_attribute("data-status", "finished", timeout=60000)
    expect(bad.get_by_role("status").last).to_contain_text("19 rows imported, 1 rejected")
    expect(bad.get_by_role("table", name="Rejected rows of bad.csv")).to_contain_text("oops")

    # A gzip file and a Parquet file: both previewed from the whole upload.
    with open(os.path.join(DATA, "readings.csv"), "rb") as f:
        head = b"".join(f.readlines()[:1001])
    gz_path = os.path.join(DATA, "small.csv.gz")
    with gzip.open(gz_path, "wb") as f:
        f.write(head)
    pq_path = os.path.join(DATA, "metrics.parquet")
    pq.write_table(pa.table({
        "ts": pa.array([1704067200000000 + i * 60_000_000 for i in range(500)], pa.timestamp("us")),
        "v": pa.array([i * 0.5 for i in range(500)], pa.float64()),
    }), pq_path)
    page.set_input_files("#import-files", [gz_path, pq_path])
    for name, table, rows in [("small.csv.gz", "small", 1000), ("metrics.parquet", "metrics", 500)]:
        c = page.locator(f'section.import-card[data-file="{name}"]')
        expect(c.get_by_role("button", name="Import " + name)).to_be_enabled(timeout=60000)
        expect(c.get_by_label("Table name")).to_have_value(table)
        c.get_by_role("button", name="Import " + name).click()
        expect(c).to_have_attribute("data-status", "finished", timeout=60000)
        assert exec_sql(f"SELECT count() FROM {table}")["dataset"][0][0] == rows, name
    assert exec_sql("SELECT sum(v) FROM metrics")["dataset"][0][0] == sum(i * 0.5 for i in range(500))

    # Cancel a running import (COPY CANCEL): the table is not created.
    page.set_input_files("#import-files", os.path.join(DATA, "big.csv"))
    big = page.locator('section.import-card[data-file="big.csv"]')
    expect(big.get_by_role("button", name="Import big.csv")).to_be_enabled(timeout=60000)
    big.get_by_role("button", name="Import big.csv").click()
    expect(big).to_have_attribute("data-import-id", re.compile(".+"), timeout=120000)
    big.get_by_role("button", name="Cancel import of big.csv").click()
    expect(big).to_have_attribute("data-status", "cancelled", timeout=120000)
    assert not [t for t in exec_sql("SELECT table_name FROM sys.tables")["dataset"] if t[0] == "big"]
    report["cancelled"] = big.get_attribute("data-import-id")

    # --- 4. Schema browser: details, columns, Copy schema.
    page.get_by_role("tab", name="Query", exact=True).click()
    item = page.locator('#schema-tree li[data-table="readings_console"]')
    expect(item.locator(".meta")).to_contain_text("by DAY")
    expect(item.locator(".meta")).to_contain_text("50000 rows")
    item.get_by_role("button", name="Table readings_console").click()
    expect(item.locator("ul.columns")).to_contain_text("temperature")
    expect(item.locator("ul.columns")).to_contain_text("designated")
    item.get_by_role("button", name="Copy schema of readings_console").click()
    expect(page.locator("#server-status")).to_contain_text("copied")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == exec_sql("SHOW CREATE TABLE readings_console")["dataset"][0][0], copied

    # --- 1/2. A query, its grid, its types, timing and row count.
    run_sql(page, "SELECT value AS x, value * 2 AS y FROM generate_series(1, 1000000) ORDER BY x")
    expect(page.locator("#result-info")).to_contain_text("1,000,000 rows", timeout=60000)
    head = page.locator("#grid .grid-head")
    expect(head).to_contain_text("x")
    expect(head).to_contain_text("LONG")
    first_row = page.locator("#grid .grid-row").first
    expect(first_row.locator(".cell").nth(1)).to_have_text("1")
    expect(first_row.locator(".cell").nth(2)).to_have_text("2")
    shot(page, "query")

    # Scroll the million rows: each view shows the right rows, the page
    # holds a few pages only, and its heap stays bounded.
    cdp = page.context.new_cdp_session(page)
    before = heap_mb(cdp)
    body = page.locator("#grid .grid-body")
    positions = [i / 40 for i in range(41)]
    for f in positions:
        body.evaluate("(b, f) => { b.scrollTop = (b.scrollHeight - b.clientHeight) * f; }", f)
        until(page, "window.sluiceConsole.settled()")
        idx, x = page.evaluate("() => [...document.querySelector('#grid .grid-row').children].slice(0, 2).map(c => c.textContent)")
        assert idx == x, (f, idx, x)
        assert len(page.evaluate("window.sluiceConsole.heldPages()")) <= 6
    last = page.locator("#grid .grid-row").last
    expect(last.locator(".cell.idx")).to_have_text("1000000")
    after = heap_mb(cdp)
    report["heap_mb"] = [round(before, 1), round(after, 1)]
    assert after < 60 and after - before < 25, report["heap_mb"]

    # Copy a cell.
    page.locator("#grid .grid-row").first.locator(".cell").nth(2).click()
    page.get_by_role("button", name="Copy cell").click()
    expect(page.locator("#server-status")).to_contain_text("cell copied")
    assert page.evaluate("navigator.clipboard.readText()") == page.locator("#grid .cell.selected").inner_text()

    # Run the selection only.
    page.evaluate("t => window.sluiceConsole.setText(t)", "SELECT 1 AS a;\nSELECT 2 AS b;")
    page.evaluate("() => window.sluiceConsole.select(15, 29)")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(head.locator(".hcell").nth(1)).to_have_text("bLONG")
    expect(page.locator("#result-info")).to_contain_text("1 rows")

    # Downloads: CSV and Parquet of the result, read back with pyarrow.
    run_sql(page, "SELECT * FROM readings_console")
    expect(page.locator("#result-info")).to_contain_text("50,000 rows", timeout=60000)
    with page.expect_download() as d:
        page.get_by_role("button", name="Download CSV").click()
    text = open(d.value.path(), encoding="utf-8").read()
    assert text.splitlines()[0].split(",")[:2] == ['"ts"', '"station"'] or text.startswith("ts,station"), text[:80]
    assert len(text.splitlines()) == 50001
    with page.expect_download() as d:
        page.get_by_role("button", name="Download Parquet").click()
    assert pq.read_table(d.value.path()).num_rows == 50000

    # The error at its position.
    run_sql(page, "SELECT nosuch FROM readings_console")
    expect(page.locator("#query-error")).to_be_visible()
    expect(page.locator(".cm-lintRange-error")).to_have_count(1)
    assert page.locator(".cm-lintRange-error").inner_text().startswith("nosuch")
    shot(page, "error")

    # Completion: tables and columns from the catalog, functions.
    page.evaluate("t => window.sluiceConsole.setText(t)", "SELECT * FROM readings_c")
    page.locator(".cm-content").click()
    page.keyboard.press("End")
    page.keyboard.press("Control+Space")
    expect(page.locator(".cm-tooltip-autocomplete")).to_contain_text("readings_console")
    page.keyboard.press("Escape")

    # --- 3. A SAMPLE BY result opens as a chart with its points.
    sample = "SELECT ts, avg(temperature) AS temperature, max(wind) AS wind FROM readings_console SAMPLE BY 1h"
    run_sql(page, sample)
    expect(page.locator("#chart-panel")).to_be_visible(timeout=60000)
    expect(page.locator("#chart canvas")).to_have_count(1)
    points = int(page.locator("#chart").get_attribute("data-points"))
    assert points == exec_sql(sample)["count"] > 800, points
    page.get_by_label("Chart type").select_option("bar")
    expect(page.locator("#chart canvas")).to_have_count(1)
    page.get_by_label("Chart type").select_option("line")
    shot(page, "chart")
    report["chart_points"] = points

    # --- Hostile names and values render as text.
    exec_sql(f'CREATE TABLE "{HOSTILE}" (a INT, b VARCHAR)')
    exec_sql(f"INSERT INTO \"{HOSTILE}\" VALUES (1, '<b onmouseover=alert(2)>x</b>')")
    page.get_by_role("button", name="Refresh tables").click()
    hostile = page.get_by_role("button", name="Table " + HOSTILE, exact=True)
    expect(hostile).to_have_text(HOSTILE)
    page.get_by_role("button", name="Open " + HOSTILE, exact=True).click()
    expect(page.locator("#grid .grid-row").first.locator(".cell").nth(2)).to_have_text("<b onmouseover=alert(2)>x</b>")
    run_sql(page, f'SELECT * FROM "{HOSTILE}x"')
    expect(page.locator("#query-error")).to_contain_text(HOSTILE)
    assert page.evaluate("document.querySelectorAll('img, b').length") == 0
    assert not page.dialogs

    # Rename and drop, each confirmed; the tree follows.
    answers = iter(["renamed_hostile", None, None])

    def answer(dialog):
        page.dialogs.append(dialog.message)
        value = next(answers)
        dialog.accept(value) if value else dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("button", name="Rename " + HOSTILE, exact=True).click()
    expect(page.locator('#schema-tree li[data-table="renamed_hostile"]')).to_have_count(1)
    page.get_by_role("button", name="Drop renamed_hostile").click()
    expect(page.locator('#schema-tree li[data-table="renamed_hostile"]')).to_have_count(0)
    assert len(page.dialogs) == 3, page.dialogs
    page.remove_listener("dialog", answer)

    # --- 6. The imports and exports panel.
    exec_sql("COPY readings_console TO 'out' WITH FORMAT parquet")
    page.get_by_role("tab", name="Imports and exports").click()
    imports = page.get_by_role("table", name="Imports")
    expect(imports).to_contain_text("readings_console")
    expect(imports).to_contain_text("finished")
    expect(imports).to_contain_text("cancelled")
    expect(imports).to_contain_text(report["cancelled"])
    expect(page.get_by_role("table", name="Exports")).to_contain_text("readings_console")
    expect(page.get_by_role("table", name="Files loaded")).to_contain_text("readings.csv")
    shot(page, "jobs")

    # Tabs and history survive a reload.
    page.get_by_role("tab", name="Query", exact=True).click()
    page.get_by_role("button", name="New query tab").click()
    page.evaluate("t => window.sluiceConsole.setText(t)", "SELECT 42;")
    tabs_before = page.locator("#editor-tabs [role=tab]").count()
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    assert page.locator("#editor-tabs [role=tab]").count() == tabs_before
    expect(page.locator(".cm-content")).to_have_text("SELECT 42;")
    expect(page.get_by_role("list", name="Query history")).to_contain_text("SAMPLE BY 1h")

    # The page fits a 1920×1080 screen as well.
    big_page = new_page(browser, 1920, 1080)
    big_page.goto(BASE + "/")
    expect(big_page.locator("body")).to_have_attribute("data-ready", "true")
    run_sql(big_page, "SELECT ts, avg(temperature) AS temperature FROM readings_console SAMPLE BY 1h")
    expect(big_page.locator("#chart canvas")).to_have_count(1, timeout=60000)
    assert big_page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    shot(big_page, "chart-1920")
    assert not page.errors and not big_page.errors, page.errors + big_page.errors

    # --- With a token: the page loads, no call works without it.
    for path in ["/exec?query=select%201", "/exp?query=select%201"]:
        assert status_of(TOKEN_BASE + path) == 401, path
    assert status_of(TOKEN_BASE + "/console/api/preview", "POST", b"{}") == 401
    assert status_of(TOKEN_BASE + "/console/api/upload", "POST", b"") == 401
    assert status_of(TOKEN_BASE + "/") == 200
    locked = new_page(browser)
    locked.goto(TOKEN_BASE + "/")
    expect(locked.get_by_role("dialog")).to_be_visible()
    expect(locked.locator("#schema-tree li.table")).to_have_count(0)
    locked.get_by_role("textbox", name="Token").fill("wrong")
    locked.get_by_role("button", name="Sign in").click()
    expect(locked.locator("#server-status")).to_have_text("wrong token")
    expect(locked.get_by_role("dialog")).to_be_visible()
    shot(locked, "token")
    locked.get_by_role("textbox", name="Token").fill(TOKEN)
    locked.get_by_role("button", name="Sign in").click()
    expect(locked.locator("body")).to_have_attribute("data-ready", "true")
    expect(locked.locator('#schema-tree li[data-table="secret_table"]')).to_have_count(1)
    browser.close()

print(json.dumps(report))
