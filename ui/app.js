// Passkey Companion UI. Static, no framework, no WebAuthn, never sees a token: every action is a Tauri command
// (src-tauri/src/commands.rs) and every failure is a `{code, message}` whose code is one of ERROR_CODES below.
// The UI branches on codes only, never on message text.
"use strict";

// Mirrors `ErrorCode` in src-tauri/src/error.rs (a unit test there checks this list).
const ERROR_CODES = [
  "not_configured",
  "signed_out",
  "in_progress",
  "cancelled",
  "timed_out",
  "denied",
  "browser",
  "keyring",
  "step_up_required",
  "last_authenticator",
  "busy",
  "not_found",
  "invalid_name",
  "not_offered",
  "network",
  "failed",
];

const MAX_NAME = 20;

const PASSKEY_TYPES = ["webauthn-roaming", "webauthn-platform", "passkey"];
const TYPE_LABELS = {
  "webauthn-roaming": "Security key",
  "webauthn-platform": "This computer",
  passkey: "Passkey",
  totp: "Authenticator app",
  "push-notification": "Push notification",
  phone: "Text message or call",
  sms: "Text message",
  email: "Email code",
  "recovery-code": "Recovery code",
  otp: "One-time code",
};
const KIND_LABELS = {
  "webauthn-platform": "this computer",
  "webauthn-roaming": "security key",
};

const $ = (id) => document.getElementById(id);

// ---- Commands --------------------------------------------------------------------------------------------------

function tauriInvoke() {
  const tauri = window.__TAURI__;
  return tauri && tauri.core && tauri.core.invoke;
}

async function call(command, args) {
  const invoke = tauriInvoke();
  if (!invoke) {
    throw { code: "failed", message: "This page runs only inside the Passkey Companion app." };
  }
  try {
    return await invoke(command, args || {});
  } catch (raw) {
    throw normalizeError(raw);
  }
}

function normalizeError(raw) {
  if (raw && typeof raw === "object" && ERROR_CODES.includes(raw.code)) {
    return raw;
  }
  return { code: "failed", message: typeof raw === "string" ? raw : "Something went wrong." };
}

// ---- State -----------------------------------------------------------------------------------------------------

const state = {
  config: null,
  status: null,
  methods: [],
  highlight: null,
  editing: null,
  removing: null,
  busyTimer: null,
  lastRemoved: null,
};

// ---- Views -----------------------------------------------------------------------------------------------------

function show(view) {
  for (const id of ["view-loading", "view-signed-out", "view-problem", "view-signed-in"]) {
    $(id).hidden = id !== view;
  }
  $("topbar").hidden = view !== "view-signed-in";
  document.body.dataset.view = view.replace("view-", "");
  if (view === "view-signed-out" || view === "view-problem") {
    reportFirstPaint(view.replace("view-", ""));
  }
}

// The first finished view (the list, signed out, a problem) is reported to the app two animation frames after it
// was drawn, i.e. once it is on screen: the app logs "first view painted" and `cargo xtask bench app` times
// start-up by it (src-tauri/src/webview.rs). WebKitGTK only; elsewhere nothing listens and this does nothing.
let firstPaintReported = false;
function reportFirstPaint(view) {
  const handlers = window.webkit && window.webkit.messageHandlers;
  const handler = handlers && handlers.companionPainted;
  if (firstPaintReported || !handler) {
    return;
  }
  firstPaintReported = true;
  requestAnimationFrame(() => requestAnimationFrame(() => handler.postMessage(view)));
}

function showProblem(message) {
  $("problem-text").textContent = message;
  show("view-problem");
}

