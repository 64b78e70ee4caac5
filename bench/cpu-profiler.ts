import { writeFileSync } from 'node:fs';
import type { Session } from 'node:inspector/promises';
import { findSourceMap } from 'node:module';

/** `fn` under the V8 CPU profiler (or, `heap`, the sampling heap profiler); the profile goes to `file`. */
export async function profiled(
  session: Session,
  file: string,
  opts: { heap: boolean; intervalUs?: number },
  fn: () => Promise<void>,
): Promise<void> {
  const { heap } = opts;
  if (heap) {
    await session.post('HeapProfiler.enable');
    // Not in @types/node yet: keep objects collected by minor/major GC, so the profile is allocation, not retention.
    await session.post('HeapProfiler.startSampling', {
      samplingInterval: 1024,
      includeObjectsCollectedByMajorGC: true,
      includeObjectsCollectedByMinorGC: true,
    } as { samplingInterval: number });
  } else {
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: opts.intervalUs ?? 100 });
    await session.post('Profiler.start');
  }
  try {
    await fn();
  } finally {
    const { profile } = heap
      ? await session.post('HeapProfiler.stopSampling')
      : await session.post('Profiler.stop');
    writeFileSync(file, JSON.stringify(toSourcePositions(profile)));
  }
}

interface Frame {
  url: string;
  lineNumber: number;
  columnNumber: number;
}

/**
 * Rewrites the profile's positions in files tsx transformed (ours: everything on a few long
 * lines) to their .ts lines and columns, through the source maps tsx registers, so the
 * summary can name `tx-handle.ts:212` instead of `tx-handle.ts:1`. In place; returns it.
 */
function toSourcePositions<P extends object>(profile: P): P {
  const map = (frame: Frame): void => {
    if (!frame.url.startsWith('file:') || frame.url.includes('/node_modules/') || frame.lineNumber < 0)
      return;
    const entry = findSourceMap(frame.url)?.findEntry(frame.lineNumber, frame.columnNumber);
    if (!entry || !('originalLine' in entry)) return;
    frame.lineNumber = entry.originalLine;
    frame.columnNumber = entry.originalColumn;
  };
  const walk = (node: { callFrame: Frame; children?: unknown[] }): void => {
    map(node.callFrame);
    // Heap profiles nest nodes; CPU profiles list them flat with child ids.
    for (const child of node.children ?? []) if (typeof child === 'object') walk(child as typeof node);
  };
  const p = profile as { nodes?: Array<{ callFrame: Frame }>; head?: { callFrame: Frame } };
  for (const node of p.nodes ?? []) map(node.callFrame);
  if (p.head) walk(p.head);
  return profile;
}
