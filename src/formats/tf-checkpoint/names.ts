import { canonicalName, uniqueNames } from '../../core/names.js';
import { expectWire, fieldsOf, stringOf, type Fail } from './proto.js';

/**
 * Names in TensorFlow checkpoints. TF1 `tf.train.Saver` keys are variable names (`conv1/weights`,
 * slots `conv1/weights/Adam`). TF2 object-based keys are paths in the object graph
 * (`layer_with_weights-0/kernel/.ATTRIBUTES/VARIABLE_VALUE`); the graph, stored under
 * `_CHECKPOINTABLE_OBJECT_GRAPH`, also gives each variable's own name (`dense_4/kernel`).
 */
export const OBJECT_GRAPH_KEY = '_CHECKPOINTABLE_OBJECT_GRAPH';
const VARIABLE_VALUE = /\/\.ATTRIBUTES\/VARIABLE_VALUE$/;

/** Optimizer state and step counters: listed only when asked for. */
const TF1_SLOT = /\/(Adam|Adam_1|Momentum|RMSProp|RMSProp_1|Adagrad|AdagradDA|Adadelta|Adadelta_1|Ftrl|Ftrl_1|ProximalAdagrad)$/;
const TF1_TRAINING_SCALAR = /(^|\/)(beta[12]_power(_\d+)?|global_step)$/;
const TF2_TRAINING_STATE = /^(optimizer|save_counter)\/|\/\.OPTIMIZER_SLOT\//;

export function isTrainingState(key: string): boolean {
  return TF2_TRAINING_STATE.test(key) || TF1_SLOT.test(key) || TF1_TRAINING_SCALAR.test(key);
}

/**
 * `checkpoint_key → full_name` from a serialized TrackableObjectGraph: `repeated TrackableObject
 * nodes = 1`, each with `repeated SerializedTensor attributes = 2` (`full_name = 2`,
 * `checkpoint_key = 3`).
 */
export function fullNamesOf(graph: Uint8Array, fail: Fail): Map<string, string> {
  const names = new Map<string, string>();
  const what = 'TrackableObjectGraph';
  for (const node of fieldsOf(graph, fail, what)) {
    if (node.no !== 1) continue;
    for (const attribute of fieldsOf(expectWire(node, 2, fail, what).bytes, fail, `${what} node`)) {
      if (attribute.no !== 2) continue;
      let fullName = '';
      let key = '';
      for (const f of fieldsOf(expectWire(attribute, 2, fail, `${what} node`).bytes, fail, `${what} attribute`)) {
        if (f.no === 2) fullName = stringOf(f, fail, `${what} attribute`);
        else if (f.no === 3) key = stringOf(f, fail, `${what} attribute`);
      }
      if (key && fullName) names.set(key, fullName);
    }
  }
  return names;
}

/**
 * Canonical names: the variable's own name where the object graph gives one that no other listed
 * tensor shares (`dense_4.kernel`), else the key without `/.ATTRIBUTES/VARIABLE_VALUE`.
 */
export function canonicalNames(keys: readonly string[], fullNames: ReadonlyMap<string, string>): string[] {
  const uses = new Map<string, number>();
  for (const key of keys) {
    const full = fullNames.get(key);
    if (full) uses.set(full, (uses.get(full) ?? 0) + 1);
  }
  return uniqueNames(keys.map((key) => {
    const full = fullNames.get(key);
    return { name: canonicalName(full && uses.get(full) === 1 ? full : key.replace(VARIABLE_VALUE, '')) };
  }));
}
