/**
 * A run as JUnit XML (the Ant/Surefire dialect CI systems read): one <testsuite> for the suite, one
 * <testcase> per case, a <failure> (the system diverged) or <error> (the adapter failed) with the
 * divergence's message as attribute and its detail as text. Text is escaped, and characters XML 1.0
 * cannot carry at all are dropped.
 */
import { type RunReport, failureDetail } from './runner.js';

// eslint-disable-next-line no-control-regex
const INVALID_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Escape for element text. */
export function xmlText(s: string): string {
  return s.replace(INVALID_XML, '').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Escape for a double-quoted attribute value (newlines and tabs kept as character references). */
export function xmlAttr(s: string): string {
  return xmlText(s).replace(/"/g, '&quot;').replace(/'/g, '&apos;').replace(/\n/g, '&#10;').replace(/\r/g, '&#13;').replace(/\t/g, '&#9;');
}

const secs = (s: number) => Math.max(0, s).toFixed(3);

export function toJUnitXml(r: RunReport): string {
  const suiteName = `${r.system} (${r.criterion})`;
  const classname = `${r.adapter}.${r.criterion}`;
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="migration-statecharts" tests="${r.cases.length}" failures="${r.failed}" errors="${r.errors}" time="${secs(r.seconds)}">`,
    `  <testsuite name="${xmlAttr(suiteName)}" tests="${r.cases.length}" failures="${r.failed}" errors="${r.errors}" skipped="0" time="${secs(r.seconds)}">`,
    '    <properties>',
    `      <property name="adapter" value="${xmlAttr(r.adapter)}"/>`,
    `      <property name="system" value="${xmlAttr(r.system)}"/>`,
    `      <property name="criterion" value="${xmlAttr(r.criterion)}"/>`,
    '    </properties>',
  ];
  for (const c of r.cases) {
    const head = `    <testcase name="${xmlAttr(c.name)}" classname="${xmlAttr(classname)}" time="${secs(c.seconds)}"`;
    if (!c.failure) {
      lines.push(`${head}/>`);
      continue;
    }
    const tag = c.status === 'error' ? 'error' : 'failure';
    lines.push(`${head}>`);
    lines.push(`      <${tag} message="${xmlAttr(c.failure.message)}" type="${c.failure.kind}">${xmlText(failureDetail(c.failure).join('\n'))}</${tag}>`);
    lines.push('    </testcase>');
  }
  lines.push('  </testsuite>', '</testsuites>');
  return lines.join('\n') + '\n';
}
