// Parts of a page that change by themselves while a sale is on its way to the meter (a receipt's delivery and
// purchase count, an account's delivery states and balances) are marked data-live, with an id; while any of them
// is marked data-live-pending, the page is fetched again every moment and those parts take the fresh content. No
// reload: a form being filled in keeps its text, and the receipt can be printed at any time. It gives up after a
// few minutes (a bridge that is offline may keep a delivery pending for hours). A file rather than an inline
// script: the CSP allows scripts from 'self' only.
(() => {
  const PERIOD_MS = 1500;
  const GIVE_UP_MS = 3 * 60 * 1000;
  const started = Date.now();
  const pending = () => document.querySelector("[data-live-pending]") !== null;

  function take(part, fresh) {
    part.replaceChildren(...Array.from(fresh.childNodes, (node) => document.importNode(node, true)));
    part.className = fresh.className;
    part.toggleAttribute("data-live-pending", fresh.hasAttribute("data-live-pending"));
  }

  async function refresh() {
    const response = await fetch(window.location.href, {credentials: "same-origin", cache: "no-store"});
    if (!response.ok || response.redirected) {
      return false; // logged out, or an address that only answers a form: stop asking
    }
    const page = new DOMParser().parseFromString(await response.text(), "text/html");
    for (const part of document.querySelectorAll("[data-live][id]")) {
      const fresh = page.getElementById(part.id);
      if (fresh !== null) {
        take(part, fresh);
      }
    }
    return true;
  }

  async function tick() {
    if (!pending() || Date.now() - started > GIVE_UP_MS) {
      return;
    }
    let again = true;
    try {
      again = await refresh();
    } catch (error) {
      again = true; // the network blinked: try at the next moment
    }
    if (again) {
      window.setTimeout(tick, PERIOD_MS);
    }
  }

  if (pending()) {
    window.setTimeout(tick, PERIOD_MS);
  }
})();
