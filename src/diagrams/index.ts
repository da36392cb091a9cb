/**
 * Living documentation: Mermaid diagrams generated from the machines (state diagrams) and from explorer
 * traces (sequence diagrams), rendered to SVG in one headless browser, and checked for staleness.
 * The browser parts (./browser.ts, ./render.ts) are not re-exported here, so importing this module never
 * loads puppeteer.
 */
export * from './chart.js';
export * from './check.js';
export * from './compactValue.js';
export * from './contextChanges.js';
export * from './generate.js';
export * from './labels.js';
export * from './machineChart.js';
export * from './mermaidText.js';
export * from './migrationRuns.js';
export * from './registry.js';
export * from './sequenceDiagram.js';
export * from './stateDiagram.js';
export * from './svgStamp.js';
export * from './vfioCharts.js';
export * from './vfioRuns.js';
export * from './write.js';
