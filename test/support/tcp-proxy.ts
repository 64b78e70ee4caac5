import net from 'node:net';

/** What the proxy does with the next COMMIT a client sends (simple query protocol, as knex sends it). */
export type CommitAction =
  /** Forward COMMIT to the server, then cut both sides: the server commits, the client never hears. */
  | 'cut-after-forward'
  /** Drop COMMIT and cut both sides: the server sees its client vanish mid-transaction and aborts. */
  | 'cut-before-forward'
  /**
   * Swallow COMMIT and everything after it (a network partition): the server side stays open
   * even after the client gives up, so the backend sits idle in its transaction until ended.
   */
  | 'blackhole';

interface Link {
  client: net.Socket;
  server: net.Socket;
  /** Client bytes not yet parsed into whole messages. */
  pending: Buffer;
  /** Until the startup packet, messages carry no type byte. */
  startup: boolean;
  blackholed: boolean;
}

/**
 * A TCP proxy between the pool and PostgreSQL that understands just enough of the frontend
 * protocol to find a COMMIT, for network-fault tests: cut the link right after forwarding a
 * COMMIT, before it, or blackhole it; refuse new connections (to make a lookup impossible);
 * cut every link. It also counts the connections and statements that reach the server, so a
 * test can prove a code path sent nothing, whichever client (pool, probe, raw pg) it would use.
 *
 * ```ts
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 });
 * proxy.onNextCommit('cut-after-forward', { thenRefuse: true });
 * ```
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  #action: { kind: CommitAction; thenRefuse: boolean } | undefined;
  #refusing = false;
  /** COMMITs seen, whatever was done with them. */
  commitsSeen = 0;
  /** Connections accepted and forwarded to the server (refused ones not counted). */
  connectionsOpened = 0;
  /**
   * Statements sent to the server: simple queries ('Q') plus extended-protocol Executes ('E'),
   * so a named prepared statement run again (Bind/Execute, no Parse) counts too.
   */
  statementsSeen = 0;

  private constructor(target: { host: string; port: number }) {
    this.#target = target;
    this.#server = net.createServer((client) => this.#accept(client));
  }

  /** Listens on a free port of 127.0.0.1. */
  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const proxy = new TcpProxy(target);
    await new Promise<void>((resolve) => proxy.#server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  get port(): number {
    return (this.#server.address() as net.AddressInfo).port;
  }

  /** Arms an action for the next COMMIT; `thenRefuse` also refuses every new connection from then on. */
  onNextCommit(kind: CommitAction, opts: { thenRefuse?: boolean } = {}): void {
    this.#action = { kind, thenRefuse: opts.thenRefuse ?? false };
  }

  /** New connections are closed at once while on. */
  refuseNewConnections(on: boolean): void {
    this.#refusing = on;
  }

  /** Cuts every open link. */
  cutAll(): void {
    for (const link of this.#links) this.#cut(link);
  }

  async close(): Promise<void> {
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    if (this.#refusing) {
      client.destroy();
      return;
    }
    this.connectionsOpened++;
    const server = net.connect(this.#target);
    const link: Link = { client, server, pending: Buffer.alloc(0), startup: true, blackholed: false };
    this.#links.add(link);
    client.on('data', (chunk: Buffer) => this.#fromClient(link, chunk));
    server.on('data', (chunk: Buffer) => {
      if (!link.blackholed) client.write(chunk);
    });
    const drop = (): void => this.#cut(link);
    // In a partition the server never learns that the client went away: its side stays open.
    const clientGone = (): void => (link.blackholed ? void client.destroy() : this.#cut(link));
    client.on('error', clientGone).on('close', clientGone);
    server.on('error', drop).on('close', drop);
  }

  #fromClient(link: Link, chunk: Buffer): void {
    if (link.blackholed) return;
    link.pending = Buffer.concat([link.pending, chunk]);
    for (;;) {
      const msg = this.#nextMessage(link);
      if (!msg) return;
      if (!link.startup && (msg[0] === 0x51 /* 'Q' */ || msg[0] === 0x45) /* 'E' */) this.statementsSeen++;
      if (!link.startup && msg[0] === 0x51 /* 'Q' */ && /^\s*commit\b/i.test(queryText(msg))) {
        this.commitsSeen++;
        const action = this.#action;
        if (action) {
          this.#action = undefined;
          if (action.thenRefuse) this.#refusing = true;
          this.#onCommit(link, msg, action.kind);
          return;
        }
      }
      link.server.write(msg);
    }
  }

  #onCommit(link: Link, msg: Buffer, kind: CommitAction): void {
    if (kind === 'blackhole') {
      link.blackholed = true;
      return;
    }
    this.#links.delete(link);
    link.client.destroy();
    if (kind === 'cut-after-forward') {
      // FIN after the COMMIT bytes: the server reads COMMIT, commits, then finds the client gone.
      link.server.end(msg);
    } else {
      link.server.destroy();
    }
  }

  /** Takes one whole message off `link.pending`, or undefined when more bytes are needed. */
  #nextMessage(link: Link): Buffer | undefined {
    const buf = link.pending;
    const headerLen = link.startup ? 0 : 1;
    if (buf.length < headerLen + 4) return undefined;
    const len = buf.readInt32BE(headerLen) + headerLen;
    if (buf.length < len) return undefined;
    const msg = buf.subarray(0, len);
    link.pending = buf.subarray(len);
    // SSLRequest / GSSENCRequest keep the startup phase; the startup packet (protocol 3.x) ends it.
    if (link.startup && msg.length >= 8 && msg.readInt32BE(4) >> 16 === 3) link.startup = false;
    return msg;
  }

  #cut(link: Link): void {
    this.#links.delete(link);
    link.client.destroy();
    link.server.destroy();
  }
}

function queryText(msg: Buffer): string {
  return msg.subarray(5, msg.length - 1).toString('utf8');
}
