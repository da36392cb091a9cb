/**
 * An explorer {@link Trace} (a counterexample or an example run) as Mermaid `sequenceDiagram` text:
 * one participant per component plus the environment, an arrow per step (an environment event, or a
 * channel delivery from the channel's sender), a note per state change, and a `loop` box around the
 * repeating part of a lasso.
 */
import type { Trace, TraceStep } from '../explorer/trace.js';
import { compactValue } from './compactValue.js';
import { contextChanges } from './contextChanges.js';
import { escapeLines, escapeText, idFactory } from './mermaidText.js';

export interface SequenceDiagramOptions {
  /** Component order, left to right (default: the order of `trace.initial`). */
  readonly participants?: readonly string[];
  /**
   * The sending component of each channel. A trace names only a delivery's channel and receiver; a
   * channel without an entry here gets a participant of its own, named after it.
   */
  readonly senders?: Readonly<Record<string, string>>;
  /** Show what each step changed in the context, leaf by leaf, under the state change (default true). */
  readonly showContext?: boolean;
  /** Longest context line (`path: old→new`) before it is cut with `…` (default 60). */
  readonly contextLength?: number;
  /** Most context lines per note; the rest are counted (default 4). */
  readonly maxContextChanges?: number;
  /** Label of the environment participant (default `Environment`). */
  readonly environment?: string;
}

/** Mermaid text of a trace (the body, without front matter). */
export function sequenceDiagramText(trace: Trace, opts: SequenceDiagramOptions = {}): string {
  const idOf = idFactory('p_');
  const envId = idOf('env');
  const senders = opts.senders ?? {};
  const showContext = opts.showContext ?? true;
  const contextLength = opts.contextLength ?? 60;
  const maxChanges = opts.maxContextChanges ?? 4;

  const components = unique([
    ...(opts.participants ?? []),
    ...Object.keys(trace.initial),
    ...trace.steps.flatMap((s) => [s.component, ...s.changes.map((c) => c.component)]),
  ]);
  const channelParticipants = unique(
    trace.steps.flatMap((s) => (s.kind === 'deliver' && s.channel !== undefined && senders[s.channel] === undefined ? [s.channel] : [])),
  );
  const componentId = (name: string) => idOf(`c:${name}`);
  const channelId = (name: string) => idOf(`ch:${name}`);

  const out = ['sequenceDiagram'];
  if (trace.steps.some((s) => s.kind === 'env')) out.push(`  participant ${envId} as ${escapeText(opts.environment ?? 'Environment')}`);
  for (const c of components) out.push(`  participant ${componentId(c)} as ${escapeText(c)}`);
  for (const ch of channelParticipants) out.push(`  participant ${channelId(ch)} as ${escapeText(ch)}`);

  const numbered = trace.steps.every((s, i) => s.step === (trace.steps[0]?.step ?? 1) + i);
  if (numbered && trace.steps.length > 0) out.push(`  autonumber ${trace.steps[0]!.step}`);

  for (const [name, value] of Object.entries(trace.initial)) out.push(`  Note over ${componentId(name)}: ${escapeText(value)}`);

  let indent = '  ';
  for (const step of trace.steps) {
    if (trace.cycleStart !== undefined && step.step === trace.cycleStart) {
      out.push(`  loop the steps from ${step.step} on repeat forever`);
      indent = '    ';
    }
    const from =
      step.kind === 'env'
        ? envId
        : step.channel !== undefined && senders[step.channel] !== undefined
          ? componentId(senders[step.channel]!)
          : channelId(step.channel ?? '?');
    const text = (numbered ? '' : `${step.step}. `) + messageText(step, senders);
    out.push(`${indent}${from}->>${componentId(step.component)}: ${escapeText(text)}`);
    for (const c of step.changes) {
      const lines = [c.from === c.to ? `stays ${c.to}` : `${c.from} → ${c.to}`];
      if (showContext && c.context) {
        const changed = contextChanges(c.context);
        lines.push(...changed.slice(0, maxChanges).map((l) => cut(l, contextLength)));
        if (changed.length > maxChanges) lines.push(`… ${changed.length - maxChanges} more`);
      }
      out.push(`${indent}Note over ${componentId(c.component)}: ${escapeLines(lines)}`);
    }
  }
  if (indent !== '  ') out.push('  end');
  return out.join('\n') + '\n';
}

/** `EVENT(key: value)`, prefixed with `[channel]` for a delivery whose sender is known. */
function messageText(step: TraceStep, senders: Readonly<Record<string, string>>): string {
  const { type, ...payload } = step.event as { type: string } & Record<string, unknown>;
  const args = Object.entries(payload).map(([k, v]) => `${k}: ${compactValue(v)}`);
  const event = args.length > 0 ? `${type}(${args.join(', ')})` : type;
  return step.kind === 'deliver' && step.channel !== undefined && senders[step.channel] !== undefined ? `[${step.channel}] ${event}` : event;
}

function cut(s: string, n: number): string {
  return s.length > n ? `${s.slice(0, n - 1)}…` : s;
}

function unique(xs: readonly string[]): string[] {
  return [...new Set(xs)];
}
