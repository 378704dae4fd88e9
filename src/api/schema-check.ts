// Walks a value against a FieldSchema: types, unknown fields, required fields, enums, value checks, support warnings.
import { isIP } from 'node:net';
import { didYouMean, type Severity } from './diagnostics.js';
import { parseDuration } from './duration.js';
import { joinPath } from './positions.js';
import { typeLabel, type FieldSchema, type ValueCheck } from './schema.js';
import { parseQuantity } from './types.js';

/** Receives one finding; the caller adds resource identity and source position. */
export type Report = (code: string, severity: Severity, field: string, message: string, hint?: string) => void;

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const HOST_LABEL = '[a-z0-9_]([-a-z0-9_]*[a-z0-9_])?';
const HOST = new RegExp(`^(\\*|(\\*\\.)?${HOST_LABEL}(\\.${HOST_LABEL})*\\.?)(:\\d+)?$`, 'i');
const HEADER_NAME = /^:?[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  if (typeof v === 'string') return `string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 37)}...` : v)}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer ${v}` : `number ${v}`;
  return `${typeof v} ${String(v)}`;
}

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads an integer quantity check etc. used by the walker and by semantic checks. */
export function isLabelKey(k: string): boolean {
  const slash = k.indexOf('/');
  const prefix = slash >= 0 ? k.slice(0, slash) : undefined;
  const name = slash >= 0 ? k.slice(slash + 1) : k;
  if (prefix !== undefined && (prefix.length > 253 || !NAME.test(prefix))) return false;
  return name.length > 0 && name.length <= 63 && LABEL_NAME.test(name);
}

export function isLabelValue(v: string): boolean {
  return v === '' || (v.length <= 63 && LABEL_NAME.test(v));
}

export function isCidr(v: string): boolean {
  const [ip, bits, ...rest] = v.split('/');
  const family = isIP(ip);
  if (!family || rest.length > 0) return false;
  if (bits === undefined) return true;
  if (!/^\d+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

export function regexError(src: string): string | undefined {
  try {
    new RegExp(src);
    return undefined;
  } catch (err) {
    return (err as Error).message.replace(/^Invalid regular expression: /, '');
  }
}

function typeHint(expected: FieldSchema, v: unknown): string | undefined {
  if (expected.type === 'string' && (typeof v === 'number' || typeof v === 'boolean')) return `quote it: "${String(v)}"`;
  if ((expected.type === 'integer' || expected.type === 'number') && typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)))
    return 'write the number without quotes';
  if (expected.type === 'array' && v !== null && !Array.isArray(v)) return 'wrap the value in a list: [ ... ]';
  return undefined;
}

function checkValue(check: ValueCheck, v: unknown, field: string, report: Report): void {
  switch (check) {
    case 'port':
      if (typeof v === 'number' && (v < 1 || v > 65535)) report('TRL0209', 'error', field, `port ${v} is out of range 1-65535`);
      return;
    case 'percent':
      if (typeof v === 'number' && (v < 0 || v > 100)) report('TRL0207', 'error', field, `percentage ${v} is out of range 0-100`);
      return;
    case 'regex':
      if (typeof v === 'string') {
        const e = regexError(v);
        if (e) report('TRL0208', 'error', field, `regular expression ${JSON.stringify(v)} does not compile: ${e}`);
      }
      return;
    case 'httpStatus':
      if (typeof v === 'number' && (v < 100 || v > 599)) report('TRL0210', 'error', field, `HTTP status ${v} is not in 100-599`);
      return;
    case 'redirectStatus':
      if (typeof v === 'number' && (v < 300 || v > 399)) report('TRL0210', 'error', field, `redirect status ${v} is not a 3xx code`);
      return;
    case 'weight':
      if (typeof v === 'number' && v < 0) report('TRL0212', 'error', field, `weight must be a non-negative integer, got ${v}`);
      return;
    case 'host':
      if (typeof v === 'string' && !HOST.test(v) && !isIP(v))
        report('TRL0215', 'error', field, `${JSON.stringify(v)} is not a valid host name`);
      return;
    case 'cidr':
      if (typeof v === 'string' && !isCidr(v)) report('TRL0217', 'error', field, `${JSON.stringify(v)} is not an IP address or CIDR`);
      return;
    case 'ip':
      if (typeof v === 'string' && !isIP(v)) report('TRL0217', 'error', field, `${JSON.stringify(v)} is not an IP address`);
      return;
    case 'dnsLabel':
      if (typeof v === 'string' && (v.length > 253 || !NAME.test(v)))
        report('TRL0107', 'error', field, `${JSON.stringify(v)} is not a valid name`, 'use lowercase letters, digits, "-" and "."');
      return;
    case 'labelKey':
      if (typeof v === 'string' && !isLabelKey(v)) report('TRL0211', 'error', field, `${JSON.stringify(v)} is not a valid label key`);
      return;
    case 'labelValue':
      if (typeof v === 'string' && !isLabelValue(v))
        report('TRL0211', 'error', field, `${JSON.stringify(v)} is not a valid label value`, 'at most 63 letters, digits, "-", "_" and "."');
      return;
  }
}

/** Checks `v` against `s` at `field`, reporting every problem. `v` is known not to be undefined or null. */
export function checkField(v: unknown, s: FieldSchema, field: string, report: Report): void {
  if (s.unsupported) {
    report('TRL0401', 'warning', field, `not honoured by Trellis, ignored: ${s.unsupported}`);
    return;
  }
  if (s.deprecated) report('TRL0403', 'warning', field, `deprecated: ${s.deprecated}`);

  const wrongType = (expected: string): void =>
    report('TRL0202', 'error', field, `expected ${expected}, got ${describeValue(v)}`, typeHint(s, v));

  switch (s.type) {
    case 'any':
      return;
    case 'string':
      if (typeof v !== 'string') return wrongType('string');
      if (s.enum && !s.enum.includes(v)) {
        const near = s.enum.find((e) => e.toLowerCase() === v.toLowerCase()) ?? didYouMean(v, s.enum);
        report('TRL0205', 'error', field, `${JSON.stringify(v)} is not one of ${s.enum.join(', ')}`, near ? `did you mean "${near}"?` : undefined);
        return;
      }
      break;
    case 'integer':
      if (typeof v !== 'number' || !Number.isInteger(v)) {
        if (s.check === 'weight' && typeof v === 'number') {
          report('TRL0212', 'error', field, `weight must be a non-negative integer, got ${v}`);
          return;
        }
        return wrongType('integer');
      }
      break;
    case 'number':
      if (typeof v !== 'number' || !Number.isFinite(v)) return wrongType('number');
      break;
    case 'boolean':
      if (typeof v !== 'boolean') return wrongType('boolean (true or false)');
      return;
    case 'intOrString':
      if (typeof v === 'string') return;
      if (typeof v !== 'number' || !Number.isInteger(v)) return wrongType('integer or string');
      if (v < 1 || v > 65535) report('TRL0209', 'error', field, `port ${v} is out of range 1-65535`);
      return;
    case 'quantity': {
      if (typeof v !== 'number' && typeof v !== 'string') return wrongType('number or quantity');
      const q = parseQuantity(v);
      if (Number.isNaN(q)) {
        report('TRL0214', 'error', field, `${describeValue(v)} is not a quantity`, 'write a number such as 90, or a quantity such as "900m"');
      } else if (q < 0) report('TRL0212', 'error', field, `weight must not be negative, got ${String(v)}`);
      return;
    }
    case 'duration':
      if (typeof v !== 'string' || parseDuration(v) === undefined) {
        const hint = typeof v === 'number' ? `add a unit: "${v}s"` : 'write e.g. "1.5s", "100ms", "2m" or "1h"';
        report('TRL0206', 'error', field, `invalid duration ${typeof v === 'string' || typeof v === 'number' ? JSON.stringify(v) : describeValue(v)}`, hint);
      }
      return;
    case 'array':
      if (!Array.isArray(v)) return wrongType(`a list (${typeLabel(s)})`);
      if (s.items) {
        v.forEach((item, i) => {
          const p = joinPath(field, i);
          if (item === null || item === undefined) report('TRL0202', 'error', p, 'empty list item');
          else checkField(item, s.items!, p, report);
        });
      }
      return;
    case 'map':
      if (!isPlainObject(v)) return wrongType(`a mapping (${typeLabel(s)})`);
      for (const [k, item] of Object.entries(v)) {
        const p = joinPath(field, k);
        if (s.keyCheck === 'labelKey') checkValue('labelKey', k, p, report);
        else if (s.keyCheck === 'port') {
          if (!/^\d+$/.test(k) || Number(k) < 1 || Number(k) > 65535) report('TRL0209', 'error', p, `port ${JSON.stringify(k)} is not a port number 1-65535`);
        } else if (s.keyCheck === 'headerName' && !HEADER_NAME.test(k))
          report('TRL0216', 'error', p, `${JSON.stringify(k)} is not a valid header name`);
        if (item === null || item === undefined) {
          if (s.values?.type !== 'any') report('TRL0202', 'error', p, `expected ${s.values ? typeLabel(s.values) : 'a value'}, got null`);
        } else if (s.values) checkField(item, s.values, p, report);
      }
      return;
    case 'object':
      if (!isPlainObject(v)) return wrongType('a mapping');
      checkObject(v, s, field, report);
      return;
  }
  if (s.check) checkValue(s.check, v, field, report);
  if (typeof v === 'number') {
    if (s.min !== undefined && v < s.min) report('TRL0216', 'error', field, `must be at least ${s.min}, got ${v}`);
    if (s.max !== undefined && v > s.max) report('TRL0216', 'error', field, `must be at most ${s.max}, got ${v}`);
  }
}

function present(o: Record<string, unknown>, k: string): boolean {
  return o[k] !== undefined && o[k] !== null;
}

export function checkObject(o: Record<string, unknown>, s: FieldSchema, field: string, report: Report): void {
  const fields = s.fields ?? {};
  // A misspelt required field is reported once, as the unknown field whose hint names it.
  const hinted = new Set<string>();
  for (const [k, v] of Object.entries(o)) {
    const p = joinPath(field, k);
    const fs = Object.prototype.hasOwnProperty.call(fields, k) ? fields[k] : undefined;
    if (!fs) {
      const near = didYouMean(k, Object.keys(fields));
      if (near) hinted.add(near);
      report('TRL0201', 'error', p, `unknown field "${k}"`, near ? `did you mean "${near}"?` : undefined);
      continue;
    }
    if (v === undefined || v === null) continue;
    checkField(v, fs, p, report);
  }
  for (const [k, fs] of Object.entries(fields)) {
    if (fs.required && !present(o, k) && !hinted.has(k)) report('TRL0204', 'error', joinPath(field, k), `missing required field "${k}"`);
  }
  if (s.oneOf) {
    const set = s.oneOf.filter((k) => present(o, k));
    if (set.length === 0) report('TRL0213', 'error', field, `set one of ${s.oneOf.join(', ')}`);
    else if (set.length > 1) report('TRL0213', 'error', field, `set only one of ${s.oneOf.join(', ')} (found ${set.join(', ')})`);
  }
  if (s.atMostOne) {
    const set = s.atMostOne.filter((k) => present(o, k));
    if (set.length > 1) report('TRL0213', 'error', field, `${set.join(' and ')} exclude each other: set only one of ${s.atMostOne.join(', ')}`);
  }
}
