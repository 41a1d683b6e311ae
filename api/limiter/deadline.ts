/**
 * A store call's deadline, shared by the stores that cross a network (Redis, the Durable Object): a call not
 * answered in time rejects, so the limiter applies `onStoreFailure` instead of letting a decision wait on a store
 * that hangs. The call itself is not cancelled; its late answer is dropped.
 *
 *   await withDeadline(() => client.get(key), 250, "Redis");
 */
export async function withDeadline<T>(call: () => Promise<T>, timeoutMs: number, store: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${store} did not answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([call(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}
