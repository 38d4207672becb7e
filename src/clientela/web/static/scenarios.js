// The scenario editor: the trigger's fields for its type, and the steps as an ordered list
// (add, edit, remove, move up and down) kept in the form's JSON field. A branch's rule is
// edited by the segment builder (segments.js); the steps it skips when the customer does
// not match are indented, and "else" names the step it jumps to, which follows its step
// when steps move.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const form = $("scenario-form");
  const list = $("steps");
  const json = $("steps-json");
  if (!form || !list || !json) return;
  const { mount, el } = window.clientelaRules;
  const editor = JSON.parse(list.dataset.editor);
  const WAITS = { days: "days", hours: "hours", until_hour: "until the hour (UTC)",
    best_hour: "until the customer's best hour (else the shop's), within 24 hours" };
  // Each item: { step, target (a branch's "else": an item, or null for the end), rules }.
  let items = [];
  let problem = form.dataset.error || "";

  // --- the trigger: only its type's fields are shown -----------------------------------
  const triggerType = $("trigger-type");
  function showTrigger() {
    form.querySelectorAll("[data-trigger]").forEach((node) => {
      node.hidden = !node.dataset.trigger.split(" ").includes(triggerType.value);
    });
  }
  triggerType.addEventListener("change", showTrigger);
  showTrigger();

  // --- the steps as JSON -----------------------------------------------------------------
  function parse(text) { try { return JSON.parse(text); } catch (e) { return null; } }

  function load(steps) {
    items = steps.map((step) => ({ step: { ...step }, target: null, rules: null }));
    items.forEach((item) => {
      const to = item.step.else_step;
      if (item.step.type === "branch" && Number.isInteger(to) && to < items.length) {
        item.target = items[to];
      }
    });
  }

  function serialised() {
    return items.map((item) => {
      if (item.step.type !== "branch") return item.step;
      return { ...item.step, else_step: item.target ? items.indexOf(item.target)
        : items.length };
    });
  }

  function sync() { json.value = JSON.stringify(serialised()); }

  // --- editing ------------------------------------------------------------------------
  function fresh(kind) {
    const first = editor.templates[0];
    return { wait: { type: "wait", days: 1 },
      email: first ? { type: "email", template_id: first.id, subject: first.subject }
        : { type: "email", subject: "" },
      branch: { type: "branch", rule: { all: [] } }, tag: { type: "tag", add: "" },
      trait: { type: "trait", key: "", value: "" },
      webhook: { type: "webhook", url: "https://" } }[kind];
  }

  function restructure(change) { change(); problem = ""; draw(); }

  function move(index, by) {
    restructure(() => {
      const [item] = items.splice(index, 1);
      items.splice(index + by, 0, item);
    });
  }

  function remove(index) {
    restructure(() => {
      const [gone] = items.splice(index, 1);
      const next = items[index] || null;  // a jump to the removed step lands on the next
      items.forEach((item) => { if (item.target === gone) item.target = next; });
    });
  }

  // A control with its label: "Step 2: subject" for assistive technology, "subject" shown.
  function field(label, control) {
    return el("label", {}, [el("span", { text: label.replace(/^Step \d+: /, "") }), control]);
  }

  function text(value, set, label, attrs) {
    return field(label, el("input", { value: value === undefined || value === null ? ""
      : String(value), "aria-label": label, ...(attrs || {}),
      oninput: (e) => { set(e.target.value); sync(); } }));
  }

  function choice(options, value, set, label) {
    const node = el("select", { "aria-label": label, onchange: (e) => set(e.target.value) },
      Object.entries(options).map(([key, words]) => el("option", { value: key, text: words })));
    node.value = value === undefined || value === null ? "" : String(value);
    return field(label, node);
  }

  // A trait's value as typed: numbers and true/false are kept as such.
  function typed(value) {
    if (value === "true" || value === "false") return value === "true";
    const number = Number(value);
    return value.trim() !== "" && !Number.isNaN(number) ? number : value;
  }

  function waitFields(step, n) {
    const mode = Object.keys(WAITS).find((key) => key in step) || "days";
    const parts = [choice(WAITS, mode, (value) => {
      Object.keys(WAITS).forEach((key) => delete step[key]);
      step[value] = { days: 1, hours: 1, until_hour: 9, best_hour: true }[value];
      draw(); }, `Step ${n}: wait for`)];
    if (mode !== "best_hour") {
      parts.push(text(step[mode], (value) => { step[mode] = value === "" ? null : Number(value); },
        mode === "until_hour" ? `Step ${n}: hour` : `Step ${n}: ${mode}`,
        { type: "number", min: "0", step: "any" }));
    }
    return parts;
  }

  function emailFields(step, n) {
    const templates = { "": "Choose a template" };
    editor.templates.forEach((t) => { templates[t.id] = t.name; });
    if (step.template_id && !(step.template_id in templates)) {
      templates[step.template_id] = `#${step.template_id} (no such template)`;
    }
    const parts = [choice(templates, step.template_id, (value) => {
      const chosen = editor.templates.find((t) => String(t.id) === value);
      if (value) step.template_id = Number(value); else delete step.template_id;
      if (chosen && !step.subject) step.subject = chosen.subject;
      draw(); }, `Step ${n}: template`)];
    if (step.template_id) {
      parts.push(el("a", { href: `/templates/${step.template_id}`, target: "_blank",
        rel: "noopener", class: "step-link", text: "Open the template" }));
    }
    parts.push(text(step.subject, (value) => { step.subject = value; }, `Step ${n}: subject`,
      { maxlength: "500" }));
    parts.push(text(step.coupon, (value) => {
      if (value.trim()) step.coupon = value.trim(); else delete step.coupon;
    }, `Step ${n}: coupon ({{ coupon }} in the template)`, { maxlength: "100" }));
    return parts;
  }

  function kindOf(step) { return editor.kinds[step.type] || step.type; }

  function branchFields(item, index) {
    const n = index + 1;
    if (!item.rules) {
      item.rules = el("div", { class: "branch-rule" });
      mount(item.rules, editor.rules, item.step.rule, (rule) => {
        item.step.rule = rule;
        sync();
      });
    }
    const targets = { end: "the end (leave the scenario)" };
    items.forEach((other, k) => {
      if (k > index || other === item.target) targets[k] = `step ${k + 1}: ${kindOf(other.step)}`;
    });
    const target = choice(targets, item.target ? items.indexOf(item.target) : "end", (value) => {
      item.target = value === "end" ? null : items[Number(value)];
      draw();
    }, `Step ${n}: else go to`);
    const then = `If the customer matches this rule, go on to step ${n + 1}:`;
    return [el("p", { class: "muted", text: then }), item.rules,
      el("div", { class: "else-arrow" }, [el("span", { text: "↪" }), target])];
  }

  function fieldsOf(item, index) {
    const step = item.step;
    const n = index + 1;
    if (step.type === "wait") return waitFields(step, n);
    if (step.type === "email") return emailFields(step, n);
    if (step.type === "branch") return branchFields(item, index);
    if (step.type === "tag") {
      const how = step.remove !== undefined ? "remove" : "add";
      return [choice({ add: "Add the tag", remove: "Remove the tag" }, how, (value) => {
        const tag = step[how]; delete step[how]; step[value] = tag; draw();
      }, `Step ${n}: tag`), text(step[how], (value) => { step[how] = value; },
        `Step ${n}: tag name`, { maxlength: "255" })];
    }
    if (step.type === "trait") {
      return [text(step.key, (value) => { step.key = value; }, `Step ${n}: trait`,
        { maxlength: "100" }), text(step.value, (value) => { step.value = typed(value); },
        `Step ${n}: value`)];
    }
    if (step.type === "webhook") {
      return [text(step.url, (value) => { step.url = value; }, `Step ${n}: URL`,
        { type: "url", maxlength: "2000" })];
    }
    return [el("p", { class: "error", text: `Unknown step type: ${step.type}` })];
  }

  // How deep each step sits: a branch's "go on" path (up to its else target) is indented.
  function depths() {
    const depth = items.map(() => 0);
    items.forEach((item, index) => {
      if (item.step.type !== "branch") return;
      const end = item.target ? items.indexOf(item.target) : items.length;
      for (let k = index + 1; k < end; k += 1) depth[k] += 1;
    });
    return depth;
  }

  function button(words, label, action, disabled) {
    const node = el("button", { type: "button", class: "secondary", text: words,
      "aria-label": label, onclick: action });
    node.disabled = Boolean(disabled);
    return node;
  }

  function stepItem(item, index, depth) {
    const n = index + 1;
    const from = items.filter((other) => other.target === item)
      .map((other) => items.indexOf(other) + 1);
    const head = el("div", { class: "step-head" }, [
      el("strong", { text: `Step ${n}` }),
      el("span", { class: "kind-label", text: kindOf(item.step) }),
      el("span", { class: "muted", text: from.length ? `↩ else of step ${from.join(", ")}`
        : "" }),
      el("span", { class: "step-buttons" }, [
        button("↑", `Move step ${n} up`, () => move(index, -1), index === 0),
        button("↓", `Move step ${n} down`, () => move(index, 1), index === items.length - 1),
        button("Remove", `Remove step ${n}`, () => remove(index))])]);
    const li = el("li", { class: "step", "data-type": item.step.type, style: `--depth:${depth}` },
      [head, el("div", { class: "step-fields" }, fieldsOf(item, index))]);
    const wrong = problem.match(/^steps\.(\d+)[.:]/);
    if (wrong && Number(wrong[1]) === index) {
      li.classList.add("has-error");
      li.appendChild(el("p", { class: "error field-error", text: problem }));
    }
    return li;
  }

  const adder = el("select", { id: "step-kind", "aria-label": "Kind of step" },
    Object.entries(editor.kinds).map(([key, words]) => el("option", { value: key, text: words })));
  list.after(el("p", { class: "step-add" }, [adder, button("Add step", "Add step", () =>
    restructure(() => items.push({ step: fresh(adder.value), target: null, rules: null })))]));

  function draw() {
    const depth = depths();
    list.replaceChildren(...items.map((item, index) => stepItem(item, index, depth[index])));
    if (!items.length) list.appendChild(el("li", { class: "muted", text: "No steps yet." }));
    sync();
  }

  const saved = parse(json.value);
  if (Array.isArray(saved)) {
    load(saved);
    draw();
  } else {
    $("steps-json-box").open = true;  // typed by hand and not JSON: shown as it is
  }
  json.addEventListener("change", () => {
    const parsed = parse(json.value);
    if (Array.isArray(parsed)) { load(parsed); draw(); }
  });
  form.addEventListener("submit", () => { if (Array.isArray(parse(json.value))) sync(); });
})();
