import { readFileSync } from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

const SSL_REQUEST = 80877103;
const CANCEL_REQUEST = 80877102;

/** What the fake asks for after the startup packet. */
export type FakeAuth =
  /** AuthenticationCleartextPassword: the client answers with the password itself. */
  | 'cleartext'
  /** AuthenticationMD5Password with a fixed salt: the client answers md5(md5(password + user) + salt). */
  | 'md5'
  /** AuthenticationSASL offering only SCRAM-SHA-256 (no channel binding). */
  | 'scram'
  /** AuthenticationOk at once (trust), then ReadyForQuery. */
  | 'trust';

/** One client connection as the fake saw it. */
interface FakeConnection {
  /** The client sent an SSLRequest. */
  sslRequested: boolean;
  /** The rest of the connection ran inside TLS. */
  tls: boolean;
  /** Startup parameters (user, database, ...), once the startup packet arrived. */
  startup?: Record<string, string>;
  /** Bodies of the client's 'p' messages (PasswordMessage, SASLInitialResponse), as sent. */
  passwordMessages: Buffer[];
  /** processID and secretKey of a CancelRequest, when the connection was one. */
  cancel?: { processID: number; secretKey: number };
}

/** A running fake server and what it received. */
export interface FakePgServer {
  port: number;
  connections: FakeConnection[];
  close(): Promise<void>;
}

/**
 * A tiny PostgreSQL impostor on loopback (an on-path attacker's stand-in) that speaks just
 * enough of the protocol to see what a client sends before it authenticates: it answers the
 * SSLRequest with 'N' (`tls` unset) or 'S' and a TLS handshake with the given certificate (a
 * self-signed one: what an attacker can present), reads the startup packet, asks for `auth`,
 * records every password message, then refuses with 28P01 and closes. With `auth: 'trust'` it
 * says AuthenticationOk and ReadyForQuery and then closes on the first query.
 */
export async function startFakePgServer(opts: {
  auth: FakeAuth;
  tls?: { cert: string; key: string };
}): Promise<FakePgServer> {
  const connections: FakeConnection[] = [];
  const secure = opts.tls
    ? tls.createSecureContext({ cert: readFileSync(opts.tls.cert), key: readFileSync(opts.tls.key) })
    : undefined;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((raw) => {
    sockets.add(raw);
    raw.on('close', () => sockets.delete(raw));
    raw.on('error', () => {});
    const seen: FakeConnection = { sslRequested: false, tls: false, passwordMessages: [] };
    connections.push(seen);
    serve(raw, seen, opts.auth, secure);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function serve(raw: net.Socket, seen: FakeConnection, auth: FakeAuth, secure?: tls.SecureContext): void {
  let socket: net.Socket = raw;
  let buf = Buffer.alloc(0);
  let phase: 'startup' | 'messages' = 'startup';
  const onData = (chunk: Buffer): void => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (phase === 'startup') {
        if (buf.length < 8) return;
        const len = buf.readInt32BE(0);
        if (buf.length < len) return;
        const code = buf.readInt32BE(4);
        const body = buf.subarray(8, len);
        buf = buf.subarray(len);
        if (code === SSL_REQUEST) {
          seen.sslRequested = true;
          if (!secure) {
            socket.write('N');
            continue;
          }
          socket.removeListener('data', onData);
          socket.write('S');
          const wrapped = new tls.TLSSocket(socket, { isServer: true, secureContext: secure });
          wrapped.on('error', () => {});
          seen.tls = true;
          socket = wrapped;
          socket.on('data', onData);
          return;
        }
        if (code === CANCEL_REQUEST) {
          seen.cancel = { processID: body.readInt32BE(0), secretKey: body.readInt32BE(4) };
          socket.end();
          return;
        }
        const parts = body.toString('utf8').split('\0');
        seen.startup = {};
        for (let i = 0; i + 1 < parts.length && parts[i]; i += 2) seen.startup[parts[i]!] = parts[i + 1]!;
        phase = 'messages';
        socket.write(authRequest(auth));
        continue;
      }
      if (buf.length < 5) return;
      const len = buf.readInt32BE(1);
      if (buf.length < len + 1) return;
      const type = String.fromCharCode(buf[0]!);
      const body = Buffer.from(buf.subarray(5, len + 1));
      buf = buf.subarray(len + 1);
      if (type === 'X') return void socket.end();
      if (type === 'p') seen.passwordMessages.push(body);
      socket.end(errorResponse('28P01', 'password authentication failed'));
      return;
    }
  };
  socket.on('data', onData);
}

function authRequest(auth: FakeAuth): Buffer {
  switch (auth) {
    case 'cleartext':
      return message('R', int32(3));
    case 'md5':
      return message('R', Buffer.concat([int32(5), Buffer.from([1, 2, 3, 4])]));
    case 'scram':
      return message('R', Buffer.concat([int32(10), Buffer.from('SCRAM-SHA-256\0\0')]));
    case 'trust':
      return Buffer.concat([message('R', int32(0)), message('Z', Buffer.from('I'))]);
  }
}

function errorResponse(code: string, text: string): Buffer {
  return message('E', Buffer.from(`SFATAL\0C${code}\0M${text}\0\0`));
}

function message(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(type), int32(body.length + 4), body]);
}

function int32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}
