// The waypoint's :path normalization: Envoy's `normalize_path: true` (meshConfig pathNormalization BASE), which is
// Chromium's url::CanonicalizePath applied to the part before the query (envoy source/common/http/path_utility.cc,
// source/common/chromium_url/url_canon_path.cc). Besides RFC 3986 dot-segment removal it turns `\` into `/`,
// decodes percent-escaped unreserved characters (`%2E`, `%41`, `%7E`), escapes characters not allowed in a path
// (space, `"`, `<`, non-ASCII…) and rejects NUL. Slashes are never merged and `%2F`/`%5C` stay as sent. Authorization
// and routing both see the normalized path, and it is what goes upstream.
import { hexDigitValue } from '../../common/hex.js';

const SPECIAL = 1; // needs handling beyond copying
const ESCAPE = 2 | SPECIAL; // written as %XX
const UNESCAPE = 4; // written plainly when it arrives percent-escaped
const INVALID = 8 | SPECIAL; // fails the whole path

/** Chromium's kPathCharLookup for ASCII; every byte ≥ 0x80 is ESCAPE. */
const PATH_CHARS = (() => {
  const t = new Uint8Array(0x80);
  t.fill(ESCAPE, 0x01, 0x20); // control characters
  t[0x00] = INVALID;
  t[0x7f] = ESCAPE;
  for (const c of ` "#%<>?\\^\`{|}`) t[c.charCodeAt(0)] = ESCAPE;
  for (const c of '-_~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz') t[c.charCodeAt(0)] = UNESCAPE;
  t[0x2e] = SPECIAL; // '.'
  return t;
})();

const SLASH = 0x2f;
const BACKSLASH = 0x5c;
const DOT = 0x2e;
const PERCENT = 0x25;
const HEX_DIGITS = '0123456789ABCDEF';

function charFlags(c: number): number {
  return c < 0x80 ? PATH_CHARS[c]! : ESCAPE;
}

function isUrlSlash(c: number): boolean {
  return c === SLASH || c === BACKSLASH;
}

/** Length of a dot at s[i]: 1 for `.`, 3 for `%2e`/`%2E`, else 0. */
function dotLength(s: string, i: number, end: number): number {
  if (s.charCodeAt(i) === DOT) return 1;
  if (i + 3 <= end && s.charCodeAt(i) === PERCENT && s.charCodeAt(i + 1) === 0x32 && (s.charCodeAt(i + 2) | 0x20) === 0x65) return 3;
  return 0;
}

/** Where the query or fragment of a :path starts, or its length when it has neither: the end of Envoy's url_path. */
export function urlPathEnd(path: string): number {
  for (let i = 0; i < path.length; i++) {
    const c = path.charCodeAt(i);
    if (c === 0x3f /* ? */ || c === 0x23 /* # */) return i;
  }
  return path.length;
}

/**
 * Normalizes a request :path as Envoy does before filters run. Returns the input itself when nothing changes (the
 * common case) and undefined for a path Envoy answers with 400 `path_normalization_failed`: one with a NUL, raw or as
 * `%00`. Only targets starting with `/` come here: the proxy answers any other (`OPTIONS *`, say) with Envoy's 404
 * `absolute_path_rejected` before normalizing, and this returns undefined for one all the same. Query and fragment
 * are kept as sent.
 */
export function normalizePath(path: string): string | undefined {
  if (path.charCodeAt(0) !== SLASH) return undefined;
  const end = urlPathEnd(path);
  if (!needsCanonicalization(path, end)) return path;
  const canonical = canonicalize(path, end);
  if (canonical === undefined) return undefined;
  if (canonical.length === end && path.startsWith(canonical)) return path;
  return end === path.length ? canonical : canonical + path.slice(end);
}

/** False when canonicalization provably copies path[0, end) unchanged: no escapes, `\`, odd bytes or dot segments. */
function needsCanonicalization(path: string, end: number): boolean {
  for (let i = 1; i < end; i++) {
    const c = path.charCodeAt(i);
    const flags = charFlags(c);
    if ((flags & SPECIAL) === 0) continue;
    if (c !== DOT) return true;
    if (path.charCodeAt(i - 1) !== SLASH) continue;
    // `.` or `..` as a whole segment.
    if (i + 1 === end) return true;
    const next = path.charCodeAt(i + 1);
    if (next === SLASH) return true;
    if (next === DOT && (i + 2 === end || path.charCodeAt(i + 2) === SLASH)) return true;
  }
  return false;
}

