import net from 'node:net';
import tls, { type ConnectionOptions } from 'node:tls';

/** PostgreSQL's CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;
/** PostgreSQL's SSLRequest code (1234 << 16 | 5679). */
const SSL_REQUEST_CODE = 80877103;

/** Where and whom to cancel: the backend's key data, as pg's Client exposes it. */
export interface CancelTarget {
  host: string;
  port: number;
  processID: number;
  secretKey: number;
  /**
   * The TLS options the cancelled connection was opened with (pg's `ssl`); false or absent:
   * plain TCP, as that connection was.
   */
  ssl?: false | ConnectionOptions;
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
 *
 * TLS as the cancelled connection had it (`target.ssl`, the same verification): an SSLRequest
 * first, then the CancelRequest inside TLS, so the backend's key (which lets anyone who reads
 * it cancel that backend's statements) never crosses the network in clear. PostgreSQL has
 * accepted a CancelRequest after an SSLRequest since TLS support began; libpq's PQcancel
 * (before PostgreSQL 17's PQcancelCreate) sent it in clear. A server that answers the
 * SSLRequest with 'N' gets nothing: the cancel fails rather than falling back to plain text.
 * Without `ssl`: plain TCP (or a Unix socket when `host` starts with '/').
 * @throws Error with code `CANCEL_TIMEOUT` at the deadline, `CANCEL_TLS_REFUSED` when the
 *   server refused TLS, or the socket's (or TLS verification's) error.
 */
export function sendCancelRequest(target: CancelTarget, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const raw = target.host.startsWith('/')
      ? net.connect(`${target.host}/.s.PGSQL.${target.port}`)
      : net.connect({ host: target.host, port: target.port });
    let socket: net.Socket = raw;
    let settled = false;
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      raw.destroy();
      reject(err);
    };
    const timer = setTimeout(() => {
      fail(
        Object.assign(new Error(`The cancel request got no answer within ${timeoutMs} ms.`), {
          code: 'CANCEL_TIMEOUT',
        }),
      );
    }, timeoutMs);
    const packet = cancelRequestPacket(target.processID, target.secretKey);
    const watch = (s: net.Socket): void => {
      s.once('error', fail);
      s.once('close', (hadError) => {
        if (settled || hadError) return;
        settled = true;
        clearTimeout(timer);
        resolve();
      });
      // Drain anything the server says (it says nothing) so 'close' can fire.
      s.resume();
    };
    raw.setNoDelay(true);
    const ssl = target.ssl;
    if (!ssl) {
      // write, not end: PgBouncer (1.18) drops a cancel request whose client half-closes before it
      // has forwarded it ("client unexpected eof"); PostgreSQL and PgBouncer close the socket when done.
      raw.once('connect', () => raw.write(packet));
      watch(raw);
      return;
    }
    raw.once('error', fail);
    raw.once('connect', () => raw.write(sslRequestPacket()));
    raw.once('data', (answer: Buffer) => {
      if (answer[0] !== 0x53 /* 'S' */) {
        const refused = answer[0] === 0x4e; /* 'N' */
        return fail(
          Object.assign(
            new Error(
              refused
                ? 'The server refused TLS for the cancel request; it was not sent in clear.'
                : "The server answered the cancel request's SSLRequest with neither S nor N.",
            ),
            { code: 'CANCEL_TLS_REFUSED' },
          ),
        );
      }
      raw.pause();
      socket = tls.connect({
        ...ssl,
        socket: raw,
        host: target.host,
        // SNI must not be an IP address (RFC 6066 section 3); the identity check then uses `host`.
        ...(net.isIP(target.host) === 0 ? { servername: target.host } : {}),
      });
      socket.once('secureConnect', () => socket.write(packet));
      watch(socket);
    });
  });
}

/** The 8-byte SSLRequest message: length 8, code 80877103. */
function sslRequestPacket(): Buffer {
  const buf = Buffer.alloc(8);
  buf.writeInt32BE(8, 0);
  buf.writeInt32BE(SSL_REQUEST_CODE, 4);
  return buf;
}
