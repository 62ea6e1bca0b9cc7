"""The web view: trace records become hops (sans-IO), and a real browser (the system's Chromium, driven by
Playwright) loads the page served by ``acqsim web``, runs a purchase from the "try it" panel, and sees its
five hops and an approved answer."""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acqkit.traceflush import TRACE_FLUSH_S
from acqsim.web.hops import TraceFollower, lanes_of, to_hop, transaction_of
from acqsim.web.server import WebBindError, bind, bind_failure
from wire.trace import read_trace

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY_TIMEOUT_S = 60.0
#: Playwright waits for page state up to this long (it polls the DOM; no sleeps here).
PAGE_TIMEOUT_MS = 20_000


def _record(service: str, direction: str, link: str, **message: Any) -> dict[str, Any]:
    return {
        "time": "2026-12-04T05:00:00.000001+00:00",
        "service": service,
        "direction": direction,
        "link": link,
        "peer": "x",
        "correlation_id": None,
        "note": None,
        "message": message,
    }


def test_each_message_is_drawn_once_from_its_sender() -> None:
    from_terminal = _record("nac", "in", "pos", tpdu={"dst": "0003", "src": "0000"}, fields={"41": "1", "11": "7"})
    assert lanes_of(from_terminal) == ("terminal", "nac")
    assert transaction_of(from_terminal) == "T1-7"
    assert lanes_of(_record("nac", "out", "pos", tpdu={"dst": "0003", "src": "0002"})) == ("nac", "frontend")
    assert lanes_of(_record("nac", "in", "pos", tpdu={"dst": "0002", "src": "0003"})) is None  # front-end's copy
    assert lanes_of(_record("nac", "out", "pos", tpdu={"dst": "0000", "src": "0003"})) == ("nac", "terminal")
    assert lanes_of(_record("frontend", "out", "hsm", code="M8")) == ("frontend", "hsm")
    assert lanes_of(_record("frontend", "in", "hsm", code="M9")) == ("hsm", "frontend")
    assert lanes_of(_record("frontend", "in", "pos")) is None
    assert lanes_of(_record("frontend", "in", "host")) is None  # the ledger's own record draws the answer
    assert lanes_of(_record("ledger", "out", "host")) == ("ledger", "frontend")
    assert lanes_of(_record("hsm", "in", "hsm")) is None


def test_a_rule_hit_is_named_on_its_hop() -> None:
    record = _record("nac", "in", "pos", tpdu={"dst": "0003", "src": "0000"}, mti="0200", fields={"41": "1"})
    record["note"] = "rule 1 (big purchases declined): answer"
    hop = to_hop(1, record)
    assert hop is not None
    assert hop.explain_en.endswith("Scripted: rule 1 (big purchases declined): answer.")
    assert "规则" in hop.explain_zh


def test_follower_reads_whole_lines_only(tmp_path: Path) -> None:
    follower = TraceFollower(tmp_path)
    assert follower.poll() == []  # no files yet
    record = _record("frontend", "out", "hsm", code="M8", header="0001", error=None, length=6)
    record["correlation_id"] = "T10000001-000005-1204"
    line = json.dumps(record)
    path = tmp_path / "frontend.jsonl"
    path.write_text(line[:20])
    assert follower.poll() == []
    with path.open("a") as file:
        file.write(line[20:] + "\n")
    hops = follower.poll()
    assert [(h.source, h.target, h.transaction, h.label, h.seq) for h in hops] == [
        ("frontend", "hsm", "T10000001-000005", "M8", 1)
    ]
    assert "verify the request's MAC" in hops[0].explain_en and "MAC" in hops[0].explain_zh
    assert follower.poll() == []


def test_a_taken_port_is_one_clear_error_even_inside_task_groups() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(WebBindError) as caught:
            bind("127.0.0.1", port)
    assert f"cannot listen on 127.0.0.1:{port}" in str(caught.value)
    wrapped = BaseExceptionGroup("task group", [ValueError("other"), ExceptionGroup("inner", [caught.value])])
    assert bind_failure(wrapped) is caught.value
    assert bind_failure(ValueError("unrelated")) is None


