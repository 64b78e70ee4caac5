import { context, trace, type Tracer } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';

/** An OpenTelemetry SDK that keeps every finished span in memory, registered globally. */
export interface InMemoryTracing {
  /** A tracer of this provider (for an explicit `tracing: { tracer }`). */
  tracer: Tracer;
  /** The spans finished so far, in the order they ended. */
  spans(): ReadableSpan[];
  /** Forgets the spans finished so far. */
  reset(): void;
}

/**
 * Registers, for the suite, what an application's NodeSDK would: a global tracer provider
 * exporting to memory (SimpleSpanProcessor: each span as it ends) and the AsyncLocalStorage
 * context manager, so a span made inside a transaction finds its parent. Unregisters both
 * after the suite; spans are forgotten before each test.
 */
export function useInMemoryTracing(): () => InMemoryTracing {
  let tracing: InMemoryTracing | undefined;
  let contextManager: AsyncLocalStorageContextManager | undefined;
  before(() => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    contextManager = new AsyncLocalStorageContextManager().enable();
    context.setGlobalContextManager(contextManager);
    trace.setGlobalTracerProvider(provider);
    tracing = {
      tracer: provider.getTracer('test'),
      spans: () => exporter.getFinishedSpans(),
      reset: () => exporter.reset(),
    };
  });
  beforeEach(() => tracing?.reset());
  after(() => {
    trace.disable();
    context.disable();
    contextManager?.disable();
    tracing = undefined;
  });
  return () => {
    if (!tracing) throw new Error('useInMemoryTracing(): only inside a test');
    return tracing;
  };
}

/** The spans whose parent is `parent` (by span id), in the order they ended. */
export function childrenOf(spans: readonly ReadableSpan[], parent: ReadableSpan): ReadableSpan[] {
  const id = parent.spanContext().spanId;
  return spans.filter((s) => s.parentSpanContext?.spanId === id);
}

/** The one span named `name`. @throws when there is none or more than one. */
export function onlySpan(spans: readonly ReadableSpan[], name: string): ReadableSpan {
  const found = spans.filter((s) => s.name === name);
  if (found.length !== 1)
    throw new Error(
      `expected one span "${name}", found ${found.length} in [${spans.map((s) => s.name).join(', ')}]`,
    );
  return found[0]!;
}

/**
 * Every span as JSON text, names, attributes, events, status and resource included: what an
 * exporter could send anywhere.
 */
export function serialisedSpans(spans: readonly ReadableSpan[]): string {
  return JSON.stringify(
    spans.map((s) => ({
      name: s.name,
      kind: s.kind,
      attributes: s.attributes,
      events: s.events,
      status: s.status,
      links: s.links,
      resource: s.resource.attributes,
    })),
  );
}
