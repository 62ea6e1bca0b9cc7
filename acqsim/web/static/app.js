// The web view's page: loads the setup, follows the event stream, runs the "try it" examples, shows a clicked
// message's fields and the ledger. No framework and no build step: plain ES modules served by acqsim.
import { Diagram } from "./diagram.js";

let lang = "en";
let setup = null;
let diagram = null;
let lastSelected = null;
let following = []; // the transactions of the last example: their hops are explained step by step
const hopsByTransaction = new Map();

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function money(minor) {
  const sign = minor < 0 ? "-" : "";
  const abs = Math.abs(minor);
  return `${sign}${Math.floor(abs / 100).toLocaleString("en")}.${String(abs % 100).padStart(2, "0")}`;
}

function applyLanguage() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  for (const node of document.querySelectorAll("[data-en]")) node.textContent = node.dataset[lang];
  $("lang").textContent = lang === "zh" ? "English" : "中文";
  for (const button of document.querySelectorAll("#scenarios button")) {
    button.textContent = button.dataset[lang === "zh" ? "titleZh" : "titleEn"];
  }
  if (lastSelected) showMessage(lastSelected);
  renderSteps();
}

function showMessage(hop) {
  lastSelected = hop;
  const box = $("message");
  box.replaceChildren();
  box.append(el("p", `${hop.source} → ${hop.target} · ${hop.label} · ${hop.transaction}`, "explain-line"));
  box.append(el("p", lang === "zh" ? hop.explain_zh : hop.explain_en, "explain-line"));
  const message = hop.message || {};
  const table = el("table");
  const row = (number, name, value, meaning) => {
    const tr = el("tr");
    tr.append(el("td", number, "num"), el("td", name), el("td", value, "value"), el("td", meaning ?? "", "meaning"));
    table.append(tr);
  };
  if (message.tpdu) {
    row("", "TPDU", `id ${message.tpdu.id} dst ${message.tpdu.dst} src ${message.tpdu.src}`,
        hop.source === "nac" && hop.target === "frontend" ? "SRC rewritten by the NAC · NAC改写的源地址" : "");
  }
  if (message.header) {
    const h = message.header;
    row("", "header", `${h.app_type} ${h.software_version} ${h.terminal_status} ${h.processing_request} ${h.reserved}`,
        "app type, version, status, processing request, reserved");
  }
  if (message.mti) row("", "MTI", message.mti, "");
  if (message.bitmap) row("", "bitmap", message.bitmap, "");
  for (const view of message.views || []) row(view.number, view.name, view.value, view.meaning);
  if (hop.link === "hsm") {
    row("", "command", message.code, "");
    if (message.error) row("", "error code", message.error, message.error === "00" ? "no error" : "");
    if (hop.note) row("", "note", hop.note, "");
  }
  if (message.undecodable) row("", "undecodable", message.undecodable, "");
  box.append(table);
  const rrn = message.fields?.["37"];
  if (hop.link === "host" && rrn) showPostings(hop, rrn);
}

// A message at the ledger hop: the postings its transaction made (from the ledger's store, read-only).
async function showPostings(hop, rrn) {
  const section = el("div");
  section.id = "postings";
  section.dataset.rrn = rrn;
  $("message").append(section);
  section.append(el("h3", lang === "zh" ? `记账分录 (37=${rrn})` : `Postings (37=${rrn})`));
  let found;
  try {
    const response = await fetch(`/api/postings?rrn=${encodeURIComponent(rrn)}`);
    found = await response.json();
    if (!response.ok) throw new Error(found.error);
  } catch (error) {
    section.append(el("p", String(error), "declined"));
    return;
  }
  if (lastSelected !== hop) return; // another message was clicked meanwhile
  const lines = found.transactions.flatMap((txn) => txn.postings.map((p) => ({ ...p, op: txn.op, status: txn.status })));
  if (lines.length === 0) {
    section.append(el("p", lang === "zh" ? "没有记账（未过账）。" : "Nothing posted.", "hint"));
    return;
  }
  const table = el("table");
  const head = el("tr");
  ["transaction", "account", "kind", "debit / credit", "amount"].forEach((h) => head.append(el("th", h)));
  table.append(head);
  for (const line of lines) {
    const tr = el("tr");
    tr.dataset.side = line.side;
    tr.append(el("td", `${line.op} (${line.status})`), el("td", line.account, "value"), el("td", line.kind),
              el("td", line.side), el("td", money(line.amount)));
    table.append(tr);
  }
  section.append(table);
}

function showResult(result) {
  const box = $("result");
  box.replaceChildren();
  const lines = lang === "zh" ? result.lines_zh : result.lines_en;
  lines.forEach((line, i) => box.append(el("p", line, i === 0 ? "story" : "")));
  const verdict = el("p", `39=${result.response_code}`, `code ${result.approved ? "approved" : "declined"}`);
  verdict.dataset.responseCode = result.response_code;
  verdict.id = "verdict";
  box.append(verdict);
  diagram.highlight(result.transactions);
  box.dataset.transactions = result.transactions.join(" ");
  following = result.transactions;
  renderSteps();
}

