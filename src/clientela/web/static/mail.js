// The e-mail editors: the message previewed as it changes (for a chosen customer or the
// sample one), the campaign's audience counted as its segments change, a test send, and
// the browser's time zone sent along with a date and time to send at.
(function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const campaignForm = $("campaign-form");
  const templateForm = $("template-form");
  const timers = {};

  function later(name, work, delay) {
    clearTimeout(timers[name]);
    timers[name] = setTimeout(work, delay === undefined ? 300 : delay);
  }

  async function post(url, body) {
    const answer = await fetch(url, { method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let json = {};
    try { json = await answer.json(); } catch (error) { json = {}; }
    return { ok: answer.ok, body: json,
      error: json.error || json.message || `the server answered ${answer.status}` };
  }

  function selected(select) {
    return select ? Array.from(select.selectedOptions).map((option) => Number(option.value)) : [];
  }

  // --- the preview -------------------------------------------------------------------
  const frame = $("preview-frame");
  const subjectOut = $("preview-subject");
  const previewError = $("preview-error");
  const customer = $("preview-customer");

  function previewRequest() {
    const who = customer ? customer.value.trim() : "";
    if (campaignForm) {
      const template = $("campaign-template").value;
      if (!template) return null;
      return { template_id: Number(template), subject: $("campaign-subject").value,
        customer: who };
    }
    const text = $("template-text").value;
    return { subject: $("template-subject").value, html: $("template-html").value,
      text: text.trim() ? text : null, customer: who };
  }

  function showFieldError(field, message) {
    if (!templateForm) return;
    ["subject", "html", "text"].forEach((name) => {
      const span = $(`${name}-error`);
      if (!span) return;
      span.hidden = name !== field;
      span.textContent = name === field ? message : "";
    });
  }

  async function preview() {
    const request = previewRequest();
    if (!request) {
      subjectOut.textContent = "";
      frame.srcdoc = "<p style='font-family:sans-serif;color:#6b7385'>Choose a template to see the message.</p>";
      return;
    }
    try {
      const answer = await post("/mail/preview", request);
      previewError.hidden = answer.ok;
      previewError.textContent = answer.ok ? "" : answer.error;
      showFieldError(answer.ok ? null : answer.body.field, answer.error);
      if (!answer.ok) return;
      subjectOut.textContent = answer.body.subject;
      frame.srcdoc = answer.body.html;
    } catch (error) {
      previewError.hidden = false;
      previewError.textContent = "could not preview";
    }
  }

  // --- the audience ------------------------------------------------------------------
  const count = $("audience-count");

  async function countAudience() {
    count.textContent = "…";
    try {
      const answer = await post("/campaigns/audience", {
        segment_ids: selected($("campaign-segments")),
        exclude_segment_ids: selected($("campaign-exclude")) });
      count.textContent = answer.ok ? `${answer.body.count} customers` : answer.error;
      count.className = answer.ok ? "count" : "count error";
    } catch (error) {
      count.textContent = "could not count";
    }
  }

  // --- a test send from the editor ----------------------------------------------------
  async function sendTest() {
    const result = $("test-result");
    const request = previewRequest();
    if (!request) { result.textContent = "Choose a template first."; return; }
    result.textContent = "…";
    const answer = await post("/campaigns/test", { template_id: request.template_id,
      subject: request.subject, customer: request.customer, email: $("test-email").value });
    result.textContent = answer.ok ? `Sent: ${answer.body.message_id}` : answer.error;
    result.className = answer.ok ? "" : "error";
  }

  // --- the time zone of a date and time to send at -------------------------------------
  const sendAt = $("campaign-send-at");
  const offset = $("campaign-tz-offset");
  function keepOffset() {
    if (!sendAt || !offset) return;
    const when = sendAt.value ? new Date(sendAt.value) : new Date();
    offset.value = String(Number.isNaN(when.getTime()) ? new Date().getTimezoneOffset()
      : when.getTimezoneOffset());
  }
  if (sendAt) {
    sendAt.addEventListener("change", keepOffset);
    sendAt.form.addEventListener("submit", keepOffset);
    keepOffset();
  }

  if (campaignForm) {
    ["campaign-segments", "campaign-exclude"].forEach((id) =>
      $(id).addEventListener("change", () => later("count", countAudience, 150)));
    $("campaign-template").addEventListener("change", () => later("preview", preview, 0));
    $("campaign-subject").addEventListener("input", () => later("preview", preview));
    $("send-test").addEventListener("click", sendTest);
    countAudience();
  }
  if (templateForm) {
    ["template-subject", "template-html", "template-text"].forEach((id) =>
      $(id).addEventListener("input", () => later("preview", preview, 400)));
  }
  if (customer) {
    customer.addEventListener("input", () => later("preview", preview, 500));
    preview();
  }
})();
