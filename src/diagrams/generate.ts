/**
 * Registry entries to Mermaid file text. Pure and browser-free: `diagrams:check` needs only this.
 */
import { machineChart } from './machineChart.js';
import { mermaidFile } from './mermaidText.js';
import { DIAGRAMS, type DiagramEntry } from './registry.js';
import { sequenceDiagramText } from './sequenceDiagram.js';
import { stateDiagramText } from './stateDiagram.js';

export interface GeneratedDiagram {
  readonly entry: DiagramEntry;
  /** The full text of `diagrams/NAME.mmd`. */
  readonly mmd: string;
}

/** The `.mmd` text of one entry. */
export function diagramText(entry: DiagramEntry): string {
  const src = entry.source;
  switch (src.kind) {
    case 'machine':
      return mermaidFile(entry.title, stateDiagramText(machineChart(src.machine, src.chart), src.layout));
    case 'chart':
      return mermaidFile(entry.title, stateDiagramText(src.chart(), src.layout));
    case 'trace':
      return mermaidFile(entry.title, sequenceDiagramText(src.trace(), src.sequence));
  }
}

/** Every entry's text (names must be unique: they are file names). */
export function generateAll(entries: readonly DiagramEntry[] = DIAGRAMS): GeneratedDiagram[] {
  const seen = new Set<string>();
  return entries.map((entry) => {
    if (!/^[a-z0-9][a-z0-9-]*$/.test(entry.name)) throw new Error(`diagram name ${JSON.stringify(entry.name)}: use a-z, 0-9 and -`);
    if (seen.has(entry.name)) throw new Error(`two diagrams are called ${entry.name}`);
    seen.add(entry.name);
    return { entry, mmd: diagramText(entry) };
  });
}
