/** A value as short, quote-free text for a diagram label: `{atArc: 0, leaves: ERROR}`, `[a, b]`. */
export function compactValue(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(compactValue).join(', ')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${k}: ${compactValue(x)}`)
      .join(', ')}}`;
  }
  return String(v);
}
