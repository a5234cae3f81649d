// kubectl's label selectors (`ambit get pods -l app=web,tier notin (cache)`), parsed and matched the way
// k8s.io/apimachinery/pkg/labels does on the API server, with its error messages: users paste selectors they already
// use with kubectl, and a typo should read the same as it does there.

import { goQuote, isQualifiedName, isValidLabelValue } from './kube-validation.js';

/** The operators of k8s.io/apimachinery/pkg/selection, spelled as there (they appear in error messages). */
export type Operator = 'in' | 'notin' | '=' | '==' | '!=' | 'exists' | '!' | 'gt' | 'lt';

/** One comma-separated part of a selector; a selector matches when all of its requirements do. */
export interface Requirement {
  key: string;
  operator: Operator;
  /** Sorted and without duplicates, as the API server keeps them; empty for `exists` and `!`. */
  values: string[];
}

export interface LabelSelector {
  requirements: Requirement[];
  matches(labels: Record<string, string> | undefined): boolean;
}

const BINARY_OPERATORS: Operator[] = ['in', 'notin', '=', '==', '!=', 'gt', 'lt'];

/** Parses a selector; the empty selector matches everything. Throws kubectl's (the API server's) message. */
export function parseSelector(text: string): LabelSelector {
  const requirements = new Parser(lex(text)).parse();
  return { requirements, matches: (labels) => requirements.every((r) => requirementMatches(r, labels ?? {})) };
}

function requirementMatches(r: Requirement, labels: Record<string, string>): boolean {
  const has = Object.hasOwn(labels, r.key);
  const value = labels[r.key]!;
  switch (r.operator) {
    case 'in':
    case '=':
    case '==':
      return has && r.values.includes(value);
    case 'notin':
    case '!=':
      return !has || !r.values.includes(value);
    case 'exists':
      return has;
    case '!':
      return !has;
    case 'gt':
    case 'lt': {
      const actual = has ? parseInt64(value) : undefined;
      const wanted = parseInt64(r.values[0]!);
      if (actual === undefined || wanted === undefined) return false;
      return r.operator === 'gt' ? actual > wanted : actual < wanted;
    }
  }
}

// ---- lexer ---------------------------------------------------------------------------------------------------------

type TokenType = 'end' | 'identifier' | '(' | ')' | ',' | '!' | '=' | '==' | '!=' | '>' | '<' | 'in' | 'notin';
interface Token {
  type: TokenType;
  literal: string;
}

const SYMBOLS = new Set<string>(['(', ')', ',', '!', '=', '==', '!=', '>', '<']);
const isSpecial = (ch: string) => '=!(),><'.includes(ch);
const isSpace = (ch: string) => ch === ' ' || ch === '\t' || ch === '\r' || ch === '\n';

/** Splits a selector into tokens; the longest symbol wins (`!=` over `!`), `in`/`notin` are keywords. */
function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  for (;;) {
    while (i < text.length && isSpace(text[i]!)) i++;
    if (i >= text.length) {
      tokens.push({ type: 'end', literal: '' });
      return tokens;
    }
    if (isSpecial(text[i]!)) {
      const two = text.slice(i, i + 2);
      const symbol = SYMBOLS.has(two) ? two : text[i]!;
      tokens.push({ type: symbol as TokenType, literal: symbol });
      i += symbol.length;
      continue;
    }
    const start = i;
    while (i < text.length && !isSpecial(text[i]!) && !isSpace(text[i]!)) i++;
    const word = text.slice(start, i);
    tokens.push({ type: word === 'in' || word === 'notin' ? word : 'identifier', literal: word });
  }
}

// ---- parser --------------------------------------------------------------------------------------------------------

/**
 * Recursive descent over the tokens, as apimachinery's parser. Where a value is expected (`Values` context there),
 * `in` and `notin` are ordinary identifiers, so `x in (in)` and `in=notin` are valid.
 */
class Parser {
  private position = 0;
  constructor(private readonly tokens: Token[]) {}

  parse(): Requirement[] {
    const requirements: Requirement[] = [];
    for (;;) {
      const next = this.peek(true);
      if (next.type === 'end') return requirements;
      if (next.type !== 'identifier' && next.type !== '!') {
        throw new Error(`found '${next.literal}', expected: !, identifier, or 'end of string'`);
      }
      try {
        requirements.push(this.requirement());
      } catch (err) {
        throw new Error(`unable to parse requirement: ${(err as Error).message}`);
      }
      const after = this.take(true);
      if (after.type === 'end') return requirements;
      if (after.type !== ',') throw new Error(`found '${after.literal}', expected: ',' or 'end of string'`);
      const following = this.peek(true);
      if (following.type !== 'identifier' && following.type !== '!') {
        throw new Error(`found '${following.literal}', expected: identifier after ','`);
      }
    }
  }