function applyConfig(config) {
  state.config = config;
  for (const link of document.querySelectorAll(".support-link")) {
    if (config && config.support_url) {
      link.href = config.support_url;
      link.hidden = false;
    } else {
      link.hidden = true;
    }
  }
  const entries = (config && config.entries) || [];
  const locked = entries.filter((entry) => entry.locked);
  $("managed-note").hidden = locked.length === 0;
  $("managed-note").title = locked.map((entry) => entry.key).join(", ");
  const offered = (config && config.enrollment_types) || [];
  const enrollmentLocked = entries.some((entry) => entry.key === "enrollment_types" && entry.locked);
  let anyOff = false;
  for (const id of ["add-platform", "add-roaming"]) {
    const button = $(id);
    const on = offered.includes(button.dataset.kind);
    button.hidden = !on;
    anyOff = anyOff || !on;
  }
  $("enroll-managed").hidden = !(anyOff && enrollmentLocked);
}

function setSignInWaiting(waiting) {
  $("sign-in-idle").hidden = waiting;
  $("sign-in-waiting").hidden = !waiting;
  if (waiting) {
    $("sign-in-cancel").focus();
  }
}

function showSignedOut(message) {
  setSignInWaiting(false);
  const error = $("sign-in-error");
  error.textContent = message || "";
  error.hidden = !message;
  show("view-signed-out");
  $("sign-in").focus();
}

