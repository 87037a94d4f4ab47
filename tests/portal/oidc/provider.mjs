// A real OpenID Provider on 127.0.0.1 for the portal's tests: panva's oidc-provider (OpenID
// Certified), its own sign-in and consent pages (devInteractions: any password, the login names
// the account), signing keys made at start, PKCE required. Configured by one JSON argument:
//   {"client_id", "client_secret", "redirect_uris": [...], "accounts": {login: {claims...}}}
// It listens on an ephemeral port and prints {"issuer": "http://127.0.0.1:<port>"} on stdout.
// It exits when its standard input closes, so a test that dies never leaves it behind.
import http from 'node:http';
import { generateKeyPair, exportJWK } from 'jose';
import Provider from 'oidc-provider';

const conf = JSON.parse(process.argv[2]);
const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;
const { privateKey } = await generateKeyPair('RS256', { extractable: true });
const jwk = { ...(await exportJWK(privateKey)), alg: 'RS256', use: 'sig', kid: 'test-rs256' };

const provider = new Provider(issuer, {
  clients: [{
    client_id: conf.client_id,
    client_secret: conf.client_secret,
    redirect_uris: conf.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys: [jwk] },
  claims: { openid: ['sub'], email: ['email'], profile: ['name'], groups: ['groups'] },
  scopes: ['openid', 'email', 'profile', 'groups'],
  conformIdTokenClaims: false, // the scopes' claims go into the ID token, as most enterprise IdPs do
  pkce: { required: () => true },
  cookies: { keys: ['phmx-test-oidc-cookie-key'] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const claims = conf.accounts[id];
    if (!claims) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...claims }; } };
  },
});
provider.proxy = false;
server.on('request', provider.callback());
process.stdout.write(`${JSON.stringify({ issuer })}\n`);
process.stdin.resume();
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.on('close', () => process.exit(0));
