/**
 * The candidate a misspelt word most likely meant: the closest by edit distance (a swap of two neighbouring
 * letters counts as one edit), if it is close enough to be a typo rather than another word.
 *
 *   closestMatch("hostAcessTable", ["authProfile", "hostAccessTable"])   // "hostAccessTable"
 */
export function closestMatch(word: string, candidates: Iterable<string>): string | undefined {
  // One edit in a short word, about one in four in a longer one: "mdoe" → "mode", never "tls" → "api".
  const allowed = Math.max(1, Math.floor(word.length / 4));
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const candidate of candidates) {
    const distance = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (distance <= allowed && distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return best;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and adjacent transpositions. */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i += 1) rows.push([i]);
  for (let j = 1; j <= b.length; j += 1) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i += 1) {
    const row = rows[i] as number[];
    const above = rows[i - 1] as number[];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let distance = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
        distance = Math.min(distance, ((rows[i - 2] as number[])[j - 2] as number) + 1);
      row[j] = distance;
    }
  }
  return (rows[a.length] as number[])[b.length] as number;
}
