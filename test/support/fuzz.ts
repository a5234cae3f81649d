// Deterministic fuzzing for the parsers of untrusted input: a seeded generator, mutations of valid seeds, and an
// iteration count the normal suite keeps small (a few seconds per fuzzer) and `npm run fuzz` raises.
//
//   AMBIT_FUZZ_ITERATIONS  iterations per fuzzer (default: each fuzzer's own, sized for the normal suite)
//   AMBIT_FUZZ_SEED        the generator's seed (default 42); a failure names the seed and iteration to replay it

/** The iteration count: AMBIT_FUZZ_ITERATIONS when set, else the fuzzer's default for the normal suite. */
export function fuzzIterations(normal: number): number {
  const raw = process.env.AMBIT_FUZZ_ITERATIONS;
  if (raw === undefined || raw === '') return normal;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) throw new Error(`AMBIT_FUZZ_ITERATIONS: expected a positive integer, got "${raw}"`);
  return n;
}

export function fuzzSeed(): number {
  const raw = process.env.AMBIT_FUZZ_SEED;
  return raw ? Number(raw) >>> 0 : 42;
}

/** A linear congruential generator: the same seed gives the same inputs on every machine. */
export class FuzzRandom {
  constructor(private state: number = fuzzSeed()) {}

  /** An integer in [0, n). */
  int(n: number): number {
    this.state = (Math.imul(this.state, 1103515245) + 12345) >>> 0;
    // The high bits of an LCG are the random ones.
    return Math.floor(((this.state >>> 8) / 2 ** 24) * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  chance(p: number): boolean {
    return this.int(1_000_000) < p * 1_000_000;
  }

  /** `length` characters drawn from `alphabet`. */
  string(length: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }

  /**
   * A valid input with 1–4 random edits: a character replaced, inserted or deleted, a slice deleted or repeated,
   * a token from `tokens` (the format's special syntax) inserted, or the text cut short.
   */
  mutate(text: string, tokens: readonly string[], alphabet: string): string {
    let t = text;
    const edits = 1 + this.int(4);
    for (let e = 0; e < edits; e++) {
      const at = this.int(t.length + 1);
      switch (this.int(7)) {
        case 0:
          t = t.slice(0, at) + this.string(1, alphabet) + t.slice(at + 1);
          break;
        case 1:
          t = t.slice(0, at) + this.string(1 + this.int(8), alphabet) + t.slice(at);
          break;
        case 2:
          t = t.slice(0, at) + t.slice(at + 1 + this.int(16));
          break;
        case 3: {
          const len = 1 + this.int(Math.min(64, t.length - at + 1));
          t = t.slice(0, at + len) + t.slice(at, at + len).repeat(1 + this.int(4)) + t.slice(at + len);
          break;
        }
        case 4:
          t = t.slice(0, at) + this.pick(tokens) + t.slice(at);
          break;
        case 5:
          t = t.slice(0, at);
          break;
        default:
          t = t.slice(0, at) + t.slice(at).replace(/\n/, '\n' + ' '.repeat(this.int(6)));
      }
    }
    return t;
  }
}
