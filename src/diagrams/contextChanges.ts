/**
 * A trace step's context change, made short enough for a note. The explorer writes it as
 * `key: <json>→<json>, key: …`; here each key's two JSON values are read back and compared leaf by
 * leaf, so that a change deep in a big context reads `devs[0].state: RUNNING→PRE_COPY` instead of two
 * cut-off JSON blobs. Text that does not have that shape is kept as it is.
 */
import { compactValue } from './compactValue.js';

/** One line per changed leaf, `path: old→new`, or `path = new` for a replaced record (JSON quotes dropped). */
export function contextChanges(context: string): string[] {
  const entries = parseContextDiff(context);
  if (entries === undefined) return [context.replace(/"/g, '')];
  return entries.flatMap(([key, before, after]) => leafChanges(key, before, after));
}

/** `key: a→b, key2: c→d` → [[key, a, b], …], or undefined if the text is not in that form. */
export function parseContextDiff(text: string): [string, unknown, unknown][] | undefined {
  const out: [string, unknown, unknown][] = [];
  let i = 0;
  while (i < text.length) {
    const key = /^([^:,\s]+): /.exec(text.slice(i));
    if (!key) return undefined;
    i += key[0].length;
    const a = readJson(text, i);
    if (!a || text[a.end] !== '→') return undefined;
    const b = readJson(text, a.end + 1);
    if (!b) return undefined;
    out.push([key[1]!, a.value, b.value]);
    i = b.end;
    if (i < text.length) {
      if (!text.startsWith(', ', i)) return undefined;
      i += 2;
    }
  }
  return out;
}

/** The JSON value starting at `at`, and where it ends. */
function readJson(text: string, at: number): { value: unknown; end: number } | undefined {
  let end = at;
  const open = text[at];
  if (open === '{' || open === '[') {
    let depth = 0;
    let inString = false;
    for (; end < text.length; end++) {
      const c = text[end];
      if (inString) {
        if (c === '\\') end++;
        else if (c === '"') inString = false;
      } else if (c === '"') inString = true;
      else if (c === '{' || c === '[') depth++;
      else if (c === '}' || c === ']') {
        depth--;
        if (depth === 0) {
          end++;
          break;
        }
      }
    }
  } else if (open === '"') {
    for (end = at + 1; end < text.length && text[end] !== '"'; end++) if (text[end] === '\\') end++;
    end++;
  } else {
    while (end < text.length && text[end] !== '→' && text[end] !== ',') end++;
  }
  try {
    return { value: JSON.parse(text.slice(at, end)), end };
  } catch {
    return undefined;
  }
}

function isContainer(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** Two objects (or arrays) with the same keys: compared member by member, not as a whole. */
function sameShape(a: unknown, b: unknown): a is Record<string, unknown> {
  if (!isContainer(a) || !isContainer(b) || Array.isArray(a) !== Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

/**
 * The changed leaves between two values, as `path: old→new`. Values of the same shape are compared
 * member by member; a record or list replaced by one of another shape (a different result record, say)
 * is one change, shown by its new value: `path = {…}`.
 */
export function leafChanges(path: string, before: unknown, after: unknown): string[] {
  if (sameShape(before, after) && isContainer(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => leafChanges(Array.isArray(before) ? `${path}[${k}]` : `${path}.${k}`, before[k], after[k]));
  }
  if (JSON.stringify(before) === JSON.stringify(after)) return [];
  if (isContainer(before) || isContainer(after)) return [`${path} = ${after === undefined ? '–' : compactValue(after)}`];
  return [`${path}: ${before === undefined ? '–' : compactValue(before)}→${after === undefined ? '–' : compactValue(after)}`];
}
