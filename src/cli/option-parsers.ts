import { InvalidArgumentError } from 'commander';

/** A commander parser for a whole number from min to max (Number.MAX_SAFE_INTEGER: no upper bound), with the reason in one line. */
export function integer(min: number, max: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v)) throw new InvalidArgumentError(`"${v}" is not a whole number`);
    const n = Number(v);
    if (n < min || n > max) throw new InvalidArgumentError(max === Number.MAX_SAFE_INTEGER ? `must be at least ${min}` : `must be between ${min} and ${max}`);
    return n;
  };
}
