import { expect } from 'chai';
import { useTestDatabase } from '../../support/test-database.js';
import { startTestService, testConfig, type TestService } from '../../support/service-fixture.js';
import { TcpProxy } from '../../support/tcp-proxy.js';

const TTL_MS = 400;

/*
 * `/health` is unauthenticated and each check opens a server connection, so a flood of it
 * could exhaust max_connections. The service reaches its database through a proxy that counts
 * every connection that arrives there.
 */
describe('GET /health under a flood', () => {
  const db = useTestDatabase();
  let proxy: TcpProxy;
  let svc: TestService;

  before(async () => {
    const url = new URL(db().url);
    proxy = await TcpProxy.start({ host: url.hostname, port: Number(url.port) });
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    // The health loop would open probe connections of its own: once an hour here.
    svc = await startTestService(
      testConfig(url.toString(), {
        server: { healthCacheTtl: TTL_MS },
        database: { postgres: { healthCheckInterval: 3_600_000 } },
      }),
    );
  });
  after(async () => {
    await svc?.stop();
    await proxy?.close();
  });

  const health = async (): Promise<{ status: number; checkedAt: string }> => {
    const res = await fetch(`${svc.url}/health`);
    return { status: res.status, checkedAt: ((await res.json()) as { checkedAt: string }).checkedAt };
  };
  const pastTtl = (): Promise<void> => new Promise((r) => setTimeout(r, TTL_MS + 100));

  it('answers 50 concurrent requests with one check: at most one new server connection', async () => {
    await health(); // the pool's connection for the migration status now exists
    await pastTtl();
    const before = proxy.connectionsOpened;
    const answers = await Promise.all(Array.from({ length: 50 }, () => health()));
    expect(answers.map((a) => a.status)).to.deep.equal(Array(50).fill(200));
    expect(new Set(answers.map((a) => a.checkedAt)).size, 'distinct checks').to.equal(1);
    expect(proxy.connectionsOpened - before, 'server connections opened').to.be.at.most(1);
  });

  it('reuses a result within the TTL and checks again after it', async () => {
    await pastTtl();
    const first = await health();
    const reused = await health();
    expect(reused.checkedAt).to.equal(first.checkedAt);
    await pastTtl();
    const fresh = await health();
    expect(fresh.checkedAt).not.to.equal(first.checkedAt);
  });
});
