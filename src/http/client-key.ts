/**
 * Who a request comes from, for per-client limits: `sub:<subject>` when the request carries a
 * verified token (authentication puts it on `request.user`, with its `sub` claim), else
 * `ip:<address>`, the peer address as Fastify reports it (`request.ip`: the socket's address,
 * or the forwarded one when the server trusts a proxy). Behind a proxy or ingress that is not
 * trusted, every client shares the proxy's address, so an address-keyed limit then limits all
 * of them together: authenticate imports to key them by subject.
 *
 * Reads `user` defensively (any shape): only a non-empty string `sub` counts.
 */
export function clientKey(request: { ip?: string; user?: unknown }): string {
  const sub = (request.user as { sub?: unknown } | null | undefined)?.sub;
  if (typeof sub === 'string' && sub !== '') return `sub:${sub}`;
  return `ip:${request.ip ?? 'unknown'}`;
}
