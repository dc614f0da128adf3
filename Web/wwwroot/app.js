// The few things Blazor Server cannot do from .NET: the clipboard, probing a preview from the browser, scrolling.
window.sentryvibe = {
  async copy(text) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // Plain http on a non-localhost host has no clipboard API: the old way still works there.
      const area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.style.position = "fixed";
      area.style.opacity = "0";
      document.body.appendChild(area);
      area.select();
      let ok = false;
      try { ok = document.execCommand("copy"); } catch { ok = false; }
      area.remove();
      return ok;
    }
  },
  // Whether this browser reaches the preview at all (an opaque answer is enough: the frame loads the same way).
  async probe(url, timeoutMs) {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), timeoutMs || 5000);
    try {
      await fetch(url, { mode: "no-cors", cache: "no-store", signal: abort.signal });
      return true;
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  },
  scrollToEnd(element) {
    if (element) element.scrollTop = element.scrollHeight;
  },
  isNearEnd(element) {
    return !element || element.scrollHeight - element.scrollTop - element.clientHeight < 120;
  },
  focus(element) {
    if (element) element.focus();
  },
};
