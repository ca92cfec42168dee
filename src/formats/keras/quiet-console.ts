// HDF5 (compiled by emscripten) prints "Aborted(…)" and error stacks on the console besides
// throwing them; in the reader's worker every such failure already reaches the user as one error
// line, so the console here says nothing. worker.ts imports this first: emscripten binds
// console.error when h5wasm loads.
console.error = () => {};
console.warn = () => {};
console.log = () => {};
