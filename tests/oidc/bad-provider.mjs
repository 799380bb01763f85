// An OpenID provider that mints bad ID tokens on purpose, for relying-party
// negative tests. Plain node:http and node:crypto, no framework.
//
//   node tests/oidc/bad-provider.mjs --port 0 --client-id ID --client-secret SECRET \
//       [--email-domain example.com]
//
// (or OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_EMAIL_DOMAIN). The
// first line on stdout is `listening http://127.0.0.1:PORT` (the issuer).
//
// Discovery and a JWKS of several RSA keys, each with a `kid`. The
// authorization endpoint takes one extra parameter, `scenario` (default
// `ok`), and redirects straight back to `redirect_uri` with
// `code=<scenario>.<n>` and the request's `state`; it remembers the nonce,
// PKCE challenge and redirect URI under that code. The token endpoint checks
// the client credentials, the code (single use), the redirect URI and the
// PKCE verifier like a real provider, then returns an ID token crafted per
// scenario:
//
//   ok                    correct in every respect
//   wrong_aud             `aud` is another client
//   wrong_iss             `iss` is another issuer
//   bad_signature         signed by a key that is not in the JWKS, under a published `kid`
//   no_kid                correctly signed, but no `kid` while the JWKS has several keys
//   nonce_mismatch        `nonce` is not the one of the authorization request
//   alg_none              `alg: none`, no signature
//   expired               `exp` ten minutes ago
//   email_outside_domain  e-mail address in another domain
//   unverified_email      `email_verified: false`
//   no_email              no `email` claim (and no user-info endpoint to ask)

import { createServer } from 'node:http';
import { createHash, generateKeyPairSync, randomBytes, sign, timingSafeEqual } from 'node:crypto';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
    'client-id': { type: 'string', default: process.env.OIDC_CLIENT_ID },
    'client-secret': { type: 'string', default: process.env.OIDC_CLIENT_SECRET },
    'email-domain': { type: 'string', default: process.env.OIDC_EMAIL_DOMAIN ?? 'example.com' },
  },
});
for (const required of ['client-id', 'client-secret']) {
  if (!args[required]) {
    console.error(`bad-provider.mjs: --${required} is required`);
    process.exit(2);
  }
}
const clientId = args['client-id'];
const clientSecret = args['client-secret'];
const domain = args['email-domain'];

const SCENARIOS = new Set([
  'ok', 'wrong_aud', 'wrong_iss', 'bad_signature', 'no_kid', 'nonce_mismatch',
  'alg_none', 'expired', 'email_outside_domain', 'unverified_email', 'no_email',
]);

