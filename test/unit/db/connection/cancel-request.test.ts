import net from 'node:net';
import { expect } from 'chai';
import { cancelRequestPacket, sendCancelRequest } from '../../../../src/db/connection/cancel-request.js';

/** A local TCP server standing in for the postmaster: records what it reads. */
async function listen(onSocket: (socket: net.Socket, received: Buffer[]) => void) {
  const received: Buffer[] = [];
  const server = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => received.push(chunk));
    onSocket(socket, received);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return { port, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('cancelRequestPacket()', () => {
  it('encodes length 16, code 80877102, the process id and the secret key (signed) big-endian', () => {
    const buf = cancelRequestPacket(4242, -123456789);
    expect(buf.length).to.equal(16);
    expect(buf.readInt32BE(0)).to.equal(16);
    expect(buf.readInt32BE(4)).to.equal(80877102);
    expect(buf.readInt32BE(8)).to.equal(4242);
    expect(buf.readInt32BE(12)).to.equal(-123456789);
  });
});

describe('sendCancelRequest()', () => {
  it('sends the packet on a new socket and resolves when the server closes it', async () => {
    // As the postmaster and PgBouncer do: close once the 16 bytes are read (the client does not half-close).
    const server = await listen((socket, received) =>
      socket.on('data', () => {
        if (Buffer.concat(received).length >= 16) socket.end();
      }),
    );
    try {
      await sendCancelRequest({ host: '127.0.0.1', port: server.port, processID: 7, secretKey: 99 }, 1000);
      expect(Buffer.concat(server.received).equals(cancelRequestPacket(7, 99))).to.be.true;
    } finally {
      await server.close();
    }
  });

  it('rejects with CANCEL_TIMEOUT when the server never answers', async () => {
    const held: net.Socket[] = [];
    const server = await listen((socket) => {
      socket.allowHalfOpen = true;
      held.push(socket);
    });
    try {
      const err = await sendCancelRequest(
        { host: '127.0.0.1', port: server.port, processID: 7, secretKey: 99 },
        100,
      ).catch((e: unknown) => e as Error & { code?: string });
      expect(err).to.have.property('code', 'CANCEL_TIMEOUT');
    } finally {
      held.forEach((s) => s.destroy());
      await server.close();
    }
  });

  it('rejects when nothing listens', async () => {
    const server = await listen(() => {});
    const port = server.port;
    await server.close();
    const err = await sendCancelRequest({ host: '127.0.0.1', port, processID: 1, secretKey: 1 }, 1000).catch(
      (e: unknown) => e,
    );
    expect(err).to.have.property('code', 'ECONNREFUSED');
  });
});
