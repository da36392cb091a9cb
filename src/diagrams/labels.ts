/**
 * Transition labels in the UML form `EVENT [guard] / action, action`, from an XState v5 transition's
 * event descriptor, guard and actions — named (string or `{ type, params }`), built-in (`and`, `raise`,
 * `assign` …) or inline functions.
 *
 * Parameters are shown compactly, `name(key: value)`, and left out when they only repeat the arc's own
 * ends: `setEndsIn({ from: 'RUNNING', to: 'STOP' })` on the arc RUNNING → STOP reads `setEndsIn`. A
 * parameter list longer than {@link MAX_PARAMS} characters shows as `name(…)`.
 */

/** The state names at both ends of an arc (keys, not paths): parameters equal to one are elided. */
export interface ArcEnds {
  readonly source: string;
  readonly targets: readonly string[];
}

export const MAX_PARAMS = 32;

/** A readable event name: `after 500ms`, `done(child)`, `error(actor)`, `any other event` (`*`), or the type itself. */
export function eventLabel(eventType: string): string {
  if (eventType === '') return '';
  if (eventType === '*') return 'any other event';
  const after = /^xstate\.after\.([^.]+)\./.exec(eventType);
  if (after) return /^\d+$/.test(after[1]!) ? `after ${after[1]}ms` : `after ${after[1]}`;
  const done = /^xstate\.done\.(state|actor)\.(.+)$/.exec(eventType);
  if (done) return `done(${lastSegment(done[2]!)})`;
  const error = /^xstate\.error\.actor\.(.+)$/.exec(eventType);
  if (error) return `error(${lastSegment(error[1]!)})`;
  return eventType;
}

function lastSegment(id: string): string {
  return id.split('.').pop() ?? id;
}

/** `a, b` for the parameter values that say something the arc does not already say ('' if none). */
export function paramsLabel(params: unknown, ends: ArcEnds): string {
  if (params === undefined || params === null) return '';
  if (typeof params !== 'object') return ends.source === params || ends.targets.includes(String(params)) ? '' : compact(params);
  const known = new Set([ends.source, ...ends.targets]);
  const parts = Object.entries(params as Record<string, unknown>)
    .filter(([, v]) => !(typeof v === 'string' && known.has(v)))
    .map(([k, v]) => `${k}: ${compact(v)}`);
  const text = parts.join(', ');
  return text.length > MAX_PARAMS ? '…' : text;
}

function compact(v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'function') return 'ƒ';
  return JSON.stringify(v) ?? String(v);
}

function withParams(name: string, params: unknown, ends: ArcEnds): string {
  const p = paramsLabel(params, ends);
  return p === '' ? name : `${name}(${p})`;
}

/** The name of a guard: `name`, `name(params)`, `a && b`, `!a`, `in(state)`, or `inline`. */
export function guardLabel(guard: unknown, ends: ArcEnds): string {
  if (typeof guard === 'string') return guard;
  if (typeof guard === 'function') {
    const fn = guard as { name?: string; guards?: unknown[]; stateValue?: unknown };
    if (Array.isArray(fn.guards)) {
      const parts = fn.guards.map((g) => guardLabel(g, ends));
      if (fn.name === 'not') return `!${wrapCompound(parts[0] ?? '')}`;
      return parts.map(wrapCompound).join(fn.name === 'or' ? ' || ' : ' && ');
    }
    if (fn.stateValue !== undefined) return `in(${compact(fn.stateValue)})`;
    return inlineName(fn.name, ['guard']);
  }
  if (isParameterized(guard)) return withParams(guard.type, guard.params, ends);
  return 'inline';
}

function wrapCompound(label: string): string {
  return /&&|\|\|/.test(label) ? `(${label})` : label;
}

/** The name of an action: `name`, `name(params)`, `raise(EVENT)`, `assign`, or `inline`. */
export function actionLabel(action: unknown, ends: ArcEnds): string {
  if (typeof action === 'string') return action;
  if (typeof action === 'function') {
    const fn = action as { name?: string; type?: unknown; event?: unknown };
    if (typeof fn.type === 'string' && fn.type.startsWith('xstate.')) {
      const builtin = fn.type.slice('xstate.'.length);
      const ev = fn.event;
      if (ev && typeof ev === 'object' && typeof (ev as { type?: unknown }).type === 'string') {
        return `${builtin}(${(ev as { type: string }).type})`;
      }
      return builtin;
    }
    return inlineName(fn.name, ['actions', 'entry', 'exit']);
  }
  if (isParameterized(action)) return withParams(action.type, action.params, ends);
  return 'inline';
}

function inlineName(name: string | undefined, meaningless: readonly string[]): string {
  return name && !meaningless.includes(name) ? name : 'inline';
}

function isParameterized(x: unknown): x is { type: string; params?: unknown } {
  return typeof x === 'object' && x !== null && typeof (x as { type?: unknown }).type === 'string';
}

/** `a, b`: the labels of a list of actions ('' for none). */
export function actionsLabel(actions: readonly unknown[], ends: ArcEnds): string {
  return actions.map((a) => actionLabel(a, ends)).join(', ');
}

/** The parts of one transition a label is made from. */
export interface TransitionParts {
  readonly eventType: string;
  readonly guard?: unknown;
  readonly actions: readonly unknown[];
}

/** `EVENT [guard] / a, b` (parts that are absent are left out). */
export function transitionLabel(t: TransitionParts, ends: ArcEnds): string {
  const event = eventLabel(t.eventType);
  const guard = t.guard === undefined ? '' : `[${guardLabel(t.guard, ends)}]`;
  const actions = actionsLabel(t.actions, ends);
  const head = [event, guard].filter((s) => s !== '').join(' ');
  return actions === '' ? head : head === '' ? `/ ${actions}` : `${head} / ${actions}`;
}
