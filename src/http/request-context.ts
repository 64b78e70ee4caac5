import { AsyncLocalStorage } from 'node:async_hooks';

/** What travels with one HTTP request's async call chain. */
// A type alias (not an interface) so it is assignable to Record<string, unknown> log fields.
export type RequestContext = { reqId: string };

/**
 * The current request of this async call chain (entered by the server's `onRequest` hook).
 * Lets code below the HTTP layer tag its log lines with the request id without taking the
 * request as a parameter (the composition root hands `currentRequestFields` to the query logger).
 */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** `{ reqId }` inside a request, else undefined. */
export function currentRequestFields(): RequestContext | undefined {
  return requestContext.getStore();
}
