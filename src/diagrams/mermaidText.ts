/**
 * Mermaid text primitives shared by the diagram writers: escaping label text, making identifiers, the
 * YAML front matter every generated file starts with.
 *
 * Escaping uses Mermaid's own entity syntax (`#59;`, `#quot;`): Mermaid swaps entities out before
 * parsing and back in the finished SVG, so any label text survives the trip. Only the characters that
 * were found to break a parse or vanish from the rendering are encoded (`" ; # < > & %`); the rest
 * (`| : { } [ ]` …) are left readable. test/diagrams.test.ts parses and renders every one of them.
 */

const ENTITY: Readonly<Record<string, string>> = {
  '"': '#quot;',
  ';': '#59;',
  '#': '#35;',
  '<': '#lt;',
  '>': '#gt;',
  '&': '#amp;',
  '%': '#37;',
};

/** One line of label text, made safe for any Mermaid label position (state name, edge, note, message). */
export function escapeText(text: string): string {
  return text.replace(/\r?\n/g, ' ').replace(/[";#<>&%]/g, (c) => ENTITY[c] ?? c);
}

/** Several lines of text as one Mermaid label: each line escaped, joined with `<br/>`. */
export function escapeLines(lines: readonly string[]): string {
  return lines.map(escapeText).join('<br/>');
}

/**
 * Break `text` into lines of at most `width` characters, at spaces where it can (a longer word is cut),
 * so notes stay narrow.
 */
export function wrapText(text: string, width = 48): string[] {
  const lines: string[] = [];
  let line = '';
  const words = text.split(/\s+/).flatMap((w) => (w.length > width ? (w.match(new RegExp(`.{1,${width}}`, 'gu')) ?? []) : [w]));
  for (const word of words.filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else {
      line = line === '' ? word : `${line} ${word}`;
    }
  }
  if (line !== '') lines.push(line);
  return lines;
}

/**
 * A factory of Mermaid identifiers: `[A-Za-z0-9_]` only, with a prefix so no id is a keyword (`end`,
 * `state`, `note`), and unique per factory — two different keys never share an id.
 */
export function idFactory(prefix: string): (key: string) => string {
  const byKey = new Map<string, string>();
  const used = new Set<string>();
  return (key) => {
    const known = byKey.get(key);
    if (known !== undefined) return known;
    const base = `${prefix}${key.replace(/[^A-Za-z0-9_]+/g, '_')}`;
    let id = base;
    for (let n = 2; used.has(id); n++) id = `${base}_${n}`;
    used.add(id);
    byKey.set(key, id);
    return id;
  };
}

/**
 * The render settings, written into every file's front matter so that the `.mmd` alone decides its
 * SVG (and its hash covers them). `handDrawnSeed` fixes the seed of the rough.js shapes Mermaid draws
 * notes with — without it every render differs; `deterministicIds` does the same for generated ids.
 */
export const RENDER_CONFIG: Readonly<Record<string, string | number | boolean>> = {
  theme: 'default',
  deterministicIds: true,
  handDrawnSeed: 1,
};

/**
 * A complete Mermaid file: front matter (title and render settings), then the diagram body.
 * The title is plain text: Mermaid decodes no entities in it and treats `<`, `>` and `&` as HTML, so
 * those are refused rather than mangled.
 */
export function mermaidFile(title: string, body: string): string {
  if (/[<>&\n]/.test(title)) throw new Error(`diagram title ${JSON.stringify(title)}: no <, >, & or line breaks`);
  const config = Object.entries(RENDER_CONFIG).map(([k, v]) => `  ${k}: ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`);
  return ['---', `title: ${JSON.stringify(title)}`, 'config:', ...config, '---', body.replace(/\n*$/, ''), ''].join('\n');
}
