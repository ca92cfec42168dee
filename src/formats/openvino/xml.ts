/**
 * Just enough XML for OpenVINO IR: elements, attributes and text, the five predefined entities and
 * character references. DOCTYPE and entity declarations are refused (nothing is expanded or fetched).
 */

export interface XmlElement {
  readonly name: string;
  readonly attributes: ReadonlyMap<string, string>;
  readonly children: XmlElement[];
  text: string;
  /** 1-based line of the start tag, for errors. */
  readonly line: number;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function unescape(text: string): string | undefined {
  let bad = false;
  const out = text.replace(/&(#x[0-9a-fA-F]+|#\d+|\w+);/g, (_, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? parseInt(ref.slice(2), 16) : parseInt(ref.slice(1), 10);
      if (code > 0x10ffff) bad = true;
      return bad ? '' : String.fromCodePoint(code);
    }
    if (!(ref in ENTITIES)) bad = true;
    return ENTITIES[ref] ?? '';
  });
  return bad ? undefined : out;
}

/** Parses `text` into its root element; `fail(line, detail)` makes the error. */
export function parseXml(text: string, fail: (line: number, detail: string) => Error): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let line = 1;
  let pos = 0;
  const advance = (to: number) => {
    for (let i = pos; i < to; i++) if (text.charCodeAt(i) === 10) line++;
    pos = to;
  };
  while (pos < text.length) {
    const lt = text.indexOf('<', pos);
    const chunk = text.slice(pos, lt < 0 ? text.length : lt);
    if (stack.length) {
      const decoded = unescape(chunk);
      if (decoded === undefined) throw fail(line, 'unknown entity or character reference in text');
      stack[stack.length - 1]!.text += decoded;
    } else if (chunk.trim()) throw fail(line, 'text outside the root element');
    advance(lt < 0 ? text.length : lt);
    if (lt < 0) break;
    if (text.startsWith('<?', pos)) { advance(skipTo(text, pos, '?>', line, fail)); continue; }
    if (text.startsWith('<!--', pos)) { advance(skipTo(text, pos, '-->', line, fail)); continue; }
    if (text.startsWith('<![CDATA[', pos)) {
      const end = skipTo(text, pos, ']]>', line, fail);
      if (!stack.length) throw fail(line, 'CDATA outside the root element');
      stack[stack.length - 1]!.text += text.slice(pos + 9, end - 3);
      advance(end);
      continue;
    }
    if (text.startsWith('<!', pos)) throw fail(line, 'DOCTYPE and entity declarations are not allowed in an IR file');
    const gt = text.indexOf('>', pos);
    if (gt < 0) throw fail(line, 'tag is not closed (truncated?)');
    const tag = text.slice(pos + 1, gt);
    const startLine = line;
    advance(gt + 1);
    if (tag.startsWith('/')) {
      const name = tag.slice(1).trim();
      const open = stack.pop();
      if (!open || open.name !== name) throw fail(startLine, `closing tag </${name}> does not match <${open?.name ?? 'nothing'}>`);
      continue;
    }
    const selfClosing = tag.endsWith('/');
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const nameMatch = /^([A-Za-z_][\w.:-]*)/.exec(body);
    if (!nameMatch) throw fail(startLine, `malformed tag '<${tag.slice(0, 40)}>'`);
    const attributes = new Map<string, string>();
    const rest = body.slice(nameMatch[1]!.length);
    const attr = /\s*([A-Za-z_][\w.:-]*)\s*=\s*("([^"]*)"|'([^']*)')/gy;
    let at = 0;
    for (let m = attr.exec(rest); m; m = attr.exec(rest)) {
      const value = unescape(m[3] ?? m[4] ?? '');
      if (value === undefined) throw fail(startLine, `attribute ${m[1]}: unknown entity or character reference`);
      if (attributes.has(m[1]!)) throw fail(startLine, `attribute ${m[1]} given twice`);
      attributes.set(m[1]!, value);
      at = attr.lastIndex;
    }
    if (rest.slice(at).trim()) throw fail(startLine, `malformed attributes in <${nameMatch[1]}>`);
    const element: XmlElement = { name: nameMatch[1]!, attributes, children: [], text: '', line: startLine };
    if (stack.length) stack[stack.length - 1]!.children.push(element);
    else if (root) throw fail(startLine, 'more than one root element');
    else root = element;
    if (!selfClosing) stack.push(element);
  }
  if (stack.length) throw fail(line, `<${stack[stack.length - 1]!.name}> is not closed (truncated?)`);
  if (!root) throw fail(line, 'no root element');
  return root;
}

function skipTo(text: string, pos: number, end: string, line: number, fail: (line: number, detail: string) => Error): number {
  const at = text.indexOf(end, pos);
  if (at < 0) throw fail(line, `'${end}' missing (truncated?)`);
  return at + end.length;
}

export const childrenNamed = (e: XmlElement, name: string) => e.children.filter((c) => c.name === name);
