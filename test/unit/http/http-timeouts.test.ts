import { expect } from 'chai';
import { nodeServerOptions } from '../../../src/http/http-timeouts.js';

const BASE = {
  requestTimeout: 30_000,
  headersTimeout: 10_000,
  keepAliveTimeout: 72_000,
  bodyTimeout: 10_000,
};

describe('nodeServerOptions()', () => {
  it("makes Node's requestTimeout the backstop of both the request and the import deadline", () => {
    expect(nodeServerOptions({ ...BASE, import: { timeout: 300_000 } })).to.deep.equal({
      headersTimeout: 10_000,
      requestTimeout: 300_000,
      keepAliveTimeout: 72_000,
      connectionsCheckingInterval: 2_500,
    });
  });

  it("turns Node's requestTimeout off when imports have no deadline (an import must not be cut by it)", () => {
    expect(nodeServerOptions({ ...BASE, import: { timeout: 0 } })).to.include({ requestTimeout: 0 });
  });

  it('keeps headersTimeout at most the backstop (Node refuses more) and checks often enough for short timeouts', () => {
    const opts = nodeServerOptions({
      ...BASE,
      requestTimeout: 200,
      headersTimeout: 1_000,
      import: { timeout: 300 },
    });
    expect(opts).to.include({ headersTimeout: 300, requestTimeout: 300, connectionsCheckingInterval: 100 });
  });
});