function rsaKey(kid) {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, privateKey, jwk: { ...publicKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' } };
}
// Published keys: several, so a token without `kid` is ambiguous.
const keys = [rsaKey('key-1'), rsaKey('key-2'), rsaKey('key-3')];
// Never published.
const rogue = rsaKey('key-1');

const b64url = (data) => Buffer.from(data).toString('base64url');

function jwt(header, claims, privateKey) {
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = privateKey ? sign('sha256', Buffer.from(input), privateKey).toString('base64url') : '';
  return `${input}.${signature}`;
}

function idToken(scenario, issuer, nonce) {
  const now = Math.floor(Date.now() / 1000);
  const claims = {
    iss: issuer,
    sub: 'bad-provider-alice',
    aud: clientId,
    iat: now,
    exp: now + 300,
    nonce,
    email: `alice@${domain}`,
    email_verified: true,
    name: 'Alice Example',
  };
  let header = { alg: 'RS256', typ: 'JWT', kid: keys[0].kid };
  let key = keys[0].privateKey;
  switch (scenario) {
    case 'ok': break;
    case 'wrong_aud': claims.aud = 'someone-else'; break;
    case 'wrong_iss': claims.iss = 'https://evil.example.com'; break;
    case 'bad_signature': key = rogue.privateKey; break;
    case 'no_kid': delete header.kid; break;
    case 'nonce_mismatch': claims.nonce = `not-${nonce}`; break;
    case 'alg_none': header = { alg: 'none', typ: 'JWT' }; key = null; break;
    case 'expired': claims.iat = now - 900; claims.exp = now - 600; break;
    case 'email_outside_domain': claims.email = 'alice@outside.example.org'; break;
    case 'unverified_email': claims.email_verified = false; break;
    case 'no_email': delete claims.email; delete claims.email_verified; break;
    default: throw new Error(`unknown scenario ${scenario}`);
  }
  return jwt(header, claims, key);
}

/** code → { scenario, nonce, challenge, redirectUri } */
const codes = new Map();
let counter = 0;

function json(res, status, body, headers = {}) {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function tokenError(res, error, description, status = 400) {
  json(res, status, { error, error_description: description });
}

function sameSecret(a, b) {
  const ha = createHash('sha256').update(a).digest();
  const hb = createHash('sha256').update(b).digest();
  return timingSafeEqual(ha, hb);
}

function clientAuthenticated(req, form) {
  const header = req.headers.authorization ?? '';
  if (header.startsWith('Basic ')) {
    // RFC 6749 §2.3.1: both parts form-urlencoded, then joined by `:`.
    const decoded = Buffer.from(header.slice(6), 'base64').toString();
    const colon = decoded.indexOf(':');
    if (colon < 0) return false;
    const [id, secret] = [decoded.slice(0, colon), decoded.slice(colon + 1)]
      .map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    return id === clientId && sameSecret(secret, clientSecret);
  }
  return form.get('client_id') === clientId && sameSecret(form.get('client_secret') ?? '', clientSecret);
}

async function readBody(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Buffer.concat(chunks).toString();
}

const server = createServer(async (req, res) => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const url = new URL(req.url, issuer);
  try {
    if (req.method === 'GET' && url.pathname === '/.well-known/openid-configuration') {
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'client_secret_post'],
        code_challenge_methods_supported: ['S256'],
        scopes_supported: ['openid', 'email', 'profile'],
      });
    }
    if (req.method === 'GET' && url.pathname === '/jwks') {
      return json(res, 200, { keys: keys.map((key) => key.jwk) });
    }
    if (req.method === 'GET' && url.pathname === '/authorize') {
      const p = url.searchParams;
      const scenario = p.get('scenario') ?? 'ok';
      const problems = [];
      if (!SCENARIOS.has(scenario)) problems.push(`unknown scenario ${scenario}`);
      if (p.get('client_id') !== clientId) problems.push('client_id');
      if (p.get('response_type') !== 'code') problems.push('response_type');
      if (!(p.get('scope') ?? '').split(' ').includes('openid')) problems.push('scope');
      if (p.get('code_challenge_method') !== 'S256' || !p.get('code_challenge')) problems.push('pkce');
      if (!p.get('nonce')) problems.push('nonce');
      if (!p.get('state')) problems.push('state');
      if (!p.get('redirect_uri')) problems.push('redirect_uri');
      if (problems.length) return json(res, 400, { error: 'invalid_request', problems });
      counter += 1;
      const code = `${scenario}.${counter}`;
      codes.set(code, {
        scenario,
        nonce: p.get('nonce'),
        challenge: p.get('code_challenge'),
        redirectUri: p.get('redirect_uri'),
      });
      const back = new URL(p.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', p.get('state'));
      res.writeHead(303, { location: back.toString() });
      return res.end();
    }
    if (req.method === 'POST' && url.pathname === '/token') {
      const form = new URLSearchParams(await readBody(req));
      if (!clientAuthenticated(req, form)) return tokenError(res, 'invalid_client', 'client authentication failed', 401);
      if (form.get('grant_type') !== 'authorization_code') return tokenError(res, 'unsupported_grant_type', 'code only');
      const grant = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      if (!grant) return tokenError(res, 'invalid_grant', 'unknown or used code');
      if (form.get('redirect_uri') !== grant.redirectUri) return tokenError(res, 'invalid_grant', 'redirect_uri mismatch');
      const verifier = form.get('code_verifier') ?? '';
      if (createHash('sha256').update(verifier).digest('base64url') !== grant.challenge) {
        return tokenError(res, 'invalid_grant', 'PKCE verification failed');
      }
      return json(res, 200, {
        access_token: randomBytes(24).toString('base64url'),
        token_type: 'Bearer',
        expires_in: 300,
        id_token: idToken(grant.scenario, issuer, grant.nonce),
      });
    }
    json(res, 404, { error: 'not_found' });
  } catch (error) {
    json(res, 500, { error: 'server_error', error_description: String(error) });
  }
});

await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
process.stdout.write(`listening http://127.0.0.1:${server.address().port}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
// Exit with the test that started us: its end of stdin closes when it dies.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
