// The peer in bench/identity.py: panva's oidc-provider, set up for the same three workloads.
//
// Run by the benchmark as `node server.mjs` with BENCH_CONFIG naming a JSON file:
//   { "port", "jwks", "cookie_key", "clients": [...], "account": {"id", "password"},
//     "argon2": {"memory_kib", "time_cost", "parallelism"}, "resource", "resource_scopes" }
//
// State lives in oidc-provider's own in-memory adapter (its default; each process has its
// own, so the load generator keeps every virtual user on one process). Access tokens are JWTs
// signed with ES256 for a resource server, as Shanakht's are. Password login is a minimal
// custom interaction with one fixed account whose password is hashed with argon2id at the
// cost the benchmark passes in (Shanakht's). Nothing here is fit for production.
import { readFileSync } from 'node:fs';
import http from 'node:http';

import argon2 from 'argon2';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.env.BENCH_CONFIG, 'utf8'));
const port = Number(process.env.PORT ?? config.port);
const issuer = `http://127.0.0.1:${port}`;

const cost = {
  type: argon2.argon2id,
  memoryCost: config.argon2.memory_kib,
  timeCost: config.argon2.time_cost,
  parallelism: config.argon2.parallelism,
};
const account = config.account;
const accountHash = await argon2.hash(account.password, cost);
// An unknown login still costs one verification, as Shanakht's does.
const dummyHash = await argon2.hash('not a password anyone has', cost);

const provider = new Provider(issuer, {
  clients: config.clients,
  scopes: ['openid', 'offline_access', ...config.resource_scopes.split(' ')],
  jwks: config.jwks,
  cookies: { keys: [config.cookie_key] },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => config.resource,
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: config.resource_scopes,
        audience: config.resource,
        accessTokenTTL: 600,
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'ES256' } },
      }),
    },
  },
  findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  pkce: { required: () => true },
  // Shanakht rotates every refresh token on every use; so does the peer here.
  rotateRefreshToken: () => true,
  ttl: {
    AccessToken: 600,
    ClientCredentials: 600,
    AuthorizationCode: 60,
    IdToken: 600,
    Interaction: 3600,
    Grant: 43200,
    Session: 43200,
    RefreshToken: 43200,
  },
});

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/plain; charset=utf-8');
  res.end(body);
}

// POST /interaction/:uid/login: check the fixed account's password, finish the login prompt.
async function login(req, res) {
  await provider.interactionDetails(req, res);
  const form = await readForm(req);
  const known = form.get('login') === account.id;
  const matches = await argon2.verify(known ? accountHash : dummyHash, form.get('password') ?? '');
  if (!known || !matches) {
    send(res, 401, 'the login or password is not right');
    return;
  }
  await provider.interactionFinished(
    req,
    res,
    { login: { accountId: account.id } },
    { mergeWithLastSubmission: false },
  );
}

// POST /interaction/:uid/confirm: grant what the consent prompt found missing.
async function confirm(req, res) {
  const details = await provider.interactionDetails(req, res);
  await readForm(req);
  const { prompt, params, session } = details;
  const grant = details.grantId
    ? await provider.Grant.find(details.grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  if (prompt.details.missingOIDCScope) grant.addOIDCScope(prompt.details.missingOIDCScope.join(' '));
  if (prompt.details.missingOIDCClaims) grant.addOIDCClaims(prompt.details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(prompt.details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { consent: { grantId } });
}

// GET /interaction/:uid: which prompt is pending (the load generator needs no page).
async function page(req, res) {
  const details = await provider.interactionDetails(req, res);
  send(res, 200, `prompt=${details.prompt.name}`);
}

const app = provider.callback();
const server = http.createServer((req, res) => {
  const match = /^\/interaction\/[^/?]+(\/login|\/confirm)?(\?.*)?$/.exec(req.url ?? '');
  if (!match) {
    app(req, res);
    return;
  }
  let handler = page;
  if (req.method === 'POST' && match[1] === '/login') handler = login;
  else if (req.method === 'POST' && match[1] === '/confirm') handler = confirm;
  else if (req.method !== 'GET' || match[1]) {
    send(res, 404, 'not found');
    return;
  }
  handler(req, res).catch((err) => {
    if (!res.headersSent) send(res, 400, `${err.name}: ${err.message}`);
  });
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`oidc-provider on ${issuer}\n`);
});
