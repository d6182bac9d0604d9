// Unit tests of post-login.js with Node's built-in runner (`node --test crates/admin/actions/`).
//
// The fake `event` and `api` follow the shapes of the official post-login v3 typings (@auth0/actions
// `src/post-login/v3/index.d.ts`, auth0-reference.md §8.1, §8.2): `event.authentication.methods` entries are
// `{name, timestamp}` with string timestamps, `event.transaction.acr_values` is a string array,
// `event.user.enrolledFactors` is `[{type, options?}]`, and the API validates factor selectors, refuses restricted
// claims and allows at most four challenge/enroll commands per flow, as Auth0 does.
'use strict';

const test = require('node:test');
const assert = require('node:assert/strict');
const action = require('./post-login.js');

const { MFA_ACR } = action._internals;
const NS = 'https://passkey-companion/';
const CLIENT = 'companion-desktop';
const AUDIENCE = 'https://passkey-companion/api';

const FACTOR_TYPES = ['otp', 'email', 'webauthn-platform', 'webauthn-roaming', 'recovery-code', 'phone', 'push', 'push-notification'];
const RESTRICTED = ['acr', 'amr', 'aud', 'auth_time', 'azp', 'cnf', 'exp', 'iat', 'iss', 'jti', 'nbf', 'nonce', 'scope', 'sub'];
const PROVIDERS = ['any', 'duo', 'google-authenticator', 'guardian', 'none'];

/** A post-login event as the v3 typings describe it, with `overrides` merged per top-level key (`secrets` is
 * replaced whole). */
function fakeEvent(overrides = {}) {
  const base = {
    authentication: {
      methods: [{ name: 'pwd', timestamp: '2026-11-24T08:00:00.000Z' }],
    },
    authorization: { roles: [] },
    client: { client_id: CLIENT, name: 'Passkey Companion (desktop)', metadata: {} },
    connection: { id: 'con_1', name: 'Username-Password-Authentication', strategy: 'auth0', metadata: {} },
    organization: undefined,
    request: {
      ip: '127.0.0.1',
      method: 'GET',
      hostname: 'tenant.example',
      query: {},
      body: {},
      geoip: {},
      language: 'en',
      user_agent: 'test',
    },
    resource_server: { identifier: AUDIENCE },
    secrets: { CLAIM_NAMESPACE: NS, CLIENT_IDS: CLIENT, AUDIENCE },
    stats: { logins_count: 3 },
    tenant: { id: 'dev' },
    transaction: {
      acr_values: [],
      locale: 'en',
      protocol: 'oidc-basic-profile',
      requested_scopes: ['openid', 'profile', 'offline_access'],
      ui_locales: [],
    },
    user: {
      user_id: 'auth0|6a11ce000000000000000001',
      email: 'alice@example.com',
      app_metadata: {},
      user_metadata: {},
      identities: [],
      enrolledFactors: [],
      multifactor: [],
    },
  };
  const event = { ...base };
  for (const [key, value] of Object.entries(overrides)) {
    const merge = key !== 'secrets' && value && typeof value === 'object' && !Array.isArray(value);
    event[key] = merge ? { ...base[key], ...value } : value;
  }
  return event;
}