  private requirement(): Requirement {
    let token = this.take(true);
    const negated = token.type === '!';
    if (negated) token = this.take(true);
    if (token.type !== 'identifier') throw new Error(`found '${token.literal}', expected: identifier`);
    const key = token.literal;
    const keyProblems = isQualifiedName(key);
    if (keyProblems.length) throw new Error(`<nil>: Invalid value: ${goQuote(key)}: ${keyProblems.join('; ')}`);
    const next = this.peek(true).type;
    // `!key` ends the requirement even when more follows: the caller then reports what it found instead of `,`.
    if (negated) return { key, operator: '!', values: [] };
    if (next === 'end' || next === ',') return { key, operator: 'exists', values: [] };
    const operator = this.operator();
    const values = operator === 'in' || operator === 'notin' ? this.valueSet() : [this.exactValue()];
    return newRequirement(key, operator, [...new Set(values)].sort());
  }

  private operator(): Operator {
    const token = this.take(false);
    switch (token.type) {
      case 'in':
      case 'notin':
      case '=':
      case '==':
      case '!=':
        return token.type;
      case '>':
        return 'gt';
      case '<':
        return 'lt';
      default:
        throw new Error(`found '${token.literal}', expected: ${BINARY_OPERATORS.join(', ')}`);
    }
  }

  /** `(a,b,c)`; empty members (`(a,,b)`, `()`) stand for the empty value. */
  private valueSet(): string[] {
    const open = this.take(true);
    if (open.type !== '(') throw new Error(`found '${open.literal}' expected: '('`);
    const first = this.peek(true);
    if (first.type === ')') {
      this.take(true);
      return [''];
    }
    if (first.type !== 'identifier' && first.type !== ',') throw new Error(`found '${first.literal}', expected: ',', ')' or identifier`);
    const values: string[] = [];
    for (;;) {
      const token = this.take(true);
      if (token.type === 'identifier') {
        values.push(token.literal);
        const next = this.peek(true);
        if (next.type === ')') break;
        if (next.type !== ',') throw new Error(`found '${next.literal}', expected: ',' or ')'`);
      } else if (token.type === ',') {
        if (values.length === 0) values.push('');
        const next = this.peek(true);
        if (next.type === ')') {
          values.push('');
          break;
        }
        if (next.type === ',') {
          this.take(true);
          values.push('');
        }
      } else {
        throw new Error(`found '${token.literal}', expected: ',', or identifier`);
      }
    }
    this.take(true); // the `)` seen above
    return values;
  }

  /** The value after `=`, `==`, `!=`, `>` or `<`; nothing (end or `,`) is the empty value. */
  private exactValue(): string {
    const next = this.peek(true);
    if (next.type === 'end' || next.type === ',') return '';
    const token = this.take(true);
    if (token.type !== 'identifier') throw new Error(`found '${token.literal}', expected: identifier`);
    return token.literal;
  }

  private peek(asValue: boolean): Token {
    return this.asContext(this.tokens[this.position]!, asValue);
  }

  private take(asValue: boolean): Token {
    return this.asContext(this.tokens[this.position++]!, asValue);
  }

  private asContext(token: Token, asValue: boolean): Token {
    return asValue && (token.type === 'in' || token.type === 'notin') ? { type: 'identifier', literal: token.literal } : token;
  }
}

/** The checks of apimachinery's NewRequirement that a parsed requirement can still fail: the values. */
function newRequirement(key: string, operator: Operator, values: string[]): Requirement {
  const problems: string[] = [];
  if (operator === 'gt' || operator === 'lt') {
    values.forEach((v, i) => {
      if (parseInt64(v) === undefined) problems.push(`values[${i}]: Invalid value: ${goQuote(v)}: for 'Gt', 'Lt' operators, the value must be an integer`);
    });
  }
  values.forEach((v, i) => {
    const valueProblems = isValidLabelValue(v);
    if (valueProblems.length) problems.push(`values[${i}][${key}]: Invalid value: ${goQuote(v)}: ${valueProblems.join('; ')}`);
  });
  const unique = [...new Set(problems)];
  // apimachinery's aggregate error: one message as is, several in brackets.
  if (unique.length === 1) throw new Error(unique[0]);
  if (unique.length > 1) throw new Error(`[${unique.join(', ')}]`);
  return { key, operator, values };
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

/** strconv.ParseInt(s, 10, 64): an optional sign and decimal digits, within int64. */
function parseInt64(s: string): bigint | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = BigInt(s);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}