function stepLine(hop) {
  const item = el("li", lang === "zh" ? hop.explain_zh : hop.explain_en);
  item.dataset.seq = hop.seq;
  return item;
}

function renderSteps() {
  const list = $("steps");
  list.replaceChildren();
  for (const transaction of following) {
    for (const hop of hopsByTransaction.get(transaction) ?? []) list.append(stepLine(hop));
  }
}

// Each service flushes its trace file on its own (every 50 ms), so a later hop can arrive before an earlier one:
// a transaction's hops are kept, drawn and explained in the order they happened, not the order they arrived.
function onHop(hop) {
  diagram.add(hop);
  if (!hopsByTransaction.has(hop.transaction)) hopsByTransaction.set(hop.transaction, []);
  const hops = hopsByTransaction.get(hop.transaction);
  hops.splice(insertionIndex(hops, hop), 0, hop);
  if (following.includes(hop.transaction)) renderSteps();
}

// Where a hop goes among hops sorted by time (then by arrival): after every hop that did not happen later.
function insertionIndex(sorted, hop) {
  let index = sorted.length;
  while (index > 0 && sorted[index - 1].time > hop.time) index -= 1;
  return index;
}

async function runScenario(name) {
  const buttons = document.querySelectorAll("#scenarios button");
  buttons.forEach((b) => (b.disabled = true));
  $("result").replaceChildren(el("p", lang === "zh" ? "进行中…" : "running…"));
  try {
    const response = await fetch("/api/run", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ scenario: name, terminal: $("terminal").value, card: Number($("card").value) }),
    });
    const body = await response.json();
    if (!response.ok) {
      $("result").replaceChildren(el("p", body.error, "declined"));
    } else {
      showResult(body);
    }
  } catch (error) {
    $("result").replaceChildren(el("p", String(error), "declined"));
  } finally {
    buttons.forEach((b) => (b.disabled = false));
    refreshLedger();
  }
}

async function refreshLedger() {
  const snapshot = await (await fetch("/api/ledger")).json();
  const box = $("ledger");
  box.replaceChildren();
  const cards = el("table");
  cards.id = "ledger-cards";
  const head = el("tr");
  ["card", "status", "balance", "held", "available"].forEach((h) => head.append(el("th", h)));
  cards.append(head);
  for (const card of snapshot.cards) {
    const tr = el("tr");
    tr.append(el("td", card.pan, "value"), el("td", card.status), el("td", money(card.balance)),
              el("td", money(card.held)), el("td", money(card.available)));
    cards.append(tr);
  }
  box.append(cards);
  const others = el("table");
  for (const merchant of snapshot.merchants) {
    const tr = el("tr");
    tr.append(el("td", merchant.name), el("td", merchant.settlement), el("td", money(merchant.balance)));
    others.append(tr);
  }
  for (const account of snapshot.accounts) {
    const tr = el("tr");
    tr.append(el("td", account.name), el("td", account.kind), el("td", money(account.balance)));
    others.append(tr);
  }
  box.append(el("p", `open holds: ${snapshot.holds}`, "hint"), others);
}

function follow() {
  const status = $("stream-status");
  const source = new EventSource("/api/events");
  source.addEventListener("hop", (event) => onHop(JSON.parse(event.data)));
  source.addEventListener("ready", () => {
    status.textContent = "live";
    status.dataset.state = "live";
  });
  source.onerror = () => {
    status.textContent = "reconnecting…";
    status.dataset.state = "down";
  };
}

async function main() {
  setup = await (await fetch("/api/setup")).json();
  diagram = new Diagram($("lanes"), $("diagram"), setup.lanes, showMessage);
  for (const terminal of setup.terminals) $("terminal").append(new Option(`${terminal.id} (app ${terminal.app_type})`, terminal.id));
  for (const card of setup.cards) $("card").append(new Option(`${card.pan} ${card.note || card.status}`, card.index));
  for (const scenario of setup.scenarios) {
    const button = el("button", scenario.title_en);
    button.type = "button";
    button.dataset.scenario = scenario.name;
    button.dataset.titleEn = scenario.title_en;
    button.dataset.titleZh = scenario.title_zh;
    button.title = scenario.story_en;
    button.addEventListener("click", () => runScenario(scenario.name));
    $("scenarios").append(button);
  }
  $("lang").addEventListener("click", () => {
    lang = lang === "en" ? "zh" : "en";
    applyLanguage();
  });
  $("ledger-refresh").addEventListener("click", refreshLedger);
  follow();
  refreshLedger();
}

main();
