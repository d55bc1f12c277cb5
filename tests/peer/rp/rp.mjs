#!/usr/bin/env node
// An independent relying party: panva's certified openid-client (v6) driving a live Shanakht
// server, so the provider is checked by someone else's reading of the specifications, not ours.
//
// Two steps, because a citizen's browser (driven by the Python test) sits between them:
//
//   node rp.mjs start  <issuer> <client_id> <redirect_uri> <private_jwk_file>
//     -> {"url", "code_verifier", "state", "nonce"}
//   node rp.mjs finish <issuer> <client_id> <redirect_uri> <private_jwk_file>
//                      <callback_url> <code_verifier> <state> <nonce>
//     -> {"id_token_claims", "userinfo", "refresh_rotated", "introspection", ...}
//
// One JSON object on stdout either way; on any failure {"error": {...}} and exit status 1.

import { readFile } from 'node:fs/promises'
import * as client from 'openid-client'

const SCOPE = 'openid profile cnic'

async function configure(issuer, clientId, jwkFile) {
  const jwk = JSON.parse(await readFile(jwkFile, 'utf8'))
  const key = await crypto.subtle.importKey(
    'jwk',
    jwk,
    { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    false,
    ['sign'],
  )
  const config = await client.discovery(
    new URL(issuer),
    clientId,
    { id_token_signed_response_alg: 'RS256' },
    client.PrivateKeyJwt({ key, kid: jwk.kid }),
    // The test server listens on http://127.0.0.1; nothing else is relaxed.
    { execute: [client.allowInsecureRequests], timeout: 10 },
  )
  // Verify the ID token's signature against the provider's JWKS, not just trust TLS.
  client.enableNonRepudiationChecks(config)
  return config
}

async function start([issuer, clientId, redirectUri, jwkFile]) {
  const config = await configure(issuer, clientId, jwkFile)
  const codeVerifier = client.randomPKCECodeVerifier()
  const state = client.randomState()
  const nonce = client.randomNonce()
  const url = client.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: SCOPE,
    code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  })
  return { url: url.href, code_verifier: codeVerifier, state, nonce }
}

async function finish(args) {
  const [issuer, clientId, redirectUri, jwkFile, callbackUrl, codeVerifier, state, nonce] = args
  if (!callbackUrl.startsWith(`${redirectUri}?`)) {
    throw new Error(`the callback ${callbackUrl} is not at the redirect URI ${redirectUri}`)
  }
  const config = await configure(issuer, clientId, jwkFile)
  const tokens = await client.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: codeVerifier,
    expectedState: state,
    expectedNonce: nonce,
    idTokenExpected: true,
  })
  const claims = tokens.claims()
  const userinfo = await client.fetchUserInfo(config, tokens.access_token, claims.sub)
  const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token)
  const introspection = await client.tokenIntrospection(config, refreshed.access_token)
  await client.tokenRevocation(config, refreshed.refresh_token, {
    token_type_hint: 'refresh_token',
  })
  const signedOut = new URL('signed-out', redirectUri)
  const endSession = client.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: signedOut.href,
    state: client.randomState(),
  })
  return {
    id_token_claims: claims,
    userinfo,
    refresh_rotated:
      typeof refreshed.refresh_token === 'string' &&
      refreshed.refresh_token !== tokens.refresh_token,
    refreshed_id_token_claims: refreshed.claims() ?? null,
    introspection,
    access_token: tokens.access_token,
    refreshed_access_token: refreshed.access_token,
    end_session_url: endSession.href,
  }
}

function describe(err) {
  return {
    name: err?.name,
    code: err?.code,
    message: err?.message,
    // ResponseBodyError / AuthorizationResponseError: the provider's own error fields.
    oauth_error: err?.error,
    error_description: err?.error_description,
    status: err?.status,
    cause: err?.cause === undefined ? undefined : String(err.cause?.message ?? err.cause),
  }
}

const steps = { start, finish }
const [command, ...args] = process.argv.slice(2)
try {
  const step = steps[command]
  if (!step || args.length !== (command === 'start' ? 4 : 8)) {
    throw new Error('usage: rp.mjs start ISSUER CLIENT_ID REDIRECT_URI JWK_FILE | '
      + 'rp.mjs finish ISSUER CLIENT_ID REDIRECT_URI JWK_FILE CALLBACK VERIFIER STATE NONCE')
  }
  process.stdout.write(`${JSON.stringify(await step(args))}\n`)
} catch (err) {
  process.stdout.write(`${JSON.stringify({ error: describe(err) })}\n`)
  process.exitCode = 1
}
