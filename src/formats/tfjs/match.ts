import type { FormatMatch } from '../types.js';
import { looksLikeTfjs } from './model-json.js';

export const tfjsFormat: FormatMatch = { name: 'tfjs', match: looksLikeTfjs };
