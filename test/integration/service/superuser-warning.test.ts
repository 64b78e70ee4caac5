import { expect } from 'chai';
import { startTestService, testConfig } from '../../support/service-fixture.js';
import { useTestDatabase } from '../../support/test-database.js';

const SUPERUSER_LINE = /^connected as a superuser/;

// The development default connects as the embedded server's superuser; the service says so at
// start, except in the test profile (whose every run is a superuser on a throwaway database).
describe('The service started as a superuser', () => {
  const db = useTestDatabase();

  for (const [profile, expected] of [
    ['development', 1],
    ['test', 0],
  ] as const) {
    it(`logs ${expected} warn line about it in the ${profile} profile`, async () => {
      const svc = await startTestService({ ...testConfig(db().url), profile });
      try {
        const lines = svc.logs.filter((l) => SUPERUSER_LINE.test(l.msg));
        expect(lines).to.have.length(expected);
        if (expected) expect(lines[0]).to.include({ level: 40, component: 'database' });
      } finally {
        await svc.stop();
      }
    });
  }
});
