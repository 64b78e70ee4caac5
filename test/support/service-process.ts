import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** `npm start` running in its own process group, with its JSON log lines collected. */
export interface ServiceProcess {
  child: ChildProcess;
  /** Parsed JSON log lines (npm's own banner lines are skipped). */
  logs: Array<Record<string, unknown>>;
  /** Resolves with the exit code (or 128 + signal number). */
  exited: Promise<number>;
  /** The URL from the "listening on" line. */
  url(): Promise<string>;
  /** The pid of the node process running `src/main.ts` (from its log lines). */
  servicePid(): number;
  /** Everything printed, for failure messages. */
  output(): string;
}

/** Starts `npm start` in the repository with `env` added to a clean environment. */
export function startServiceProcess(env: Record<string, string>): ServiceProcess {
  const base = { ...process.env };
  // The test run's own settings must not leak into the service's configuration.
  for (const key of Object.keys(base))
    if (/^(DB_|DATABASE_URL|SERVER_|LOG_|APP_ENV|NODE_ENV|PG)/.test(key)) delete base[key];
  const child = spawn('npm', ['start'], {
    cwd: REPO_ROOT,
    env: { ...base, ...env },
    detached: true, // its own process group: signals we send reach only what we address
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Array<Record<string, unknown>> = [];
  let text = '';
  let pending = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      if (!line.startsWith('{')) continue;
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        // a partial or foreign line
      }
    }
    for (const l of listeners) l();
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise<number>((resolve) => {
    child.on('exit', (code, signal) => resolve(code ?? 128 + (signal ? signalNumber(signal) : 0)));
  });
  const url = (): Promise<string> =>
    new Promise((resolve, reject) => {
      const check = (): void => {
        const line = logs.find((l) => typeof l.url === 'string' && String(l.msg).startsWith('listening on'));
        if (line) {
          listeners.delete(check);
          resolve(line.url as string);
        }
      };
      listeners.add(check);
      check();
      void exited.then((code) =>
        reject(new Error(`npm start exited with ${code} before listening:\n${text}`)),
      );
    });
  const servicePid = (): number => {
    const line = logs.find((l) => typeof l.url === 'string');
    if (!line) throw new Error('the service has not logged its pid yet');
    return line.pid as number;
  };
  return { child, logs, exited, url, servicePid, output: () => text };
}

function signalNumber(signal: NodeJS.Signals): number {
  return ({ SIGTERM: 15, SIGINT: 2, SIGKILL: 9 } as Record<string, number>)[signal] ?? 0;
}

/** Resident set size now and at its peak (VmRSS, VmHWM) of a Linux process, bytes. */
export function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(path.join('/proc', String(pid), 'status'), 'utf8');
  const kb = (key: string): number =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024;
  return { rss: kb('VmRSS'), peak: kb('VmHWM') };
}

/** A response whose body was read in full. */
export interface StreamedResponse {
  status: number;
  body: string;
}

/**
 * POSTs a body produced chunk by chunk (with backpressure), so neither side holds it whole;
 * `pauseMs` waits between chunks to make a slow request.
 */
export function postChunks(
  url: string,
  contentType: string,
  chunks: Iterable<string> | AsyncIterable<string>,
  pauseMs = 0,
): { response: Promise<StreamedResponse>; sent: Promise<void> } {
  let markSent!: () => void;
  const sent = new Promise<void>((resolve) => (markSent = resolve));
  const response = new Promise<StreamedResponse>((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers: { 'content-type': contentType } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    void (async () => {
      for await (const chunk of chunks) {
        if (req.destroyed) return;
        if (!req.write(chunk)) await new Promise((r) => req.once('drain', r));
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
      req.end();
      markSent();
    })();
  });
  return { response, sent };
}
