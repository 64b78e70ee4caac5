import { expect } from 'chai';
import {
  MAX_LOGGED_FIELD,
  serializeRequest,
  type LoggedRequest,
} from '../../../src/observability/capped-request.js';
import { REDACTED, scrubSecrets } from '../../../src/observability/logger.js';
import { costRatio } from '../../support/cost-ratio.js';

/** Generous: a linear scrubber measures about 1, the old quadratic patterns over 1,000. */
const MAX_RATIO = 10;
/** The length of the reported request line: "/" + "a." x 7,600. */
const LENGTH = 15_201;

/** `unit` repeated to `LENGTH` characters, inside a JSON log line the way pino writes it. */
function line(unit: string, field = 'url'): string {
  const text = unit.repeat(Math.ceil(LENGTH / unit.length)).slice(0, LENGTH);
  return JSON.stringify({ level: 30, req: { method: 'GET', [field]: text }, msg: 'incoming request' });
}

/** Scrubs `text` ten times (one sample long enough to time well). */
function scrub10(text: string): void {
  for (let i = 0; i < 10; i++) scrubSecrets(text);
}

describe('scrubSecrets() cost on hostile text', () => {
  const benign = line('ab');
  const hostile: Record<string, string> = {
    'a dotted request line ("a." x N)': line('a.'),
    'a scheme-like run ("a+" x N)': line('a+'),
    'URL userinfo separators (":@" and "://:@")': line('a://:@'),
    'colons without an @ (":a" after "://")': `x://${':a'.repeat(LENGTH / 2)}`,
    'password keywords ("password=" x N)': line('password='),
    'quoted password values never closed ("pwd=\\"" x N)': line('pwd=\\"a'),
    'password keywords without "=" ("passwd " x N)': line('passwd '),
    'a long Host header ("a-" x N)': line('a-', 'host'),
    'a JSON key prefix run ("a." x N before "token")': `{"${'a.'.repeat(LENGTH / 2)}token":"x"}`,
  };

  for (const [name, text] of Object.entries(hostile)) {
    it(`costs ${name} within ${MAX_RATIO}x of benign text of the same length`, async () => {
      const ratio = await costRatio(scrub10, text, benign.slice(0, text.length).padEnd(text.length, 'b'));
      expect(ratio, `hostile/benign time ratio`).to.be.below(MAX_RATIO);
    });
  }

  it('still scrubs a secret that follows a hostile run', () => {
    const text = `${'a.'.repeat(5_000)} postgres://app:s3cret@db/app ${'a-'.repeat(5_000)} DB_PASSWORD=s3cret`;
    const out = scrubSecrets(text);
    expect(out).not.to.include('s3cret');
    expect(out).to.include(`postgres://app:${REDACTED}@db/app`);
    expect(out).to.include(`DB_PASSWORD=${REDACTED}`);
  });
});

describe('serializeRequest()', () => {
  it('leaves a logged plain object (not a request) as it is', () => {
    const fields = { headers: { host: 'x' } };
    expect(serializeRequest(fields)).to.equal(fields);
  });

  it('keeps the fields of a short request as they are', () => {
    const req = {
      method: 'GET',
      url: '/users?x=1',
      host: 'api.example',
      ip: '10.0.0.1',
      headers: {},
      socket: { remotePort: 4000 },
    };
    expect(serializeRequest(req)).to.deep.equal({
      method: 'GET',
      url: '/users?x=1',
      version: undefined,
      host: 'api.example',
      remoteAddress: '10.0.0.1',
      remotePort: 4000,
    });
  });

  it(`cuts a long URL and Host to ${MAX_LOGGED_FIELD} characters, saying how much was dropped`, () => {
    const url = '/' + 'a.'.repeat(7_600);
    const out = serializeRequest({
      method: 'GET',
      url,
      headers: { host: 'h'.repeat(9_000) },
      socket: {},
    }) as LoggedRequest;
    expect(out.url).to.equal(
      `${url.slice(0, MAX_LOGGED_FIELD)}…[${url.length - MAX_LOGGED_FIELD} more characters]`,
    );
    expect(out.host).to.equal(
      `${'h'.repeat(MAX_LOGGED_FIELD)}…[${9_000 - MAX_LOGGED_FIELD} more characters]`,
    );
  });

  it('scrubs before cutting, so no head of a password is left behind by the cut', () => {
    const pad = 'x'.repeat(MAX_LOGGED_FIELD - 20);
    const url = `/${pad}?u=postgres://app:${'S'.repeat(100)}@db/app`;
    const out = serializeRequest({ url, socket: {} }) as LoggedRequest;
    expect(out.url).not.to.include('SSS');
  });
});
