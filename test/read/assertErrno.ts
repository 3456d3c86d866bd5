/**
 * Asserting an engine call's errno: FsError carries the errno name; the message
 * is printed with a failure so a wrong errno says what the engine said instead.
 */
export interface ErrnoTest {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- tap's own signatures
  ok(value: any, ...messageAndExtra: any[]): unknown;
}

/** Awaits `p`; passes when it rejects with `.errno === errno` (and, if given, a message matching `message`). Returns the error. */
export async function rejectsErrno(t: ErrnoTest, p: Promise<unknown>, errno: string, what: string, message?: RegExp): Promise<Error | undefined> {
  try {
    const v = await p;
    t.ok(false, `${what}: expected ${errno}, but it succeeded`, { diagnostic: true, value: String(v) });
    return undefined;
  } catch (err) {
    const e = err as Error & { errno?: unknown };
    const good = e?.errno === errno && (!message || message.test(e.message));
    t.ok(good, `${what}${message ? ` (message ${message})` : ''}`, good ? undefined : { diagnostic: true, gotErrno: e?.errno, gotMessage: e?.message, stack: e?.stack });
    return e;
  }
}
