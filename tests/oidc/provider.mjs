// A real OpenID provider for tests: npm `oidc-provider` (a certified
// implementation) on 127.0.0.1, with one confidential client, PKCE required,
// a signing key generated at start, and the development login and consent
// pages (plain HTML forms) enabled, so a test can sign in over HTTP.
//
//   node tests/oidc/provider.mjs --port 0 --client-id ID --client-secret SECRET \
//       --redirect-uri URI [--email-domain example.com]
//
// Each option may come from the environment instead: OIDC_PORT,
// OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI, OIDC_EMAIL_DOMAIN.
// The first line on stdout is `listening http://127.0.0.1:PORT` (the issuer).
// Any login name is accepted with any password: login `alice` is the
// account `alice` with e-mail `alice@<email domain>`, verified.

import { createServer } from 'node:http';
import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { parseArgs } from 'node:util';

// oidc-provider prints notices with console.info; keep stdout for our line.
console.info = (...args) => console.error(...args);

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: process.env.OIDC_PORT ?? '0' },
    'client-id': { type: 'string', default: process.env.OIDC_CLIENT_ID },
    'client-secret': { type: 'string', default: process.env.OIDC_CLIENT_SECRET },
    'redirect-uri': { type: 'string', default: process.env.OIDC_REDIRECT_URI },
    'email-domain': { type: 'string', default: process.env.OIDC_EMAIL_DOMAIN ?? 'example.com' },
  },
});
for (const required of ['client-id', 'client-secret', 'redirect-uri']) {
  if (!args[required]) {
    console.error(`provider.mjs: --${required} is required`);
    process.exit(2);
  }
}

// Imported after console.info is redirected (module evaluation prints).
const { default: Provider } = await import('oidc-provider');

const server = createServer();
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(args.port), '127.0.0.1', resolve);
});
const issuer = `http://127.0.0.1:${server.address().port}`;

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: args['client-id'],
    client_secret: args['client-secret'],
    redirect_uris: [args['redirect-uri']],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  pkce: { required: () => true },
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['name'],
  },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          email: `${id}@${args['email-domain']}`,
          email_verified: true,
          name: `${id[0].toUpperCase()}${id.slice(1)} Example`,
        };
      },
    };
  },
  // Errors as plain text: a test reads them in its failure message.
  async renderError(ctx, out) {
    ctx.type = 'text';
    ctx.body = JSON.stringify(out);
  },
});

server.on('request', provider.callback());
process.stdout.write(`listening ${issuer}\n`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
// Exit with the test that started us: its end of stdin closes when it dies.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
