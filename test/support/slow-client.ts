import net from 'node:net';

/** What a slow client saw: the response (if any) and whether the server closed the connection. */
export interface SlowClientResult {
  /** Status code of the response, or 0 when none arrived. */
  status: number;
  headers: Record<string, string>;
  /** Body as received (chunked framing left in place; JSON bodies are parsed by `json()`). */
  body: string;
  /** True when the server closed the connection before the client's own give-up time. */
  closedByServer: boolean;
  /** Body bytes the client managed to send. */
  sent: number;
  /** The first JSON object in the body. */
  json(): Record<string, unknown>;
}

/** How a slow client sends its request. */
export interface SlowClientOptions {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  /** Body pieces, sent one per `pauseMs`; with `chunked`, each is one chunk of a chunked body. */
  chunks: Iterable<string | Buffer>;
  pauseMs: number;
  /** Send the body with `Transfer-Encoding: chunked` (else the caller sets Content-Length). */
  chunked?: boolean;
  /** Send the end of the request after the last piece (default true). */
  end?: boolean;
  /** Only the first part of the head is sent (a request whose headers never finish). */
  partialHead?: boolean;
  /** The client gives up (and reports `closedByServer: false`) after this long, ms. Default 15000. */
  giveUpMs?: number;
}

/**
 * One HTTP/1.1 request over a raw socket, written piece by piece with pauses, the way a slow or
 * hostile client would: it keeps sending until the server answers or closes, and reads whatever
 * the server sends. Resolves when the server closes the connection (or at `giveUpMs`).
 */
export function slowRequest(baseUrl: string, opts: SlowClientOptions): Promise<SlowClientResult> {
  const url = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(url.port), url.hostname);
    let received = Buffer.alloc(0);
    let sent = 0;
    let closedByServer = false;
    let done = false;
    const giveUp = setTimeout(() => finish(false), opts.giveUpMs ?? 15_000);
    const finish = (byServer: boolean): void => {
      if (done) return;
      done = true;
      closedByServer = byServer;
      clearTimeout(giveUp);
      socket.destroy();
      resolve(result(received, closedByServer, sent));
    };
    socket.on('data', (d: Buffer) => (received = Buffer.concat([received, d])));
    socket.on('close', () => finish(true));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      // A reset while still sending is the server cutting us off: what some tests expect.
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') finish(true);
      else if (!done) reject(err);
    });
    socket.on('connect', () => {
      const headers = {
        host: url.host,
        ...(opts.chunked && { 'transfer-encoding': 'chunked' }),
        ...opts.headers,
      };
      const head =
        `${opts.method ?? 'POST'} ${opts.path} HTTP/1.1\r\n` +
        Object.entries(headers)
          .map(([k, v]) => `${k}: ${v}\r\n`)
          .join('');
      if (opts.partialHead) {
        socket.write(head);
        return;
      }
      socket.write(head + '\r\n');
      void (async () => {
        for (const piece of opts.chunks) {
          if (done || socket.destroyed) return;
          const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
          socket.write(
            opts.chunked
              ? Buffer.concat([Buffer.from(`${bytes.length.toString(16)}\r\n`), bytes, Buffer.from('\r\n')])
              : bytes,
          );
          sent += bytes.length;
          await new Promise((r) => setTimeout(r, opts.pauseMs));
        }
        if (opts.end !== false && opts.chunked && !done && !socket.destroyed) socket.write('0\r\n\r\n');
      })();
    });
  });
}

function result(raw: Buffer, closedByServer: boolean, sent: number): SlowClientResult {
  const text = raw.toString('utf8');
  const split = text.indexOf('\r\n\r\n');
  const head = split === -1 ? text : text.slice(0, split);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const body = split === -1 ? '' : text.slice(split + 4);
  return {
    status: Number(/^HTTP\/1\.1 (\d{3})/.exec(statusLine)?.[1] ?? 0),
    headers,
    body,
    closedByServer,
    sent,
    json: () => {
      const start = body.indexOf('{');
      const end = body.lastIndexOf('}');
      return JSON.parse(body.slice(start, end + 1)) as Record<string, unknown>;
    },
  };
}
