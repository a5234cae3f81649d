// The JWT checks without a waypoint: jwt_verify_lib's parse texts and claim rules, audience normalization, where tokens
// are found, and a fuzz of the parser (random and mutated input never throws, and never verifies).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { JWT_STATUS, JwtAuthenticator, parseJwt } from '../../src/waypoint/http/jwt.js';
import { JwksCache } from '../../src/waypoint/http/jwks.js';
import type { WaypointJwtRule } from '../../src/xds/types.js';
import { FuzzRandom, fuzzIterations, fuzzSeed } from '../support/fuzz.js';

const b64 = (o: unknown) => Buffer.from(typeof o === 'string' ? o : JSON.stringify(o)).toString('base64url');
const RS = b64({ alg: 'RS256' });

function rule(fields: Partial<WaypointJwtRule>): WaypointJwtRule {
  return { issuer: 'iss', audiences: [], jwksUri: '', jwks: '', fromHeaders: [], fromParams: [], fromCookies: [], outputPayloadToHeader: '', forwardOriginalToken: false, outputClaimToHeaders: [], timeoutMs: 0, spaceDelimitedClaims: [], ...fields };
}

describe('JWT parsing (jwt_verify_lib texts)', () => {
  const cases: [string, string, string][] = [
    ['one dot', 'a.b', JWT_STATUS.badForm],
    ['header base64', `a*b.${b64({})}.c2ln`, JWT_STATUS.headerBase64],
    ['payload JSON', `${RS}.${b64('[1')}.c2ln`, JWT_STATUS.payloadJson],
    ['payload base64', `${RS}.a*b.c2ln`, JWT_STATUS.payloadBase64],
    ['signature base64', `${RS}.${b64({})}.a*b`, JWT_STATUS.signatureBase64],
    ['kid not a string', `${b64({ alg: 'RS256', kid: 7 })}.${b64({})}.c2ln`, 'Jwt header [kid] field is not a string'],
    ['iss not a string', `${RS}.${b64({ iss: 1 })}.c2ln`, 'Jwt payload [iss] field is not a string'],
    ['negative exp', `${RS}.${b64({ exp: -1 })}.c2ln`, 'Jwt payload [exp] field is not a positive 64 bit integer'],
    ['aud not strings', `${RS}.${b64({ aud: [1] })}.c2ln`, 'Jwt payload [aud] field is not a string or string list'],
  ];
  for (const [what, token, text] of cases) it(what, () => assert.equal(parseJwt(token), text));

  it('a fractional exp is truncated, not refused', () => assert.equal(typeof parseJwt(`${RS}.${b64({ exp: 1.5 })}.c2ln`), 'object'));

  it('fuzz: random and mutated input never throws', () => {
    const rand = new FuzzRandom();
    const chars = 'eyJhbGciOiJSUzI1NiJ9.-_=+/ {}"[]:,\\\\\\u0000é';
    const valid = `${RS}.${b64({ iss: 'iss', aud: ['a'], exp: 1 })}.c2ln`;
    for (let i = 0, n = fuzzIterations(5000); i < n; i++) {
      const t = i % 2 ? rand.string(rand.int(120), chars) : rand.mutate(valid, ['.', '..', '=', b64('{'), b64({ exp: 'x' })], chars);
      const r = parseJwt(t);
      assert.ok(typeof r === 'string' || typeof r === 'object', `seed ${fuzzSeed()} iteration ${i}: ${JSON.stringify(t)}`);
    }
  });
});

describe('JwtAuthenticator', () => {
  it('audiences compare without scheme and trailing slash; exp 0 never expires; tokens after the prefix as Envoy extracts them', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const jwks = JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256' }] });
    const sign = (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'k' }).sign(privateKey);
    const a = new JwtAuthenticator([rule({ jwks, audiences: ['https://api.example.com'] })], new JwksCache(() => Promise.reject(new Error('none')), undefined));
    const req = (authorization: string, path = '/') => ({ path, header: (n: string) => (n === 'authorization' ? authorization : undefined) });
    const t = await sign({ iss: 'iss', aud: 'api.example.com/', exp: 0 });
    assert.equal((await a.authenticate(req(`Bearer ${t}`))).ok, true);
    assert.equal((await a.authenticate(req(`Bearer  ${t}`))).ok, true, 'a second space before the token');
    const empty = await a.authenticate(req('Bearer '));
    assert.deepEqual(empty.ok ? 'passed' : [empty.status, empty.body], [401, JWT_STATUS.badForm], 'a prefix with nothing after it is a malformed token');
    const wrongAud = await a.authenticate(req(`Bearer ${await sign({ iss: 'iss', aud: 'other' })}`));
    assert.deepEqual(wrongAud.ok ? 'passed' : [wrongAud.status, wrongAud.body], [403, JWT_STATUS.audience]);
    const emptyParam = await a.authenticate(req('', '/x?access_token='));
    assert.equal(emptyParam.ok, false, 'an empty access_token is a token, and a malformed one');
  });
});
