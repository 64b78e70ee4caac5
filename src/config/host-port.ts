/** One server to connect to. */
export interface HostPort {
  host: string;
  port: number;
}

/** `host:port` or `[v6]:port` (validated by the config schema) -> its parts. */
export function parseHostPort(text: string): HostPort {
  const at = text.lastIndexOf(':');
  return { host: text.slice(0, at).replace(/^\[(.*)\]$/, '$1'), port: Number(text.slice(at + 1)) };
}

/** `host:port` for messages and metric labels (never carries a secret). */
export function formatHostPort({ host, port }: HostPort): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
