import { integer } from '../../src/cli/option-parsers.js';

const atLeastOne = integer(1, Number.MAX_SAFE_INTEGER);

/** A count given to a bench command's `--name`: a whole number of at least 1 (the CLI's own check), else an error naming the option. */
export function wholeOption(name: string, value: string): number {
  try {
    return atLeastOne(value);
  } catch (err) {
    throw new Error(`--${name}: ${(err as Error).message}`);
  }
}
