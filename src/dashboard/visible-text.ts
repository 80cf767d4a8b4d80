import { options, type VNode } from 'preact';
import { revealInvisible as reveal } from '../domain/reveal-invisible.js';

/**
 * Every text the dashboard draws shows its invisible characters by name. Telemetry is the attacker's:
 * a process named "\u202Edelacsliat" is drawn as "tailscaled" (U+202E, right-to-left override, also
 * reverses the rest of its table cell: the hash beside it), and "tailscaled\u200b" looks like the
 * daemon while being another string. The analysis folds such names for its verdicts
 * (normalizeProcessName), but the run page, the detections and the approvals show what was stored,
 * and a person must see that it is not what it looks like. So a bidi control, zero-width or other
 * format or default-ignorable character (the set normalizeProcessName strips) is drawn as
 * "⟨U+202E⟩" where it sits; tab and line breaks stay (policy text, arguments).
 *
 * Text is changed, and the attributes that are text for a person (`aria-label`, read out by a screen
 * reader, and `title`, a tooltip); never the others: form fields, data-* and link targets keep the
 * exact stored value, so a filter or a form posted from the page still names the very string stored.
 */

export function revealInvisible(text: string): string {
  return reveal(text, true);
}

function revealChildren(children: unknown): unknown {
  if (typeof children === 'string') return revealInvisible(children);
  if (Array.isArray(children)) return children.map(revealChildren);
  return children;
}

/** Attributes a person reads (or hears): revealed as text is. */
const PERSON_READ_ATTRIBUTES = ['aria-label', 'title'] as const;

let installed = false;

/**
 * Installs the rewrite as a preact `options.vnode` hook, once per process: every element's text
 * children pass through revealInvisible when the element is created, whatever page or component
 * made it, so no page can forget it. (Components pass text on to elements, where it is caught.)
 */
export function installVisibleText(): void {
  if (installed) return;
  installed = true;
  const previous = options.vnode;
  options.vnode = (vnode: VNode) => {
    if (typeof vnode.type === 'string') {
      const props = vnode.props as Record<string, unknown> & { children?: unknown };
      if (props.children !== undefined) props.children = revealChildren(props.children);
      for (const a of PERSON_READ_ATTRIBUTES) if (typeof props[a] === 'string') props[a] = revealInvisible(props[a]);
    }
    previous?.(vnode);
  };
}
