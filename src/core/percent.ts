/**
 * A fraction as a percentage with one decimal that never rounds to a false whole: 262/263 is
 * ">99.9%", not "100.0%", and 1/100000 is "<0.1%", not "0.0%". Every headline uses this.
 */
export function formatPercent(fraction: number): string {
  const text = (100 * fraction).toFixed(1);
  if (text === '100.0' && fraction < 1) return '>99.9%';
  if (text === '0.0' && fraction > 0) return '<0.1%';
  return `${text}%`;
}
