/**
 * A deadline on one promise: it rejects with DeadlineExceeded after `ms`, for the callers that cross a network
 * (an LDAP step, a brute-force store call). The work itself is not cancelled; its late answer is dropped, and the
 * caller destroys what the slow work held where that matters.
 *
 *   await withDeadline(client.unbind(), 1000, "unbind");   // DeadlineExceeded "unbind timed out after 1000 ms"
 */
export class DeadlineExceeded extends Error {
  override name = "DeadlineExceeded";
}

export async function withDeadline<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new DeadlineExceeded(`${what} timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, deadline]);
  } finally {
    clearTimeout(timer);
  }
}
