import assert from 'node:assert/strict';

/** The promise must reject with exactly this errno. */
export async function rejectsWith(promise: Promise<unknown>, errno: number): Promise<void> {
  await assert.rejects(promise, (e: { errno?: number }) => {
    assert.equal(e.errno, errno, `expected errno ${errno}, got ${e.errno}`);
    return true;
  });
}
