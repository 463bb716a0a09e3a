// The gate's token comparison, without a hash. Private: not re-exported.
//
// Every accepted token sits zero-padded in a fixed slot; a check compares the candidate's slot
// with every token's slot word by word and its length with every token's length, OR-ing every
// difference together. No early exit, no branch and no memory access depends on the data, so
// the time of a check depends only on the number of tokens. Kept apart from gate.ts so a test
// can hand it counting arrays and see that it reads every word of every slot, for any candidate.

/**
 * Whether `candidate` (its slot's words and its length) equals any of the tokens held in
 * `slots` (`slotWords` words each) with their `lengths`. Reads every word of every slot.
 */
export function matchesAnySlot(
  slots: ArrayLike<number>,
  lengths: ArrayLike<number>,
  slotWords: number,
  candidate: ArrayLike<number>,
  candidateLength: number,
): boolean {
  let matched = 0;
  for (let token = 0, base = 0; token < lengths.length; token++, base += slotWords) {
    let diff = lengths[token]! ^ candidateLength;
    for (let i = 0; i < slotWords; i++) diff |= slots[base + i]! ^ candidate[i]!;
    // 1 when diff is 0, else 0, without a branch: for any non-zero int32, diff | -diff has its sign bit set.
    matched |= ((diff | -diff) >>> 31) ^ 1;
  }
  return matched === 1;
}
