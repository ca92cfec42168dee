/**
 * The ckpt library: open any supported checkpoint as one normalized state dict, and run every
 * command as a typed function whose result is what the command's `--json` prints.
 */
export { open, detectFormat } from './open.js';
export type { StateDict, OpenedStateDict, TensorInfo, TensorOrigin, TensorRole, RoleEvidence, Layout, Metadata, OpenOptions, StoredBytes } from './core/statedict.js';
export { parameterCount } from './core/statedict.js';
export { DTYPE_BITS, byteLengthOf, numelOf, isDType, type DType } from './core/dtype.js';
export { CkptError, ExitCode, type ErrorCode } from './core/errors.js';
export { canonicalName, isGeneratedName } from './core/names.js';
export { isParameter, learnedParameterCount } from './core/roles.js';
export { tensorSha256 } from './ops/hash.js';
export { tensorStats, valueStats, HISTOGRAM_BINS, type TensorStats } from './ops/stats.js';
export { checkHealth, DEFAULT_MAX_ABS, type HealthProblem, type HealthReport } from './ops/health.js';
export { parsePattern, parsePatterns, type Pattern } from './ops/select.js';
export { PRESETS } from './ops/presets.js';
export type { DiffReport, PairReport } from './ops/diff.js';
export type { PlanEntry, PlanMode, InitKind } from './ops/plan.js';
export type { Totals } from './ops/summary.js';
export type { ProviderChoice } from './runtime/session.js';
export type { WriteReport } from './formats/writers.js';
export { READERS } from './formats/index.js';
export { WRITERS } from './formats/writers.js';
export type { FormatReader, Probe } from './formats/types.js';
export type { FormatWriter } from './formats/writers.js';
export * from './api/index.js';
export type { GgufQuantizeRule } from './formats/gguf/quantize.js';
