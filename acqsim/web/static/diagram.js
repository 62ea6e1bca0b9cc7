// The live sequence diagram: one column per lane, one row per message crossing a hop, grouped by transaction.
// Rows are built with DOM calls and textContent only (values come from the traces, never as HTML).

export class Diagram {
  constructor(lanesElement, diagramElement, lanes, onSelect) {
    this.lanes = lanes;
    this.root = diagramElement;
    this.onSelect = onSelect;
    this.groups = new Map(); // transaction id → {element, start}
    this.selected = null;
    lanesElement.replaceChildren(document.createElement("div"));
    for (const lane of lanes) {
      const header = document.createElement("div");
      header.textContent = LANE_NAMES[lane] ?? lane;
      header.dataset.lane = lane;
      lanesElement.append(header);
    }
  }

  group(transaction, time) {
    let group = this.groups.get(transaction);
    if (!group) {
      const element = document.createElement("div");
      element.className = "group";
      element.dataset.transaction = transaction;
      const title = document.createElement("div");
      title.className = "txn";
      title.textContent = transaction || "(no transaction id)";
      element.append(title);
      this.root.append(element);
      group = { element, start: time };
      this.groups.set(transaction, group);
    }
    return group;
  }

  add(hop) {
    const group = this.group(hop.transaction, hop.time);
    const row = document.createElement("div");
    row.className = "hop";
    row.dataset.seq = hop.seq;
    row.dataset.time = hop.time;
    row.dataset.source = hop.source;
    row.dataset.target = hop.target;
    row.dataset.link = hop.link;
    row.dataset.label = hop.label;
    row.title = hop.explain_en;
    const ms = document.createElement("div");
    ms.className = "ms";
    const track = document.createElement("div");
    track.className = "track";
    const from = this.lanes.indexOf(hop.source), to = this.lanes.indexOf(hop.target);
    const centre = (i) => ((i + 0.5) / this.lanes.length) * 100;
    const arrow = document.createElement("div");
    arrow.className = `arrow ${to > from ? "right" : "left"}`;
    arrow.style.left = `${centre(Math.min(from, to))}%`;
    arrow.style.width = `${Math.abs(centre(to) - centre(from))}%`;
    const label = document.createElement("div");
    label.className = "label";
    label.style.left = `${centre(Math.min(from, to)) + 1}%`;
    label.textContent = hop.label;
    track.append(arrow, label);
    row.append(ms, track);
    row.addEventListener("click", () => this.select(row, hop));
    // rows in the order the hops happened: a service's trace file may reach us after a later hop's
    const later = [...group.element.querySelectorAll(".hop")].find((other) => Number(other.dataset.time) > hop.time);
    group.element.insertBefore(row, later ?? null);
    if (hop.time < group.start) group.start = hop.time;
    for (const other of group.element.querySelectorAll(".hop")) {
      const offset = (Number(other.dataset.time) - group.start) * 1000;
      other.querySelector(".ms").textContent = `+${offset.toFixed(1)} ms`;
    }
    if (this.autoscroll !== false) row.scrollIntoView({ block: "nearest" });
    return row;
  }

  select(row, hop) {
    this.selected?.classList.remove("selected");
    row.classList.add("selected");
    this.selected = row;
    this.onSelect(hop);
  }

  highlight(transactions) {
    for (const [id, group] of this.groups) {
      group.element.querySelector(".txn").classList.toggle("highlight", transactions.includes(id));
    }
  }
}

export const LANE_NAMES = {
  terminal: "terminal 终端",
  nac: "NAC",
  frontend: "front-end 前置",
  hsm: "HSM 加密机",
  ledger: "ledger 账务",
};
