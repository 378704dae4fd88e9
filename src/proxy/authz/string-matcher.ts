// Precompiles Envoy StringMatcher / ValueMatcher configs into predicates; throws on what it cannot evaluate.

export type StringPredicate = (value: string | undefined) => boolean;

export interface StringMatcherConfig {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex?: string };
  ignore_case?: boolean;
  custom?: unknown;
}

/** Envoy regexes are RE2 and match the whole value; JavaScript's engine covers the subset the compiler emits. */
export function compileRegex(re: string | undefined, flags = ''): RegExp {
  if (typeof re !== 'string') throw new Error('safe_regex without regex');
  try {
    return new RegExp(`^(?:${re})$`, flags);
  } catch (e) {
    throw new Error(`bad regex ${JSON.stringify(re)}: ${(e as Error).message}`);
  }
}

export function compileStringMatcher(m: StringMatcherConfig | undefined): StringPredicate {
  if (!m) throw new Error('missing string matcher');
  const ic = m.ignore_case === true;
  const norm = (s: string): string => (ic ? s.toLowerCase() : s);
  if (m.exact !== undefined) {
    const want = norm(m.exact);
    return (v) => v !== undefined && norm(v) === want;
  }
  if (m.prefix !== undefined) {
    const want = norm(m.prefix);
    return (v) => v !== undefined && norm(v).startsWith(want);
  }
  if (m.suffix !== undefined) {
    const want = norm(m.suffix);
    return (v) => v !== undefined && norm(v).endsWith(want);
  }
  if (m.contains !== undefined) {
    const want = norm(m.contains);
    return (v) => v !== undefined && norm(v).includes(want);
  }
  if (m.safe_regex !== undefined) {
    // Envoy ignores ignore_case for safe_regex; so do we.
    const re = compileRegex(m.safe_regex.regex);
    return (v) => v !== undefined && re.test(v);
  }
  throw new Error(`unsupported string matcher ${JSON.stringify(Object.keys(m))}`);
}

export type ValuePredicate = (value: unknown) => boolean;

interface ValueMatcherConfig {
  null_match?: object;
  double_match?: { exact?: number; range?: { start?: number; end?: number } };
  string_match?: StringMatcherConfig;
  bool_match?: boolean;
  present_match?: boolean;
  list_match?: { one_of?: ValueMatcherConfig };
  or_match?: { value_matchers?: ValueMatcherConfig[] };
}

/** envoy.type.matcher.v3.ValueMatcher over a JSON-like value (undefined = absent). */
export function compileValueMatcher(m: ValueMatcherConfig | undefined): ValuePredicate {
  if (!m) throw new Error('missing value matcher');
  if (m.string_match !== undefined) {
    const sm = compileStringMatcher(m.string_match);
    return (v) => typeof v === 'string' && sm(v);
  }
  if (m.present_match !== undefined) {
    const want = m.present_match === true;
    return (v) => (v !== undefined && v !== null) === want;
  }
  if (m.bool_match !== undefined) {
    const want = m.bool_match;
    return (v) => v === want;
  }
  if (m.null_match !== undefined) return (v) => v === null;
  if (m.double_match !== undefined) {
    const d = m.double_match;
    if (d.exact !== undefined) {
      const want = Number(d.exact);
      return (v) => typeof v === 'number' && v === want;
    }
    if (d.range) {
      const lo = Number(d.range.start ?? -Infinity);
      const hi = Number(d.range.end ?? Infinity);
      return (v) => typeof v === 'number' && v >= lo && v < hi;
    }
    throw new Error('double_match without exact or range');
  }
  if (m.list_match !== undefined) {
    const one = compileValueMatcher(m.list_match.one_of);
    return (v) => Array.isArray(v) && v.some(one);
  }
  if (m.or_match !== undefined) {
    const all = (m.or_match.value_matchers ?? []).map(compileValueMatcher);
    if (all.length === 0) throw new Error('or_match without matchers');
    return (v) => {
      for (const p of all) if (p(v)) return true;
      return false;
    };
  }
  throw new Error(`unsupported value matcher ${JSON.stringify(Object.keys(m))}`);
}
