import { invalidInput } from '../../core/errors.js';
import type { Layout, TensorRole } from '../../core/statedict.js';

/**
 * A Darknet `.cfg` and the `.weights` layout it implies: darknet stores no names or shapes, only
 * each weighted layer's arrays back to back in layer order, so the cfg is the whole index.
 */

export interface CfgSection {
  readonly type: string;
  /** 1-based line of the `[type]` header, for errors. */
  readonly line: number;
  readonly options: ReadonlyMap<string, string>;
}

/** One array of the `.weights` file, in file order. */
export interface DarknetArray {
  /** `layers.<i>.<field>`, i the 0-based layer index as darknet prints it ([net] not counted). */
  readonly name: string;
  readonly layer: number;
  readonly layerType: string;
  readonly shape: readonly number[];
  readonly role: TensorRole;
  readonly layout?: Layout;
}

export interface YoloHead {
  readonly layer: number;
  readonly anchors: string;
  readonly mask: string;
  readonly classes: string;
  readonly num: string;
  /** The head layout of the convolution feeding it, for plans: masked anchors × (5 + classes). */
  readonly layout: string;
  readonly tensor?: string;
}

export interface DarknetNetwork {
  readonly arrays: readonly DarknetArray[];
  readonly layers: number;
  readonly yoloHeads: readonly YoloHead[];
  readonly input: { channels: number; height: number; width: number };
}

/** Sections that pass their input's shape on and hold no weights. */
const SHAPE_KEEPING = new Set(['dropout', 'yolo', 'gaussian_yolo', 'region', 'detection', 'cost', 'softmax', 'logistic', 'l2norm', 'scale_channels', 'sam', 'activation']);
/** Sections darknet can load weights into that ckpt does not lay out: named rather than misread. */
const UNSUPPORTED = new Set(['local', 'deconvolutional', 'rnn', 'gru', 'lstm', 'crnn', 'conv_lstm', 'history', 'implicit_add', 'implicit_mul', 'contrastive', 'crop', 'xnor']);

export function parseCfg(cfgPath: string, text: string): CfgSection[] {
  const sections: { type: string; line: number; options: Map<string, string> }[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) return;
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      sections.push({ type: header[1]!.trim().toLowerCase(), line: i + 1, options: new Map() });
      return;
    }
    const eq = line.indexOf('=');
    if (eq < 0) throw invalidInput(cfgPath, `line ${i + 1}`, `expected '[section]' or 'key=value', found '${line.slice(0, 60)}'`);
    if (sections.length === 0) throw invalidInput(cfgPath, `line ${i + 1}`, 'option before the first [section]');
    sections[sections.length - 1]!.options.set(line.slice(0, eq).replace(/\s+/g, ''), line.slice(eq + 1).trim());
  });
  return sections;
}

/**
 * Walks the layers as darknet's parser does, tracking each output's channels × height × width,
 * and lists the arrays `load_weights` reads: convolutional (biases, then scales, rolling_mean,
 * rolling_variance with batch_normalize, then weights), connected (biases, weights, then the
 * normalization arrays) and batchnorm (scales, rolling_mean, rolling_variance).
 */
