/**
 * A readable name for an XState v5 guard as it appears in a machine definition: a named guard
 * (`'canSwitchover'`), a parameterised one (`{ type, params }`), or a combinator built with `and`, `or`
 * and `not` (functions carrying `.check` and `.guards`). Used by coverage reports and diagrams.
 */
export function guardName(g: unknown): string {
  if (g === undefined || g === null) return '';
  if (typeof g === 'string') return g;
  if (typeof g === 'function') {
    const f = g as { check?: { name?: string }; guards?: unknown[]; name?: string };
    if (Array.isArray(f.guards)) {
      const parts = f.guards.map(guardName);
      const op = (f.check?.name ?? '').replace(/^check/, '').toLowerCase();
      if (op === 'not') return `!${parts[0]}`;
      return parts.join(op === 'or' ? ' || ' : ' && ');
    }
    return f.name && f.name !== 'guard' ? f.name : 'guard';
  }
  if (typeof g === 'object') {
    const o = g as { type?: string; params?: unknown };
    if (o.type) return o.params === undefined ? o.type : `${o.type} ${JSON.stringify(o.params)}`;
  }
  return 'guard';
}