function initials(text) {
  const parts = (text || "?").replace(/@.*/, "").split(/[\s._-]+/).filter(Boolean);
  return ((parts[0] || "?")[0] + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

function showSignedIn(status) {
  state.status = status;
  $("user-name").textContent = status.name || status.email || "Signed in";
  $("user-email").textContent = status.name && status.email ? status.email : "";
  $("avatar").textContent = initials(status.name || status.email);
  $("tenant").textContent = status.tenant ? `Organization: ${hostOf(status.tenant)}` : "";
  show("view-signed-in");
  if (status.persistence === "memory_only") {
    setBanner("Your system keyring is unavailable, so you will need to sign in again next time.");
  } else {
    setBanner(null);
  }
  return loadMethods();
}

function hostOf(url) {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

function setBanner(text, action) {
  const banner = $("banner");
  banner.hidden = !text;
  $("banner-text").textContent = text || "";
  const button = $("banner-action");
  if (action) {
    button.textContent = action.label;
    button.onclick = action.run;
    button.hidden = false;
  } else {
    button.hidden = true;
    button.onclick = null;
  }
}

let toastTimer = null;
function toast(text) {
  const element = $("toast");
  element.textContent = text;
  element.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => {
    element.hidden = true;
  }, 5000);
}

// Handles the codes every action shares; returns true when handled.
function handleCommon(error, retry) {
  switch (error.code) {
    case "signed_out":
      showSignedOut("Your session ended. Please sign in again.");
      return true;
    case "not_configured":
      showProblem(error.message);
      return true;
    case "busy":
      startBusyCountdown(error.retry_after_secs || 5, retry);
      return true;
    case "cancelled":
      return true;
    default:
      return false;
  }
}

function startBusyCountdown(seconds, retry) {
  clearInterval(state.busyTimer);
  let left = Math.max(1, Math.round(seconds));
  const render = () =>
    setBanner(`The service is busy. Retrying in ${left} s…`, {
      label: "Retry now",
      run: () => {
        clearInterval(state.busyTimer);
        setBanner(null);
        retry();
      },
    });
  render();
  state.busyTimer = setInterval(() => {
    left -= 1;
    if (left <= 0) {
      clearInterval(state.busyTimer);
      setBanner(null);
      retry();
    } else {
      render();
    }
  }, 1000);
}

// ---- Methods list ----------------------------------------------------------------------------------------------

function listState(which, text, detail) {
  $("methods-loading").hidden = which !== "loading";
  $("methods-error").hidden = which !== "error";
  $("methods-empty").hidden = which !== "empty";
  $("methods").hidden = which !== "list";
  if (which !== "loading") {
    reportFirstPaint(which === "list" ? "list" : `list-${which}`);
  }
  if (which === "error") {
    $("methods-error-text").textContent = text;
    $("methods-error-detail").textContent = detail || "";
  }
}

async function loadMethods() {
  if (state.methods.length === 0) {
    listState("loading");
  }
  try {
    const list = await call("list");
    state.methods = list.authenticators || [];
    renderMethods();
  } catch (error) {
    if (handleCommon(error, loadMethods)) {
      if (error.code === "busy" && state.methods.length === 0) {
        listState("error", "The service is busy right now.");
      }
      return;
    }
    listState("error", "We could not load your sign-in methods.", error.message);
  }
}

const dateFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
function formatDate(text) {
  if (!text) {
    return null;
  }
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : dateFormat.format(date);
}

function badgeOf(method) {
  if (method.backed_up === true || method.device_type === "multi_device") {
    return { text: "Synced", cls: "synced", title: "Synced across your devices by your password manager" };
  }
  if (method.type === "webauthn-platform" || method.device_type === "single_device") {
    return { text: "This device only", cls: "device", title: "Stored only on this device or key" };
  }
  return null;
}

function iconFor(type) {
  if (type === "webauthn-roaming") {
    return '<svg viewBox="0 0 24 24"><rect x="7" y="2" width="10" height="14" rx="2"/><path d="M10 16v5h4v-5"/><circle cx="12" cy="7" r="1.5"/></svg>';
  }
  if (type === "webauthn-platform" || type === "passkey") {
    return '<svg viewBox="0 0 24 24"><rect x="3" y="4" width="18" height="12" rx="2"/><path d="M8 20h8M12 16v4"/></svg>';
  }
  if (type === "totp" || type === "otp") {
    return '<svg viewBox="0 0 24 24"><circle cx="12" cy="12" r="8"/><path d="M12 8v4l3 2"/></svg>';
  }
  if (type === "phone" || type === "sms" || type === "push-notification") {
    return '<svg viewBox="0 0 24 24"><rect x="7" y="2" width="10" height="20" rx="2"/><path d="M11 18h2"/></svg>';
  }
  if (type === "email") {
    return '<svg viewBox="0 0 24 24"><rect x="3" y="5" width="18" height="14" rx="2"/><path d="M3 7l9 6 9-6"/></svg>';
  }
  return '<svg viewBox="0 0 24 24"><path d="M12 3l8 4v5c0 5-3.5 8-8 9-4.5-1-8-4-8-9V7z"/></svg>';
}

function renderMethods() {
  const passkeys = state.methods.filter((m) => PASSKEY_TYPES.includes(m.type));
  const others = state.methods.filter((m) => !PASSKEY_TYPES.includes(m.type));
  if (state.methods.length === 0) {
    listState("empty");
    return;
  }
  listState("list");
  fillGroup("group-passkeys", passkeys);
  fillGroup("group-other", others);
  if (state.highlight) {
    const row = document.querySelector(`[data-id="${CSS.escape(state.highlight)}"]`);
    if (row) {
      row.scrollIntoView({ block: "nearest" });
    }
  }
}

function fillGroup(id, methods) {
  const list = $(id);
  $(`${id}-title`).hidden = methods.length === 0;
  list.hidden = methods.length === 0;
  list.replaceChildren(...methods.map(methodRow));
}

function methodRow(method) {
  const row = document.createElement("li");
  row.className = "method";
  row.dataset.id = method.id;
  row.dataset.type = method.type;
  if (method.id === state.highlight) {
    row.classList.add("highlight");
  }

  const icon = document.createElement("div");
  icon.className = "method-icon";
  icon.setAttribute("aria-hidden", "true");
  icon.innerHTML = iconFor(method.type); // static markup from iconFor, never user data
  row.append(icon);

  const body = document.createElement("div");
  body.className = "method-body";
  row.append(body);

  if (state.editing === method.id) {
    body.append(renameForm(method));
  } else {
    const title = document.createElement("div");
    title.className = "method-title";
    const name = document.createElement("span");
    name.className = "method-name";
    name.textContent = method.display_name;
    title.append(name);
    const badge = badgeOf(method);
    if (badge) {
      const tag = document.createElement("span");
      tag.className = `badge ${badge.cls}`;
      tag.textContent = badge.text;
      tag.title = badge.title;
      title.append(tag);
    }
    if (method.id === state.highlight) {
      const tag = document.createElement("span");
      tag.className = "badge new";
      tag.textContent = "New";
      title.append(tag);
    }
    body.append(title);

    const meta = document.createElement("div");
    meta.className = "method-meta";
    const parts = [TYPE_LABELS[method.type] || method.type];
    if (method.provider && method.provider !== method.display_name) {
      parts.push(method.provider);
    }
    const created = formatDate(method.created_at);
    if (created) {
      parts.push(`Added ${created}`);
    }
    const used = formatDate(method.last_used_at);
    parts.push(used ? `Last used ${used}` : "Never used");
    meta.textContent = parts.join(" · ");
    body.append(meta);
  }

  if (state.editing !== method.id) {
    const actions = document.createElement("div");
    actions.className = "method-actions";
    if (PASSKEY_TYPES.includes(method.type)) {
      const rename = document.createElement("button");
      rename.type = "button";
      rename.className = "ghost small";
      rename.dataset.action = "rename";
      rename.textContent = "Rename";
      rename.setAttribute("aria-label", `Rename ${method.display_name}`);
      rename.addEventListener("click", () => startRename(method.id));
      actions.append(rename);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "ghost small danger-text";
    remove.dataset.action = "remove";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${method.display_name}`);
    remove.addEventListener("click", () => openRemove(method));
    actions.append(remove);
    row.append(actions);
  }
  return row;
}

// ---- Rename ----------------------------------------------------------------------------------------------------

function validateName(name) {
  if (name.trim().length === 0) {
    return "Enter a name.";
  }
  if ([...name].length > MAX_NAME) {
    return `Use at most ${MAX_NAME} characters.`;
  }
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name)) {
    return "Use letters, digits and punctuation only.";
  }
  return null;
}

function startRename(id) {
  state.editing = id;
  renderMethods();
  const input = document.querySelector(".rename-input");
  if (input) {
    input.focus();
    input.select();
  }
}

function renameForm(method) {
  const form = document.createElement("form");
  form.className = "rename";
  form.noValidate = true;
  const label = document.createElement("label");
  label.className = "sr-only";
  label.htmlFor = "rename-input";
  label.textContent = `New name for ${method.display_name}`;
  const input = document.createElement("input");
  input.id = "rename-input";
  input.className = "rename-input";
  input.type = "text";
  input.value = method.name || method.display_name;
  input.maxLength = 40;
  input.autocomplete = "off";
  input.setAttribute("aria-describedby", "rename-hint");
  const hint = document.createElement("div");
  hint.id = "rename-hint";
  hint.className = "rename-hint";
  const save = document.createElement("button");
  save.type = "submit";
  save.className = "primary small";
  save.textContent = "Save";
  const cancel = document.createElement("button");
  cancel.type = "button";
  cancel.className = "secondary small";
  cancel.textContent = "Cancel";

  const update = () => {
    const problem = validateName(input.value);
    const count = [...input.value].length;
    hint.textContent = problem || `${count}/${MAX_NAME}`;
    hint.classList.toggle("invalid", Boolean(problem));
    input.setAttribute("aria-invalid", problem ? "true" : "false");
    save.disabled = Boolean(problem);
  };
  input.addEventListener("input", update);
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      stopRename();
    }
  });
  cancel.addEventListener("click", stopRename);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = input.value;
    if (validateName(name)) {
      update();
      return;
    }
    save.disabled = true;
    try {
      const updated = await call("rename", { id: method.id, name });
      state.methods = state.methods.map((m) => (m.id === updated.id ? updated : m));
      state.editing = null;
      renderMethods();
      toast(`Renamed to “${updated.display_name}”.`);
    } catch (error) {
      if (handleCommon(error, () => form.requestSubmit())) {
        return;
      }
      hint.textContent = error.message;
      hint.classList.add("invalid");
      save.disabled = false;
      if (error.code === "not_found") {
        state.editing = null;
        loadMethods();
      }
    }
  });
  const row = document.createElement("div");
  row.className = "rename-row";
  row.append(input, save, cancel);
  form.append(label, row, hint);
  update();
  return form;
}

function stopRename() {
  const id = state.editing;
  state.editing = null;
  renderMethods();
  const button = document.querySelector(`[data-id="${CSS.escape(id || "")}"] [data-action="rename"]`);
  if (button) {
    button.focus();
  }
}

// ---- Browser round trips (enroll, step-up) ---------------------------------------------------------------------

function hideToast() {
  clearTimeout(toastTimer);
  $("toast").hidden = true;
}

function openBrowserDialog(text, onCancel) {
  hideToast();
  $("dlg-browser-text").textContent = text;
  $("dlg-browser-cancel").onclick = onCancel;
  const dialog = $("dlg-browser");
  if (!dialog.open) {
    dialog.showModal();
  }
  $("dlg-browser-cancel").focus();
}

function closeBrowserDialog() {
  const dialog = $("dlg-browser");
  if (dialog.open) {
    dialog.close();
  }
}

async function enroll(kind) {
  const what = kind === "webauthn-platform" ? "set up this computer" : "add your security key";
  openBrowserDialog(
    `We opened your browser to ${what}. Follow the steps there; this window updates when you are done.`,
    () => call("cancel_enroll").catch(() => {}),
  );
  try {
    const added = await call("enroll", { kind });
    closeBrowserDialog();
    state.highlight = added.id;
    await loadMethods();
    toast(`Added “${added.display_name}”.`);
  } catch (error) {
    closeBrowserDialog();
    if (handleCommon(error, () => enroll(kind))) {
      return;
    }
    if (error.code === "step_up_required") {
      askStepUp(`To add a ${KIND_LABELS[kind]}, first sign in again in your browser with a method you already have.`, () =>
        enroll(kind),
      );
      return;
    }
    if (error.code === "not_offered") {
      toast(`Adding a ${KIND_LABELS[kind]} is turned off by your organization.`);
    } else if (error.code === "timed_out") {
      toast("We did not see the new method in time. If you finished in the browser, refresh the list.");
    } else {
      toast(error.message);
    }
  }
}

// ---- Remove, step-up, after removing ---------------------------------------------------------------------------

function removeCopy(method) {
  if (method.type === "webauthn-roaming") {
    return "You will no longer be able to sign in with this security key.";
  }
  if (PASSKEY_TYPES.includes(method.type)) {
    return "You will no longer be able to sign in with this passkey.";
  }
  return "You will no longer be able to use this method to verify it's you.";
}

function openRemove(method) {
  hideToast();
  state.removing = method;
  setRemoveDialog({
    title: `Remove “${method.display_name}”?`,
    text: removeCopy(method),
    confirm: "Remove",
    danger: true,
    run: () => doRemove(method),
  });
  $("dlg-remove").showModal();
  $("dlg-remove-cancel").focus();
}

function setRemoveDialog({ title, text, confirm, danger, run, error }) {
  $("dlg-remove-title").textContent = title;
  $("dlg-remove-text").textContent = text;
  const confirmButton = $("dlg-remove-confirm");
  confirmButton.hidden = !confirm;
  confirmButton.textContent = confirm || "";
  confirmButton.className = danger ? "danger" : "primary";
  confirmButton.disabled = false;
  confirmButton.onclick = run || null;
  $("dlg-remove-cancel").textContent = confirm ? "Cancel" : "Close";
  const errorText = $("dlg-remove-error");
  errorText.textContent = error || "";
  errorText.hidden = !error;
}

async function doRemove(method) {
  $("dlg-remove-confirm").disabled = true;
  try {
    await call("remove", { id: method.id });
    $("dlg-remove").close();
    const remaining = state.methods.filter((m) => m.id !== method.id);
    state.methods = remaining;
    state.highlight = null;
    renderMethods();
    showRemoved(method, remaining);
    loadMethods();
  } catch (error) {
    if (error.code === "step_up_required") {
      setRemoveDialog({
        title: "Verify it's you",
        text: `To remove “${method.display_name}”, confirm it's you in your browser with one of your sign-in methods. Then we finish removing it.`,
        confirm: "Continue in browser",
        run: () => stepUpThenRemove(method),
      });
      $("dlg-remove-confirm").focus();
      return;
    }
    if (error.code === "last_authenticator") {
      setRemoveDialog({
        title: `“${method.display_name}” can't be removed yet`,
        text: "It is your only way to verify it's you. Add another passkey or security key first, then remove this one.",
        confirm: null,
      });
      return;
    }
    if (error.code === "busy" || error.code === "signed_out" || error.code === "not_configured") {
      $("dlg-remove").close();
      handleCommon(error, () => openRemove(method));
      return;
    }
    if (error.code === "not_found") {
      $("dlg-remove").close();
      toast("That method was already removed.");
      loadMethods();
      return;
    }
    setRemoveDialog({
      title: `Remove “${method.display_name}”?`,
      text: removeCopy(method),
      confirm: "Try again",
      danger: true,
      run: () => doRemove(method),
      error: error.message,
    });
  }
}

