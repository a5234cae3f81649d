// Envoy's normalize_path (Chromium CanonicalizePath): cases from envoy test/common/http/path_utility_test.cc and
// istio tests/integration/security/authz_test.go TestAuthz_PathNormalization, plus the character classes of
// Chromium's path table.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { normalizePath } from '../../src/waypoint/http/path.js';

function table(cases: readonly (readonly [string, string])[]): void {
  for (const [input, want] of cases) {
    it(`${JSON.stringify(input)} → ${JSON.stringify(want)}`, () => assert.equal(normalizePath(input), want));
  }
}

describe('normalizePath: already normal paths stay as they are', () => {
  table([
    ['/', '/'],
    ['/xyz', '/xyz'],
    ['/x/y/z', '/x/y/z'],
    ['/A/B/C', '/A/B/C'], // no case normalization
    ['/index.html', '/index.html'],
    ['/a/..b', '/a/..b'], // dots that are part of a name
    ['/a/.b/', '/a/.b/'],
    ['/a/b.', '/a/b.'],
    ['/a/b..', '/a/b..'],
    ['//a//b/', '//a//b/'], // merge_slashes is off
    ['/a/%2F%2f/c', '/a/%2F%2f/c'], // escaped slashes are kept, hex case too
    ['/%5c%25', '/%5c%25'],
    ['/%c0%af', '/%c0%af'],
    ['/a%3Ab', '/a%3Ab'], // ':' is allowed plainly but its escape is kept
    ['/100%', '/100%'], // a bare '%' passes through
    ['/a%zzb', '/a%zzb'],
    ["/a!$&'()*+,;=:@[]b", "/a!$&'()*+,;=:@[]b"],
  ]);
});

describe('normalizePath: dot segments (RFC 3986 remove_dot_segments)', () => {
  table([
    ['/a/b/../c', '/a/c'],
    ['/a/b/./c', '/a/b/c'],
    ['/a/b/../../../../c', '/c'], // never above the root
    ['/../a/b', '/a/b'],
    ['/./a/b', '/a/b'],
    ['/..', '/'],
    ['/.', '/'],
    ['/a/..', '/'],
    ['/a/b/..', '/a/'],
    ['/a/.', '/a/'],
    ['/a//../b', '/a/b'],
    ['/a/b/%2E%2E/c', '/a/c'],
    ['/a/b/%2e%2e/c', '/a/c'],
    ['/a/b/%2E./c', '/a/c'],
    ['/a/b/.%2e/c', '/a/c'],
    ['/a/b/%2E/c', '/a/b/c'],
    ['/a/..\\c', '/c'], // a backslash is a slash
    ['/a\\b', '/a/b'],
    ['/a\\.\\b', '/a/b'],
  ]);
});

describe('normalizePath: TestAuthz_PathNormalization requests', () => {
  table([
    ['/public', '/public'],
    ['/public/../public', '/public'],
    ['/private', '/private'],
    ['/public/../private', '/private'],
    ['/public/./../private', '/private'],
    ['/public/.././private', '/private'],
    ['/public/%2E%2E/private', '/private'],
    ['/public/%2e%2e/private', '/private'],
    ['/public/%2E/%2E%2E/private', '/private'],
    ['/public/%2e/%2e%2e/private', '/private'],
  ]);
});

describe('normalizePath: percent-escapes of unreserved characters are decoded, others kept', () => {
  table([
    ['/%41%62%7E%2D%5F%30', '/Ab~-_0'],
    ['/a%2Eb', '/a.b'],
    ['/a%2e', '/a.'],
    ['/%2fa', '/%2fa'],
    ['/%20', '/%20'],
    // A decode that would complete an earlier bare '%' into an escape escapes that '%' (Chromium nested escapes).
    ['/%%300', '/%2500'],
    ['/%%30%30', '/%2500'],
  ]);
});

describe('normalizePath: characters not allowed in a path are escaped', () => {
  table([
    ['/a b', '/a%20b'],
    ['/a"b', '/a%22b'],
    ['/a<b>', '/a%3Cb%3E'],
    ['/a^b', '/a%5Eb'],
    ['/a`b', '/a%60b'],
    ['/a{b}|', '/a%7Bb%7D%7C'],
    ['/a\tb', '/a%09b'],
    ['/a\x7f', '/a%7F'],
    ['/caf\u00e9', '/caf%E9'], // a latin1-read byte
    ['/\u20ac', '/%E2%82%AC'], // text: its UTF-8 bytes
    ['/\ud83d\ude00', '/%F0%9F%98%80'],
  ]);
});

describe('normalizePath: query and fragment are kept as sent', () => {
  table([
    ['/a/../b?x=/../y', '/b?x=/../y'],
    ['/a/./b#frag/../x', '/a/b#frag/../x'],
    ['/a b?c d', '/a%20b?c d'],
    ['/a?', '/a?'],
    ['/?q=%2E%2E', '/?q=%2E%2E'],
    ['/x/..?', '/?'],
  ]);
});

describe('normalizePath: paths Envoy rejects', () => {
  for (const input of ['/xyz/.%00../abc', '/xyz/%00.%00./abc', '/xyz/AAAAA%%0000/abc', '/a\u0000b', 'a/b/../c', '..', '', '*', 'http://h/p']) {
    it(`${JSON.stringify(input)} is rejected`, () => assert.equal(normalizePath(input), undefined));
  }
});

describe('normalizePath: properties over generated paths', () => {
  const alphabet = ['/', '/', '.', '.', '..', '%', '%2e', '%2E', '%2F', '%7e', '%5F', '%4', '%%3', '2', 'e', 'a', 'b', '0', '\\', ' ', '~', '\u00e9', '?', '#'];
  let seed = 7;
  const random = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const paths: string[] = [];
  for (let k = 0; k < 20000; k++) {
    let p = '/';
    for (let i = random(12); i > 0; i--) p += alphabet[random(alphabet.length)];
    paths.push(p);
  }

  it('normalizing twice changes nothing more', () => {
    for (const p of paths) {
      const once = normalizePath(p);
      if (once !== undefined) assert.equal(normalizePath(once), once, JSON.stringify(p));
    }
  });

  it('a path returned unchanged has nothing left to normalize', () => {
    const dotSegment = /\/(?:\.|%2e){1,2}(?=\/|$)/i;
    const mustEscape = /[\\ "<>^`{|}\x00-\x1f\x7f-\uffff]/;
    const unreservedEscape = /%(?:3[0-9]|4[1-9a-f]|5[0-9a]|6[1-9a-f]|7[0-9a]|2d|2e|5f|7e)/i;
    let unchanged = 0;
    for (const p of paths) {
      const end = p.search(/[?#]/);
      const pathPart = end < 0 ? p : p.slice(0, end);
      if (normalizePath(p) !== p) continue;
      unchanged++;
      assert.ok(!dotSegment.test(pathPart) && !mustEscape.test(pathPart) && !unreservedEscape.test(pathPart), JSON.stringify(p));
    }
    assert.ok(unchanged > 1000, `only ${unchanged} generated paths were already normal`);
  });
});
