// A second, independent OpenID provider for interoperability tests: panva's certified `oidc-provider`, configured
// like a plain standards-compliant tenant (no Auth0 extensions). The `passkeys` CLI test starts it as a child
// process; see crates/cli/tests/it/other_provider.rs.
//
// Usage: node server.js '<settings JSON>'
//   {
//     "client_id": "companion-desktop",            // one public client (token_endpoint_auth_method none, PKCE S256)
//     "redirect_uris": ["http://127.0.0.1:53180/callback", ...],
//     "resource": "https://passkey-companion/api", // the one API (RFC 8707 resource indicator, RS256 JWT tokens)
//     "accounts": [{"sub": "...", "email": "...", "name": "...", "password": "..."}]
//   }
//
// It listens on a free port of 127.0.0.1 (port 0), prints one JSON line `{"issuer": "http://127.0.0.1:<port>"}`
// on stdout when ready, logs one line per request (method and path, never the query: it carries codes) on
// stderr, and exits when stdin closes (its parent went away).
//
// Sign-in is this file's own small login page (username and password checked against `accounts`); consent is
// granted without a page, as a tenant does for its first-party applications. Refresh tokens are issued to the
// client whenever it may use the refresh_token grant (the provider's policy, as Auth0's "Allow Offline Access"),
// rotated on every use (oidc-provider's default for public clients) and revocable at the RFC 7009 endpoint.

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { createServer } from 'node:http';

import Provider, { errors } from 'oidc-provider';

const settings = JSON.parse(process.argv[2] ?? '{}');
for (const key of ['client_id', 'redirect_uris', 'resource', 'accounts']) {
  if (!(key in settings)) {
    console.error(`server.js: the settings JSON lacks "${key}"`);
    process.exit(2);
  }
}
const accounts = new Map(settings.accounts.map((account) => [account.sub, account]));

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, message) {
  const error = message ? `<p role="alert">${escapeHtml(message)}</p>` : '';
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in</h1>${error}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
<label>Email <input type="email" name="username" required autofocus></label>
<label>Password <input type="password" name="password" required></label>
<button type="submit">Continue</button>
</form></body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

// The signing key of ID tokens and JWT access tokens: a fresh RSA key per run.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), alg: 'RS256', use: 'sig' };

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;

  const provider = new Provider(issuer, {
    clients: [{
      client_id: settings.client_id,
      application_type: 'native',
      token_endpoint_auth_method: 'none',
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      redirect_uris: settings.redirect_uris,
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
    },
    pkce: { methods: ['S256'], required: () => true },
    ttl: {
      AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Grant: 86400, RefreshToken: 86400, Session: 86400,
    },
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        async getResourceServerInfo(ctx, indicator) {
          if (indicator !== settings.resource) throw new errors.InvalidTarget();
          return {
            scope: 'passkeys',
            audience: settings.resource,
            accessTokenTTL: 600,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async findAccount(ctx, sub) {
      const account = accounts.get(sub);
      if (!account) return undefined;
      return {
        accountId: sub,
        async claims() {
          return { sub, email: account.email, email_verified: true, name: account.name };
        },
      };
    },
    issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
    expiresWithSession: async () => false,
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = `<!doctype html><title>Error</title><p>${escapeHtml(out.error)}: ${escapeHtml(out.error_description ?? '')}</p>`;
    },
  });
  for (const event of ['server_error', 'authorization.error', 'grant.error', 'revocation.error', 'userinfo.error']) {
    provider.on(event, (ctx, error) => console.error(`oidc-provider ${event}: ${error.message} (${error.error_description ?? ''})`));
  }
  const handleProvider = provider.callback();

  async function interaction(req, res, uid, action) {
    const details = await provider.interactionDetails(req, res);
    if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
    const { prompt, params, session, grantId } = details;
    if (req.method === 'GET' && prompt.name === 'login') return send(res, 200, loginPage(uid));
    if (req.method === 'POST' && action === 'login' && prompt.name === 'login') {
      const form = await readForm(req);
      const account = [...accounts.values()].find((a) => a.email === form.get('username'));
      if (!account || account.password !== form.get('password')) {
        return send(res, 200, loginPage(uid, 'Wrong email or password.'));
      }
      return provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
    }
    if (req.method === 'GET' && prompt.name === 'consent') {
      // First-party client: grant what was asked without a consent page.
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
      if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
      if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
      for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
      const result = { consent: { grantId: await grant.save() } };
      return provider.interactionFinished(req, res, result, { mergeWithLastSubmission: true });
    }
    return send(res, 400, `unexpected ${req.method} in prompt ${escapeHtml(prompt.name)}`);
  }

  server.on('request', (req, res) => {
    const path = req.url.split('?')[0];
    console.error(`${req.method} ${path}`);
    const match = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login))?$/.exec(path);
    if (!match) return handleProvider(req, res);
    interaction(req, res, match[1], match[2]).catch((error) => {
      console.error(`interaction failed: ${error.message}`);
      if (!res.headersSent) send(res, 400, escapeHtml(error.message));
    });
    return undefined;
  });

  console.log(JSON.stringify({ issuer }));
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
