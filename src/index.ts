/** The ckpt library: open any supported checkpoint as one normalized state dict. */
export { open, detectFormat } from './open.js';
export type { StateDict, TensorInfo, TensorOrigin, TensorRole, RoleEvidence, Layout, Metadata, OpenOptions, StoredBytes } from './core/statedict.js';
export { parameterCount } from './core/statedict.js';
export { DTYPE_BITS, byteLengthOf, numelOf, isDType, type DType } from './core/dtype.js';
export { CkptError, ExitCode } from './core/errors.js';
export { canonicalName, isGeneratedName } from './core/names.js';
export { isParameter, learnedParameterCount } from './core/roles.js';
export { tensorSha256 } from './ops/hash.js';
export { tensorStats, valueStats, HISTOGRAM_BINS, type TensorStats } from './ops/stats.js';
export { checkHealth, DEFAULT_MAX_ABS, type HealthProblem, type HealthReport } from './ops/health.js';
export { parsePattern, parsePatterns, type Pattern } from './ops/select.js';
export { READERS } from './formats/index.js';
export type { FormatReader, Probe } from './formats/types.js';
export { compare, type CompareOptions, type CompareResult, type OutputComparison, type ClassMap } from './runtime/compare.js';
