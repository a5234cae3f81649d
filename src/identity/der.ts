// Just enough DER (ITU-T X.690) to write a PKCS#10 certificate request with node:crypto alone, so the node proxy does
// not load an ASN.1 library for the one structure it builds. Encoding only: the CA parses requests with @peculiar/x509.

function encodeLength(length: number): Buffer {
  if (length < 0x80) return Buffer.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  return Buffer.of(0x80 | bytes.length, ...bytes);
}

/** One tag-length-value element; `tag` is the whole identifier octet (class, constructed bit and number < 31). */
export function tlv(tag: number, content: Buffer): Buffer {
  return Buffer.concat([Buffer.of(tag), encodeLength(content.length), content]);
}

export function sequence(...elements: Buffer[]): Buffer {
  return tlv(0x30, Buffer.concat(elements));
}

/** SET OF: DER orders the elements by their encodings. */
export function setOf(...elements: Buffer[]): Buffer {
  return tlv(0x31, Buffer.concat([...elements].sort(Buffer.compare)));
}

/** A non-negative INTEGER. */
export function integer(value: number): Buffer {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`DER integer ${value} is not a non-negative safe integer`);
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n % 256);
  // Two's complement: a leading byte with the high bit set would read as negative.
  if (bytes.length === 0 || bytes[0]! & 0x80) bytes.unshift(0);
  return tlv(0x02, Buffer.from(bytes));
}

export function objectIdentifier(dotted: string): Buffer {
  const arcs = dotted.split('.').map(Number);
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0) || arcs[0]! > 2 || (arcs[0]! < 2 && arcs[1]! > 39)) {
    throw new RangeError(`invalid object identifier ${dotted}`);
  }
  const bytes: number[] = [];
  for (const arc of [arcs[0]! * 40 + arcs[1]!, ...arcs.slice(2)]) {
    // Base 128, most significant group first, continuation bit on all but the last.
    const groups = [arc % 128];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) groups.unshift(0x80 | n % 128);
    bytes.push(...groups);
  }
  return tlv(0x06, Buffer.from(bytes));
}

export function boolean(value: boolean): Buffer {
  return tlv(0x01, Buffer.of(value ? 0xff : 0x00));
}

/** A BIT STRING of whole octets (no unused bits), as signatures are. */
export function bitString(octets: Buffer): Buffer {
  return tlv(0x03, Buffer.concat([Buffer.of(0), octets]));
}

export function octetString(octets: Buffer): Buffer {
  return tlv(0x04, octets);
}

/** IA5String: ASCII only, which is all a DNS name or URI in a certificate may hold (RFC 5280 §4.2.1.6). */
export function ia5String(value: string): Buffer {
  if (!/^[\x00-\x7f]*$/.test(value)) throw new RangeError(`"${value}" has a non-ASCII character; an IA5String cannot hold it`);
  return tlv(0x16, Buffer.from(value, 'latin1'));
}

/** `[number] IMPLICIT element`: the context-specific tag replaces the element's own, keeping its constructed bit. */
export function implicit(number: number, element: Buffer): Buffer {
  return Buffer.concat([Buffer.of(0x80 | (element[0]! & 0x20) | number), element.subarray(1)]);
}
