/**
 * Passkey Companion post-login Action (trigger `post-login` v3, Node 22 runtime).
 *
 * For the configured client(s) and/or API only:
 * - Step-up: when the request asks for multi-factor (`acr_values` contains the PAPE multi-factor URI), challenge
 *   with the user's enrolled WebAuthn factors first (security keys and device biometrics), then any other enrolled
 *   factor as a fallback; with no enrolled factor, let Auth0 run MFA enrollment.
 * - Claims: sets `<namespace>auth_time` and `<namespace>mfa_time` (epoch seconds) on the access token from
 *   `event.authentication.methods` (Auth0 forbids `auth_time`/`amr` in access tokens; design.md §4).
 *
 * Secrets (set by companion-admin):
 * - `CLAIM_NAMESPACE`: claim prefix, default `https://passkey-companion/` (a trailing `/` is added if missing).
 * - `CLIENT_IDS`: comma- or space-separated client ids this Action serves.
 * - `AUDIENCE`: the API identifier this Action serves.
 * At least one of `CLIENT_IDS` / `AUDIENCE` must be set, and every one that is set must match; otherwise the
 * Action does nothing.
 */
'use strict';

const MFA_ACR = 'http://schemas.openid.net/pape/policies/2007/06/multi-factor';
const DEFAULT_NAMESPACE = 'https://passkey-companion/';
const WEBAUTHN_TYPES = ['webauthn-roaming', 'webauthn-platform'];
/** Factor types `challengeWith*` accepts (FactorSelector in the v3 typings), in fallback order. */
const FALLBACK_TYPES = ['push-notification', 'otp', 'phone', 'email', 'recovery-code'];

/** Splits a comma/space separated list. */
function splitList(value) {
  return String(value || '')
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** The claim namespace, always ending in `/`. */
function namespaceOf(secrets) {
  const ns = (secrets && secrets.CLAIM_NAMESPACE) || DEFAULT_NAMESPACE;
  return ns.endsWith('/') ? ns : `${ns}/`;
}

/** Whether this login is for a client/API the Action is configured for. */
function applies(event) {
  const secrets = event.secrets || {};
  const clientIds = splitList(secrets.CLIENT_IDS);
  const audience = (secrets.AUDIENCE || '').trim();
  if (clientIds.length === 0 && audience === '') {
    return false;
  }
  const clientId = event.client && event.client.client_id;
  if (clientIds.length > 0 && !clientIds.includes(clientId)) {
    return false;
  }
  const identifier = event.resource_server && event.resource_server.identifier;
  if (audience !== '' && identifier !== audience) {
    return false;
  }
  return true;
}

/** Whether the request asks for multi-factor authentication. */
function wantsStepUp(event) {
  const transaction = event.transaction || {};
  const acr = Array.isArray(transaction.acr_values) ? transaction.acr_values : [];
  if (acr.includes(MFA_ACR)) {
    return true;
  }
  const query = (event.request && event.request.query) || {};
  return splitList(query.acr_values).includes(MFA_ACR);
}

/** Epoch seconds of an Auth0 timestamp string (or Date/number), or undefined. */
function epochSeconds(timestamp) {
  if (timestamp === undefined || timestamp === null) {
    return undefined;
  }
  const ms = timestamp instanceof Date ? timestamp.getTime() : new Date(timestamp).getTime();
  return Number.isFinite(ms) ? Math.floor(ms / 1000) : undefined;
}

/** The latest timestamp (epoch seconds) of the methods matching `keep`, or undefined. */
function latest(methods, keep) {
  let best;
  for (const method of methods || []) {
    if (!method || !keep(method)) {
      continue;
    }
    const at = epochSeconds(method.timestamp);
    if (at !== undefined && (best === undefined || at > best)) {
      best = at;
    }
  }
  return best;
}

/**
 * The claims for this login: `auth_time` from the latest first-factor method (else any method), `mfa_time` from
 * the latest `mfa` entry; `mfaDoneAt` (epoch seconds) counts as an MFA that just completed.
 */
function claimsFor(event, mfaDoneAt) {
  const methods = (event.authentication && event.authentication.methods) || [];
  const ns = namespaceOf(event.secrets);
  const authTime = latest(methods, (m) => m.name !== 'mfa') ?? latest(methods, () => true);
  let mfaTime = latest(methods, (m) => m.name === 'mfa');
  if (mfaDoneAt !== undefined && (mfaTime === undefined || mfaDoneAt > mfaTime)) {
    mfaTime = mfaDoneAt;
  }
  const claims = {};
  if (authTime !== undefined) {
    claims[`${ns}auth_time`] = authTime;
  }
  if (mfaTime !== undefined) {
    claims[`${ns}mfa_time`] = mfaTime;
  }
  return claims;
}

/** The challenge list: enrolled WebAuthn factors first, then the other enrolled factors. */
function challengeFactors(event) {
  const enrolled = ((event.user && event.user.enrolledFactors) || []).map((f) => f && f.type);
  const selectors = [];
  for (const type of [...WEBAUTHN_TYPES, ...FALLBACK_TYPES]) {
    if (enrolled.includes(type) && !selectors.some((s) => s.type === type)) {
      selectors.push({ type });
    }
  }
  return selectors;
}

function setClaims(api, claims) {
  for (const [name, value] of Object.entries(claims)) {
    api.accessToken.setCustomClaim(name, value);
  }
}

/**
 * @param {Event} event - Details about the user and the context in which they are logging in.
 * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.
 */
exports.onExecutePostLogin = async (event, api) => {
  if (!applies(event)) {
    return;
  }
  if (wantsStepUp(event)) {
    const factors = challengeFactors(event);
    if (factors.length > 0) {
      api.authentication.challengeWithAny(factors);
    } else {
      api.multifactor.enable('any', { allowRememberBrowser: false });
    }
  }
  setClaims(api, claimsFor(event));
};

/**
 * Runs after the challenge this Action asked for completed: the MFA happened just now, even if
 * `event.authentication.methods` does not show it yet.
 *
 * @param {Event} event
 * @param {PostLoginAPI} api
 */
exports.onContinuePostLogin = async (event, api) => {
  if (!applies(event)) {
    return;
  }
  setClaims(api, claimsFor(event, Math.floor(Date.now() / 1000)));
};

/** Internals, for the unit tests. */
exports._internals = {
  MFA_ACR,
  DEFAULT_NAMESPACE,
  applies,
  wantsStepUp,
  claimsFor,
  challengeFactors,
  namespaceOf,
};
