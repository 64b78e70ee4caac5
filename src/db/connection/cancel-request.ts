import net from 'node:net';

/** PostgreSQL's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

/** Where and whom to cancel: the backend's key data, as pg's Client exposes it. */
export interface CancelTarget {
  host: string;
  port: number;
  processID: number;
  secretKey: number;
}

/** The 16-byte CancelRequest message: length 16, code 80877102, processID, secretKey. */
export function cancelRequestPacket(processID: number, secretKey: number): Buffer {
  const buf = Buffer.alloc(16);
  buf.writeInt32BE(16, 0);
  buf.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  buf.writeInt32BE(processID | 0, 8);
  // pg parses the key as a signed int32; write it back the same way.
  buf.writeInt32BE(secretKey | 0, 12);
  return buf;
}

/**
 * Cancels the statement a backend is running, out of band: PostgreSQL's CancelRequest on a
 * new socket, which takes no pool slot and needs no authentication (works while the pool is
 * exhausted). Resolves once the server has closed the socket, which it does after
 * signalling the backend; rejects when it cannot connect or hear back within `timeoutMs`
 * (knex's own cancel opens a full connection with no connect timeout, so a partitioned server kept it pending for 20 s after a 1 s timeout).
 *
 * A cancel that arrives when the backend is idle is ignored by the server, so it cannot hit
 * a later statement as long as the caller sends nothing else until this resolves.
 * Plain TCP (or a Unix socket when `host` starts with '/'): the server accepts a
 * CancelRequest without TLS.
 * @throws Error with code `CANCEL_TIMEOUT` at the deadline, or the socket's error.
 */
export function sendCancelRequest(target: CancelTarget, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = target.host.startsWith('/')
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(
        Object.assign(new Error(`The cancel request got no answer within ${timeoutMs} ms.`), {
          code: 'CANCEL_TIMEOUT',
        }),
      );
    }, timeoutMs);
    socket.setNoDelay(true);
    // write, not end: PgBouncer (1.18) drops a cancel request whose client half-closes before it
    // has forwarded it ("client unexpected eof"); PostgreSQL and PgBouncer close the socket when done.
    socket.once('connect', () => socket.write(cancelRequestPacket(target.processID, target.secretKey)));
    socket.once('error', (err) => {
      clearTimeout(timer);
      socket.destroy();
      reject(err);
    });
    socket.once('close', (hadError) => {
      clearTimeout(timer);
      if (!hadError) resolve();
    });
    // Drain anything the server says (it says nothing) so 'close' can fire.
    socket.resume();
  });
}