export function layoutOf(cfgPath: string, sections: readonly CfgSection[]): DarknetNetwork {
  const [net, ...layers] = sections;
  if (!net || (net.type !== 'net' && net.type !== 'network')) throw invalidInput(cfgPath, 'line 1', 'the first section must be [net]');
  const fail = (s: CfgSection, i: number, detail: string) => invalidInput(cfgPath, `line ${s.line}, layer ${i} [${s.type}]`, detail);
  const int = (s: CfgSection, i: number, key: string, fallback: number) => {
    const text = s.options.get(key);
    if (text === undefined) return fallback;
    if (!/^[+-]?\d+$/.test(text)) throw fail(s, i, `${key}=${text} is not an integer`);
    return Number(text);
  };
  const input = { channels: int(net, -1, 'channels', 3), height: int(net, -1, 'height', 0), width: int(net, -1, 'width', 0) };
  const outputs: { c: number; h: number; w: number }[] = [];
  const arrays: DarknetArray[] = [];
  const yoloHeads: YoloHead[] = [];
  const positive = (s: CfgSection, i: number, key: string, fallback: number) => {
    const v = int(s, i, key, fallback);
    if (v < 1) throw fail(s, i, `${key}=${v} must be at least 1`);
    return v;
  };
  const layerIndex = (s: CfgSection, i: number, text: string) => {
    const n = Number(text.trim());
    const at = n < 0 ? i + n : n;
    if (!Number.isInteger(n) || at < 0 || at >= i) throw fail(s, i, `refers to layer '${text.trim()}', which is not an earlier layer`);
    return at;
  };

  layers.forEach((s, i) => {
    const prev = i === 0 ? { c: input.channels, h: input.height, w: input.width } : outputs[i - 1]!;
    const add = (field: string, shape: number[], role: TensorRole, layout?: Layout) =>
      arrays.push({ name: `layers.${i}.${field}`, layer: i, layerType: s.type, shape, role, ...(layout ? { layout } : {}) });
    const normalization = (n: number) => {
      add('scales', [n], 'weight');
      add('rolling_mean', [n], 'buffer');
      add('rolling_variance', [n], 'buffer');
    };
    if (s.options.has('dontload') && s.options.get('dontload') !== '0') throw fail(s, i, 'dontload layers make the file layout depend on training options; not supported');
    switch (s.type) {
      case 'convolutional': case 'conv': {
        const filters = positive(s, i, 'filters', 1);
        const size = positive(s, i, 'size', 1);
        const stride = positive(s, i, 'stride', 1);
        const groups = positive(s, i, 'groups', 1);
        const dilation = positive(s, i, 'dilation', 1);
        if (s.options.has('share_index')) throw fail(s, i, 'layers sharing another layer\'s weights (share_index) are not supported');
        if (prev.c % groups) throw fail(s, i, `${prev.c} input channels do not divide into groups=${groups}`);
        const padding = int(s, i, 'pad', 0) ? Math.floor(size / 2) : int(s, i, 'padding', 0);
        const span = (size - 1) * dilation + 1;
        const [sx, sy] = [positive(s, i, 'stride_x', stride), positive(s, i, 'stride_y', stride)];
        add('biases', [filters], 'weight');
        if (int(s, i, 'batch_normalize', 0)) normalization(filters);
        add('weights', [filters, prev.c / groups, size, size], 'weight', 'OIHW');
        outputs.push({ c: filters, h: Math.floor((prev.h + 2 * padding - span) / sy) + 1, w: Math.floor((prev.w + 2 * padding - span) / sx) + 1 });
        break;
      }
      case 'connected': {
        const out = positive(s, i, 'output', 1);
        add('biases', [out], 'weight');
        add('weights', [out, prev.c * prev.h * prev.w], 'weight', 'OI');
        if (int(s, i, 'batch_normalize', 0)) normalization(out);
        outputs.push({ c: out, h: 1, w: 1 });
        break;
      }
      case 'batchnorm':
        normalization(prev.c);
        outputs.push(prev);
        break;
      case 'shortcut': {
        const kind = s.options.get('weights_type') ?? 'none';
        if (kind !== 'none') throw fail(s, i, `weighted shortcuts (weights_type=${kind}) are not supported`);
        for (const from of (s.options.get('from') ?? '').split(',').filter((t) => t.trim())) layerIndex(s, i, from);
        outputs.push(prev);
        break;
      }
      case 'route': {
        const sources = (s.options.get('layers') ?? '').split(',').filter((t) => t.trim()).map((t) => outputs[layerIndex(s, i, t)]!);
        if (sources.length === 0) throw fail(s, i, 'a route needs layers=');
        const groups = positive(s, i, 'groups', 1);
        const c = sources.reduce((n, o) => n + o.c, 0);
        if (c % groups) throw fail(s, i, `${c} channels do not divide into groups=${groups}`);
        outputs.push({ c: c / groups, h: sources[0]!.h, w: sources[0]!.w });
        break;
      }
      case 'maxpool': case 'max': {
        const stride = positive(s, i, 'stride', 1);
        const size = positive(s, i, 'size', stride);
        const padding = int(s, i, 'padding', size - 1);
        outputs.push({ c: prev.c, h: Math.floor((prev.h + padding - size) / stride) + 1, w: Math.floor((prev.w + padding - size) / stride) + 1 });
        break;
      }
      case 'avgpool': case 'avg':
        outputs.push({ c: prev.c, h: 1, w: 1 });
        break;
      case 'upsample': {
        const stride = int(s, i, 'stride', 2);
        if (stride === 0) throw fail(s, i, 'stride=0');
        outputs.push(stride > 0 ? { c: prev.c, h: prev.h * stride, w: prev.w * stride } : { c: prev.c, h: Math.floor(prev.h / -stride), w: Math.floor(prev.w / -stride) });
        break;
      }
      case 'reorg': {
        const stride = positive(s, i, 'stride', 1);
        outputs.push({ c: prev.c * stride * stride, h: Math.floor(prev.h / stride), w: Math.floor(prev.w / stride) });
        break;
      }
      default:
        if (UNSUPPORTED.has(s.type)) throw fail(s, i, `[${s.type}] layers are not supported`);
        if (!SHAPE_KEEPING.has(s.type)) throw fail(s, i, `unknown layer type [${s.type}]`);
        if (s.type === 'yolo' || s.type === 'gaussian_yolo') yoloHeads.push(yoloHead(s, i, arrays, int));
        outputs.push(prev);
    }
  });
  return { arrays, layers: layers.length, yoloHeads, input };
}

function yoloHead(s: CfgSection, i: number, arrays: readonly DarknetArray[], int: (s: CfgSection, i: number, key: string, fallback: number) => number): YoloHead {
  const text = (key: string, fallback: string) => s.options.get(key) ?? fallback;
  const classes = int(s, i, 'classes', 20);
  const num = int(s, i, 'num', 1);
  const masked = (s.options.get('mask') ?? '').split(',').filter((t) => t.trim()).length || num;
  const feeding = arrays.find((a) => a.layer === i - 1 && a.name.endsWith('.weights'));
  return {
    layer: i, anchors: text('anchors', ''), mask: text('mask', ''), classes: String(classes), num: String(num),
    layout: `yolo:${masked}`,
    ...(feeding && feeding.shape[0] === masked * (5 + classes) ? { tensor: feeding.name } : {}),
  };
}
