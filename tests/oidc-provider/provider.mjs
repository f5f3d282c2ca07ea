// A real OpenID Connect provider (panva/oidc-provider) for keymanager's single-sign-on tests.
//
// Usage: node provider.mjs <config.json>   (or KM_OIDC_PROVIDER_CONFIG=<config.json>)
//
// The config file (JSON):
//   port                     listen port on 127.0.0.1; 0 = pick a free one
//   issuer                   optional issuer URL override (default http://127.0.0.1:<port>), for
//                            tests that put a proxy in front of the provider
//   clients                  [{ client_id, client_secret, redirect_uris, token_endpoint_auth_method? }]
//   accounts                 { "<login>": { name, email, preferred_username, groups, roles, ... } }
//                            (any login not listed signs in with only a `sub`)
//   jwks                     optional { keys: [private JWKs] }; without it a fresh RSA key is
//                            generated at every start, so a restart rotates the signing key
//   conform_id_token_claims  optional, default false: when false the ID token carries the profile,
//                            email, groups and roles claims itself; when true they are only
//                            released at the userinfo endpoint (oidc-provider's default)
//
// Sign-in uses oidc-provider's devInteractions pages (any password). PKCE is required for every
// client. Prints `oidc-provider listening on http://127.0.0.1:<port>` to stdout once it accepts
// requests (preceded by `oidc-provider issuer <issuer>` when the issuer is overridden).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { once } from 'node:events';

import Provider from 'oidc-provider';

const configPath = process.argv[2] ?? process.env.KM_OIDC_PROVIDER_CONFIG;
if (!configPath) {
  console.error('usage: node provider.mjs <config.json> (or set KM_OIDC_PROVIDER_CONFIG)');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));

function freshSigningKeys() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  return {
    keys: [{ ...jwk, kid: randomBytes(12).toString('base64url'), alg: 'RS256', use: 'sig' }],
  };
}

const accounts = config.accounts ?? {};
const clients = (config.clients ?? []).map((client) => ({
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
  ...client,
}));

const server = createServer();
server.listen(config.port ?? 0, '127.0.0.1');
await once(server, 'listening');
const { port } = server.address();
const listenUrl = `http://127.0.0.1:${port}`;
const issuer = config.issuer ?? listenUrl;

const provider = new Provider(issuer, {
  clients,
  jwks: config.jwks ?? freshSigningKeys(),
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  conformIdTokenClaims: config.conform_id_token_claims ?? false,
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    groups: ['groups'],
    roles: ['roles', 'realm_access'],
  },
  scopes: ['openid', 'offline_access', 'profile', 'email', 'groups', 'roles'],
  features: {
    devInteractions: { enabled: true },
    userinfo: { enabled: true },
  },
  pkce: { required: () => true },
  async findAccount(_ctx, id) {
    const claims = accounts[id] ?? {};
    return {
      accountId: id,
      async claims() {
        return { ...claims, sub: id };
      },
    };
  },
});
server.on('request', provider.callback());

process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});

if (issuer !== listenUrl) {
  console.log(`oidc-provider issuer ${issuer}`);
}
console.log(`oidc-provider listening on ${listenUrl}`);
