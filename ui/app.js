// Passkey Companion placeholder page: no WebAuthn and no tokens here, ever. Sign-in arrives with the
// desktop app work; until then the page only says whether it runs inside the desktop shell.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const runtime = document.getElementById("runtime");
  const insideApp = typeof window.__TAURI__ !== "undefined";
  runtime.textContent = insideApp ? "Desktop app preview" : "Browser preview";
});
