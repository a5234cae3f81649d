// What the waypoint knows of gRPC: its local replies as trailers-only responses, and its message framing, counted for
// istio_request_messages_total / istio_response_messages_total as Envoy's grpc_stats filter counts them.

/** HTTP status → gRPC status of a local reply (Envoy's Grpc::Utility::httpToGrpcStatus); others are UNKNOWN (2). */
const GRPC_STATUS_OF: Record<number, number> = { 400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14 };

export function grpcStatusOf(httpStatus: number): string {
  return String(GRPC_STATUS_OF[httpStatus] ?? 2);
}

/** grpc-message is percent-encoded (gRPC over HTTP/2, "Percent-Encoded"). */
export function grpcMessage(text: string): string {
  return text.replace(/[^\x20-\x24\x26-\x7e]/g, (c) => encodeURIComponent(c));
}

/** Envoy's test: exactly `application/grpc` or `application/grpc+<codec>`; `application/grpc-web` is not gRPC. */
export function isGrpcContentType(contentType: string | string[] | number | undefined): boolean {
  return typeof contentType === 'string' && contentType.startsWith('application/grpc') && (contentType.length === 16 || contentType[16] === '+');
}

/**
 * Counts the length-prefixed messages of one direction of a gRPC stream as its bytes go by: each message is a 1-byte
 * flag, a 4-byte big-endian length and that many bytes. A message counts when its prefix begins, as Envoy's
 * FrameInspector counts frames. Chunks may split a prefix anywhere; nothing is copied.
 */
export class GrpcMessageCounter {
  messages = 0;
  /** Bytes of the current message's body still to skip. */
  private remaining = 0;
  /** How many bytes of the current 5-byte prefix were seen (0 = at a message boundary). */
  private prefixSeen = 0;
  private length = 0;

  feed(chunk: Buffer): void {
    let i = 0;
    const n = chunk.length;
    while (i < n) {
      if (this.remaining > 0) {
        const skip = Math.min(this.remaining, n - i);
        this.remaining -= skip;
        i += skip;
        continue;
      }
      if (this.prefixSeen === 0) {
        this.messages++;
        this.length = 0;
      } else {
        // Bytes 1–4 of the prefix are the length; byte 0 (the compressed flag) is skipped.
        this.length = this.length * 256 + chunk[i]!;
      }
      i++;
      if (++this.prefixSeen === 5) {
        this.prefixSeen = 0;
        this.remaining = this.length;
      }
    }
  }
}
