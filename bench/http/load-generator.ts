import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** The routes the HTTP bench drives. */
export const ROUTES = ['get', 'list', 'post', 'patch'] as const;
/** One of `ROUTES`. */
export type Route = (typeof ROUTES)[number];

/** What one run of the load generator does. */
export interface LoadSpec {
  /** Base URL of the server, `http://127.0.0.1:port`. */
  url: string;
  route: Route;
  durationS: number;
  connections: number;
  threads: number;
  /** `get`: ids are drawn from 1..maxId. */
  maxId: number;
  /** `post`: unique per run, so every email of the run is new. */
  tag: string;
  /** `patch`: "id version" lines with the current version of each user to patch. */
  versionsFile: string;
}

/** What one run measured. */
export interface LoadResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Non-2xx responses plus socket errors and timeouts. */
  errors: number;
}

const LUA = fileURLToPath(new URL('./users-routes.lua', import.meta.url));

/** `wrk` when it is on PATH (Debian package `wrk`), else autocannon (a dev dependency). */
export function loadGeneratorName(): 'wrk' | 'autocannon' {
  return spawnSync('wrk', ['--version'], { stdio: 'ignore' }).error ? 'autocannon' : 'wrk';
}

/** Drives `spec.url` with the generator named by `loadGeneratorName()`. */
export function runLoad(spec: LoadSpec, generator = loadGeneratorName()): Promise<LoadResult> {
  return generator === 'wrk' ? runWrk(spec) : runAutocannon(spec);
}

function wrkArgs(spec: LoadSpec): string[] {
  switch (spec.route) {
    case 'get':
      return ['get', String(spec.maxId)];
    case 'list':
      return ['list'];
    case 'post':
      return ['post', spec.tag];
    case 'patch':
      return ['patch', spec.versionsFile, String(spec.threads)];
  }
}

async function runWrk(spec: LoadSpec): Promise<LoadResult> {
  const args = [
    `-t${spec.threads}`,
    `-c${spec.connections}`,
    `-d${spec.durationS}s`,
    '--latency',
    '--timeout',
    '10s',
    '-s',
    LUA,
    spec.url,
    '--',
    ...wrkArgs(spec),
  ];
  const out = await new Promise<string>((resolve, reject) =>
    execFile('wrk', args, { timeout: (spec.durationS + 30) * 1000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`wrk failed: ${err.message}\n${stderr}`)) : resolve(stdout),
    ),
  );
  return parseWrk(out);
}

/** Reads req/s, p50, p99, the request count and errors off wrk's `--latency` report. */
export function parseWrk(out: string): LoadResult {
  const num = (re: RegExp): number => Number(re.exec(out)?.[1] ?? NaN);
  const latency = (pct: string): number => {
    const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)\\s*$`, 'm').exec(out);
    if (!m) return NaN;
    return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]!;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const socketErrors = socket ? socket.slice(1).reduce((s, v) => s + Number(v), 0) : 0;
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    p50Ms: latency('50'),
    p99Ms: latency('99'),
    requests: num(/(\d+) requests in/),
    errors: (num(/Non-2xx or 3xx responses: (\d+)/) || 0) + socketErrors,
  };
}

interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}
interface AutocannonResult {
  duration: number;
  requests: { total: number };
  latency: { p50: number; p99: number };
  non2xx: number;
  errors: number;
  timeouts: number;
}
type Autocannon = (opts: object) => Promise<AutocannonResult>;

async function runAutocannon(spec: LoadSpec): Promise<LoadResult> {
  // No type declarations ship with autocannon; the shape used is the one above.
  const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
  const result = await autocannon({
    url: spec.url,
    connections: spec.connections,
    duration: spec.durationS,
    timeout: 10,
    requests: [{ setupRequest: requestMaker(spec) }],
  });
  return {
    rps: result.requests.total / result.duration,
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    requests: result.requests.total,
    errors: result.non2xx + result.errors + result.timeouts,
  };
}

/** The autocannon twin of `users-routes.lua`. */
function requestMaker(spec: LoadSpec): (req: AutocannonRequest) => AutocannonRequest {
  let counter = 0;
  const json = { 'content-type': 'application/json' };
  switch (spec.route) {
    case 'get':
      return (req) => ({
        ...req,
        method: 'GET',
        path: `/users/${1 + Math.floor(Math.random() * spec.maxId)}`,
      });
    case 'list':
      return (req) => ({ ...req, method: 'GET', path: '/users?limit=50' });
    case 'post':
      return (req) => {
        counter++;
        const body = JSON.stringify({
          email: `http-${spec.tag}-${counter}@example.com`,
          name: `Bench ${counter}`,
        });
        return { ...req, method: 'POST', path: '/users', headers: json, body };
      };
    case 'patch': {
      const versions = readFileSync(spec.versionsFile, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => line.split(' ').map(Number) as [number, number]);
      let next = 0;
      return (req) => {
        const entry = versions[next]!;
        next = (next + 1) % versions.length;
        const version = entry[1]++; // assumes success; a failure shows in the error count
        const headers = { ...json, 'if-match': `"${version}"` };
        const body = JSON.stringify({ name: `Patched ${++counter}` });
        return { ...req, method: 'PATCH', path: `/users/${entry[0]}`, headers, body };
      };
    }
  }
}