// "Verify it's you": explains why, then runs the step-up round trip and `then` on success.
function askStepUp(text, then) {
  setRemoveDialog({
    title: "Verify it's you",
    text,
    confirm: "Continue in browser",
    run: async () => {
      $("dlg-remove").close();
      if (await stepUp()) {
        then();
      }
    },
  });
  if (!$("dlg-remove").open) {
    $("dlg-remove").showModal();
  }
  $("dlg-remove-confirm").focus();
}

// The step-up round trip in the browser; true when the user verified.
async function stepUp() {
  openBrowserDialog("Verify it's you in your browser. This window continues as soon as you are done.", () =>
    call("cancel_sign_in").catch(() => {}),
  );
  $("dlg-browser-title").textContent = "Verify it's you";
  try {
    await call("step_up");
    return true;
  } catch (error) {
    if (!handleCommon(error, () => {})) {
      toast(`We could not verify it's you. ${error.message}`);
    }
    return false;
  } finally {
    closeBrowserDialog();
    $("dlg-browser-title").textContent = "Finish in your browser";
  }
}

async function stepUpThenRemove(method) {
  $("dlg-remove").close();
  if (!(await stepUp())) {
    return;
  }
  setRemoveDialog({
    title: `Removing “${method.display_name}”…`,
    text: removeCopy(method),
    confirm: "Remove",
    danger: true,
    run: () => doRemove(method),
  });
  $("dlg-remove").showModal();
  await doRemove(method);
}

