import { expect } from 'chai';
import { z } from 'zod';
import { loadConfig, redactConfig, REDACTED } from '../../../src/config/index.js';
import { catchConfigError } from '../../support/catch-config-error.js';
import { useTempConfigDir } from '../../support/temp-config-dir.js';

describe('loadConfig() application sections', () => {
  const tmp = useTempConfigDir();
  const base = () => ({ env: {}, envFile: false as const, configDir: tmp().dir });

  it('leaves a top-level section the layer does not own to the application, as read', () => {
    tmp().write('default.yaml', 'orders:\n  batchSize: 50\n  region: eu\nserver:\n  port: 9000\n');
    const config = loadConfig(base());
    expect(config.server.port).to.equal(9000);
    expect((config as unknown as Record<string, unknown>).orders).to.deep.equal({
      batchSize: 50,
      region: 'eu',
    });
    expect(Object.isFrozen((config as unknown as { orders: object }).orders)).to.equal(true);
  });

  it('still fails on an unknown key inside the layer own sections, with a suggestion', () => {
    tmp().write('default.yaml', 'orders:\n  batchSize: 50\ndatabase:\n  postgres:\n    maxOpenConn: 3\n');
    const file = `${tmp().dir}/default.yaml`;
    expect(catchConfigError(() => loadConfig(base())).issues).to.deep.equal([
      `database.postgres.maxOpenConn: unknown key (did you mean maxOpenConns?) [from ${file}]`,
    ]);
  });

  it('reports a top-level name that looks like a misspelled layer section instead of taking it', () => {
    tmp().write('default.yaml', 'databse:\n  postgres: {}\nsever:\n  port: 1\n');
    const file = `${tmp().dir}/default.yaml`;
    expect(catchConfigError(() => loadConfig(base())).issues).to.have.members([
      `databse: unknown key (did you mean database?) [from ${file}]`,
      `sever: unknown key (did you mean server?) [from ${file}]`,
    ]);
  });

  it('validates a declared section with its schema, typed, and reports its problems with the layer ones', () => {
    const orders = z.strictObject({ batchSize: z.int().min(1), region: z.enum(['eu', 'us']).default('eu') });
    tmp().write('default.yaml', 'orders:\n  batchSize: 5\n');
    const config = loadConfig({ ...base(), sections: { orders } });
    const batch: number = config.orders.batchSize; // typed by the schema
    expect(batch).to.equal(5);
    expect(config.orders.region).to.equal('eu');

    tmp().write('default.yaml', 'orders:\n  batchSize: 0\n  regoin: eu\nserver:\n  port: "x"\n');
    const issues = catchConfigError(() => loadConfig({ ...base(), sections: { orders } })).issues;
    expect(issues).to.have.length(3);
    expect(issues.some((i) => i.startsWith('orders.batchSize:'))).to.equal(true);
    expect(issues.some((i) => i.startsWith('orders:') && i.includes('regoin'))).to.equal(true);
    expect(issues.some((i) => i.startsWith('server.port:'))).to.equal(true);
  });

  it('validates a declared section that no file sets, so its schema defaults apply', () => {
    const feature = z.object({ enabled: z.boolean().default(false) }).default({ enabled: false });
    expect(loadConfig({ ...base(), sections: { feature } }).feature).to.deep.equal({ enabled: false });
  });

  it('refuses to declare one of the layer own sections', () => {
    const issues = catchConfigError(() =>
      loadConfig({ ...base(), sections: { database: z.object({}) } }),
    ).issues;
    expect(issues).to.deep.equal([
      `sections.database: "database" is the data layer's own section, not an application's`,
    ]);
  });

  it('redacts secret-named keys of application sections when printed', () => {
    tmp().write(
      'default.yaml',
      'payments:\n  apiKey: sk_live_123\n  endpoint: https://pay\n  nested:\n    clientSecret: abc\n',
    );
    const printed = JSON.stringify(redactConfig(loadConfig(base())));
    expect(printed).not.to.include('sk_live_123');
    expect(printed).not.to.include('"abc"');
    expect(printed).to.include(`"apiKey":"${REDACTED}"`);
    expect(printed).to.include('https://pay');
  });
});
