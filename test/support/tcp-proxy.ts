import net from 'node:net';
import { performance } from 'node:perf_hooks';

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

/**
 * What the proxy does with all traffic (`setMode`): `'pass'` forwards it; `{ latencyMs }` delays
 * every chunk by that much in each direction (order kept); `'blackhole'` is a partition: new
 * connections are accepted and never answered, bytes of open links are swallowed both ways,
 * and neither side learns that the other went away. Leaving `'blackhole'` cuts every link that
 * lived through it (their streams lost bytes: they cannot go on).
 */
export type ProxyMode = 'pass' | 'blackhole' | { latencyMs: number };

/** Chunks held back by added latency, for one direction of one link. */
interface DelayQueue {
  items: Array<{ due: number; chunk: Buffer }>;
  timer: NodeJS.Timeout | undefined;
}

interface Link {
  client: net.Socket;
  server: net.Socket;
  /** Client bytes not yet parsed into whole messages. */
  pending: Buffer;
  /** Until the startup packet, messages carry no type byte. */
  startup: boolean;
  blackholed: boolean;
  /** Lived through a `'blackhole'` mode: swallowed both ways, and cut when the mode ends. */
  partitioned: boolean;
  up: DelayQueue;
  down: DelayQueue;
}

/**
 * A TCP proxy between the pool and PostgreSQL that understands just enough of the frontend
 * protocol to find a COMMIT, for network-fault tests: cut the link right after forwarding a
 * COMMIT, before it, or blackhole it; refuse new connections (to make a lookup impossible);
 * cut every link; add latency to all traffic or blackhole it (`setMode`). It also counts the
 * connections and statements that reach the server, so a test can prove a code path sent
 * nothing, whichever client (pool, probe, raw pg) it would use, and the chunks added latency
 * held back, so a test can prove the latency was really there. A COMMIT action acts at once,
 * ahead of any bytes that added latency still holds back: combine the two with care.
 *
 * ```ts
 * const proxy = await TcpProxy.start({ host: '127.0.0.1', port: 5432 });
 * proxy.onNextCommit('cut-after-forward', { thenRefuse: true });
 * proxy.setMode({ latencyMs: 50 }); // 50 ms each way
 * proxy.setMode('blackhole');       // a partition, until setMode('pass')
 * ```
 *
 * Hand-written on node:net: the npm proxies with fault injection drive a Toxiproxy server
 * (a Go binary or a Docker container: toxiproxy-node-client, @testcontainers/toxiproxy), and
 * the plain forwarders (node-tcp-proxy, tcp-proxy.js) have no fault hooks and cannot find a
 * COMMIT in the frontend protocol stream.
 */
export class TcpProxy {
  readonly #server: net.Server;
  readonly #target: { host: string; port: number };
  readonly #links = new Set<Link>();
  #action: { kind: CommitAction; thenRefuse: boolean } | undefined;
  #refusing = false;
  #mode: ProxyMode = 'pass';
  /** Connections accepted during a blackhole: never forwarded, closed when it ends. */
  readonly #stalled = new Set<net.Socket>();
  /** COMMITs seen, whatever was done with them. */
  commitsSeen = 0;
  /** COMMITs an armed `onNextCommit` action was applied to. */
  commitsActedOn = 0;
  /** Connections accepted and forwarded to the server (refused ones not counted). */
  connectionsOpened = 0;
  /**
   * Statements sent to the server: simple queries ('Q') plus extended-protocol Executes ('E'),
   * so a named prepared statement run again (Bind/Execute, no Parse) counts too.
   */
  statementsSeen = 0;
  /** Chunks held back before being forwarded (either direction): what added latency really delayed. */
  chunksDelayed = 0;

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

  /** Sets what happens to all traffic from now on (see `ProxyMode`); `'pass'` by default. */
  setMode(mode: ProxyMode): void {
    const wasBlackhole = this.#mode === 'blackhole';
    this.#mode = mode;
    if (mode === 'blackhole') {
      for (const link of this.#links) link.partitioned = true;
      return;
    }
    if (!wasBlackhole) return;
    for (const link of this.#links) if (link.partitioned) this.#cut(link);
    for (const client of this.#stalled) client.destroy();
    this.#stalled.clear();
  }

  /** Cuts every open link. */
  cutAll(): void {
    for (const link of this.#links) this.#cut(link);
  }

  async close(): Promise<void> {
    this.setMode('pass');
    this.cutAll();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #accept(client: net.Socket): void {
    if (this.#refusing) {
      client.destroy();
      return;
    }
    if (this.#mode === 'blackhole') {
      // Accepted, never answered: the client's connect succeeds, its startup packet goes nowhere.
      this.#stalled.add(client);
      const forget = (): void => void this.#stalled.delete(client);
      client
        .on('data', () => {})
        .on('error', forget)
        .on('close', forget);
      return;
    }
    this.connectionsOpened++;
    const server = net.connect(this.#target);
    const link: Link = {
      client,
      server,
      pending: Buffer.alloc(0),
      startup: true,
      blackholed: false,
      partitioned: false,
      up: { items: [], timer: undefined },
      down: { items: [], timer: undefined },
    };
    this.#links.add(link);
    // Messages go on one write each: with Nagle's algorithm on, a second small write waits for
    // the peer's delayed ACK (~40 ms), and every round trip through the proxy took that long.
    client.setNoDelay(true);
    server.setNoDelay(true);
    client.on('data', (chunk: Buffer) => this.#fromClient(link, chunk));
    server.on('data', (chunk: Buffer) => {
      if (!link.blackholed && !link.partitioned) this.#send(link.down, client, chunk);
    });
    // In a partition neither side learns that the other went away: the other side stays open.
    const drop = (): void => (link.partitioned ? void server.destroy() : this.#cut(link));
    const clientGone = (): void =>
      link.blackholed || link.partitioned ? void client.destroy() : this.#cut(link);
    client.on('error', clientGone).on('close', clientGone);
    server.on('error', drop).on('close', drop);
  }

  #fromClient(link: Link, chunk: Buffer): void {
    if (link.blackholed || link.partitioned) return;
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
      this.#send(link.up, link.server, msg);
    }
  }

  /** Writes `chunk` to `to` now, or after the added latency (behind what is already held back). */
  #send(queue: DelayQueue, to: net.Socket, chunk: Buffer): void {
    const latencyMs = typeof this.#mode === 'object' ? this.#mode.latencyMs : 0;
    if (latencyMs <= 0 && queue.items.length === 0) {
      to.write(chunk);
      return;
    }
    this.chunksDelayed++;
    queue.items.push({ due: performance.now() + latencyMs, chunk: Buffer.from(chunk) });
    const pump = (): void => {
      queue.timer = undefined;
      while (queue.items.length > 0 && queue.items[0]!.due <= performance.now())
        if (!to.destroyed) to.write(queue.items.shift()!.chunk);
        else queue.items.shift();
      if (queue.items.length > 0)
        queue.timer = setTimeout(pump, Math.max(0, queue.items[0]!.due - performance.now()));
    };
    queue.timer ??= setTimeout(pump, Math.max(0, queue.items[0]!.due - performance.now()));
  }

  #onCommit(link: Link, msg: Buffer, kind: CommitAction): void {
    this.commitsActedOn++;
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
    clearTimeout(link.up.timer);
    clearTimeout(link.down.timer);
    link.client.destroy();
    link.server.destroy();
  }
}

function queryText(msg: Buffer): string {
  return msg.subarray(5, msg.length - 1).toString('utf8');
}