function cleanupCopy(method) {
  if (method.type === "webauthn-roaming") {
    return "If you still have the key, its credential for this account stays on it until you delete it: open your browser's security key settings (for example Chrome › Settings › Privacy and security › Manage security keys) or the key maker's app, and delete the sign-in for your organization.";
  }
  if (method.type === "webauthn-platform" || method.type === "passkey") {
    return "The passkey may still be listed on your devices. Delete it in your password manager or system settings (Passwords, Windows Hello or Google Password Manager) so it isn't offered any more.";
  }
  return "Nothing is left to clean up for this method.";
}

function showRemoved(method, remaining) {
  hideToast();
  state.lastRemoved = method;
  $("dlg-removed-title").textContent = `“${method.display_name}” was removed`;
  const list = $("dlg-removed-remaining");
  if (remaining.length === 0) {
    const item = document.createElement("li");
    item.textContent = "No other methods: add a replacement now.";
    list.replaceChildren(item);
  } else {
    const ordered = [
      ...remaining.filter((m) => PASSKEY_TYPES.includes(m.type)),
      ...remaining.filter((m) => !PASSKEY_TYPES.includes(m.type)),
    ];
    list.replaceChildren(
      ...ordered.map((m) => {
        const item = document.createElement("li");
        const label = TYPE_LABELS[m.type] || m.type;
        item.textContent = m.display_name === label ? label : `${m.display_name} (${label})`;
        return item;
      }),
    );
  }
  $("dlg-removed-cleanup").textContent = cleanupCopy(method);
  const kind = method.type === "webauthn-platform" ? "webauthn-platform" : "webauthn-roaming";
  const offered = (state.config && state.config.enrollment_types) || [];
  $("dlg-removed-replace").hidden = !offered.includes(kind);
  $("dlg-removed-replace").onclick = () => {
    $("dlg-removed").close();
    enroll(kind);
  };
  $("dlg-removed").showModal();
  $("dlg-removed-close").focus();
}

