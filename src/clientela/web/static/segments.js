// The segment builder: a rule tree edited as nested groups of conditions. The segment page
// keeps it in the form's JSON field, with the number of matching customers shown as it
// changes; the scenario editor mounts one per branch step (window.clientelaRules.mount).
(function () {
  "use strict";

  function parse(text) { try { return JSON.parse(text); } catch (e) { return null; } }
  function isEmpty(node) { return node && Array.isArray(node.all) && node.all.length === 0; }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([key, value]) => {
      if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else if (key === "text") node.textContent = value;
      else node.setAttribute(key, value);
    });
    (children || []).forEach((child) => node.appendChild(child));
    return node;
  }

  // A builder in `root` for `initial` (a rule); `changed(rule)` gets the rule at each edit.
  // Returns `show(rule)`, which replaces the rule being edited.
  function mount(root, vocabulary, initial, changed) {
    const fieldNames = Object.keys(vocabulary.fields);
    // A lone condition is edited inside a group.
    function normal(node) { return node.all || node.any ? node : { all: [node] }; }
    let rule = normal(initial || { all: [] });

    function select(options, value, onchange, label) {
      const node = el("select", { "aria-label": label, onchange: (e) => onchange(e.target.value) },
        options.map((option) => el("option", { value: option, text: option })));
      node.value = value;
      return node;
    }

    function input(value, onchange, label, type) {
      return el("input", { value: value === undefined || value === null ? "" : String(value),
        "aria-label": label, type: type || "text",
        onchange: (e) => onchange(e.target.value) });
    }

    // A value typed as text, read as the field's kind wants it.
    function typed(text, kind, op) {
      if (op === "exists") return text !== "false";
      if (op === "in" || op === "not_in" || op === "between") {
        return text.split(",").map((part) => typed(part.trim(), kind, "eq"));
      }
      if (["number", "money", "days"].includes(kind) || op === "within_last_days") {
        const number = Number(text);
        return text !== "" && !Number.isNaN(number) ? number : text;
      }
      if (kind === "bool") return text === "true";
      if (kind === "json") {
        if (text === "true" || text === "false") return text === "true";
        const number = Number(text);
        return text !== "" && !Number.isNaN(number) ? number : text;
      }
      return text;
    }

    function shown(value) { return Array.isArray(value) ? value.join(", ") : value; }

    const KINDS = { field: "Profile field", event: "Did an event", bought: "Bought",
      tag: "Has tag", rfm_group: "RFM group", segment: "In segment" };
    function kindOf(node) { return Object.keys(KINDS).find((key) => key in node); }
    function fresh(kind) {
      return { field: { field: "orders_count", op: "gte", value: 1 },
        event: { event: "Product Viewed", within_days: 30 },
        bought: { bought: { category: "" } }, tag: { tag: "" },
        rfm_group: { rfm_group: vocabulary.rfm_groups[0] },
        segment: { segment: (vocabulary.segments[0] || { id: 1 }).id } }[kind];
    }

    function fieldRow(node, changed) {
      const name = node.field.startsWith("traits.") ? "traits" : node.field;
      const kind = name === "traits" ? "json" : vocabulary.fields[name].kind;
      const parts = [select([...fieldNames, "traits"], name, (value) => {
        node.field = value === "traits" ? "traits.plan" : value;
        const ops = vocabulary.ops[value === "traits" ? "json" : vocabulary.fields[value].kind];
        if (!ops.includes(node.op)) node.op = ops[0];
        changed(true);
      }, "Field")];
      if (name === "traits") {
        parts.push(input(node.field.slice(7), (value) => { node.field = "traits." + value;
          changed(); }, "Trait key"));
      }
      parts.push(select(vocabulary.ops[kind], node.op, (value) => { node.op = value;
        changed(); }, "Operator"));
      parts.push(input(shown(node.value), (value) => { node.value = typed(value, kind, node.op);
        changed(); }, "Value"));
      return parts;
    }

    function eventRow(node, changed) {
      const count = node.count || { op: "gte", value: 1 };
      const where = (node.where && node.where[0]) || null;
      return [
        input(node.event, (value) => { node.event = value; changed(); }, "Event name"),
        select(["gte", "gt", "eq", "lte", "lt", "ne"], count.op, (value) => {
          node.count = { op: value, value: count.value }; changed(); }, "How many times"),
        input(count.value, (value) => { node.count = { op: count.op, value: Number(value) };
          changed(); }, "Times", "number"),
        el("span", { text: "in the last" }),
        input(node.within_days, (value) => {
          if (value === "") delete node.within_days; else node.within_days = Number(value);
          changed(); }, "Days", "number"),
        el("span", { text: "days, where" }),
        input(where ? where.field : "", (value) => {
          node.where = value ? [{ field: value, op: "eq", value: where ? where.value : "" }] : [];
          changed(); }, "Property"),
        input(where ? shown(where.value) : "", (value) => {
          if (node.where && node.where[0]) node.where[0].value = typed(value, "json", "eq");
          changed(); }, "Property value"),
      ];
    }

    function conditionRow(node, changed) {
      const kind = kindOf(node);
      if (kind === "field") return fieldRow(node, changed);
      if (kind === "event") return eventRow(node, changed);
      if (kind === "tag") {
        return [input(node.tag, (value) => { node.tag = value; changed(); }, "Tag"),
          select(["has", "has not"], node.has === false ? "has not" : "has", (value) => {
            node.has = value === "has"; changed(); }, "Has")];
      }
      if (kind === "rfm_group") {
        return [select(vocabulary.rfm_groups, node.rfm_group, (value) => {
          node.rfm_group = value; changed(); }, "RFM group")];
      }
      if (kind === "segment") {
        return [select(vocabulary.segments.map((s) => String(s.id)), String(node.segment),
          (value) => { node.segment = Number(value); changed(); }, "Segment")];
      }
      const by = Object.keys(node.bought)[0];
      return [select(["product", "category", "brand"], by, (value) => {
        node.bought = { [value]: node.bought[by] }; changed(); }, "Bought what"),
        input(node.bought[by], (value) => { node.bought = { [by]: value }; changed(); },
          "Bought value"),
        el("span", { text: "in the last" }),
        input(node.within_days, (value) => {
          if (value === "") delete node.within_days; else node.within_days = Number(value);
          changed(); }, "Bought within days", "number"),
        el("span", { text: "days" })];
    }

    // One node of the tree; `replace(next)` swaps it in its parent (null removes it).
    function render(node, replace, depth) {
      const changed = (rerender) => { if (rerender) draw(); else sync(); };
      if (node.not) {
        return el("div", { class: "negated" }, [el("span", { class: "muted", text: "not" }),
          render(node.not, (next) => { if (next) node.not = next; else replace(null); draw(); },
            depth)]);
      }
      if (node.all || node.any) {
        const key = node.all ? "all" : "any";
        const items = node[key];
        const box = el("div", { class: "group", "data-depth": depth });
        box.appendChild(el("div", { class: "group-head" }, [
          select(["all", "any"], key, (value) => {
            if (value !== key) { node[value] = items; delete node[key]; }
            draw(); }, "Match"),
          el("span", { text: key === "all" ? "of these are true" : "is true" }),
        ]));
        items.forEach((item, index) => {
          box.appendChild(render(item, (next) => {
            if (next) items[index] = next; else items.splice(index, 1);
            draw(); }, depth + 1));
        });
        const kinds = select(Object.keys(KINDS), "field", () => {}, "Condition kind");
        box.appendChild(el("div", { class: "group-foot" }, [kinds,
          el("button", { type: "button", class: "secondary", text: "Add condition",
            onclick: () => { items.push(fresh(kinds.value)); draw(); } }),
          el("button", { type: "button", class: "secondary", text: "Add group",
            onclick: () => { items.push({ any: [] }); draw(); } }),
          depth ? el("button", { type: "button", class: "secondary", text: "Negate",
            onclick: () => { replace({ not: node }); } }) : el("span"),
          depth ? el("button", { type: "button", class: "secondary", text: "Remove group",
            onclick: () => replace(null) }) : el("span"),
        ]));
        return box;
      }
      const kind = kindOf(node);
      return el("div", { class: "condition" }, [
        el("span", { class: "kind-label", text: KINDS[kind] || "?" }),
        ...conditionRow(node, changed),
        el("button", { type: "button", class: "secondary", text: "Not",
          onclick: () => replace({ not: node }) }),
        el("button", { type: "button", class: "secondary", text: "Remove",
          "aria-label": "Remove condition", onclick: () => replace(null) }),
      ]);
    }

    function draw() {
      root.replaceChildren(render(rule, (next) => { rule = next || { all: [] }; draw(); }, 0));
      sync();
    }

    // Groups still empty (just added) are left out of the rule until they hold something.
    function pruned(node) {
      if (node.not) { const inner = pruned(node.not); return inner ? { not: inner } : null; }
      const key = node.all ? "all" : node.any ? "any" : null;
      if (!key) return node;
      const items = node[key].map(pruned).filter(Boolean);
      return items.length ? { [key]: items } : null;
    }

    function current() { return pruned(rule) || { all: [] }; }

    function sync() { changed(current()); }

    draw();
    return (next) => { rule = normal(next); draw(); };
  }

  window.clientelaRules = { mount, el };

  // --- the segment page --------------------------------------------------------------
  const root = document.getElementById("builder");
  const json = document.getElementById("rule-json");
  const output = document.getElementById("live-count");
  if (!root || !json) return;
  let rule = parse(json.value) || { all: [] };
  const preset = new URLSearchParams(location.search).get("rfm_group");
  if (preset && isEmpty(rule)) rule = { all: [{ rfm_group: preset }] };
  let timer = null;

  async function count(current) {
    output.textContent = "…";
    try {
      const answer = await fetch("/segments/count", { method: "POST",
        headers: { "Content-Type": "application/json" }, credentials: "same-origin",
        body: JSON.stringify({ rule: current }) });
      const body = await answer.json();
      output.textContent = answer.ok ? `${body.count} customers` : body.error;
      output.className = answer.ok ? "count" : "count error";
    } catch (error) {
      output.textContent = "could not count";
    }
  }

  const show = mount(root, JSON.parse(root.dataset.vocabulary), rule, (current) => {
    json.value = JSON.stringify(current);
    clearTimeout(timer);
    timer = setTimeout(() => count(current), 250);
  });
  json.addEventListener("change", () => {
    const parsed = parse(json.value);
    if (parsed) show(parsed);
  });
})();