/** A recording fake of the post-login API that enforces what Auth0 enforces. */
function fakeApi() {
  const calls = [];
  const accessClaims = {};
  const idClaims = {};
  let commands = 0;
  const checkSelector = (selector) => {
    assert.ok(selector && typeof selector === 'object', 'a factor selector is an object');
    assert.ok(FACTOR_TYPES.includes(selector.type), `unknown factor type ${selector.type}`);
  };
  const command = (name, args) => {
    commands += 1;
    if (commands > 4) {
      throw new Error('At most four enroll/challenge commands per flow');
    }
    calls.push({ name, args });
  };
  const claim = (target) => (name, value) => {
    assert.equal(typeof name, 'string');
    if (RESTRICTED.includes(name)) {
      throw new Error(`restricted claim ${name}`);
    }
    target[name] = value;
  };
  const api = {
    access: { deny: (reason) => calls.push({ name: 'access.deny', args: [reason] }) },
    accessToken: {
      setCustomClaim: claim(accessClaims),
      addScope: (s) => calls.push({ name: 'accessToken.addScope', args: [s] }),
      removeScope: (s) => calls.push({ name: 'accessToken.removeScope', args: [s] }),
    },
    idToken: { setCustomClaim: claim(idClaims) },
    authentication: {
      challengeWith: (factor, options) => {
        checkSelector(factor);
        for (const f of (options && options.additionalFactors) || []) checkSelector(f);
        command('authentication.challengeWith', [factor, options]);
      },
      challengeWithAny: (factors) => {
        assert.ok(Array.isArray(factors) && factors.length > 0, 'challengeWithAny takes a non-empty array');
        factors.forEach(checkSelector);
        command('authentication.challengeWithAny', [factors]);
      },
      enrollWith: (factor, options) => {
        checkSelector(factor);
        command('authentication.enrollWith', [factor, options]);
      },
      enrollWithAny: (factors) => {
        factors.forEach(checkSelector);
        command('authentication.enrollWithAny', [factors]);
      },
      recordMethod: () => {
        throw new Error('recordMethod is only available in onContinuePostLogin');
      },
      setPrimaryUser: (id) => calls.push({ name: 'authentication.setPrimaryUser', args: [id] }),
    },
    multifactor: {
      enable: (provider, options) => {
        assert.ok(PROVIDERS.includes(provider), `unknown provider ${provider}`);
        calls.push({ name: 'multifactor.enable', args: [provider, options] });
      },
    },
    redirect: {
      sendUserTo: (url) => calls.push({ name: 'redirect.sendUserTo', args: [url] }),
      encodeToken: () => 'token',
      validateToken: () => ({}),
    },
    user: {
      setAppMetadata: () => {},
      setUserMetadata: () => {},
    },
    cache: { get: () => undefined, set: () => ({ type: 'success' }), delete: () => ({ type: 'success' }) },
  };
  return { api, calls, accessClaims, idClaims };
}

const epoch = (iso) => Math.floor(Date.parse(iso) / 1000);

test('a plain login gets auth_time and no mfa_time, and no challenge', async () => {
  const { api, calls, accessClaims } = fakeApi();
  await action.onExecutePostLogin(fakeEvent(), api);
  assert.deepEqual(calls, [], 'no challenge without a step-up request');
  assert.equal(accessClaims[`${NS}auth_time`], epoch('2026-11-24T08:00:00.000Z'));
  assert.ok(!(`${NS}mfa_time` in accessClaims), 'no MFA in this session: no mfa_time');
});

test('mfa_time is the latest mfa entry and auth_time the latest first factor', async () => {
  const { api, accessClaims } = fakeApi();
  const event = fakeEvent({
    authentication: {
      methods: [
        { name: 'pwd', timestamp: '2026-11-24T08:00:00.000Z' },
        { name: 'mfa', timestamp: '2026-11-24T08:00:30.000Z', type: 'otp' },
        { name: 'mfa', timestamp: '2026-11-24T09:10:00.000Z', type: 'webauthn-roaming' },
        { name: 'mfa', timestamp: '2026-11-24T08:30:00.000Z' },
      ],
    },
  });
  await action.onExecutePostLogin(event, api);
  assert.equal(accessClaims[`${NS}mfa_time`], epoch('2026-11-24T09:10:00.000Z'));
  assert.equal(accessClaims[`${NS}auth_time`], epoch('2026-11-24T08:00:00.000Z'));
  assert.ok(Number.isInteger(accessClaims[`${NS}mfa_time`]), 'epoch seconds, not milliseconds');
});

test('step-up challenges WebAuthn factors first, then the other enrolled factors', async () => {
  const { api, calls } = fakeApi();
  const event = fakeEvent({
    transaction: { acr_values: [MFA_ACR] },
    user: {
      enrolledFactors: [{ type: 'otp' }, { type: 'webauthn-platform' }, { type: 'webauthn-roaming' }],
    },
  });
  await action.onExecutePostLogin(event, api);
  assert.equal(calls.length, 1, 'exactly one challenge command');
  assert.equal(calls[0].name, 'authentication.challengeWithAny');
  assert.deepEqual(
    calls[0].args[0].map((f) => f.type),
    ['webauthn-roaming', 'webauthn-platform', 'otp'],
    'WebAuthn (roaming, platform) before the fallback',
  );
});

test('step-up without WebAuthn falls back to the other enrolled factors', async () => {
  const { api, calls } = fakeApi();
  const event = fakeEvent({
    transaction: { acr_values: ['urn:other', MFA_ACR] },
    user: { enrolledFactors: [{ type: 'phone', options: { preferredMethod: 'sms' } }, { type: 'otp' }] },
  });
  await action.onExecutePostLogin(event, api);
  assert.deepEqual(calls[0].args[0], [{ type: 'otp' }, { type: 'phone' }]);
});

