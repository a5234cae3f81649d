// Who is calling: every xDS stream and CA request carries `authorization: Bearer <token>`; an authenticator maps the
// token to the node the caller runs on. The local cluster writes a JSON file of {token: node}; on Kubernetes the
// token will be a service-account JWT checked with a TokenReview, hence the interface may answer asynchronously.
import { readFileSync, statSync } from 'node:fs';
import type { Metadata } from '@grpc/grpc-js';
import { z } from 'zod';

export interface NodeIdentity {
  /** Name of the node the caller (a ztunnel) runs on. */
  node: string;
}

export interface NodeAuthenticator {
  authenticate(token: string): NodeIdentity | undefined | Promise<NodeIdentity | undefined>;
}

/** The bearer token of a gRPC call, or undefined when the metadata has none. */
export function bearerToken(metadata: Metadata): string | undefined {
  const value = metadata.get('authorization')[0];
  if (typeof value !== 'string') return undefined;
  const m = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return m?.[1];
}

const TokenFile = z.record(z.string().min(1), z.string().min(1));

/**
 * Tokens from a JSON file `{"<token>": "<node name>"}`. The file is re-read when its modification time or size
 * changes, so nodes added to a running local cluster can connect without restarting the control plane. If an edit
 * makes the file unreadable or invalid, the last good token set stays in force and `lastError` says why.
 */
export class TokenFileAuthenticator implements NodeAuthenticator {
  private tokens = new Map<string, string>();
  private stamp = '';
  lastError: string | undefined;

  /** A missing or invalid file is not fatal (the local cluster may write it later): check `lastError`. */
  constructor(readonly path: string) {
    this.reload();
  }

  authenticate(token: string): NodeIdentity | undefined {
    this.reload();
    const node = this.tokens.get(token);
    return node === undefined ? undefined : { node };
  }

  private reload(): void {
    let stamp: string;
    try {
      const st = statSync(this.path);
      stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
    } catch (e) {
      this.lastError = `cannot read node token file ${this.path}: ${(e as Error).message}`;
      return;
    }
    if (stamp === this.stamp) return;
    this.stamp = stamp;
    try {
      const parsed = TokenFile.safeParse(JSON.parse(readFileSync(this.path, 'utf8')));
      if (!parsed.success) {
        throw new Error(`expected an object of "token": "node name" strings (${parsed.error.issues[0]?.message ?? 'invalid'})`);
      }
      this.tokens = new Map(Object.entries(parsed.data));
      this.lastError = undefined;
    } catch (e) {
      this.lastError = `invalid node token file ${this.path}: ${(e as Error).message}`;
    }
  }
}
