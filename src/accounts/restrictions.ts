import { BlockList, isIP } from 'node:net';

/** Strip an IPv4-mapped IPv6 prefix (`::ffff:1.2.3.4` → `1.2.3.4`). */
export function normalizeIp(ip: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  return m ? m[1]! : ip;
}

/** Is `entry` an IPv4/IPv6 address or CIDR? Returns the reason it is not, or null. */
export function invalidIpEntry(entry: string): string | null {
  const [addr, bits, extra] = entry.split('/');
  if (extra !== undefined || !addr) return `'${entry}' is not an IP address or CIDR`;
  const v = isIP(normalizeIp(addr));
  if (!v) return `'${entry}' is not an IP address or CIDR`;
  if (bits !== undefined) {
    const n = Number(bits);
    const max = v === 4 ? 32 : 128;
    if (!/^\d+$/.test(bits) || n > max) return `'${entry}' has an invalid prefix length`;
  }
  return null;
}

/** Compile an allowlist of addresses and CIDRs (IPv4 and IPv6) into a matcher. */
export function ipMatcher(list: string[]): (ip: string) => boolean {
  const bl = new BlockList();
  for (const entry of list) {
    if (invalidIpEntry(entry)) continue;
    const [rawAddr, bits] = entry.split('/');
    const addr = normalizeIp(rawAddr!);
    const type = isIP(addr) === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) bl.addAddress(addr, type);
    else bl.addSubnet(addr, Number(bits), type);
  }
  return (ip: string) => {
    const a = normalizeIp(ip);
    const v = isIP(a);
    if (!v) return false;
    return bl.check(a, v === 4 ? 'ipv4' : 'ipv6');
  };
}

/** A domain restriction entry as a bare lowercase host (`https://App.example.com/x` → `app.example.com`). */
export function normalizeDomain(entry: string): string | null {
  const s = entry.trim().toLowerCase();
  if (!s) return null;
  try {
    const host = new URL(s.includes('://') ? s : `https://${s}`).hostname;
    return host.replace(/^\*\./, '') || null;
  } catch {
    return null;
  }
}

/** Host of the request's Origin, else Referer; null when neither is a URL. */
export function requestHost(origin: unknown, referer: unknown): string | null {
  for (const v of [origin, referer]) {
    if (typeof v !== 'string' || !v || v === 'null') continue;
    try {
      return new URL(v).hostname.toLowerCase();
    } catch {}
  }
  return null;
}

/** The host equals one of the domains or is a subdomain of one. */
export function domainAllowed(host: string | null, domains: string[]): boolean {
  if (!host) return false;
  return domains.some((d) => host === d || host.endsWith(`.${d}`));
}

/** `*`, exact, or a trailing-`*` prefix pattern (`openai/*`). */
export function globMatches(pattern: string, value: string): boolean {
  if (pattern === '*' || pattern === value) return true;
  return pattern.endsWith('*') && value.startsWith(pattern.slice(0, -1));
}

/**
 * Scopes in the seed's shape: `{"read":["*"],"write":["api_keys"]}`. A request needs
 * `<action>` (GET/HEAD → read, anything else → write) on its resource; `*` as the action key
 * grants every action.
 */
export function scopeAllows(scopes: Record<string, string[]>, action: string, resource: string): boolean {
  for (const key of [action, '*']) {
    const list = scopes[key];
    if (Array.isArray(list) && list.some((p) => globMatches(p, resource))) return true;
  }
  return false;
}

/**
 * The resource a route acts on, for scopes: `/v1/chat/completions` → `chat`,
 * `/user/api-keys/:id` → `api_keys`, `/admin/users` → `admin`.
 */
export function resourceOf(routeUrl: string): string {
  const parts = routeUrl.split('/').filter((p) => p && !p.startsWith(':'));
  let i = 0;
  if (parts[0] === 'v1') i = 1;
  if (parts[i] === 'user' && parts[i + 1]) i++;
  return (parts[i] ?? '').replace(/-/g, '_') || 'root';
}

export const actionOf = (method: string): 'read' | 'write' =>
  method === 'GET' || method === 'HEAD' ? 'read' : 'write';