// ---- Sign in / out ---------------------------------------------------------------------------------------------

async function signIn() {
  $("sign-in-error").hidden = true;
  setSignInWaiting(true);
  try {
    const status = await call("sign_in");
    await showSignedIn(status);
  } catch (error) {
    setSignInWaiting(false);
    if (error.code === "cancelled") {
      $("sign-in").focus();
      return;
    }
    if (error.code === "not_configured") {
      showProblem(error.message);
      return;
    }
    const messages = {
      timed_out: "The sign-in took too long. Try again.",
      denied: "The sign-in was not completed.",
      browser: "We could not open your browser.",
      in_progress: "A sign-in is already waiting in your browser.",
      network: "We could not reach your organization's sign-in service.",
    };
    $("sign-in-error").textContent = `${messages[error.code] || "Sign-in failed."} ${error.message}`;
    $("sign-in-error").hidden = false;
    $("sign-in").focus();
  }
}

async function signOut() {
  try {
    await call("sign_out");
  } catch (error) {
    if (error.code !== "signed_out") {
      toast(error.message);
      return;
    }
  }
  state.methods = [];
  state.highlight = null;
  showSignedOut(null);
}

async function exportLogs() {
  try {
    const exported = await call("export_logs");
    toast(`Logs saved to ${exported.path}`);
  } catch (error) {
    toast(`Could not export logs. ${error.message}`);
  }
}