test('step-up asked through the query string is honoured too', async () => {
  const { api, calls } = fakeApi();
  const event = fakeEvent({
    request: { query: { acr_values: MFA_ACR } },
    user: { enrolledFactors: [{ type: 'webauthn-roaming' }] },
  });
  await action.onExecutePostLogin(event, api);
  assert.deepEqual(calls[0].args[0], [{ type: 'webauthn-roaming' }]);
});

test('step-up with nothing enrolled lets Auth0 run MFA enrollment', async () => {
  const { api, calls } = fakeApi();
  await action.onExecutePostLogin(fakeEvent({ transaction: { acr_values: [MFA_ACR] } }), api);
  assert.deepEqual(calls, [{ name: 'multifactor.enable', args: ['any', { allowRememberBrowser: false }] }]);
});

test('other clients get nothing', async () => {
  const { api, calls, accessClaims, idClaims } = fakeApi();
  const event = fakeEvent({
    client: { client_id: 'someone-else' },
    transaction: { acr_values: [MFA_ACR] },
    user: { enrolledFactors: [{ type: 'otp' }] },
  });
  await action.onExecutePostLogin(event, api);
  assert.deepEqual(calls, []);
  assert.deepEqual(accessClaims, {});
  assert.deepEqual(idClaims, {});
});

test('other audiences get nothing when AUDIENCE is set', async () => {
  const { api, accessClaims } = fakeApi();
  await action.onExecutePostLogin(fakeEvent({ resource_server: { identifier: 'https://other/api' } }), api);
  assert.deepEqual(accessClaims, {});
});

test('AUDIENCE alone selects by API, CLIENT_IDS may list several clients', async () => {
  const first = fakeApi();
  await action.onExecutePostLogin(
    fakeEvent({ client: { client_id: 'any-client' }, secrets: { CLAIM_NAMESPACE: NS, CLIENT_IDS: '', AUDIENCE } }),
    first.api,
  );
  assert.ok(`${NS}auth_time` in first.accessClaims, 'the audience matches');
  const second = fakeApi();
  await action.onExecutePostLogin(
    fakeEvent({ client: { client_id: 'b' }, secrets: { CLIENT_IDS: 'a, b c', AUDIENCE: '' } }),
    second.api,
  );
  assert.ok(`${NS}auth_time` in second.accessClaims, 'b is in the list');
});

test('an unconfigured Action does nothing', async () => {
  const { api, calls, accessClaims } = fakeApi();
  await action.onExecutePostLogin(fakeEvent({ secrets: {}, transaction: { acr_values: [MFA_ACR] } }), api);
  assert.deepEqual(calls, []);
  assert.deepEqual(accessClaims, {});
});

test('the namespace comes from CLAIM_NAMESPACE, with a trailing slash added', async () => {
  const { api, accessClaims } = fakeApi();
  await action.onExecutePostLogin(
    fakeEvent({ secrets: { CLAIM_NAMESPACE: 'https://acme.example/pc', CLIENT_IDS: CLIENT } }),
    api,
  );
  assert.deepEqual(Object.keys(accessClaims), ['https://acme.example/pc/auth_time']);
});

test('after the challenge, mfa_time is the completion time even before methods show it', async (t) => {
  const now = Date.parse('2026-11-24T10:00:00.000Z');
  t.mock.method(Date, 'now', () => now);
  const { api, accessClaims } = fakeApi();
  await action.onContinuePostLogin(fakeEvent({ transaction: { acr_values: [MFA_ACR] } }), api);
  assert.equal(accessClaims[`${NS}mfa_time`], Math.floor(now / 1000));
});

test('onContinuePostLogin does nothing for other clients', async () => {
  const { api, accessClaims } = fakeApi();
  await action.onContinuePostLogin(fakeEvent({ client: { client_id: 'x' } }), api);
  assert.deepEqual(accessClaims, {});
});

test('the fake refuses what Auth0 refuses', () => {
  const { api } = fakeApi();
  assert.throws(() => api.accessToken.setCustomClaim('auth_time', 1), /restricted/);
  assert.throws(() => api.authentication.challengeWithAny([{ type: 'webauthn' }]), /unknown factor/);
  for (let i = 0; i < 4; i += 1) api.authentication.challengeWith({ type: 'otp' });
  assert.throws(() => api.authentication.challengeWith({ type: 'otp' }), /four/);
});
