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

// Passkeys (WebAuthn, docs/accounts.md) on the static sign-in and account pages: a button with data-passkey="get" or
// "create" asks the server for options, lets the browser's authenticator answer, puts the answer in the form's
// data-passkey-credential field and posts the form, where Identity checks it.
(() => {
  const toBytes = (s) => Uint8Array.from(atob(s.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(s.length / 4) * 4, "=")), (c) => c.charCodeAt(0));
  const toText = (buffer) => btoa(String.fromCharCode(...new Uint8Array(buffer))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const descriptors = (list) => (list || []).map((c) => ({ ...c, id: toBytes(c.id) }));

  // Browsers without the JSON helpers of WebAuthn level 3 get the same conversion by hand.
  function creationOptions(json) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) return PublicKeyCredential.parseCreationOptionsFromJSON(json);
    return { ...json, challenge: toBytes(json.challenge), user: { ...json.user, id: toBytes(json.user.id) }, excludeCredentials: descriptors(json.excludeCredentials) };
  }
  function requestOptions(json) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) return PublicKeyCredential.parseRequestOptionsFromJSON(json);
    return { ...json, challenge: toBytes(json.challenge), allowCredentials: descriptors(json.allowCredentials) };
  }
  function credentialJson(credential) {
    if (typeof credential.toJSON === "function") return JSON.stringify(credential);
    const r = credential.response;
    const response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) response.userHandle = toText(r.userHandle);
    }
    return JSON.stringify({
      id: credential.id, rawId: toText(credential.rawId), type: credential.type, response,
      authenticatorAttachment: credential.authenticatorAttachment, clientExtensionResults: credential.getClientExtensionResults(),
    });
  }

  function explain(error) {
    if (error && error.name === "NotAllowedError") return "The passkey prompt was closed or timed out. Try again when you are ready.";
    if (error && error.name === "InvalidStateError") return "This device already holds a passkey for your account.";
    if (error && error.name === "SecurityError") return "Passkeys need this site on https (or localhost).";
    return "The passkey did not work: " + (error && error.message ? error.message : "unknown error") + ".";
  }

  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button[data-passkey]");
    if (!button) return;
    event.preventDefault();
    const form = button.closest("form");
    const say = (text) => {
      const box = form.querySelector("[data-passkey-error]");
      if (box) { box.textContent = text; box.hidden = !text; }
    };
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser does not support passkeys.");
      return;
    }
    const create = button.dataset.passkey === "create";
    button.disabled = true;
    say("");
    try {
      const response = await fetch(button.dataset.options, { method: "POST", credentials: "same-origin" });
      if (!response.ok) throw new Error("the server could not start it (" + response.status + ")");
      const options = await response.json();
      const credential = create
        ? await navigator.credentials.create({ publicKey: creationOptions(options) })
        : await navigator.credentials.get({ publicKey: requestOptions(options) });
      form.querySelector("[data-passkey-credential]").value = credentialJson(credential);
      form.submit();
    } catch (error) {
      say(explain(error));
      button.disabled = false;
    }
  });

  // Copy buttons on static pages: data-copy="#id" copies that element's text (or an input's value).
  document.addEventListener("click", async (event) => {
    const button = event.target.closest && event.target.closest("button[data-copy]");
    if (!button) return;
    const source = document.querySelector(button.dataset.copy);
    if (!source) return;
    const ok = await window.sentryvibe.copy("value" in source ? source.value : source.textContent.trim());
    const label = button.textContent;
    button.textContent = ok ? "Copied" : "Copy failed";
    setTimeout(() => { button.textContent = label; }, 2000);
  });
})();

// After a form on a static page answers (a new token, an invitation link, a notice), bring the answer into view:
// Blazor's enhanced form post keeps the scroll position, which can leave it below the fold.
(() => {
  const reveal = () => {
    const answer = document.querySelector("[data-reveal]");
    if (answer) answer.scrollIntoView({ block: "nearest", behavior: "smooth" });
  };
  document.addEventListener("DOMContentLoaded", () => {
    reveal();
    if (window.Blazor && typeof window.Blazor.addEventListener === "function") window.Blazor.addEventListener("enhancedload", reveal);
  });
})();
