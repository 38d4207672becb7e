/*! clientela.js: the first-party tag a shop pastes into its pages. No dependencies.
 *
 * <script src="https://CLIENTELA_HOST/js/clientela.js" data-write-key="cw_..." async></script>
 *
 * Keeps an anonymous id in a first-party cookie, records a page view on load (with the
 * referrer and UTM campaign fields), and sends Segment-compatible calls in batches, with
 * sendBeacon when the page is hidden so that nothing queued is lost on navigation.
 */
(function (window, document) {
  "use strict";
  if (window.clientela && window.clientela.loaded) return;
  var tag = document.currentScript;
  var writeKey = tag && tag.getAttribute("data-write-key");
  var host = (tag && tag.getAttribute("data-host")) || (tag ? new URL(tag.src).origin : "");
  var ANONYMOUS = "clientela_aid", USER = "clientela_uid", TWO_YEARS = 63072000;
  var queue = [], timer = null;

  function uuid() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx".replace(/[xy]/g, function (c) {
      var r = (Math.random() * 16) | 0;
      return (c === "x" ? r : (r & 3) | 8).toString(16);
    });
  }
  function readCookie(name) {
    var found = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return found ? decodeURIComponent(found[1]) : null;
  }
  function writeCookie(name, value, seconds) {
    document.cookie = name + "=" + encodeURIComponent(value) + "; path=/; max-age=" +
      seconds + "; SameSite=Lax" + (location.protocol === "https:" ? "; Secure" : "");
  }
  var anonymousId = readCookie(ANONYMOUS) || uuid();
  writeCookie(ANONYMOUS, anonymousId, TWO_YEARS);
  var userId = readCookie(USER);

  function campaign() {
    var params = new URLSearchParams(location.search), found = {}, any = false;
    var names = { utm_source: "source", utm_medium: "medium", utm_campaign: "name",
                  utm_term: "term", utm_content: "content" };
    Object.keys(names).forEach(function (key) {
      if (params.get(key)) { found[names[key]] = params.get(key); any = true; }
    });
    return any ? found : undefined;
  }
  function context() {
    return {
      library: { name: "clientela.js", version: "1" },
      locale: navigator.language,
      userAgent: navigator.userAgent,
      page: { path: location.pathname, referrer: document.referrer, search: location.search,
              title: document.title, url: location.href },
      campaign: campaign()
    };
  }
  function send(beacon) {
    if (timer) { clearTimeout(timer); timer = null; }
    if (!queue.length || !writeKey) return;
    var body = JSON.stringify({ batch: queue.splice(0, queue.length), writeKey: writeKey,
                                sentAt: new Date().toISOString() });
    var url = host + "/v1/batch";
    // text/plain keeps the request "simple": no CORS preflight, and sendBeacon allows it.
    if (beacon && navigator.sendBeacon &&
        navigator.sendBeacon(url, new Blob([body], { type: "text/plain" }))) return;
    fetch(url, { method: "POST", body: body, keepalive: true,
                 headers: { "Content-Type": "text/plain" } }).catch(function () {});
  }
  function enqueue(type, fields) {
    var call = { type: type, anonymousId: anonymousId, messageId: uuid(),
                 timestamp: new Date().toISOString(), context: context() };
    if (userId) call.userId = userId;
    Object.keys(fields).forEach(function (key) { call[key] = fields[key]; });
    queue.push(call);
    if (queue.length >= 20) send(false);
    else if (!timer) timer = setTimeout(function () { send(false); }, 1000);
  }
  function product(item) {
    return { product_id: item.product_id || item.id, sku: item.sku, name: item.name,
             category: item.category, brand: item.brand, price: item.price,
             quantity: item.quantity || 1, url: item.url, image_url: item.image_url };
  }

  var api = {
    loaded: true,
    anonymousId: function () { return anonymousId; },
    page: function (name, properties) {
      enqueue("page", { name: name || document.title, properties: properties || {} });
    },
    track: function (event, properties) {
      enqueue("track", { event: event, properties: properties || {} });
    },
    identify: function (id, traits) {
      if (id) { userId = String(id); writeCookie(USER, userId, TWO_YEARS); }
      enqueue("identify", { traits: traits || {} });
    },
    reset: function () {
      send(false);
      userId = null; writeCookie(USER, "", 0);
      anonymousId = uuid(); writeCookie(ANONYMOUS, anonymousId, TWO_YEARS);
    },
    productViewed: function (item) { api.track("Product Viewed", product(item)); },
    productAdded: function (item) { api.track("Product Added", product(item)); },
    productRemoved: function (item) { api.track("Product Removed", product(item)); },
    cartViewed: function (cart) { api.track("Cart Viewed", cart); },
    checkoutStarted: function (order) { api.track("Checkout Started", order); },
    orderCompleted: function (order) { api.track("Order Completed", order); },
    flush: function () { send(false); }
  };
  window.clientela = api;
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") send(true);
  });
  window.addEventListener("pagehide", function () { send(true); });
  if (!tag || tag.getAttribute("data-auto-page") !== "false") api.page();
})(window, document);
