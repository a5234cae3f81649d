// gRPC targets of ambit-client: unary ambit.echo.v1.EchoService/Echo calls (see examples/apps/echo/echo.proto),
// one HTTP/2 connection per slot. Loaded only for grpc:// targets, so HTTP and TCP runs do not pay for grpc-js.
import * as grpc from '@grpc/grpc-js';
import { EchoGrpcClient } from '../echo/grpc.js';
import type { Outcome, Slot } from './load.js';

export class GrpcSlot implements Slot {
  private readonly client: EchoGrpcClient;
  private readonly metadata = new grpc.Metadata();

  constructor(
    address: string,
    private readonly message: string,
    headers: [string, string][],
    private readonly timeoutMs: number,
  ) {
    this.client = new EchoGrpcClient(address, { ownConnection: true });
    for (const [k, v] of headers) this.metadata.add(k.toLowerCase(), v);
  }

  async run(): Promise<Outcome> {
    try {
      const res = await this.client.echo(this.message, this.metadata, this.timeoutMs);
      return res.message === this.message
        ? { key: 'OK', ok: true, answered: true }
        : { key: 'echo mismatch', ok: false, answered: true };
    } catch (err) {
      // Status names as gRPC tools print them: UNAVAILABLE, DEADLINE_EXCEEDED, ...
      const code = (err as grpc.ServiceError).code;
      return { key: grpc.status[code] ?? String(code), ok: false, answered: false };
    }
  }

  close(): void {
    this.client.close();
  }
}
