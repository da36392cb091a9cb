/**
 * The link between an SVG and the `.mmd` it was rendered from: the SHA-256 of the `.mmd` text, stored in
 * the SVG's root element as `data-mmd-sha256`.
 *
 * Why a hash and not file times: git does not keep modification times — a fresh checkout gives every
 * file the checkout time, in whatever order git wrote them — so "the SVG is older than its .mmd" cannot be
 * judged from mtimes. The stamp travels with the SVG's content instead: the SVG is current exactly when
 * its stamp equals the hash of the `.mmd` next to it, on any machine, after any checkout, without a
 * browser. (`sha256sum diagrams/NAME.mmd` gives the same value, for checking by hand.)
 */
import { createHash } from 'node:crypto';

export const STAMP_ATTRIBUTE = 'data-mmd-sha256';

/** SHA-256 (hex) of a `.mmd` file's text. */
export function sourceHash(mmd: string): string {
  return createHash('sha256').update(mmd, 'utf8').digest('hex');
}

/** The SVG with `data-mmd-sha256="<hash>"` on its root element (replacing any earlier stamp). */
export function stampSvg(svg: string, hash: string): string {
  const unstamped = svg.replace(new RegExp(`\\s${STAMP_ATTRIBUTE}="[^"]*"`), '');
  const at = unstamped.indexOf('<svg');
  if (at < 0) throw new Error('not an SVG document: no <svg element');
  const insert = at + '<svg'.length;
  return `${unstamped.slice(0, insert)} ${STAMP_ATTRIBUTE}="${hash}"${unstamped.slice(insert)}`;
}

/** The hash an SVG was stamped with, or undefined if it carries none. */
export function stampOf(svg: string): string | undefined {
  const root = /<svg\b[^>]*>/.exec(svg)?.[0];
  return root ? new RegExp(`\\s${STAMP_ATTRIBUTE}="([0-9a-f]{64})"`).exec(root)?.[1] : undefined;
}