def _read_ready(process: subprocess.Popen[str]) -> int:
    """The port from ``READY web HOST:PORT`` on the child's output, within ``READY_TIMEOUT_S``."""
    assert process.stdout is not None
    selector = selectors.DefaultSelector()
    selector.register(process.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + READY_TIMEOUT_S
    seen: list[str] = []
    while (left := deadline - time.monotonic()) > 0:
        if not selector.select(left):
            break
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("READY web "):
            return int(line.rsplit(":", 1)[1])
    raise AssertionError("acqsim web did not say READY:\n" + "".join(seen))


@pytest.fixture
def web_url(tmp_path: Path) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "acqsim", "web", "--port", "0", "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        yield f"http://127.0.0.1:{_read_ready(process)}/"
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None
        process.stdout.close()


def _chromium() -> Path:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed: .ci/run installs Debian's package chromium")
        pytest.skip("Chromium is not installed at /usr/bin/chromium (apt-get install chromium)")
    return CHROMIUM


#: Three hops of one transaction handed to the diagram latest first: the rows it draws (seq, offset), in page order.
_OUT_OF_ORDER_HOPS = """async () => {
  const { Diagram } = await import("/static/diagram.js");
  const root = document.createElement("div");
  const lanes = ["terminal", "nac", "frontend", "hsm", "ledger"];
  const diagram = new Diagram(document.createElement("div"), root, lanes, () => {});
  const hop = (seq, time, source, target) =>
    ({ seq, time, source, target, link: "pos", transaction: "T1-1", label: "x", explain_en: "" });
  diagram.add(hop(1, 10.003, "ledger", "frontend"));
  diagram.add(hop(2, 10.0, "terminal", "nac"));
  diagram.add(hop(3, 10.001, "nac", "frontend"));
  return [...root.querySelectorAll(".hop")].map((row) => [row.dataset.seq, row.querySelector(".ms").textContent]);
}"""


def test_a_purchase_run_from_the_page_shows_five_hops_and_an_approval(web_url: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(_chromium()), headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 900})
            page.set_default_timeout(PAGE_TIMEOUT_MS)
            page.goto(web_url)
            expect(page.locator("#stream-status")).to_have_text("live")
            expect(page.locator("#lanes [data-lane]")).to_have_count(5)

            page.locator('#scenarios button[data-scenario="purchase"]').click()
            expect(page.locator("#verdict")).to_have_attribute("data-response-code", "00")
            transaction = page.locator("#result").get_attribute("data-transactions")
            assert transaction and transaction.startswith("T10000001-")
            group = page.locator(f'.group[data-transaction="{transaction}"]')
            # terminal → NAC → front-end → HSM and ledger and back: every lane is crossed
            for source, target in [
                ("terminal", "nac"),
                ("nac", "frontend"),
                ("frontend", "hsm"),
                ("hsm", "frontend"),
                ("frontend", "ledger"),
                ("ledger", "frontend"),
                ("frontend", "nac"),
                ("nac", "terminal"),
            ]:
                expect(group.locator(f'.hop[data-source="{source}"][data-target="{target}"]').first).to_be_visible()
            answer = group.locator('.hop[data-source="nac"][data-target="terminal"]')
            expect(answer).to_have_attribute("data-label", "0210 39=00")

            # drawn in the order they happened, whatever order the services' trace files reached the page in
            times = [float(t) for t in group.locator(".hop").evaluate_all("rows => rows.map(r => r.dataset.time)")]
            assert times == sorted(times)
            assert page.evaluate(_OUT_OF_ORDER_HOPS) == [["2", "+0.0 ms"], ["3", "+1.0 ms"], ["1", "+3.0 ms"]]

            # each step explained in one line, in English, then in Chinese
            expect(page.locator("#steps li")).to_have_count(group.locator(".hop").count())  # one line per hop
            expect(page.locator("#steps li").first).to_contain_text("The terminal sends 0200")
            page.locator("#lang").click()
            expect(page.locator("#steps li").first).to_contain_text("终端发出0200请求")
            page.locator("#lang").click()

            answer.click()
            expect(page.locator("#message")).to_contain_text("Response Code")
            expect(page.locator("#message")).to_contain_text("approved")
            expect(page.locator("#message")).to_contain_text("620000******0003")  # masked card number
            expect(page.locator("#ledger-cards")).to_contain_text("620000******0003")

            # the ledger's answer: the postings the purchase made, from the ledger's store
            group.locator('.hop[data-source="ledger"][data-target="frontend"]').first.click()
            postings = page.locator("#postings")
            debit = postings.locator('tr[data-side="debit"]')
            expect(debit).to_have_count(1)
            expect(debit).to_contain_text("620000******0003")  # the card's account, masked
            expect(debit).to_contain_text("cardholder")
            expect(postings.locator('tr[data-side="credit"]').first).to_be_visible()
            expect(postings).to_contain_text("purchase")
            assert "6200001000000003" not in page.content()
            if shot := os.environ.get("ACQSIM_WEB_SCREENSHOT"):
                page.screenshot(path=shot)
        finally:
            browser.close()


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _traced_rrns(path: Path) -> set[str]:
    """The RRNs of the purchases in the ledger's trace, once there are some (it is written in batches, within
    ``TRACE_FLUSH_S`` of the answer: read again at that pace, up to ``READY_TIMEOUT_S``)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        traced = read_trace(path) if path.exists() else []
        rrns = {r["message"]["fields"]["37"] for r in traced if r["message"].get("mti") == "0200"}
        if rrns or time.monotonic() > deadline:
            return rrns
        time.sleep(TRACE_FLUSH_S)


def test_the_postings_of_a_purchase_balance_and_name_the_card_masked(web_url: str, tmp_path: Path) -> None:
    run = urllib.request.Request(
        web_url + "api/run",
        data=json.dumps({"scenario": "purchase", "terminal": "10000001", "card": 0}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(run, timeout=30) as response:
        assert json.loads(response.read())["response_code"] == "00"
    [rrn] = _traced_rrns(tmp_path / "data" / "traces" / "ledger.jsonl")

    status, found = _get(f"{web_url}api/postings?rrn={rrn}")
    assert status == 200
    [purchase] = found["transactions"]
    assert purchase["op"] == "purchase"
    sides = {side: sum(p["amount"] for p in purchase["postings"] if p["side"] == side) for side in ("debit", "credit")}
    assert sides["debit"] == sides["credit"] > 0  # double entry: every debit has its credit
    [card] = [p for p in purchase["postings"] if p["kind"] == "cardholder"]
    assert card["side"] == "debit" and card["account"] == "620000******0003"

    assert _get(f"{web_url}api/postings?rrn=000000000000")[1]["transactions"] == []
    assert _get(f"{web_url}api/postings?rrn=x")[0] == 400
