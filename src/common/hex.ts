// Hex digits read from character codes, for the parsers that walk a string without slicing it (IPv6 groups, `%XX`
// escapes in a request path).

/** The value of the hex digit with character code `c` (either case), or -1 when it is not one. */
export function hexDigitValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}
