// HDF5's errors as one line for a user; apart from hdf5.ts so that the main thread need not load h5wasm.

/** Paths inside the HDF5 library's build tree mean nothing to a user: they never reach a message. */
const LIBRARY_PATH = /\/__w\/\S*|\S*libhdf5\S*/g;

/** The most specific line of an HDF5 error stack ("truncated file: eof = …"), without library paths. */
export function hdf5Reason(err: unknown): string {
  const text = String((err as Error)?.message ?? err);
  if (/^Aborted\(/.test(text)) return 'the HDF5 library aborted (the file is corrupt)';
  const lines = [...text.matchAll(/#\d+: .* in (\w+)\(\): (.*)/g)];
  const reason = lines.length ? lines[lines.length - 1]![2]!.trim() : text.split('\n')[0]!;
  return reason.replace(LIBRARY_PATH, '(HDF5 library)');
}
