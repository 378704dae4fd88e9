// IP address parsing and CIDR membership for authorization (IPv4, IPv6, IPv4-mapped IPv6 treated as IPv4).
import { isIP } from 'node:net';

/** 4 bytes for IPv4 (including ::ffff:a.b.c.d), 16 for IPv6; undefined when not an IP literal. */
export function parseIp(text: string | undefined): Uint8Array | undefined {
  if (!text) return undefined;
  let s = text;
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const fam = isIP(s);
  if (fam === 4) return v4(s);
  if (fam !== 6) return undefined;
  const lower = s.toLowerCase();
  if (lower.startsWith('::ffff:') && isIP(lower.slice(7)) === 4) return v4(lower.slice(7));
  const b = v6(lower);
  if (b && isMapped(b)) return b.slice(12);
  return b;
}

function isMapped(b: Uint8Array): boolean {
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return false;
  return b[10] === 0xff && b[11] === 0xff;
}

function v4(s: string): Uint8Array {
  const out = new Uint8Array(4);
  const parts = s.split('.');
  for (let i = 0; i < 4; i++) out[i] = Number(parts[i]);
  return out;
}

function v6(s: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  let head = s;
  let tail = '';
  const dbl = s.indexOf('::');
  if (dbl >= 0) {
    head = s.slice(0, dbl);
    tail = s.slice(dbl + 2);
  }
  const groups = (x: string): number[] => {
    if (x === '') return [];
    const out: number[] = [];
    for (const g of x.split(':')) {
      if (g.includes('.')) {
        const b = v4(g);
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else out.push(parseInt(g, 16));
    }
    return out;
  };
  const h = groups(head);
  const t = groups(tail);
  if (h.length + t.length > 8) return undefined;
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  for (let i = 0; i < 8; i++) {
    out[i * 2] = all[i] >> 8;
    out[i * 2 + 1] = all[i] & 0xff;
  }
  return out;
}

export interface Cidr {
  bytes: Uint8Array;
  prefixLen: number;
}

/** A CIDR from Envoy's CidrRange; throws when it cannot be evaluated (the caller fails closed). */
export function compileCidr(range: { address_prefix?: string; prefix_len?: { value?: number } | number } | undefined): Cidr {
  const bytes = parseIp(range?.address_prefix);
  if (!bytes) throw new Error(`bad CIDR address ${JSON.stringify(range?.address_prefix)}`);
  const raw = range?.prefix_len;
  // Envoy's default prefix_len is 0; the compiler always sets it, so treat absence literally.
  let len = typeof raw === 'number' ? raw : Number(raw?.value ?? 0);
  const mappedV4 = bytes.length === 4 && isIP(range!.address_prefix!.replace(/^\[|\]$/g, '')) === 6;
  if (mappedV4) len -= 96;
  if (!Number.isInteger(len) || len < 0 || len > bytes.length * 8) throw new Error(`bad CIDR prefix length ${String(len)}`);
  return { bytes, prefixLen: len };
}

export function cidrContains(c: Cidr, ip: Uint8Array | undefined): boolean {
  if (!ip || ip.length !== c.bytes.length) return false;
  const full = c.prefixLen >> 3;
  for (let i = 0; i < full; i++) if (ip[i] !== c.bytes[i]) return false;
  const rem = c.prefixLen & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return (ip[full] & mask) === (c.bytes[full] & mask);
}