// ---- Start -----------------------------------------------------------------------------------------------------

async function start() {
  show("view-loading");
  // Both start at once: the session check (a refresh against the tenant) need not wait for the configuration.
  const configured = call("config");
  const checked = call("status");
  // Handled below, or deliberately dropped when the configuration has a problem.
  checked.catch(() => {});
  try {
    applyConfig(await configured);
  } catch {
    applyConfig(null);
  }
  if (state.config && state.config.problem) {
    showProblem(state.config.problem);
    return;
  }
  try {
    const status = await checked;
    if (status.signed_in) {
      await showSignedIn(status);
    } else {
      showSignedOut(null);
    }
  } catch (error) {
    if (error.code === "not_configured") {
      showProblem(error.message);
    } else if (error.code === "signed_out") {
      showSignedOut(null);
    } else {
      showSignedOut(`We could not check your session. ${error.message}`);
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("click", signIn);
  $("sign-in-cancel").addEventListener("click", () => call("cancel_sign_in").catch(() => {}));
  $("sign-out").addEventListener("click", signOut);
  $("refresh").addEventListener("click", loadMethods);
  $("methods-retry").addEventListener("click", loadMethods);
  $("problem-retry").addEventListener("click", start);
  $("export-logs").addEventListener("click", exportLogs);
  $("add-platform").addEventListener("click", () => enroll("webauthn-platform"));
  $("add-roaming").addEventListener("click", () => enroll("webauthn-roaming"));
  $("dlg-remove-cancel").addEventListener("click", () => $("dlg-remove").close());
  $("dlg-removed-close").addEventListener("click", () => $("dlg-removed").close());
  // Escape on the browser dialog means Cancel, not "hide the dialog and keep waiting".
  $("dlg-browser").addEventListener("cancel", (event) => {
    event.preventDefault();
    $("dlg-browser-cancel").click();
  });
  start();
});
