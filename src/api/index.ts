/** One typed function per command; each result is what the command's `--json` prints. */
export { write, type ModelInput, type Warn, type Progress, type WriteSettings } from './common.js';
export { inspect, type InspectOptions, type InspectResult, type TensorJson, type TreeJson } from './inspect.js';
export { diff, type DiffOptions, type DiffResult } from './diff.js';
export { select, strip, filter, type SelectMode, type SelectOptions, type SelectResult, type TensorBrief } from './select.js';
export { rename, type RenameOptions, type RenameResult } from './rename.js';
export { convert, convertIntoOnnx, type ConvertOptions, type ConvertResult, type GraphConvertResult } from './convert.js';
export {
  plan, savePlan, readPlan, applyPlan, classMapOfPlan,
  type PlanOptions, type PlanFile, type FileRef, type RecordedPlanOptions, type ApplyOptions, type ApplyResult,
} from './plan.js';
export { check, type CheckOptions, type CheckReport, type ForwardPass, type OutputReport, type SourceComparison } from './check.js';
export { scanFile as scan, type ScanReport, type ScanOptions, type ScanVerdict, type ScannedGlobal, type ScannedCode, type GlobalCategory } from '../formats/scan.js';
export { compare, type CompareOptions, type CompareResult, type OutputComparison, type ClassMap } from '../runtime/compare.js';
export {
  finetune, finetuneEvents,
  type FinetuneOptions, type FinetuneEvent, type FinetuneStart, type FinetuneEpoch, type FinetuneSummary,
} from './finetune.js';
