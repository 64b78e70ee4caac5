import { expect } from 'chai';
import { request } from 'node:http';
import { MAX_LOGGED_FIELD } from '../../../src/observability/capped-request.js';
import { costRatio } from '../../support/cost-ratio.js';
import { useTestDatabase } from '../../support/test-database.js';
import { useTestService } from '../../support/service-fixture.js';

/** Generous: a linear logger measures about 1; the quadratic scrubber measured about 60. */
const MAX_RATIO = 10;

/** GET `path` with `host` as the Host header; resolves with the status once the body is read. */
function get(base: string, path: string, host?: string): Promise<number> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = request(
      { host: url.hostname, port: url.port, path, headers: host ? { host } : {}, agent: false },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('A hostile request line through the service, logged at info', () => {
  const db = useTestDatabase();
  const svc = useTestService(db, { log: { level: 'info' } });

  it('costs "GET /" + "a." x 7,600 within a small factor of a benign URL of the same length', async () => {
    const hostile = '/' + 'a.'.repeat(7_600);
    const benign = '/' + 'ab'.repeat(7_600);
    const ratio = await costRatio((path: string) => get(svc().url, path), hostile, benign, { samples: 9 });
    expect(ratio, 'hostile/benign time ratio').to.be.below(MAX_RATIO);
    // The request line was logged, cut to the cap.
    const logged = svc().logs.find((l) => (l.req as { url?: string } | undefined)?.url?.startsWith('/a.a.'));
    expect((logged?.req as { url: string }).url).to.have.length.below(MAX_LOGGED_FIELD + 40);
  });

  it('costs a long dotted Host header within a small factor of a benign one of the same length', async () => {
    const hostile = 'a.'.repeat(6_000) + 'example';
    const benign = 'ab'.repeat(6_000) + 'example';
    const ratio = await costRatio((host: string) => get(svc().url, '/no-such-route', host), hostile, benign, {
      samples: 9,
    });
    expect(ratio, 'hostile/benign time ratio').to.be.below(MAX_RATIO);
  });
});
