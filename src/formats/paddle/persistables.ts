import { invalidInput } from '../../core/errors.js';
import { inFolder } from '../../core/location.js';
import { RandomAccessFile } from '../../core/file.js';
import { canonicalName, uniqueNames } from '../../core/names.js';
import { roleFromName } from '../../core/roles.js';
import type { StateDict, TensorInfo } from '../../core/statedict.js';
import type { FormatReader } from '../types.js';
import { paddlePersistablesFormat, variableFiles } from './match.js';
import { rangeTensor } from '../range-tensor.js';
import { readLoDTensor } from './inference.js';
import { PADDLE_DTYPES } from './program.js';

/**
 * A fluid persistables folder without its program: what PaddleDetection 1.x ships as pretrained
 * weights (`faster_rcnn_r50_1x.tar`): one LoDTensor file per variable, named after it. Opened as a
 * folder — local, inside a `.tar`/`.zip`, or an archive by URL — each file one tensor.
 */

export const paddlePersistablesReader: FormatReader = { ...paddlePersistablesFormat, open: openPersistables };

async function openPersistables(folder: string): Promise<StateDict> {
  const files: RandomAccessFile[] = [];
  const close = async () => files.splice(0).forEach((f) => f.close());
  try {
    const names = variableFiles(folder);
    const canonical = uniqueNames(names.map((name) => ({ name: canonicalName(name) })));
    const tensors: TensorInfo[] = names.map((name, i) => {
      const raf = RandomAccessFile.open(inFolder(folder, name));
      files.push(raf);
      const what = `variable '${name}'`;
      const record = readLoDTensor(raf, 0, what);
      if (record.end !== raf.size) throw invalidInput(raf.path, `offset ${record.end}`, `${raf.size - record.end} bytes after the tensor`);
      const dtype = PADDLE_DTYPES[record.desc.dataType]!;
      return rangeTensor(raf, {
        name: canonical[i]!, source: name, dtype, shape: record.desc.dims, offset: record.dataOffset, origin: 'weight',
        role: roleFromName(name, dtype), roleFrom: 'names' as const,
      });
    });
    const metadata = { parameters: 'one file per variable', variables: names.length };
    return { format: 'paddle-persistables', path: folder, metadata, tensors, close, bytesRead: () => files.reduce((n, f) => n + f.bytesRead, 0) };
  } catch (err) {
    await close();
    throw err;
  }
}