/** Chromium's DoPartialPath over path[0, end), which starts with '/'; undefined when it reports failure. */
function canonicalize(path: string, end: number): string | undefined {
  const out: number[] = [];
  let ok = true;
  // Output index of a '%' that did not start a valid escape, for the nested-escape check.
  let lastInvalidPercent = Number.MIN_SAFE_INTEGER;
  for (let i = 0; i < end; i++) {
    const c = path.charCodeAt(i);
    const flags = charFlags(c);
    if ((flags & SPECIAL) === 0) {
      out.push(c);
      continue;
    }
    const dot = dotLength(path, i, end);
    if (dot > 0) {
      if (out[out.length - 1] === SLASH) {
        // A dot right after a slash: the current directory, the parent, or just part of a name.
        const after = i + dot;
        if (after === end || isUrlSlash(path.charCodeAt(after))) {
          i += dot + (after === end ? 0 : 1) - 1;
          continue;
        }
        const second = dotLength(path, after, end);
        const afterSecond = after + second;
        if (second > 0 && (afterSecond === end || isUrlSlash(path.charCodeAt(afterSecond)))) {
          backUpToPreviousSlash(out);
          i += dot + second + (afterSecond === end ? 0 : 1) - 1;
          continue;
        }
      }
      out.push(DOT);
      i += dot - 1;
    } else if (c === BACKSLASH) {
      out.push(SLASH);
    } else if (c === PERCENT) {
      const value = i + 3 <= end ? decodeHexPair(path.charCodeAt(i + 1), path.charCodeAt(i + 2)) : -1;
      if (value < 0) {
        // Not an escape: kept as a bare '%', remembered so a later unescape cannot complete it into one.
        lastInvalidPercent = out.length;
        out.push(PERCENT);
      } else if (charFlags(value) & UNESCAPE) {
        out.push(value);
        i += 2;
        if (lastInvalidPercent >= out.length - 3) escapeNestedPercent(path, i + 1, end, lastInvalidPercent, out);
      } else {
        // Escapes of anything else are kept exactly, hex case included.
        out.push(PERCENT, path.charCodeAt(i + 1), path.charCodeAt(i + 2));
        i += 2;
        if ((charFlags(value) & INVALID) === INVALID) ok = false;
      }
    } else if (c >= 0x100) {
      i = appendUtf8Escaped(path, i, end, out);
    } else {
      if ((flags & INVALID) === INVALID) ok = false;
      appendEscaped(c, out);
    }
  }
  return ok ? fromCharCodes(out) : undefined;
}

function decodeHexPair(a: number, b: number): number {
  const hi = hexDigitValue(a);
  const lo = hexDigitValue(b);
  return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

/** Drops the last segment: the output ends with '/', keep everything up to the slash before it (never above root). */
function backUpToPreviousSlash(out: number[]): void {
  let i = out.length - 1;
  if (i === 0) return;
  i--;
  while (out[i] !== SLASH && i > 0) i--;
  out.length = i + 1;
}

/**
 * Chromium's CheckForNestedEscapes: after unescaping within two characters of an earlier bare '%', the output could
 * now read as an escape (`%%300` → `%00`); that '%' becomes `%25` so re-canonicalizing cannot change the meaning.
 */
function escapeNestedPercent(path: string, next: number, end: number, percentAt: number, out: number[]): void {
  const length = out.length;
  const lastUnescaped = out[length - 1]!;
  const appendNext = percentAt === length - 2;
  if (appendNext) {
    if (next === end || path.charCodeAt(next) >= 0x80) return;
    out.push(path.charCodeAt(next));
  }
  if (percentAt + 3 <= out.length && decodeHexPair(out[percentAt + 1]!, out[percentAt + 2]!) >= 0) {
    if (!appendNext) out.push(out[percentAt + 1]!);
    out[percentAt + 1] = 0x32; // '2'
    out[percentAt + 2] = 0x35; // '5'
    out.push(lastUnescaped);
  } else if (appendNext) {
    out.length = length;
  }
}

function appendEscaped(byte: number, out: number[]): void {
  out.push(PERCENT, HEX_DIGITS.charCodeAt(byte >> 4), HEX_DIGITS.charCodeAt(byte & 0xf));
}

/**
 * Characters above U+00FF cannot come from bytes read as latin1, so they are text: escape their UTF-8 bytes (a lone
 * surrogate as U+FFFD). Returns the index of the last code unit consumed.
 */
function appendUtf8Escaped(path: string, i: number, end: number, out: number[]): number {
  let cp = path.charCodeAt(i);
  if (cp >= 0xd800 && cp <= 0xdbff && i + 1 < end) {
    const low = path.charCodeAt(i + 1);
    if (low >= 0xdc00 && low <= 0xdfff) {
      cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
      i++;
    }
  }
  if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
  const bytes = new TextEncoder().encode(String.fromCodePoint(cp));
  for (const b of bytes) appendEscaped(b, out);
  return i;
}

function fromCharCodes(codes: number[]): string {
  let s = '';
  // Chunked: spreading a very long array into one call could exceed the engine's argument limit.
  for (let i = 0; i < codes.length; i += 8192) s += String.fromCharCode(...codes.slice(i, i + 8192));
  return s;
}
